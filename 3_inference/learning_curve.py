"""How jawOpen r grows with a speaker's minutes of video: the speaker-dependent benchmark run with
fewer of the speaker's recordings in training (`evaluate.py --max-training-recordings K`), drawn and tabled
against the seconds each fold trained on, for the TCN and for ridge on the same inputs. With
--kind speaker-independent, how r on new voices grows with the voices heard: that benchmark run with
`evaluate.py --max-training-speakers K`, drawn against the speakers each fold trained on.

    for K in 1 2 3; do
        python 3_inference/evaluate.py --benchmark speaker-dependent --processed-dir data/real/processed \\
            --speaker-manifest ../shared/realdata/manifest.csv --max-training-recordings $K --json runs/curve/k$K.json
    done
    python 3_inference/evaluate.py --benchmark speaker-dependent ... --json runs/curve/all.json   # every other clip
    python 3_inference/learning_curve.py runs/curve/*.json --output runs/curve/learning_curve.png

    python 3_inference/learning_curve.py --kind speaker-independent runs/voices/*.json --output runs/voices/voices.png

Writes the PNG (one panel per look-ahead: each held-out clip as a dot, the median over clips as a
line) and a markdown table beside it (`.md`), and prints the table.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: OUTPUT as --output) ----------------------
REPORTS = []                    # speaker-dependent benchmark JSONs of evaluate.py, one per training size
OUTPUT = "learning_curve.png"   # the picture; the table goes beside it as .md
KIND = "speaker-dependent"      # which benchmark of each report: speaker-dependent (against the speaker's seconds of
#                                 audio) or speaker-independent (against the number of speakers trained on)
# --- end of settings ---------------------------------------------------------------------------


def benches_of(report: dict, kind: str = KIND):
    """(look-ahead in ms, benchmark) of each of the report's benchmarks of this kind."""
    from voiceface.evaluation import parse_benchmark_key
    for key, bench in report["benchmarks"].items():
        benchmark_kind, lookahead = parse_benchmark_key(key)
        if benchmark_kind == kind:
            yield lookahead, bench


def curve_points(reports: list[dict], kind: str = KIND) -> dict[str, list[dict]]:
    """For each look-ahead (the benchmark key), one point per report, in order of training seconds:
    the median training seconds over folds, and per clip and as median and weighted mean the TCN's and
    ridge's jawOpen r."""
    import numpy as np
    curves: dict[str, list[dict]] = {}
    for report in reports:
        one_of = {clip: shared["clips"][0] for shared in report.get("shared_recordings", []) for clip in shared["clips"]}
        for lookahead, bench in benches_of(report, kind):
            fold_of = {clip: fold for fold in bench["folds"] for clip in fold["held_out"]}
            recordings = [len({one_of.get(c, c) for c in f["train"]}) for f in bench["folds"]]
            voices = [f.get("train_speakers", 0) for f in bench["folds"]]
            point = {"train_recordings": int(np.median(recordings)), "train_speakers": float(np.median(voices)),
                     "train_seconds": float(np.median([f["train_seconds"] for f in bench["folds"]])),
                     "clips": [{"clip": c["clip"], "train_seconds": fold_of[c["clip"]]["train_seconds"],
                                "train_speakers": fold_of[c["clip"]].get("train_speakers", 0),
                                **{label: c[label]["jaw_open_r"] for label in ("model", "ridge")}}
                               for c in bench["clips"]]}
            for label in ("model", "ridge"):
                point[label] = bench["summary"][label]["median"]["jaw_open_r"]
                point[label + "_weighted"] = bench["summary"][label]["weighted_mean"]["jaw_open_r"]
            curves.setdefault(f"look-ahead {lookahead:g} ms", []).append(point)
    order = axis_of(kind)
    return {key: sorted(points, key=lambda p: (p[order], p["train_seconds"])) for key, points in curves.items()}


def axis_of(kind: str) -> str:
    """What a point's training is counted in: the speaker's seconds, or the speakers heard."""
    return "train_speakers" if kind == "speaker-independent" else "train_seconds"


def table(curves: dict[str, list[dict]], kind: str = KIND) -> str:
    counted = "speakers in training, median" if kind == "speaker-independent" else "speaker's recordings in training"
    lines = [f"| look-ahead | {counted} | training audio, median s | TCN jawOpen r median (mean) "
             "| ridge median (mean) | TCN above ridge, clips |", "|---|---|---|---|---|---|"]
    for key, points in curves.items():
        for p in points:
            above = sum(c["model"] > c["ridge"] for c in p["clips"])
            count = f"{p['train_speakers']:g}" if kind == "speaker-independent" else f"{p['train_recordings']}"
            lines.append(f"| {key.removeprefix('look-ahead ')} | {count} | {p['train_seconds']:.0f} "
                         f"| {p['model']:.3f} ({p['model_weighted']:.3f}) | {p['ridge']:.3f} ({p['ridge_weighted']:.3f}) "
                         f"| {above} of {len(p['clips'])} |")
    return "\n".join(lines) + "\n"


def plot(path: Path, curves: dict[str, list[dict]], kind: str = KIND) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from voiceface.formats import atomic_path
    figure, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.0), sharey=True, squeeze=False,
                                sharex=kind == "speaker-independent")      # voices: one scale for both panels
    for axis, (key, points) in zip(axes[0], sorted(curves.items(), key=lambda kv: kv[0])):
        for label, colour, name in (("model", "tab:red", "TCN"), ("ridge", "tab:grey", "ridge, same inputs")):
            x = axis_of(kind)
            dots = [(c[x], c[label]) for p in points for c in p["clips"]]
            axis.scatter(*zip(*dots), s=12, color=colour, alpha=0.45)
            axis.plot([p[x] for p in points], [p[label] for p in points], "-o", color=colour,
                      label=f"{name} (median over clips)")
        axis.set_title(key, fontsize=10)
        axis.set_xlabel("speakers in training" if kind == "speaker-independent" else
                        "the speaker's audio in training, seconds")
        if kind == "speaker-independent":           # voices double from point to point
            axis.set_xscale("log", base=2)
            axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("jawOpen r on the held-out clip")
    axes[0][0].legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=80)
    plt.close(figure)


def main(argv=None) -> int:
    from voiceface.errors import InputError
    from voiceface.evaluation import read_benchmark_report
    from voiceface.formats import write_text_atomic
    configure(globals(), argv, positional="REPORTS")
    reports = []
    try:
        for name in REPORTS:
            reports.append(read_benchmark_report(name))
        benches = [bench for report in reports for _, bench in benches_of(report, KIND)]
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if KIND not in ("speaker-dependent", "speaker-independent"):
        print(f"error: --kind {KIND!r}: say speaker-dependent or speaker-independent", file=sys.stderr)
        return 2
    needed = "train_speakers" if KIND == "speaker-independent" else "train_seconds"
    if not benches or any(needed not in f for b in benches for f in b["folds"]):
        option = "--max-training-speakers" if KIND == "speaker-independent" else "--max-training-recordings"
        print(f"error: no {KIND} benchmark with {needed.replace('_', ' ')} in {', '.join(map(str, REPORTS)) or 'no files'}: "
              f"run evaluate.py --benchmark {KIND} (with {option} K for the smaller points) first", file=sys.stderr)
        return 1
    curves = curve_points(reports, KIND)
    plot(Path(OUTPUT), curves, KIND)
    text = table(curves, KIND)
    write_text_atomic(Path(OUTPUT).with_suffix(".md"), text)
    print(text + f"wrote {OUTPUT} and {Path(OUTPUT).with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
