"""How the benchmark's models hold up when the sound is worse than what they trained on. Every fold
model of a benchmark report (evaluate.py --benchmark) is scored again on its held-out clips with
their sound degraded (voiceface/degrade.py): a phone line's band, MP3 at 32 kbit/s, the recording
20, 30 and 40 dB quieter, pink noise at 30, 20 and 10 dB below the speech, and the babble of four other
recordings at 10 dB (ones the fold neither scores nor trains on first: other people, on the
speaker-dependent benchmark) — beside the sound as recorded, which reproduces the benchmark's own
figures. Labels, their sync shifts and the pauses scored are the benchmark's (the clean sound's
voice activity): only the model's input changes.

    python 3_inference/degraded_sound.py runs/benchmark/benchmark.json --json runs/degraded.json
    python 3_inference/degraded_sound.py defaults.json noise_augmented.json --raw-dir ~/videos

Prints, and writes beside --json as markdown, one table per benchmark and look-ahead: jawOpen r at
zero lag (median over clips, duration-weighted mean, quartiles) and mean jawOpen in the pauses.
"""
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: RAW_DIR as --raw-dir) --------------------
REPORTS = []                    # benchmark JSONs from evaluate.py --benchmark (at least one)
RAW_DIR = ""                    # where the clips' source files are, when not where stage 1.2 found them
JSON = ""                       # if given: every clip's figures as JSON, and the tables as markdown beside it
SEED = 0                        # the noise's
# --- end of settings ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def source_audio(processed_dir: Path, clip: str):
    """A processed clip's sound, decoded again from the file stage 1.2 read (16 kHz mono); kept, as
    the babble's recordings recur in every fold."""
    from voiceface.audio import AUDIO_FEATURES_FILENAME, load_audio, read_audio_features
    from voiceface.errors import InputError
    from voiceface.formats import recorded_path
    stored = Path(read_audio_features(processed_dir / clip / AUDIO_FEATURES_FILENAME).meta["source"]["path"])
    for candidate in ([Path(RAW_DIR) / stored.name] if RAW_DIR else []) + [recorded_path(stored)]:
        if candidate.exists():
            return load_audio(candidate)[1]
    raise InputError(f"{clip}: its source {stored} is not there any more; give --raw-dir, the folder that holds "
                     f"{stored.name}")


def score_fold(fold: dict, dataset: Path, processed: Path) -> list[dict]:
    """Every held-out clip of one fold under every condition; `processed`: the clips' stage 1.1 and 1.2
    outputs, where the benchmark read them."""
    import json

    from dataclasses import replace
    from voiceface.audio import AUDIO_FEATURES_FILENAME, compute_features
    from voiceface.dataset import MANIFEST_FILENAME, read_processed_clip, synchronize_features
    from voiceface.degrade import BABBLE_VOICES, active_power, conditions
    from voiceface.engine import load_model
    from voiceface.evaluation import model_outputs, scored_labels
    from voiceface.formats import recorded_path
    from voiceface.metrics import JAW_OPEN, clip_metrics
    manifest = json.loads((dataset / MANIFEST_FILENAME).read_text())
    model, checkpoint = load_model(recorded_path(fold["run_dir"]) / "last.pt")
    lookahead = int(checkpoint.get("lookahead_frames", 0))
    formants = checkpoint.get("formants") is not None
    # the babble: recordings the fold neither scores nor trains on (other people's, in the
    # speaker-dependent benchmark), then its training recordings; never the held-out one
    everyone = sorted(p.name for p in processed.iterdir() if (p / AUDIO_FEATURES_FILENAME).exists())
    pool = [n for n in everyone if n not in fold["train"] and n not in fold["held_out"]] + sorted(fold["train"])
    others = [source_audio(processed, name) for name in pool[:BABBLE_VOICES]]
    rows = []
    for entry in (c for c in manifest["clips"] if c["split"] == "val"):
        name, shift = entry["clip"], entry["sync"]["applied_shift_ms"] / 1000
        track, stored = read_processed_clip(processed / name)
        samples = source_audio(processed, name)
        clean = synchronize_features(name, track, stored, shift)
        targets, mask = scored_labels(clean, lookahead)
        pauses = mask & (clean.vad == 0)
        row = {"clip": name, "duration_s": round(len(clean.mel) / 100, 3), "conditions": {}}
        for label, degrade in conditions(active_power(samples, stored.vad), others, SEED).items():
            features = compute_features(degrade(samples), formants)
            frames = min(len(features.mel), len(stored.mel))
            audio = replace(stored, mel=features.mel[:frames], vad=features.vad[:frames], rms_db=features.rms_db[:frames],
                            times=stored.times[:frames], lsf=features.lsf[:frames] if formants else None)
            clip = synchronize_features(name, track, audio, shift)
            _, output = model_outputs(name, clip, model, checkpoint)
            n = min(len(output), len(targets))
            figures = clip_metrics(output[:n], targets[:n], mask[:n])
            quiet = pauses[:n]
            row["conditions"][label] = {"jaw_open_r": figures["jaw_open_r"],
                                        "pause_jaw_open": float(output[:n][quiet, JAW_OPEN].mean()) if quiet.any() else None,
                                        "voiced_fraction": round(float(clip.vad.mean()), 4)}
        rows.append(row)
    return rows


def table(rows: list[dict], title: str) -> str:
    import numpy as np
    lines = [title, "", f"{len(rows)} clips. jawOpen r at zero lag: median (duration-weighted mean), quartiles; "
             "mean jawOpen in the pauses of the sound as recorded.", "",
             "| sound | jawOpen r | quartiles | jawOpen in the pauses |", "|---|---|---|---|"]
    weights = np.array([r["duration_s"] for r in rows])
    for label in rows[0]["conditions"]:
        r = np.array([row["conditions"][label]["jaw_open_r"] for row in rows])
        quiet = [row["conditions"][label]["pause_jaw_open"] for row in rows]
        quiet = [q for q in quiet if q is not None]
        lines.append(f"| {label} | {np.median(r):.3f} ({np.average(r, weights=weights):.3f}) | "
                     f"{np.percentile(r, 25):.3f}–{np.percentile(r, 75):.3f} | "
                     + (f"{np.median(quiet):.3f} |" if quiet else "– |"))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    configure(globals(), argv, positional="REPORTS")
    from voiceface.evaluation import benchmark_data_tag, rescore_folds
    from voiceface.formats import recorded_path

    def fold_rows(fold: dict, report: dict) -> list[dict]:
        dataset = recorded_path(fold["run_dir"]).parent / f"dataset_{benchmark_data_tag(report['dataset_args'])}"
        return score_fold(fold, dataset, recorded_path(report["processed_dir"]))
    return rescore_folds(REPORTS, fold_rows, table, JSON, {"reports": [str(r) for r in REPORTS]})

if __name__ == "__main__":
    sys.exit(run_main(main))
