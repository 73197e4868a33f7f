"""Evaluation of a trained model beside three baselines, on sync-corrected labels:

- mean face: the training split's mean target in every frame (what a model that ignores the audio
  would learn to say);
- loudness: jawOpen = a + b * loudness (RMS dBFS floored at LOUDNESS_FLOOR_DB) with a and b fitted
  by least squares on the training split; every other value the training mean;
- ridge: the 52 blendshapes by ridge regression on the model's own inputs, stacked frames with the
  same look-ahead (voiceface/ridge.py), fitted on the training split; the pose the training mean.

Labels are each clip's targets shifted by its sync correction (voiceface/sync.py: the clip's own
audio against its own mouth, never the model under test), so a model is scored against the face
as it moved, not as a badly synced upload shows it.

Per clip: the training metrics (voiceface/metrics.py: MAE, mouth MAE, Pearson r of jawOpen,
mouthClose, mouthFunnel and smile at zero lag, pose errors), jawOpen's r at its best lag within
+-300 ms and that lag (positive: the prediction is late), and lip closure in silence (mean jawOpen
where voice activity is 0, predicted and extracted).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .constants import FRAME_RATE, N_BLENDSHAPES, N_MELS, N_TARGETS
from .dataset import INPUT_FILES, ClipPose, ModelInputs, SyncedClip, normalize_targets, read_dataset_manifest
from .errors import InputError
from .metrics import JAW_OPEN, best_lag_r, clip_metrics, combine_clip_metrics, pearson
from .ridge import RidgeBaseline

LOUDNESS_FLOOR_DB = -60.0       # quieter than this is silence to the loudness baseline
LABELS = ("model", "ridge", "loudness", "mean_face")


@dataclass
class Baselines:
    mean_target: np.ndarray     # (59,) the training split's mean normalised target
    jaw_intercept: float
    jaw_slope: float
    ridge: RidgeBaseline

    @staticmethod
    def fit(dataset_dir: Path, input_mode: str, lookahead: int) -> "Baselines":
        """From a stage 1.3 dataset's training split (memory-mapped), for a model that sees
        `input_mode` inputs with a look-ahead of `lookahead` frames."""
        folder = Path(dataset_dir) / "train"
        manifest = read_dataset_manifest(dataset_dir)
        targets = np.load(folder / "targets.npy", mmap_mode="r")
        mask = np.load(folder / "mask.npy", mmap_mode="r").astype(bool)
        rms = np.load(folder / "rms_db.npy", mmap_mode="r")
        inputs = np.load(folder / INPUT_FILES[input_mode], mmap_mode="r")
        used = np.asarray(targets)[mask]
        if not len(used):
            raise InputError(f"{dataset_dir}: no training clips to fit the baselines on; give --train-dataset, "
                             "a dataset with a training split (the one the model was trained on)")
        loudness = np.maximum(np.asarray(rms)[mask], LOUDNESS_FLOOR_DB)
        slope, intercept = np.polyfit(loudness, used[:, JAW_OPEN], 1)
        mean = used.mean(axis=0)
        mean[N_BLENDSHAPES + 3:] /= np.linalg.norm(mean[N_BLENDSHAPES + 3:])
        spans = [slice(c["start"], c["start"] + c["frames"]) for c in manifest["clips"] if c["split"] == "train"]
        ridge = RidgeBaseline.fit([np.asarray(inputs[s]) for s in spans], [np.asarray(targets[s]) for s in spans],
                                  [np.asarray(mask[s]) for s in spans], lookahead)
        return Baselines(mean, float(intercept), float(slope), ridge)

    def mean_face(self, frames: int) -> np.ndarray:
        return np.tile(self.mean_target, (frames, 1)).astype(np.float32)

    def loudness(self, rms_db: np.ndarray) -> np.ndarray:
        out = self.mean_face(len(rms_db))
        out[:, JAW_OPEN] = np.clip(self.jaw_intercept + self.jaw_slope * np.maximum(rms_db, LOUDNESS_FLOOR_DB), 0, 1)
        return out

    def linear(self, inputs: np.ndarray) -> np.ndarray:
        """(T, 59): ridge blendshapes (output t is the face of t - look-ahead, like the model's)
        and the mean pose."""
        out = self.mean_face(len(inputs))
        out[:, :N_BLENDSHAPES] = self.ridge.predict(inputs)
        return out


def align_to_face_time(output: np.ndarray, lookahead: int) -> np.ndarray:
    """Outputs of a look-ahead model (output t is the face of t - L) put at their face's time; the
    last L frames, whose outputs never come, repeat the last output (and are not scored)."""
    if not lookahead:
        return output
    return np.concatenate([output[lookahead:], np.repeat(output[-1:], lookahead, axis=0)])


def scored_labels(clip: SyncedClip, lookahead: int) -> tuple[np.ndarray, np.ndarray]:
    """A synchronised clip's labels on the model's scale (the pose relative to the clip's own) and
    the frames scored: those with a face, less the last `lookahead`, whose outputs never come."""
    targets = np.nan_to_num(normalize_targets(clip.targets, ClipPose.of(clip.targets, clip.mask)))
    mask = clip.mask.copy()
    if lookahead:
        mask[len(mask) - lookahead:] = False
    return targets, mask


def model_outputs(name: str, clip: SyncedClip, model, checkpoint: dict) -> tuple[np.ndarray, np.ndarray]:
    """The model's inputs for a synchronised clip, and its (T, 59) outputs put at the face's time."""
    import torch
    formants = checkpoint.get("formants") is not None
    if formants and clip.lsf is None:
        raise InputError(f"{name}: its stage 1.2 features hold no line spectral frequencies, which this model reads; "
                         "re-run stage 1.2 with --force")
    inputs = ModelInputs(checkpoint["input_mode"], formants).process(clip.mel, clip.vad, clip.lsf)
    with torch.inference_mode():
        prediction = model(torch.from_numpy(inputs)[None])[0].float().numpy()
    assert prediction.shape[1] == N_TARGETS
    return inputs, align_to_face_time(prediction, int(checkpoint.get("lookahead_frames", 0)))


def evaluate_clip(name: str, clip: SyncedClip, model, checkpoint: dict, baselines: Baselines,
                  shift_ms: float = 0.0) -> dict:
    """Every figure for one synchronised clip (its targets already sync-corrected), for the model
    and the three baselines."""
    lookahead = int(checkpoint.get("lookahead_frames", 0))
    targets, mask = scored_labels(clip, lookahead)
    vad = clip.vad
    inputs, prediction = model_outputs(name, clip, model, checkpoint)
    silent, speech = mask & (vad == 0), mask & (vad > 0)
    outputs = {"model": prediction,
               "ridge": align_to_face_time(baselines.linear(inputs[:, :N_MELS]), lookahead),   # the mel alone
               "loudness": baselines.loudness(clip.rms_db), "mean_face": baselines.mean_face(len(targets))}
    result = {"clip": name, "duration_s": round(len(clip.mel) / FRAME_RATE, 3), "sync_shift_ms": shift_ms}
    for label, values in outputs.items():
        figures = clip_metrics(values, targets, mask)
        figures["silence_jaw_open"] = float(values[silent, JAW_OPEN].mean()) if silent.any() else None
        if label != "mean_face":
            r, lag = best_lag_r(values[:, JAW_OPEN], targets[:, JAW_OPEN], mask)
            figures["jaw_open_best_r"], figures["jaw_open_best_lag_ms"] = r, 1000 * lag / FRAME_RATE
            # the jaw while the voice is on: how well it follows speech, the pauses (where a mouth at
            # rest scores by being still while the sound is) left out
            figures["jaw_open_r_in_speech"] = (pearson(values[speech, JAW_OPEN], targets[speech, JAW_OPEN])
                                               if speech.sum() >= 3 else None)
        result[label] = figures
    result["extracted_silence_jaw_open"] = float(targets[silent, JAW_OPEN].mean()) if silent.any() else None
    result["silent_fraction"] = round(float(silent.mean()), 4)
    result["tracks"] = {**outputs, "targets": targets, "mask": mask, "vad": vad}
    return result


BENCHMARK_KINDS = ("speaker-dependent", "speaker-independent")


def benchmark_key(kind: str, lookahead_ms: float) -> str:
    """A benchmark's name in evaluate.py's reports: "speaker-dependent, look-ahead 100 ms"."""
    return f"{kind}, look-ahead {lookahead_ms:g} ms"


def parse_benchmark_key(key: str) -> tuple[str, float]:
    """(kind, look-ahead in ms) of a report's benchmark name; InputError for any other string."""
    kind, _, rest = key.partition(", look-ahead ")
    try:
        if kind in BENCHMARK_KINDS and rest.endswith(" ms"):
            return kind, float(rest.removesuffix(" ms"))
    except ValueError:
        pass
    raise InputError(f"{key!r} is not a benchmark of evaluate.py (kind, look-ahead N ms)")


def read_benchmark_report(path: str | Path) -> dict:
    """A report of evaluate.py --benchmark --json, checked for what its readers use (`benchmarks`,
    `dataset_args`, `processed_dir`); InputError naming the file otherwise."""
    try:
        report = json.loads(Path(path).read_text())
        if not (isinstance(report, dict) and isinstance(report.get("benchmarks"), dict)
                and isinstance(report.get("dataset_args"), str) and "processed_dir" in report):
            raise ValueError("it lacks benchmarks, dataset_args or processed_dir")
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a benchmark report of evaluate.py ({error}); give the JSON "
                         "evaluate.py --benchmark --json wrote") from None
    return report


def rescore_folds(reports: list, score_fold, table, json_path: str = "", out: dict | None = None) -> int:
    """Every fold model of benchmark reports scored again (degraded_sound.py, strength_check.py):
    `score_fold(fold, report)` gives a row per held-out clip; `table(rows, title)` one markdown table
    per benchmark and look-ahead, printed, and with `json_path` written beside every row as JSON
    (`out` and the rows under "benchmarks"). The exit code: 1, with one line, for a report or a fold
    that cannot be read; 2 for no report."""
    import sys
    from .formats import write_json_atomic, write_text_atomic
    if not reports:
        print("error: give a benchmark JSON written by evaluate.py --benchmark", file=sys.stderr)
        return 2
    sections, out = [], dict(out or {}, benchmarks={})
    for path in map(Path, reports):
        try:
            report = read_benchmark_report(path)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        for key, bench in report["benchmarks"].items():
            rows = []
            for fold in bench["folds"]:
                try:
                    rows += score_fold(fold, report)
                except (InputError, OSError) as error:
                    print(f"error: {path}, {fold['fold']}: {error}", file=sys.stderr)
                    return 1
                print(f"{key}, {fold['fold']}: scored", flush=True)
            out["benchmarks"][f"{path.name}: {key}"] = rows
            sections.append(table(rows, f"### {key} ({path.name})"))
            print(sections[-1], flush=True)
    if json_path:
        write_json_atomic(Path(json_path), out)
        write_text_atomic(Path(json_path).with_suffix(".md"), "\n".join(sections))
        print(f"wrote {json_path} and {Path(json_path).with_suffix('.md')}")
    return 0


def benchmark_data_tag(dataset_args: str) -> str:
    """The tag of a benchmark's stage 1.3 datasets (evaluate.py --benchmark): each fold's is
    `dataset_<tag>` beside its runs, named by the --dataset-args that made it, so runs on other
    labels never reuse it and the scripts that read a benchmark's folds find it again. A file the
    arguments name (stage 1.3's --second-pass) counts by its content: rewritten, new labels."""
    import hashlib
    import shlex
    from .formats import sha256_file
    files = [sha256_file(word) for word in shlex.split(dataset_args) if Path(word).is_file()]
    return hashlib.sha1("\n".join([dataset_args, *files]).encode()).hexdigest()[:8]


def dataset_clips(dataset_dir: Path, split: str, processed_dir: Path | None = None) -> list[tuple]:
    """(name, synchronised clip, shift ms) for every clip of a stage 1.3 dataset split, each shifted by
    the sync correction stage 1.3 applied to it. The clips' stage 1.1 and 1.2 outputs are read from
    the folder the dataset was made from, or from `processed_dir`: where stage 1.3, given that folder,
    has just found the dataset current (the same features, by their hashes), as the benchmarks do."""
    from .dataset import read_processed_clip, synchronize_features
    from .formats import recorded_path
    manifest = read_dataset_manifest(dataset_dir)
    processed = Path(processed_dir) if processed_dir else recorded_path(manifest["processed_dir"])
    out = []
    for entry in manifest["clips"]:
        if entry["split"] == split:
            if not (processed / entry["clip"]).is_dir():
                raise InputError(f"{dataset_dir}: the processed clips it was made from are gone from {processed} "
                                 f"({entry['clip']}); move them back, or make the dataset again from where they are "
                                 "now (stage 1.3 --processed-dir)")
            shift_ms = entry["sync"]["applied_shift_ms"]
            clip = synchronize_features(entry["clip"], *read_processed_clip(processed / entry["clip"]), shift_ms / 1000)
            out.append((entry["clip"], clip, shift_ms))
    return out


def score_clips(checkpoint_path: Path, clips: list[tuple], train_dataset: Path, keep_tracks: bool = False,
                progress: bool = True, loaded: tuple | None = None) -> list[dict]:
    """evaluate_clip for each (name, clip, shift ms), the baselines fitted on train_dataset's training
    split; with keep_tracks each result keeps its `tracks` (every output, the labels, mask and voice
    activity, at the face's time) for plotting. `loaded`: the checkpoint's (model, checkpoint dict)
    when the caller has them already."""
    from .engine import load_model
    from .progress import progress_bar
    model, checkpoint = loaded or load_model(checkpoint_path)
    baselines = Baselines.fit(train_dataset, checkpoint["input_mode"], int(checkpoint.get("lookahead_frames", 0)))
    results = []
    for name, clip, shift_ms in progress_bar(clips, desc="evaluating", unit="clip", enabled=progress and len(clips) >= 2):
        result = evaluate_clip(name, clip, model, checkpoint, baselines, shift_ms)
        if not keep_tracks:
            result.pop("tracks")
        results.append(result)
    return results


def summarise(results: list[dict]) -> dict:
    """For the model and each baseline: the duration-weighted mean, the median and the quartiles
    over clips of every figure."""
    summary = {}
    for label in LABELS:
        per_clip = [r[label] for r in results]
        keys = [k for k in per_clip[0] if k != "frames" and any(c.get(k) is not None for c in per_clip)]
        values = {k: [c[k] for c in per_clip if c.get(k) is not None] for k in keys}
        summary[label] = {"weighted_mean": combine_clip_metrics(per_clip),
                          "median": {k: float(np.median(v)) for k, v in values.items()},
                          "quartiles": {k: [float(np.percentile(v, 25)), float(np.percentile(v, 75))]
                                        for k, v in values.items()}}
    extracted = [(r["extracted_silence_jaw_open"], r["model"]["frames"]) for r in results
                 if r["extracted_silence_jaw_open"] is not None]
    summary["extracted_silence_jaw_open"] = {
        "weighted_mean": float(np.average([v for v, _ in extracted], weights=[w for _, w in extracted])) if extracted else None,
        "median": float(np.median([v for v, _ in extracted])) if extracted else None}
    summary["clips"] = len(results)
    summary["seconds"] = round(sum(r["duration_s"] for r in results), 1)
    return summary


COLUMNS = (("jaw_open_r", "jawOpen r", 3), ("mouth_close_r", "mouthClose r", 3), ("mouth_funnel_r", "mouthFunnel r", 3),
           ("smile_r", "smile r", 3), ("jaw_open_best_r", "jawOpen r, best lag", 3), ("jaw_open_best_lag_ms", "its lag ms", 0),
           ("jaw_open_amplitude", "jawOpen amplitude", 2), ("mouth_mae", "mouth MAE", 4),
           ("silence_jaw_open", "jawOpen in silence", 3),
           ("translation_mae_cm", "pose cm", 2), ("rotation_error_deg", "pose °", 2))
TITLES = {"model": "TCN", "ridge": "ridge (same inputs, same look-ahead)", "loudness": "loudness → jawOpen",
          "mean_face": "training mean"}


def _cell(figures: dict, key: str, digits: int) -> str:
    value = figures.get(key)
    return "–" if value is None else f"{value:.{digits}f}"


def summary_table(summary: dict) -> str:
    """Markdown: one row per model and baseline, median over clips with the duration-weighted
    mean in brackets."""
    lines = ["| | " + " | ".join(label for _, label, _ in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for label in LABELS:
        median, weighted = summary[label]["median"], summary[label]["weighted_mean"]
        lines.append(f"| {TITLES[label]} | " + " | ".join(f"{_cell(median, k, d)} ({_cell(weighted, k, d)})"
                                                        for k, _, d in COLUMNS) + " |")
    extracted = summary["extracted_silence_jaw_open"]
    if extracted["median"] is not None:
        lines.append("| extracted from the video | " + " | ".join(
            f"{extracted['median']:.3f} ({extracted['weighted_mean']:.3f})" if k == "silence_jaw_open" else ""
            for k, _, _ in COLUMNS) + " |")
    return "\n".join(lines)


def clip_table(results: list[dict]) -> str:
    """Markdown: the model's figures per clip, with jawOpen r of each baseline at the end."""
    keys = [c for c in COLUMNS if c[0] not in ("translation_mae_cm", "rotation_error_deg")]
    lines = ["| clip | s | shift ms | " + " | ".join(label for _, label, _ in keys) +
             " | extracted jawOpen in silence | ridge jawOpen r | loudness jawOpen r |",
             "|---|---|---|" + "---|" * (len(keys) + 3)]
    for r in results:
        extracted = r["extracted_silence_jaw_open"]
        lines.append(f"| {r['clip']} | {r['duration_s']:.1f} | {r.get('sync_shift_ms', 0):.0f} | "
                     + " | ".join(_cell(r["model"], k, d) for k, _, d in keys)
                     + f" | {'–' if extracted is None else f'{extracted:.3f}'} | {r['ridge']['jaw_open_r']:.3f} | "
                       f"{r['loudness']['jaw_open_r']:.3f} |")
    return "\n".join(lines)


def markdown(results: list[dict], summary: dict, title: str = "") -> str:
    return (f"{title}\n\n" if title else "") + (
        f"{summary['clips']} clips, {summary['seconds']} s. Median over clips, duration-weighted mean in brackets.\n\n"
        + summary_table(summary) + "\n\n<details><summary>Per clip (TCN)</summary>\n\n" + clip_table(results)
        + "\n\n</details>\n")
