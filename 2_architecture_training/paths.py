"""Which path of a trained model carries each output: the blocks (the TCN proper, through its
head) or the linear skip? A diagnostic (not a stage). For each listed blendshape it prints, over
a dataset split's frames, the mean and spread of the two paths' contributions to the logit (the
sigmoid's input, or the clamped output's) and the spread of the resulting score against the labels'. A path whose spread
is near zero contributes a constant; a logit far below -5 is a sigmoid at rest, whose gradient has
all but vanished (a "dead" shape).

    python 2_architecture_training/paths.py --checkpoint runs/default/last.pt --dataset-dir data/dataset
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: DATASET_DIR as --dataset-dir) ----------
CHECKPOINT = REPO_ROOT / "runs/default/last.pt"
DATASET_DIR = REPO_ROOT / "data/dataset"   # a stage 1.3 output made for this checkpoint
SPLIT = "val"
SHAPES = ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthStretchLeft"]
# --- end of settings ---------------------------------------------------------------------------


def path_logits(model, inputs):
    """(T, 80) model inputs of one clip -> (blocks' logits (T, 59), skip's logits (T, 59) or zeros,
    the scores (T, 59) the model outputs)."""
    import numpy as np
    import torch
    x = torch.from_numpy(inputs)[None]
    with torch.no_grad():
        blocks, skip, _ = model.path_logits(x)
        scores = model.eval()(x)[0].numpy()
    blocks = blocks[0].numpy()
    return blocks, (skip[0].numpy() if skip is not None else np.zeros_like(blocks)), scores


def main(argv=None) -> int:
    configure(globals(), argv)
    import numpy as np
    from voiceface.constants import BLENDSHAPE_NAMES
    from voiceface.dataset import FORMANT_FILES, INPUT_FILES, read_dataset_manifest
    from voiceface.engine import load_model
    from voiceface.errors import FormatError, InputError
    try:
        model, checkpoint = load_model(CHECKPOINT)
    except (FormatError, InputError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    dataset = Path(DATASET_DIR)
    try:
        manifest = read_dataset_manifest(dataset)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    folder = dataset / SPLIT
    if not any(c["split"] == SPLIT for c in manifest["clips"]) or not folder.is_dir():
        print(f"error: {folder}: no clips in split {SPLIT!r}; choose --split train or val", file=sys.stderr)
        return 1
    mel = np.load(folder / INPUT_FILES[checkpoint["input_mode"]])
    if checkpoint.get("formants") is not None:         # the formant channels after the mel, as it was trained
        if manifest.get("formants") is None:
            print(f"error: {dataset}: holds no formant channels, which {CHECKPOINT} reads; give the dataset it was "
                  "trained on", file=sys.stderr)
            return 1
        mel = np.concatenate([mel, np.load(folder / FORMANT_FILES["inputs"])], axis=1)
    targets, mask = np.load(folder / "targets.npy"), np.load(folder / "mask.npy").astype(bool)
    blocks, skip, scores, truth = [], [], [], []
    for clip in (c for c in manifest["clips"] if c["split"] == SPLIT):
        span = slice(clip["start"], clip["start"] + clip["frames"])
        b, s, score = path_logits(model, np.ascontiguousarray(mel[span]))
        known = mask[span]
        blocks.append(b[known]), skip.append(s[known]), scores.append(score[known]), truth.append(targets[span][known])
    blocks, skip, scores, truth = (np.concatenate(a) for a in (blocks, skip, scores, truth))
    print(f"{CHECKPOINT}, {SPLIT} split of {dataset}: {len(truth)} frames (look-ahead ignored: spreads only)")
    print(f"{'shape':18s} {'blocks logit':>15s} {'skip logit':>15s} {'score spread':>13s} {'label spread':>13s}")
    for name in SHAPES:
        k = BLENDSHAPE_NAMES.index(name)
        print(f"{name:18s} {blocks[:, k].mean():7.2f} ± {blocks[:, k].std():5.2f} {skip[:, k].mean():7.2f} ± "
              f"{skip[:, k].std():5.2f} {scores[:, k].std():13.3f} {truth[:, k].std():13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
