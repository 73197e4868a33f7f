"""Would several training seeds averaged be a better model? For benchmark runs that differ only in
--seed (evaluate.py --benchmark ... --train-args="--seed S", one JSON each), every fold's models'
jawOpen is averaged frame by frame over each held-out clip and scored as the benchmark scores one
model (Pearson r against the sync-corrected labels, at zero lag, where there is a face).

    python 3_inference/seed_ensemble.py runs/abl/si_s0.json runs/abl/si_s1.json runs/abl/si_s2.json

Prints, per benchmark and look-ahead, each seed's median jawOpen r over clips (duration-weighted
mean in brackets) and the ensemble's; --json writes the per-clip figures. Reads the fold runs
and datasets the benchmark kept under its --bench-dir.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: JSON as --json) --------------------------
REPORTS = []                    # benchmark JSON files of evaluate.py, one per seed, the same folds in each
JSON = ""                       # if given: per clip, each seed's r and the ensemble's
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv, positional="REPORTS")
    import numpy as np
    from voiceface.errors import InputError
    from voiceface.constants import FRAME_RATE
    from voiceface.engine import load_model
    from voiceface.evaluation import benchmark_data_tag, dataset_clips, model_outputs, read_benchmark_report, scored_labels
    from voiceface.formats import recorded_path, write_json_atomic
    from voiceface.metrics import JAW_OPEN, pearson
    if len(REPORTS) < 2:
        print("error: name two or more benchmark JSON files that differ only in their seed", file=sys.stderr)
        return 1
    reports = []
    for path in map(Path, REPORTS):
        try:
            report = read_benchmark_report(path)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        reports.append((report["benchmarks"], report["dataset_args"]))
        processed = recorded_path(report["processed_dir"])    # the fold datasets' clips, as the benchmark read them
    keys = [k for k in reports[0][0] if all(k in benchmarks for benchmarks, _ in reports)]
    if not keys or any(args != reports[0][1] for _, args in reports):
        print("error: the reports share no benchmark, or were made on other labels (--dataset-args)", file=sys.stderr)
        return 1
    data_tag = benchmark_data_tag(reports[0][1])
    out = {}
    for key in keys:
        folds = [benchmarks[key]["folds"] for benchmarks, _ in reports]
        if any([f["fold"] for f in seed] != [f["fold"] for f in folds[0]] for seed in folds):
            print(f"error: {key}: the reports hold other folds; give runs that differ only in --seed", file=sys.stderr)
            return 1
        rows = []
        for fold_runs in zip(*([recorded_path(f["run_dir"]) for f in seed] for seed in folds)):
            dataset = fold_runs[0].parent / f"dataset_{data_tag}"
            try:
                clips = dataset_clips(dataset, "val", processed)
                models = [load_model(run / "last.pt") for run in fold_runs]
            except (InputError, OSError) as error:
                print(f"error: {error}; the benchmark's --bench-dir must still hold its fold runs and datasets",
                      file=sys.stderr)
                return 1
            lookahead = int(models[0][1].get("lookahead_frames", 0))
            for name, clip, _ in clips:        # the models alone: the baselines are the benchmark's business
                targets, mask = scored_labels(clip, lookahead)
                predictions = [model_outputs(name, clip, model, checkpoint)[1][mask, JAW_OPEN]
                               for model, checkpoint in models]
                target = targets[mask, JAW_OPEN]
                rows.append({"clip": name, "seconds": round(len(clip.mel) / FRAME_RATE, 3),
                             "seeds": [pearson(p, target) for p in predictions],
                             "ensemble": pearson(np.mean(predictions, axis=0), target)})
        weights = [row["seconds"] for row in rows]

        def cell(values):
            return f"{np.median(values):.3f} ({np.average(values, weights=weights):.3f})"
        seeds = ", ".join(cell([row["seeds"][k] for row in rows]) for k in range(len(reports)))
        print(f"{key}: {len(rows)} clips; apart {seeds}; averaged {cell([row['ensemble'] for row in rows])}")
        out[key] = rows
    if JSON:
        write_json_atomic(Path(JSON), {"reports": [str(r) for r in REPORTS], "benchmarks": out})
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
