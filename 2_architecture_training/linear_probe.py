"""How much of jawOpen can a linear model read from the mel, on the training speakers and on
held-out ones? A diagnostic (not a stage): the ridge baseline of the evaluation (voiceface/ridge.py:
stacked frames, the strength chosen by leave-one-clip-out) fitted on a dataset's training split,
scored as the frame-weighted mean of per-clip Pearson r on both splits; optionally with the
training data frequency-warped (vocal-tract-length perturbation) as train.py's --freq-warp does.

    python 2_architecture_training/linear_probe.py --dataset-dir data/dataset --lookahead-ms 100
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure

# --- settings (each can be given on the command line: DATASET_DIR as --dataset-dir) ----------
DATASET_DIR = REPO_ROOT / "data/dataset"   # a stage 1.3 output
INPUT = "mel_level"             # mel (fixed scale) or mel_level (causal level normalisation)
LOOKAHEAD_MS = 100.0            # the face of this long ago is read from the audio up to now
WARPS = [1.0]                   # training copies warped by these factors (e.g. 0.85 0.92 1.0 1.08 1.15)
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv)
    import json

    import numpy as np
    from voiceface.dataset import MANIFEST_FILENAME, warp_mel
    from voiceface.metrics import JAW_OPEN, pearson
    from voiceface.ridge import RidgeBaseline, shift_targets
    dataset = Path(DATASET_DIR)
    manifest = json.loads((dataset / MANIFEST_FILENAME).read_text())
    lookahead = int(round(LOOKAHEAD_MS / 10))

    def split(name):
        x, y, m = (np.load(dataset / name / f"{key}.npy") for key in (INPUT, "targets", "mask"))
        spans = [slice(c["start"], c["start"] + c["frames"]) for c in manifest["clips"] if c["split"] == name]
        return [x[s] for s in spans], [y[s] for s in spans], [m[s].astype(bool) for s in spans]

    def score(model, xs, ys, ms) -> float:
        rs, weights = [], []
        for x, y, m in zip(xs, ys, ms):
            truth, known = shift_targets(y, m, lookahead)
            rs.append(pearson(model.predict(x)[known, JAW_OPEN], truth[known, JAW_OPEN]))
            weights.append(known.sum())
        return float(np.average(rs, weights=weights))

    train, held_out = split("train"), split("val")
    warped = [[warp_mel(x, a) if a != 1 else x for a in WARPS for x in train[0]],
              [y for _ in WARPS for y in train[1]], [m for _ in WARPS for m in train[2]]]
    model = RidgeBaseline.fit(*warped, lookahead)
    print(f"{INPUT}, look-ahead {LOOKAHEAD_MS:g} ms, warps {WARPS}, ridge strength {model.strength:g} "
          f"(chosen by leave-one-clip-out): jawOpen r on training speakers {score(model, *train):.3f}, "
          f"on held-out speakers {score(model, *held_out):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
