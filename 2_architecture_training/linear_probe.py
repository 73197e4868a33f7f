"""How much of jawOpen can a linear model read from the mel, on the training speakers and on
held-out ones? A diagnostic (not a stage): ridge regression from stacked mel frames (PAST_MS before
to FUTURE_MS after each frame) to jawOpen, fitted on a dataset's training split, scored as the
frame-weighted mean of per-clip Pearson r on both splits; optionally with the training data
frequency-warped (vocal-tract-length perturbation) as train.py's --freq-warp does.

    python 2_architecture_training/linear_probe.py --dataset-dir data/real/dataset
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure

# --- settings (each can be given on the command line: DATASET_DIR as --dataset-dir) ----------
DATASET_DIR = REPO_ROOT / "data/dataset"   # a stage 1.3 output
INPUT = "mel_level"             # mel (fixed scale) or mel_level (causal level normalisation)
PAST_MS = 300                   # context before each frame
FUTURE_MS = 100                 # context after it (what a look-ahead would hear)
STEP_MS = 30                    # spacing of the stacked frames
WARPS = [1.0]                   # training copies warped by these factors (e.g. 0.85 0.92 1.0 1.08 1.15)
RIDGE = [10.0, 1000.0]          # ridge strengths to try
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv)
    import json

    import numpy as np
    from voiceface.dataset import warp_mel
    from voiceface.metrics import JAW_OPEN, pearson
    dataset = Path(DATASET_DIR)
    manifest = json.loads((dataset / "dataset_manifest.json").read_text())

    def split(name):
        clips = [c for c in manifest["clips"] if c["split"] == name]
        return (np.load(dataset / name / f"{INPUT}.npy"), np.load(dataset / name / "targets.npy")[:, JAW_OPEN],
                np.load(dataset / name / "mask.npy").astype(bool), clips)

    def stack(x, clips):
        lags = range(-PAST_MS // 10, FUTURE_MS // 10 + 1, STEP_MS // 10)
        parts = []
        for c in clips:
            clip = x[c["start"]:c["start"] + c["frames"]]
            index = np.arange(len(clip))
            parts.append(np.concatenate([clip[np.clip(index + lag, 0, len(clip) - 1)] for lag in lags], axis=1))
        return np.concatenate(parts)

    def score(prediction, y, mask, clips):
        rs = [(pearson(prediction[c["start"]:c["start"] + c["frames"]][mask[c["start"]:c["start"] + c["frames"]]],
                       y[c["start"]:c["start"] + c["frames"]][mask[c["start"]:c["start"] + c["frames"]]]),
               mask[c["start"]:c["start"] + c["frames"]].sum()) for c in clips]
        return float(np.average([r for r, _ in rs], weights=[w for _, w in rs]))

    xt, yt, mt, ct = split("train")
    xv, yv, mv, cv = split("val")
    features = np.concatenate([stack(warp_mel(xt, a) if a != 1 else xt, ct) for a in WARPS])
    targets, mask = np.tile(yt, len(WARPS)), np.tile(mt, len(WARPS))
    design = np.c_[features[mask], np.ones(mask.sum())]
    plain_train, held_out = np.c_[stack(xt, ct), np.ones(len(xt))], np.c_[stack(xv, cv), np.ones(len(xv))]
    print(f"{INPUT}, context -{PAST_MS}..+{FUTURE_MS} ms, warps {WARPS}")
    for strength in RIDGE:
        weights = np.linalg.solve(design.T @ design + strength * np.eye(design.shape[1]), design.T @ targets[mask])
        print(f"  ridge {strength:g}: jawOpen r on training speakers {score(plain_train @ weights, yt, mt, ct):.3f}, "
              f"on held-out speakers {score(held_out @ weights, yv, mv, cv):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
