"""Benchmark training (not a test): train.py's throughput in frames per second and the share of
its time spent loading data, beside a bare forward + backward + AdamW loop of the same model on
random tensors of the same batch shape, measured in the same run.

    python 2_architecture_training/benchmark_training.py --dataset-dir data/sample/dataset

Aim: data loading <= 5 % of training time.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`
sys.path.insert(0, str(Path(__file__).resolve().parent))      # this folder, for `import models`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_child, run_main

# --- settings (each can be given on the command line: DATASET_DIR as --dataset-dir) ----------
DATASET_DIR = REPO_ROOT / "data/sample/dataset"   # any stage 1.3 output (run_pipeline.py makes this one)
PRESET = "default"              # the model to time
EPOCHS = 3                      # the first is a warm-up; the best later epoch counts
BATCH_SIZE = 16                 # as train.py's default
WINDOW_SECONDS = 4.0            # windows re-cut to this length, so the sample gives several batches
# --- end of settings ---------------------------------------------------------------------------


def bare_loop_fps(batch: int, frames: int) -> float:
    import time

    import torch
    from models import PRESETS, VoiceToFaceTCN
    from models.optimizer import AdamW
    model = VoiceToFaceTCN(PRESETS[PRESET])
    optimizer = AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, frames, 80)
    y = torch.rand(batch, frames, 59)
    times = []
    for _ in range(6):
        start = time.perf_counter()
        loss = torch.nn.functional.l1_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return batch * frames / min(times[1:])


def main(argv=None) -> int:
    configure(globals(), argv)
    import json
    import tempfile
    from voiceface.dataset import MANIFEST_FILENAME
    if not (Path(DATASET_DIR) / MANIFEST_FILENAME).exists():
        print(f"error: {DATASET_DIR}: no dataset; run `python run_pipeline.py --stop-stage 3` first, or pass "
              "--dataset-dir", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as run_dir:
        result = run_child([sys.executable, str(Path(__file__).parent / "train.py"), "--dataset-dir",
                            str(DATASET_DIR), "--run-dir", run_dir, "--preset", PRESET, "--epochs", str(EPOCHS),
                            "--batch-size", str(BATCH_SIZE), "--window-seconds", str(WINDOW_SECONDS)],
                           capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stderr[-2000:], file=sys.stderr)
            return 1
        history = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    best = max(history[1:] or history, key=lambda h: h["frames_per_second"])
    bare = bare_loop_fps(BATCH_SIZE, int(WINDOW_SECONDS * 100))
    print(f"preset {PRESET}, batch {BATCH_SIZE} x {WINDOW_SECONDS:g} s windows")
    print(f"  train.py:                         {best['frames_per_second']:9.0f} frames/s "
          f"({best['frames_per_second'] / 100:.0f} s of audio per second)")
    print(f"  bare forward+backward+AdamW loop: {bare:9.0f} frames/s")
    print(f"  ratio train.py / bare:            {best['frames_per_second'] / bare:9.2f}")
    print(f"  data loading share:               {100 * best['data_loading_share']:8.1f} %   (aim <= 5 %)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
