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

from voiceface.cli import configure

# --- settings (each can be given on the command line: JSON as --json) --------------------------
REPORTS = []                    # benchmark JSON files of evaluate.py, one per seed, the same folds in each
JSON = ""                       # if given: per clip, each seed's r and the ensemble's
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv, positional="REPORTS")
    import hashlib
    import json
    import numpy as np
    from voiceface.evaluation import dataset_clips, score_clips
    from voiceface.formats import write_json_atomic
    from voiceface.metrics import JAW_OPEN, pearson
    if len(REPORTS) < 2:
        print("error: name two or more benchmark JSON files that differ only in their seed", file=sys.stderr)
        return 1
    try:
        reports = [json.loads(Path(r).read_text()) for r in REPORTS]
    except (OSError, ValueError) as error:
        print(f"error: {error}: give benchmark JSON files written by evaluate.py --benchmark", file=sys.stderr)
        return 1
    keys = [k for k in reports[0]["benchmarks"] if all(k in r["benchmarks"] for r in reports)]
    if not keys or any(r["dataset_args"] != reports[0]["dataset_args"] for r in reports):
        print("error: the reports share no benchmark, or were made on other labels (--dataset-args)", file=sys.stderr)
        return 1
    data_tag = hashlib.sha1(reports[0]["dataset_args"].encode()).hexdigest()[:8]   # evaluate.py's dataset folder
    out = {}
    for key in keys:
        runs = [[Path(f["run_dir"]) for f in r["benchmarks"][key]["folds"]] for r in reports]
        rows = []
        for fold_runs in zip(*runs):
            dataset = fold_runs[0].parent / f"dataset_{data_tag}"
            clips = dataset_clips(dataset, "val")
            scored = [score_clips(run / "last.pt", clips, dataset, keep_tracks=True, progress=False) for run in fold_runs]
            for per_seed in zip(*scored):
                mask = per_seed[0]["tracks"]["mask"].astype(bool)
                target = per_seed[0]["tracks"]["targets"][mask, JAW_OPEN]
                predictions = [s["tracks"]["model"][mask, JAW_OPEN] for s in per_seed]
                rows.append({"clip": per_seed[0]["clip"], "seconds": per_seed[0]["duration_s"],
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
    sys.exit(main())
