"""Stage 1.3's second pass: each clip's audio-video lag re-estimated against a trained model's
predicted jawOpen instead of the sound's band envelopes, for the clips the first pass could not
judge. Each clip is predicted, from its sound as the file has it, by the benchmark fold models
that never heard it (evaluate.py --benchmark ... --json REPORT; several reports, e.g. seeds, are
averaged), and voiceface/sync.py's second_pass calibrates and judges the lags.

    python 3_inference/evaluate.py --benchmark speaker-independent --lookahead-ms 100 \\
        --processed-dir data/processed --speaker-manifest speakers.csv --json runs/bench/si.json
    python 1_data_cleaning/sync_second_pass.py runs/bench/si.json --output data/sync_second_pass.json
    python 1_data_cleaning/3_create_dataset.py --processed-dir data/processed --second-pass data/sync_second_pass.json ...
    python 3_inference/evaluate.py --benchmark ... --dataset-args="--second-pass data/sync_second_pass.json"

Writes the JSON stage 1.3 reads with --second-pass (format voiceface/sync-second-pass): for every
clip the first pass's estimate, the model's lag, evidence and confidence, the calibrated lag, and
whether stage 1.3 moves it (unsure in the first pass, confident in this one); prints them. A clip
the first pass was sure of keeps that estimate: its scoring labels never come from a model.
Measured on the 33 real clips: ARCHITECTURE.md, "Audio–video sync, per clip".
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: OUTPUT as --output) ----------------------
REPORTS = []                    # benchmark JSON files of evaluate.py --benchmark (their fold runs still on disk)
OUTPUT = REPO_ROOT / "data/sync_second_pass.json"   # what stage 1.3 --second-pass reads
PROCESSED_DIR = ""              # the clips' stage 1.1 and 1.2 outputs; default: the first report's
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    settings = configure(globals(), argv, positional="REPORTS")
    import numpy as np
    from voiceface.cli import settings_for_header
    from voiceface.dataset import read_processed_clip, synchronize_features
    from voiceface.engine import load_model
    from voiceface.errors import InputError
    from voiceface.evaluation import model_outputs, read_benchmark_report
    from voiceface.formats import (ensure_writable_folder, library_versions, now_iso, recorded_path, sha256_file,
                                   write_json_atomic)
    from voiceface.metrics import JAW_OPEN
    from voiceface.sync import (SECOND_PASS_FORMAT, SECOND_PASS_FORMAT_VERSION, estimate_clip_lag, second_pass,
                                smoothed_mouth, sync_config)
    if not REPORTS:
        print("error: name the benchmark JSON files of evaluate.py --benchmark whose fold models predict the clips",
              file=sys.stderr)
        return 1
    try:
        ensure_writable_folder(Path(OUTPUT).parent, "--output")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    runs_of, processed = {}, PROCESSED_DIR
    for path in map(Path, REPORTS):
        try:
            report = read_benchmark_report(path)
            processed = processed or recorded_path(report["processed_dir"])     # (found from any folder)
            for benchmark in report["benchmarks"].values():
                for fold in benchmark["folds"]:
                    for clip in fold["held_out"]:
                        runs_of.setdefault(clip, []).append(recorded_path(fold["run_dir"]) / "last.pt")
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except (KeyError, TypeError) as error:
            print(f"error: {path}: a benchmark report without its folds' runs ({error!r}); give the JSON evaluate.py "
                  "--benchmark wrote", file=sys.stderr)
            return 1
    if not runs_of:
        print("error: the reports hold no scored clip; run a benchmark first", file=sys.stderr)
        return 1
    models, mouths, predictions, valids, first = {}, {}, {}, {}, {}
    for name in sorted(runs_of):
        try:
            track, audio = read_processed_clip(Path(processed) / name)
            clip = synchronize_features(name, track, audio)          # as the file has it: no shift
            tracks = []
            for run in runs_of[name]:
                if run not in models:
                    models[run] = load_model(run)
                model, checkpoint = models[run]
                tracks.append(model_outputs(name, clip, model, checkpoint)[1][:, JAW_OPEN])
        except (InputError, OSError) as error:
            print(f"error: {name}: {error}; the reports' fold runs and clips must still be on disk", file=sys.stderr)
            return 1
        mouths[name] = smoothed_mouth(clip.targets)
        predictions[name] = np.mean(tracks, axis=0)
        valids[name] = np.asarray(clip.mask, bool)
        first[name] = estimate_clip_lag(clip.targets, clip.mel, clip.mask)
    result = second_pass(mouths, predictions, valids, first)
    document = {"format": SECOND_PASS_FORMAT, "format_version": SECOND_PASS_FORMAT_VERSION,
                "created_by": "1_data_cleaning/sync_second_pass.py", "created_at": now_iso(),
                "settings": settings_for_header(settings), "libraries": library_versions(),
                "reports_sha256": {str(p): sha256_file(p)[:16] for p in map(Path, REPORTS)},
                "models": {name: [str(r) for r in runs] for name, runs in runs_of.items()},
                "processed_dir": str(processed), "sync": sync_config(), **result}
    write_json_atomic(Path(OUTPUT), document)
    print("| clip | first pass lag ms | confidence | model lag ms | confidence | calibrated lag ms | stage 1.3 |")
    print("|---|---|---|---|---|---|---|")
    for name, row in result["clips"].items():
        band = row["band"]
        print(f"| {name} | {band['measured_lag_ms']:.0f} | {band['confidence']:.2f} | {row['model_lag_ms']:.0f} | "
              f"{row['model_confidence']:.2f} | {row['lag_ms']:.0f} | "
              + ("moved by the second pass" if row["corrects"] else "first pass" if band["confident"] else "unsure") + " |")
    moved = [name for name, row in result["clips"].items() if row["corrects"]]
    print(f"chance level {result['chance_z']:.2f} (measured on {result['pairs']} mismatched pairs: "
          f"{result['chance_z_measured']}); model lags calibrated by {result['calibration_ms']:+.0f} ms over "
          f"{len(result['calibrated_on'])} clips both passes trust; {len(moved)} unsure clip(s) the second pass "
          f"can place: {', '.join(moved) or 'none'}")
    print(f"wrote {OUTPUT}; stage 1.3 reads it with --second-pass {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
