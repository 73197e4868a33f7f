"""Compare training settings on one dataset at an equal budget, and tabulate the results.

    python 2_architecture_training/study.py --study windows   --dataset-dir data/real/dataset --out-dir runs/study
    python 2_architecture_training/study.py --study lookahead --dataset-dir data/real/dataset --out-dir runs/study
    python 2_architecture_training/study.py --study input     --dataset-dir data/real/dataset --out-dir runs/study

Each variant is one train.py run with the same preset, seed, learning rate and budget: the same
number of training frames in the same number of optimiser steps (windows x batch size is held at
BATCH_FRAMES). Finished runs are kept and not redone. Writes <out-dir>/<study>.md (a markdown
table of the best epoch of each run, by validation loss) and, for the look-ahead study,
<out-dir>/lookahead.png (quality against latency).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_child, run_main

# --- settings (each can be given on the command line: STUDY as --study) ----------------------
STUDY = "windows"               # windows, lookahead or input
DATASET_DIR = REPO_ROOT / "data/dataset"   # a stage 1.3 output
OUT_DIR = REPO_ROOT / "runs/study"         # one run folder per variant, and the tables
PRESET = "default"              # the model every variant trains
BUDGET_FRAMES = 2_000_000       # training frames per run (about 3.5 min of the default model on 2 cores)
BATCH_FRAMES = 12_800           # frames per optimiser step: 16 windows of 8 s, or 533 of 0.24 s
WINDOW_SECONDS = 8.0            # lookahead and input studies: the training windows
STRIDE_SECONDS = 4.0            # lookahead and input studies: their stride
WARMUP_SECONDS = 2.0            # lookahead and input studies: their warm-up
BASE_ARGS = ""                  # more train.py arguments for every run, as one string
LEARNING_RATE = 2e-3            # as train.py
SEED = 0                        # as train.py
# --- end of settings ---------------------------------------------------------------------------

# each variant: (name, (window, stride, warm-up) seconds or None for the settings', extra train.py arguments)
VARIANTS = {
    "windows": [("windows_0.24s", (0.24, 0.12, 0.0), []),
                ("windows_8s", (8.0, 4.0, 2.0), [])],
    "lookahead": [(f"lookahead_{ms}ms", None, ["--lookahead-ms", str(ms)]) for ms in (0, 40, 100, 250)],
    "input": [("input_fixed_gain6dB", None, ["--input-mode", "fixed", "--gain-augment-db", "6", "--freq-warp", "0"]),
              ("input_fixed_gain6dB_warp", None, ["--input-mode", "fixed", "--gain-augment-db", "6", "--freq-warp", "0.15"]),
              ("input_level", None, ["--input-mode", "level", "--gain-augment-db", "0", "--freq-warp", "0"]),
              ("input_level_warp", None, ["--input-mode", "level", "--gain-augment-db", "0", "--freq-warp", "0.15"])],
}
TRAINING_METRICS = ("mae", "mouth_mae", "jaw_open_r", "mouth_close_r", "smile_r", "translation_mae_cm",
                    "rotation_error_deg")


def frames_per_epoch(dataset: Path, window: int, stride: int, warmup: int) -> tuple[int, int]:
    """(frames, windows) a training epoch covers with these windows."""
    from voiceface.dataset import create_sequences, read_dataset_manifest
    manifest = read_dataset_manifest(dataset)
    cut = [create_sequences(c["frames"], window, stride, warmup) for c in manifest["clips"] if c["split"] == "train"]
    return sum(int(w[:, 1].sum()) for w in cut), sum(len(w) for w in cut)


def main(argv=None) -> int:
    configure(globals(), argv)
    import json
    import math
    if STUDY not in VARIANTS:
        print(f"error: no study {STUDY!r}; choose one of {', '.join(VARIANTS)}", file=sys.stderr)
        return 1
    from voiceface.dataset import read_dataset_manifest
    from voiceface.errors import InputError
    try:
        read_dataset_manifest(DATASET_DIR)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    import shlex
    rows = []
    for name, windows, extra in VARIANTS[STUDY]:
        window_s, stride_s, warmup_s = windows or (WINDOW_SECONDS, STRIDE_SECONDS, WARMUP_SECONDS)
        run_dir = Path(OUT_DIR) / name
        frames, windows = frames_per_epoch(Path(DATASET_DIR), *(int(round(s * 100)) for s in (window_s, stride_s, warmup_s)))
        batch = max(1, round(BATCH_FRAMES / (window_s * 100)))
        epochs = max(1, math.ceil(BUDGET_FRAMES / frames))
        done = run_dir / "metrics.jsonl"
        if not (done.exists() and len(done.read_text().splitlines()) == epochs):
            command = [sys.executable, str(Path(__file__).parent / "train.py"), "--dataset-dir", str(DATASET_DIR),
                       "--run-dir", str(run_dir), "--preset", PRESET, "--epochs", str(epochs), "--batch-size", str(batch),
                       "--window-seconds", str(window_s), "--stride-seconds", str(stride_s), "--warmup-seconds",
                       str(warmup_s), "--learning-rate", str(LEARNING_RATE), "--seed", str(SEED),
                       *shlex.split(BASE_ARGS), *extra,
                       *(["--force"] if (run_dir / "last.pt").exists() else [])]   # an unfinished run: again
            print(f"=== {name}: {epochs} epochs x {windows} windows, batch {batch}", flush=True)
            if run_child(command).returncode != 0:
                print(f"error: the run {name} failed", file=sys.stderr)
                return 1
        history = [json.loads(line) for line in done.read_text().splitlines()]
        best = min(history, key=lambda h: h["val"]["loss"])
        rows.append((name, extra, epochs, batch, best))
    from voiceface.evaluation import COLUMNS
    from voiceface.formats import write_text_atomic
    columns = [c for c in COLUMNS if c[0] in TRAINING_METRICS]          # (key, label, digits)
    lines = ["| run | epochs × batch | best epoch | " + " | ".join(label for _, label, _ in columns) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in columns) + " |"]
    for name, _, epochs, batch, best in rows:
        lines.append(f"| {name} | {epochs} × {batch} | {best['epoch']} | " +
                     " | ".join(f"{best['val'][key]:.{digits}f}" for key, _, digits in columns) + " |")
    table = "\n".join(lines)
    write_text_atomic(Path(OUT_DIR) / f"{STUDY}.md", table + "\n")
    print(table)
    if STUDY == "lookahead":
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        latency = [float(extra[1]) for _, extra, _, _, _ in rows]
        figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        axes[0].plot(latency, [b["val"]["mouth_mae"] for *_, b in rows], "o-")
        axes[0].set_ylabel("validation mouth MAE")
        for key, label in (("jaw_open_r", "jawOpen"), ("mouth_close_r", "mouthClose"), ("smile_r", "smile")):
            axes[1].plot(latency, [b["val"][key] for *_, b in rows], "o-", label=label)
        axes[1].set_ylabel("validation Pearson r")
        axes[1].legend()
        for axis in axes:
            axis.set_xlabel("look-ahead = added latency (ms)")
        figure.tight_layout()
        figure.savefig(Path(OUT_DIR) / "lookahead.png", dpi=80)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
