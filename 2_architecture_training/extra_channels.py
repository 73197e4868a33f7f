"""Would the TCN gain from input channels beside the mel? A diagnostic (not a stage): a copy of
the dataset, ordinary train.py runs, and a score of them:

1. a copy of a stage 1.3 dataset whose inputs (both modes) carry the 16 line spectral frequencies
   of each frame (voiceface/lpc.py: an LPC fit of the frame's 25 ms of audio, as stage 1.2 stored
   them) after the 80 mel bins — as they are, or less each clip's mean over its voiced
   frames (NORMALISE clip), or less the causal running mean of the voiced frames before each
   frame (running: what a stream could do) — each divided by its spread over the training
   frames and scaled by SCALE;
2. train on it (train.py takes the width from the data; silence and noise augmentation, which
   splice the mel alone, must be off: `--silence-augment 0`), and the same without the channels on
   the original dataset, for the comparison;
3. score both runs on the held-out clips: jawOpen r at zero lag against the dataset's validation
   labels (as evaluate.py scores: each clip sync-corrected, never centred; output t of a look-ahead
   model put at the face's time t - L).

    python 2_architecture_training/extra_channels.py --dataset-dir D --output-dir D_lsf
    python 2_architecture_training/train.py --dataset-dir D_lsf --run-dir R_lsf --silence-augment 0 --lookahead-ms 100
    python 2_architecture_training/train.py --dataset-dir D --run-dir R --silence-augment 0 --lookahead-ms 100
    python 2_architecture_training/extra_channels.py --score R_lsf/last.pt R/last.pt --dataset-dir D_lsf

Models trained on these copies are refused by inference and evaluate.py. What this diagnostic
found led to the option built into every stage, `train.py --formants` (the causal running
normalisation, silence splicing included), which they do run. ARCHITECTURE.md ("What stops the
speaker's own jaw near 0.6", "Formant channels") has what both measured.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main
from voiceface.formats import recorded_path

# --- settings (each can be given on the command line: DATASET_DIR as --dataset-dir) ----------
DATASET_DIR = REPO_ROOT / "data/dataset"      # a stage 1.3 output (to copy; or, with --score, one to score on)
OUTPUT_DIR = REPO_ROOT / "data/dataset_lsf"   # the copy with the channels appended
SCALE = 0.3                     # each channel's spread in the copy (the level-normalised mel bins spread 0.1-0.3)
NORMALISE = "none"              # none (less the training frames' mean), clip (less each clip's voiced mean) or running
SCORE = []                      # checkpoints to score on DATASET_DIR's held-out clips instead of making a copy
FORCE = False                   # replace an existing OUTPUT_DIR
# --- end of settings ---------------------------------------------------------------------------


def make_copy() -> int:
    import json
    import shutil

    import numpy as np
    from voiceface.dataset import INPUT_FILES, MANIFEST_FILENAME, read_dataset_manifest
    from voiceface.errors import InputError
    from voiceface.lpc import LPC_ORDER, processed_clip_lsf, running_voice_mean
    source, output = Path(DATASET_DIR), Path(OUTPUT_DIR)
    if NORMALISE not in ("none", "clip", "running"):
        print(f"error: --normalise {NORMALISE}: choose none, clip or running", file=sys.stderr)
        return 1
    try:
        manifest = read_dataset_manifest(source)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if manifest.get("extra_channels"):
        print(f"error: {source}: already carries extra channels; give the dataset stage 1.3 wrote", file=sys.stderr)
        return 1
    if output.exists() and not FORCE:
        print(f"error: {output} exists; give another --output-dir or --force", file=sys.stderr)
        return 1
    vad = {split: np.load(source / split / "vad.npy") > 0 for split in ("train", "val")}
    try:
        channels = {}
        for clip in manifest["clips"]:
            lsf = processed_clip_lsf(recorded_path(manifest["processed_dir"]) / clip["clip"])
            if len(lsf) != clip["frames"]:
                raise InputError(f"{clip['clip']}: {len(lsf)} frames of audio against {clip['frames']} in {source}; "
                                 "a dataset of other processed clips? re-run stage 1.3")
            voiced = vad[clip["split"]][clip["start"]:clip["start"] + clip["frames"]]
            if NORMALISE == "clip":
                lsf = lsf.astype(np.float64)
                lsf = lsf - (lsf[voiced].mean(axis=0) if voiced.sum() > 50 else lsf.mean(axis=0))
            elif NORMALISE == "running":
                lsf = lsf - running_voice_mean(lsf, voiced)
            channels[clip["clip"]] = lsf
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    training = np.concatenate([channels[c["clip"]] for c in manifest["clips"] if c["split"] == "train"])
    mean = training.mean(axis=0) if NORMALISE == "none" else np.zeros(training.shape[1])
    spread = np.maximum(training.std(axis=0), 1e-6)
    scratch = output.with_name(output.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(source, scratch)
    for split in ("train", "val"):
        clips = [c for c in manifest["clips"] if c["split"] == split]
        for mode in manifest["input_modes"]["available"]:
            path = scratch / split / INPUT_FILES[mode]
            mel = np.load(path)
            extra = np.zeros((len(mel), LPC_ORDER), np.float32)
            for clip in clips:
                extra[clip["start"]:clip["start"] + clip["frames"]] = SCALE * (channels[clip["clip"]] - mean) / spread
            np.save(path, np.concatenate([mel, extra], axis=1).astype(np.float32))
    manifest["extra_channels"] = {"kind": "line spectral frequencies", "order": LPC_ORDER, "scale": SCALE,
                                  "normalise": NORMALISE,
                                  "mean_rad": [round(float(v), 5) for v in mean],
                                  "spread_rad": [round(float(v), 5) for v in spread],
                                  "made_by": "2_architecture_training/extra_channels.py", "from": str(source)}
    (scratch / MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=1))   # (the copy is renamed into place below)
    if output.exists():
        shutil.rmtree(output)
    scratch.rename(output)
    print(f"wrote {output}: {len(manifest['clips'])} clips, {LPC_ORDER} channels after the mel in "
          f"{', '.join(manifest['input_modes']['available'])} inputs")
    return 0


def score() -> int:
    import numpy as np
    import torch
    from voiceface.constants import FRAME_RATE, N_MELS
    from voiceface.dataset import INPUT_FILES, read_dataset_manifest
    from voiceface.engine import load_model
    from voiceface.errors import FormatError, InputError
    from voiceface.evaluation import align_to_face_time
    from voiceface.metrics import JAW_OPEN, pearson
    dataset = Path(DATASET_DIR)
    try:
        manifest = read_dataset_manifest(dataset)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    width = np.load(dataset / "val" / INPUT_FILES["level"], mmap_mode="r").shape[1]
    clips = [c for c in manifest["clips"] if c["split"] == "val"]
    for checkpoint_path in SCORE:
        try:
            model, checkpoint = load_model(checkpoint_path, extra_inputs=True)
        except FormatError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        n_inputs = model.config.n_inputs
        if n_inputs > width:
            print(f"error: {checkpoint_path} reads {n_inputs} input channels, {dataset} holds {width}: score it on "
                  "the dataset it was trained on (or its extra_channels.py copy)", file=sys.stderr)
            return 1
        lookahead = int(checkpoint.get("lookahead_frames", 0))
        inputs, targets, mask = (np.load(dataset / "val" / name, mmap_mode="r")
                                 for name in (INPUT_FILES[checkpoint["input_mode"]], "targets.npy", "mask.npy"))
        scores = []
        for clip in clips:
            span = slice(clip["start"], clip["start"] + clip["frames"])
            with torch.inference_mode():
                output = model(torch.from_numpy(np.array(inputs[span, :n_inputs]))[None])[0].float().numpy()
            output = align_to_face_time(output, lookahead)
            known = np.asarray(mask[span]).astype(bool) & np.isfinite(targets[span, JAW_OPEN])
            if lookahead:
                known[len(known) - lookahead:] = False
            scores.append(pearson(output[known, JAW_OPEN], np.asarray(targets[span])[known, JAW_OPEN]))
            print(f"{checkpoint_path}: {clip['clip']} jawOpen r {scores[-1]:.3f}")
        print(f"{checkpoint_path}: {n_inputs - N_MELS} channels beside the mel, look-ahead {lookahead * 1000 // FRAME_RATE} ms: "
              f"median jawOpen r {np.median(scores):.3f} over {len(scores)} held-out clips")
    return 0


def main(argv=None) -> int:
    configure(globals(), argv)
    return score() if SCORE else make_copy()


if __name__ == "__main__":
    sys.exit(run_main(main))
