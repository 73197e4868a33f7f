"""Evaluation of a trained checkpoint on clips with extracted targets, beside two baselines:

- mean face: the training split's mean target in every frame (what a model that ignores the audio
  would learn to say);
- loudness: jawOpen = a + b * loudness (RMS dBFS floored at LOUDNESS_FLOOR_DB) with a and b fitted
  by least squares on the training split; every other value the training mean.

Per clip: the training metrics (voiceface.metrics.clip_metrics), lip closure in silence (mean
predicted jawOpen where voice activity is 0, beside the extracted one), and lag (the shift of the
predicted jawOpen that best correlates with the extracted one; positive: the prediction is late).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .constants import FRAME_RATE, N_TARGETS
from .dataset import ClipPose, ModelInputs, normalize_targets, synchronize_features
from .metrics import JAW_OPEN, clip_metrics, combine_clip_metrics, pearson

LOUDNESS_FLOOR_DB = -60.0       # quieter than this is silence to the loudness baseline
LAG_SEARCH_FRAMES = 30          # +-300 ms


@dataclass
class Baselines:
    mean_target: np.ndarray     # (59,) the training split's mean normalised target
    jaw_intercept: float
    jaw_slope: float

    @staticmethod
    def fit(dataset_dir: Path) -> "Baselines":
        """From a stage 1.3 dataset's training split (memory-mapped)."""
        folder = Path(dataset_dir) / "train"
        targets = np.load(folder / "targets.npy", mmap_mode="r")
        mask = np.load(folder / "mask.npy", mmap_mode="r").astype(bool)
        rms = np.load(folder / "rms_db.npy", mmap_mode="r")
        used = np.asarray(targets)[mask]
        loudness = np.maximum(np.asarray(rms)[mask], LOUDNESS_FLOOR_DB)
        slope, intercept = np.polyfit(loudness, used[:, JAW_OPEN], 1)
        mean = used.mean(axis=0)
        mean[55:] /= np.linalg.norm(mean[55:])
        return Baselines(mean, float(intercept), float(slope))

    def mean_face(self, frames: int) -> np.ndarray:
        return np.tile(self.mean_target, (frames, 1)).astype(np.float32)

    def loudness(self, rms_db: np.ndarray) -> np.ndarray:
        out = self.mean_face(len(rms_db))
        out[:, JAW_OPEN] = np.clip(self.jaw_intercept + self.jaw_slope * np.maximum(rms_db, LOUDNESS_FLOOR_DB), 0, 1)
        return out


