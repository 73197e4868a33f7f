"""Evaluate a checkpoint on clips with extracted targets, beside two baselines (the training mean,
and jawOpen from loudness fitted on the training split); or cross-validate by leaving speakers out.

    python 3_inference/evaluate.py --checkpoint runs/default/best.pt --clips data/processed/clipA data/processed/clipB \
        --json eval.json                       # processed clip folders (stages 1.1 and 1.2 done)
    python 3_inference/evaluate.py --checkpoint best.pt --clips videos/*.mp4 --json eval.json   # videos: processed first
    python 3_inference/evaluate.py --cross-validate 3 --processed-dir data/real/processed \
        --speaker-manifest manifest.csv --cv-dir runs/cv --json cv.json --train-args "--preset small --epochs 4"

Reports per clip and in total (duration-weighted mean and median): MAE over the 52 blendshapes,
mouth MAE, Pearson r of jawOpen / mouthClose / smile, pose MAE (cm, degrees), mean jawOpen in
silence, and the lag of the predicted jawOpen. Writes JSON and a markdown table (beside the JSON).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure

# --- settings (each can be given on the command line: CHECKPOINT as --checkpoint) -------------
CHECKPOINT = REPO_ROOT / "runs/default/best.pt"   # the model to evaluate
CLIPS = []                      # processed clip folders, folders of them, or videos
DATASET_DIR = ""                # instead of --clips: every clip of this stage 1.3 dataset's SPLIT
SPLIT = "val"                   # with --dataset-dir: which split
JSON = ""                       # where the results go (required); the markdown table goes beside it
TRAIN_DATASET = ""              # dataset whose training split fits the baselines; default: the checkpoint's
PLOTS_DIR = ""                  # if given: a PNG per clip of predicted against extracted tracks
CROSS_VALIDATE = 0              # folds of speakers to leave out in turn; 0: evaluate CHECKPOINT instead
PROCESSED_DIR = REPO_ROOT / "data/processed"   # with --cross-validate: all clips' stage 1.1/1.2 outputs
SPEAKER_MANIFEST = ""           # with --cross-validate: CSV naming each clip's speaker
CV_DIR = REPO_ROOT / "runs/cv"  # with --cross-validate: a dataset and a run per fold
SEED = 0                        # with --cross-validate: which speakers share a fold
TRAIN_ARGS = ""                 # with --cross-validate: train.py arguments for every fold, as one string
# --- end of settings ---------------------------------------------------------------------------


def run(script: str, *args) -> None:
    import subprocess
    result = subprocess.run([sys.executable, str(REPO_ROOT / script), *map(str, args)])
    if result.returncode not in (0,):
        raise SystemExit(f"error: {script} failed (exit {result.returncode}); see above")


def clip_folders(items: list, scratch: Path) -> list[Path]:
    """Processed clip folders for the inputs; videos and audio-video files go through stages 1.1 and
    1.2 first (into `scratch`)."""
    from voiceface.cli import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, expand_inputs
    folders, videos = [], []
    for item in map(Path, items):
        if item.is_dir() and (item / "blendshapes_and_pose.json").exists():
            folders.append(item)
        elif item.is_dir() and any((p / "blendshapes_and_pose.json").exists() for p in item.iterdir() if p.is_dir()):
            folders += sorted(p for p in item.iterdir() if (p / "blendshapes_and_pose.json").exists())
        else:
            videos.append(item)
    if videos:
        files, errors = expand_inputs(videos, VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)
        for line in errors:
            print(f"error: {line}", file=sys.stderr)
        if files:
            run("1_data_cleaning/1_extract_blendshapes.py", *files, "--output-dir", scratch, "--workers", 2)
            run("1_data_cleaning/2_extract_audio_features.py", *files, "--output-dir", scratch)
            folders += [scratch / f.stem for f in files]
    return folders


def evaluate(checkpoint_path: Path, folders: list[Path], train_dataset: Path, plots_dir: str) -> tuple[list, dict]:
    import numpy as np
    from tqdm import tqdm
    from voiceface.audio import read_audio_features
    from voiceface.engine import Frames, load_model
    from voiceface.evaluation import Baselines, evaluate_clip, summarise
    from voiceface.dataset import denormalize_targets
    from voiceface.formats import read_blendshapes_json
    from voiceface.plots import plot_animation
    model, checkpoint = load_model(checkpoint_path)
    baselines = Baselines.fit(train_dataset)
    results = []
    for folder in tqdm(folders, desc="evaluating", unit="clip", disable=len(folders) < 2):
        result = evaluate_clip(folder.name, read_blendshapes_json(folder / "blendshapes_and_pose.json"),
                               read_audio_features(folder / "audio_features.npz"), model, checkpoint, baselines)
        if plots_dir:
            def frames_of(values, known):          # 100 Hz frames at their audio-timeline times
                real = denormalize_targets(np.where(known[:, None], values, 0.5))
                real[~known] = np.nan                  # no target here: a gap in the plot, not a zero
                return Frames(None, (np.arange(len(values)) + 1) / 100, real[:, :52], real[:, 52:])
            everywhere = np.ones(len(result["prediction"]), bool)
            plot_animation(Path(plots_dir) / f"{folder.name}.png", frames_of(result["prediction"], everywhere),
                           reference=frames_of(result["targets"], result["mask"]),
                           title=f"{folder.name}: predicted (solid) against extracted (dashed)")
        for key in ("prediction", "targets", "mask"):
            result.pop(key)
        results.append(result)
    return results, summarise(results)


def cross_validate() -> int:
    import shlex

    import numpy as np
    from voiceface.dataset import speakers_from_manifest
    from voiceface.formats import write_json_atomic
    folders = sorted(p for p in Path(PROCESSED_DIR).iterdir()
                     if (p / "blendshapes_and_pose.json").exists() and (p / "audio_features.npz").exists())
    speakers = speakers_from_manifest(SPEAKER_MANIFEST)
    group = {f.name: speakers.get(f.name, f.name) for f in folders}
    sizes = {}
    for f in folders:
        sizes[group[f.name]] = sizes.get(group[f.name], 0) + (f / "audio_features.npz").stat().st_size
    # largest speakers first, each into the fold with the least data so far (seeded tie-break)
    rng = np.random.default_rng(SEED)
    fold_of, load = {}, np.zeros(CROSS_VALIDATE)
    for speaker in sorted(sizes, key=lambda s: (-sizes[s], rng.random())):
        fold = int(np.argmin(load))
        fold_of[speaker] = fold
        load[fold] += sizes[speaker]
    per_fold = []
    for fold in range(CROSS_VALIDATE):
        held_out = [f.name for f in folders if fold_of[group[f.name]] == fold]
        base = Path(CV_DIR) / f"fold_{fold}"
        print(f"=== fold {fold}: {len(held_out)} clips of {len({group[c] for c in held_out})} speakers held out", flush=True)
        run("1_data_cleaning/3_create_dataset.py", "--processed-dir", PROCESSED_DIR, "--output-dir", base / "dataset",
            "--speaker-manifest", SPEAKER_MANIFEST, "--val-clips", *held_out)
        if not (base / "run" / "last.pt").exists():
            run("2_architecture_training/train.py", "--dataset-dir", base / "dataset", "--run-dir", base / "run",
                *shlex.split(TRAIN_ARGS))
        # the last epoch's weights: best.pt was chosen on these very clips, which would flatter it
        results, summary = evaluate(base / "run" / "last.pt", [Path(PROCESSED_DIR) / c for c in held_out],
                                    base / "dataset", "")
        per_fold.append({"fold": fold, "clips": held_out, "results": results, "summary": summary})
    keys = ("mae", "mouth_mae", "jaw_open_r", "mouth_close_r", "smile_r", "translation_mae_cm", "rotation_error_deg")
    table = ["| | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    totals = {}
    for label in ("model", "loudness", "mean_face"):
        values = {k: [f["summary"][label]["weighted_mean"][k] for f in per_fold] for k in keys}
        totals[label] = {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in values.items()}
        table.append(f"| {label} | " + " | ".join(f"{totals[label][k]['mean']:.4f} ± {totals[label][k]['std']:.4f}"
                                              for k in keys) + " |")
    write_json_atomic(Path(JSON), {"folds": per_fold, "mean_and_spread_over_folds": totals})
    Path(JSON).with_suffix(".md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


def main(argv=None) -> int:
    configure(globals(), argv)
    import json
    import tempfile
    from voiceface.errors import InputError
    from voiceface.formats import write_json_atomic
    if not JSON:
        print("error: say where the results go with --json OUT.json", file=sys.stderr)
        return 2
    if CROSS_VALIDATE:
        return cross_validate()
    try:
        from voiceface.engine import load_model
        _, checkpoint = load_model(CHECKPOINT)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    train_dataset = Path(TRAIN_DATASET or DATASET_DIR or checkpoint["training"]["dataset_dir"])
    with tempfile.TemporaryDirectory() as scratch:
        folders = clip_folders(CLIPS, Path(scratch))
        if DATASET_DIR:
            manifest = json.loads((Path(DATASET_DIR) / "dataset_manifest.json").read_text())
            folders += [Path(manifest["processed_dir"]) / c["clip"] for c in manifest["clips"] if c["split"] == SPLIT]
        if not folders:
            print("error: no clips to evaluate; give processed clip folders or videos with --clips", file=sys.stderr)
            return 1
        from voiceface.evaluation import markdown
        results, summary = evaluate(Path(CHECKPOINT), folders, train_dataset, PLOTS_DIR)
    write_json_atomic(Path(JSON), {"checkpoint": str(CHECKPOINT), "train_dataset": str(train_dataset),
                                   "clips": results, "summary": summary})
    table = markdown(results, summary)
    Path(JSON).with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {JSON} and {Path(JSON).with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
