"""Does a model rest its mouth when nobody speaks? Mean jawOpen from each checkpoint given seconds of
digital silence and of stationary room noise (white, pink, brown) at set levels, beside the face at
rest of the clips it was trained on (each training clip's median jawOpen in its pauses, then the
median over clips: what stage 1.3's centring puts every clip's rest on).

    python 3_inference/rest_check.py runs/default/last.pt
    python 3_inference/rest_check.py runs/benchmark/benchmark.json      # every fold's model of a benchmark
    python 3_inference/rest_check.py runs/*/best.pt --noises digital:0 pink:-50 --json rest.json
    python 3_inference/rest_check.py runs/default/last.pt --after-speech talk.mp4    # quiet after 6 s of talk.mp4

Prints a markdown table, one row per model. Real recordings rarely hold 12 s without a voice, so
this is the check the benchmarks cannot make; the tests make the same check on generated clips.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.cli import configure, out_of_range, run_main

# --- settings (each can be given on the command line: SECONDS as --seconds) --------------------
MODELS = []                     # checkpoints (.pt), or benchmark JSON files (every fold's last.pt, which it scored)
NOISES = ["digital:0", "white:-60", "pink:-60", "brown:-60", "white:-45", "pink:-45", "brown:-45"]  # kind:dBFS
SECONDS = 12.0                  # how long each input lasts
SKIP_SECONDS = 1.0              # left out of the mean: the model's first second, before its running level settles
AFTER_SPEECH = ""                # an audio or video file: its first SPEECH_SECONDS come before each quiet input (the
#                                 mouth at rest after speech; without it the quiet opens the stream, before any voice)
SPEECH_SECONDS = 6.0            # with --after-speech: how much of it
JSON = ""                       # if given: the figures as JSON too
# --- end of settings ---------------------------------------------------------------------------


def checkpoints_in(path: Path) -> list[Path]:
    """A checkpoint, or every fold's last.pt that a benchmark JSON names: the model evaluate.py scored
    (its best.pt was chosen on the held-out clip)."""
    from voiceface.evaluation import read_benchmark_report
    from voiceface.formats import recorded_path
    if path.suffix != ".json":
        return [path]
    report = read_benchmark_report(path)
    return [recorded_path(fold["run_dir"]) / "last.pt" for bench in report["benchmarks"].values() for fold in bench["folds"]]


def training_rest(checkpoint: dict) -> float | None:
    """The median over the training clips of each one's jawOpen at rest, from the dataset the model
    was trained on (None when that dataset is no longer there)."""
    import json
    import numpy as np
    from voiceface.dataset import MANIFEST_FILENAME, clip_rest_faces
    from voiceface.formats import recorded_path
    from voiceface.metrics import JAW_OPEN
    root = recorded_path(checkpoint.get("training", {}).get("dataset_dir", ""))
    if not (root / MANIFEST_FILENAME).exists():
        return None
    arrays = [np.load(root / "train" / f"{k}.npy", mmap_mode="r") for k in ("targets", "mask", "vad")]
    clips = [c for c in json.loads((root / MANIFEST_FILENAME).read_text())["clips"] if c["split"] == "train"]
    rests = [face[JAW_OPEN] for face in clip_rest_faces(*arrays, clips).values() if face is not None]
    return float(np.median(rests)) if rests else None


def parse_noise(text: str) -> tuple[str, float]:
    kind, _, level = text.partition(":")
    if kind not in ("digital", "white", "pink", "brown") or not level:
        raise ValueError(f"--noises {text!r}: say kind:dBFS with kind digital, white, pink or brown")
    return kind, float(level)


def main(argv=None) -> int:
    configure(globals(), argv, positional="MODELS")
    import numpy as np
    from voiceface.constants import SAMPLE_RATE
    from voiceface.engine import Animator, load_model
    from voiceface.errors import FormatError, InputError
    from voiceface.metrics import JAW_OPEN
    from voiceface.formats import write_json_atomic
    from voiceface.synthetic import room_noise
    try:
        noises = [parse_noise(str(n)) for n in NOISES]
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if problem := out_of_range(("--skip-seconds", SKIP_SECONDS, 0, False),
                               ("--speech-seconds", SPEECH_SECONDS, 0, True, "how much of --after-speech")):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if SECONDS <= SKIP_SECONDS:
        print(f"error: --seconds {SECONDS:g} leaves nothing after --skip-seconds {SKIP_SECONDS:g}; give more", file=sys.stderr)
        return 1
    if not MODELS:
        print("error: name one or more checkpoints or benchmark JSON files", file=sys.stderr)
        return 1
    inputs = [room_noise(kind, level, SECONDS, SAMPLE_RATE, seed=1) for kind, level in noises]
    lead_in = np.zeros(0, np.float32)           # what comes before the quiet
    if AFTER_SPEECH:
        from voiceface.audio import load_audio
        try:
            _, speech = load_audio(AFTER_SPEECH)
        except InputError as error:              # its message names the file and what to do
            print(f"error: {error}", file=sys.stderr)
            return 1
        lead_in = np.asarray(speech[:int(SPEECH_SECONDS * SAMPLE_RATE)], np.float32)
    quiet_from = len(lead_in) / SAMPLE_RATE + SKIP_SECONDS     # the mean starts here
    rows, failed = [], 0
    for given in map(Path, MODELS):
        try:
            paths = checkpoints_in(given)
        except InputError as error:         # names the file; a .pt that is not a checkpoint is load_model's to say
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        except (KeyError, TypeError) as error:
            print(f"error: {given}: a benchmark report without its folds' runs ({error!r}); name a .pt or "
                  "evaluate.py's --json", file=sys.stderr)
            failed += 1
            continue
        for path in paths:
            try:
                model, checkpoint = load_model(path)
            except FormatError as error:          # missing, damaged or foreign (its message names the file): go on
                print(f"error: {error}", file=sys.stderr)
                failed += 1
                continue
            means = {}
            for (kind, level), samples in zip(noises, inputs):
                animator = Animator(model, checkpoint)
                frames = [animator.push(np.concatenate([lead_in, samples])), animator.finish()]
                times = np.concatenate([f.times for f in frames])
                values = np.concatenate([f.blendshapes[:, JAW_OPEN] for f in frames])
                means[f"{kind}:{level:g}"] = float(values[times >= quiet_from].mean())
            rows.append({"checkpoint": str(path), "training_rest": training_rest(checkpoint), "jaw_open": means})
    if rows:
        names = list(rows[0]["jaw_open"])
        after = f", after {len(lead_in) / SAMPLE_RATE:g} s of {AFTER_SPEECH}" if AFTER_SPEECH else ""
        print(f"mean jawOpen over {SECONDS:g} s of each input{after} (its first {SKIP_SECONDS:g} s left out)\n")
        print("| model | rest of its training clips | " + " | ".join(f"{n} dBFS" for n in names) + " |")
        print("|---|---|" + "---|" * len(names))
        for row in rows:
            rest = "–" if row["training_rest"] is None else f"{row['training_rest']:.3f}"
            print(f"| {row['checkpoint']} | {rest} | " + " | ".join(f"{row['jaw_open'][n]:.3f}" for n in names) + " |")
    if JSON:
        write_json_atomic(JSON, {"seconds": SECONDS, "skip_seconds": SKIP_SECONDS, "after_speech": str(AFTER_SPEECH),
                                 "speech_seconds": len(lead_in) / SAMPLE_RATE, "models": rows})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