def lag_frames(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> int:
    """The shift s maximising corr(prediction[t + s], truth[t]): positive when the prediction
    comes late."""
    best, best_r = 0, -np.inf
    for shift in range(-LAG_SEARCH_FRAMES, LAG_SEARCH_FRAMES + 1):
        if shift >= 0:
            p, t, m = prediction[shift:], truth[:len(truth) - shift], mask[:len(mask) - shift] & mask[shift:]
        else:
            p, t, m = prediction[:shift], truth[-shift:], mask[-shift:] & mask[:shift]
        r = pearson(p[m], t[m]) if m.sum() > 10 else -np.inf
        if r > best_r:
            best, best_r = shift, r
    return best


def evaluate_clip(name: str, track, audio, model, checkpoint: dict, baselines: Baselines) -> dict:
    """Every figure for one clip (stage 1.1 track + stage 1.2 features), model and baselines."""
    import torch
    clip = synchronize_features(name, track, audio)
    reference = ClipPose.of(clip.targets, clip.mask)
    targets = np.nan_to_num(normalize_targets(clip.targets, reference))
    x = torch.from_numpy(ModelInputs(checkpoint["input_mode"]).process(clip.mel, clip.vad))[None]
    with torch.inference_mode():
        prediction = model(x)[0].float().numpy()
    lookahead = int(checkpoint.get("lookahead_frames", 0))
    mask, vad = clip.mask.copy(), clip.vad
    if lookahead:              # model frame t is the face at t - lookahead
        prediction = np.concatenate([prediction[lookahead:], np.repeat(prediction[-1:], lookahead, axis=0)])
        mask[len(mask) - lookahead:] = False
    silent = mask & (vad == 0)
    result = {"clip": name, "duration_s": round(len(clip.mel) / FRAME_RATE, 3)}
    for label, values in (("model", prediction), ("mean_face", baselines.mean_face(len(targets))),
                          ("loudness", baselines.loudness(clip.rms_db))):
        figures = clip_metrics(values, targets, mask)
        figures["silence_jaw_open"] = float(values[silent, JAW_OPEN].mean()) if silent.any() else None
        figures["lag_ms"] = 10 * lag_frames(values[:, JAW_OPEN], targets[:, JAW_OPEN], mask) if label != "mean_face" else None
        result[label] = figures
    result["extracted_silence_jaw_open"] = float(targets[silent, JAW_OPEN].mean()) if silent.any() else None
    result["silent_fraction"] = round(float(silent.mean()), 4)
    result["prediction"], result["targets"], result["mask"] = prediction, targets, mask
    assert prediction.shape[1] == N_TARGETS
    return result


def summarise(results: list[dict]) -> dict:
    """Duration-weighted mean and median over clips, for the model and each baseline."""
    summary = {}
    for label in ("model", "mean_face", "loudness"):
        per_clip = [r[label] for r in results]
        weighted = combine_clip_metrics(per_clip)
        median = {k: float(np.median([c[k] for c in per_clip if c.get(k) is not None]))
                  for k in per_clip[0] if k != "frames" and any(c.get(k) is not None for c in per_clip)}
        summary[label] = {"weighted_mean": weighted, "median": median}
    values = [(r["extracted_silence_jaw_open"], r["model"]["frames"]) for r in results
              if r["extracted_silence_jaw_open"] is not None]
    summary["extracted_silence_jaw_open"] = float(np.average([v for v, _ in values], weights=[w for _, w in values])) if values else None
    return summary


COLUMNS = (("mae", "MAE", 4), ("mouth_mae", "mouth MAE", 4), ("jaw_open_r", "jawOpen r", 3),
           ("mouth_close_r", "mouthClose r", 3), ("smile_r", "smile r", 3), ("translation_mae_cm", "pose cm", 2),
           ("rotation_error_deg", "pose °", 2), ("silence_jaw_open", "jawOpen in silence", 3), ("lag_ms", "lag ms", 0))


def markdown(results: list[dict], summary: dict) -> str:
    def cell(figures, key, digits):
        value = figures.get(key)
        return "–" if value is None else f"{value:.{digits}f}"
    head = "| | " + " | ".join(label for _, label, _ in COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS) + "\n"
    lines = ["**Totals** (duration-weighted mean; median in brackets). Extracted jawOpen in silence: "
             f"{summary['extracted_silence_jaw_open']:.3f}" if summary["extracted_silence_jaw_open"] is not None else
             "**Totals**", "", head.rstrip()]
    for label, title in (("model", "model"), ("loudness", "baseline: loudness → jawOpen"),
                         ("mean_face", "baseline: training mean")):
        weighted, median = summary[label]["weighted_mean"], summary[label]["median"]
        lines.append(f"| {title} | " + " | ".join(f"{cell(weighted, k, d)} ({cell(median, k, d)})"
                                                  for k, _, d in COLUMNS) + " |")
    lines += ["", "**Per clip** (model; baselines' mouth MAE and jawOpen r at the end)", "",
              "| clip | s | " + " | ".join(label for _, label, _ in COLUMNS) + " | loudness mouth MAE | loudness jawOpen r | mean mouth MAE |",
              "|---|---|" + "---|" * (len(COLUMNS) + 3)]
    for r in results:
        lines.append(f"| {r['clip']} | {r['duration_s']:.1f} | " + " | ".join(cell(r["model"], k, d) for k, _, d in COLUMNS)
                     + f" | {r['loudness']['mouth_mae']:.4f} | {r['loudness']['jaw_open_r']:.3f} | "
                       f"{r['mean_face']['mouth_mae']:.4f} |")
    return "\n".join(lines) + "\n"
