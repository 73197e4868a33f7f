"""What each millisecond of latency buys: the two benchmarks' jawOpen r against the model's look-ahead,
for the TCN and for ridge on the same inputs, from benchmark runs that differ only in --lookahead-ms.

    python 3_inference/evaluate.py --benchmark both --processed-dir data/real/processed \\
        --speaker-manifest ../shared/realdata/manifest.csv --lookahead-ms 0 40 100 260 --json runs/latency/all.json
    python 3_inference/latency_curve.py runs/latency/all.json --output runs/latency/latency_curve.png

The look-aheads may come from several reports (one per evaluate.py run). Reports of the same
benchmark and look-ahead under other --seed values are seeds: each is a dot, the line goes through
their median. Reports trained or labelled otherwise (--train-args beyond the seed, --dataset-args,
the labels' lead, evaluate.py's other settings) are refused: a curve compares look-aheads under one
recipe.

Writes the PNG (one panel per benchmark; the shaded band: the TCN's quartiles over clips) and a
markdown table beside it (`.md`), and prints the table. The latency a live user waits is the
look-ahead plus the front-end's analysis window and one hop (25 + 10 ms).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: OUTPUT as --output) ----------------------
REPORTS = []                    # benchmark JSONs of evaluate.py (--benchmark ... --json), one or several look-aheads each
OUTPUT = "latency_curve.png"    # the picture; the table goes beside it as .md
OTHERS_MS = [260.0]             # other systems' look-ahead, drawn as a line (NVIDIA Audio2Face-3D's regression model: 260 ms)
# --- end of settings ---------------------------------------------------------------------------


def front_end_ms() -> float:
    """What the model waits for besides its look-ahead: the analysis window and one hop."""
    from voiceface.constants import FRAME_RATE, SAMPLE_RATE, WIN_LENGTH
    return 1000 * WIN_LENGTH / SAMPLE_RATE + 1000 / FRAME_RATE


FREE_SETTINGS = ("lookahead_ms", "benchmark", "json", "bench_dir", "train_args",   # may differ along one curve
                 "jobs")          # trainings at once: the recipe is the same


def recipe(report: dict) -> tuple[tuple, dict]:
    """What must match between reports on one curve: the training arguments less the seed, stage
    1.3's arguments and the labels' lead; and evaluate.py's other settings (the folds, the speakers'
    other clips), where both reports record them (reports before 2026-12-05 do not)."""
    import shlex
    words, kept = shlex.split(report.get("train_args", "")), []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--seed":
            skip = True
        elif not word.startswith("--seed="):
            kept.append(word)
    settings = {k: v for k, v in report.get("settings", {}).items() if k not in FREE_SETTINGS}
    return (" ".join(kept), report.get("dataset_args", ""), report.get("typical_lead_ms")), settings


def recipe_difference(a: dict, b: dict) -> str | None:
    """How two reports' recipes differ (one line), or None."""
    (base_a, settings_a), (base_b, settings_b) = recipe(a), recipe(b)
    if base_a != base_b:
        return f"train args less the seed, dataset args, lead: {base_a} against {base_b}"
    differ = sorted(k for k in set(settings_a) & set(settings_b) if settings_a[k] != settings_b[k])
    if differ:
        return "; ".join(f"{k}: {settings_a[k]!r} against {settings_b[k]!r}" for k in differ)
    return None


def curve_points(reports: dict[str, dict]) -> dict[str, list[dict]]:
    """For each benchmark kind, one point per look-ahead in order: the TCN's, ridge's and loudness's
    median jawOpen r over clips (median over the reports that hold it), the TCN's weighted mean, its
    quartiles, clips above ridge, and each report's TCN median."""
    import numpy as np
    from voiceface.evaluation import parse_benchmark_key
    seen: dict[tuple[str, float], list[dict]] = {}
    for report in reports.values():
        for key, bench in report.get("benchmarks", {}).items():
            seen.setdefault(parse_benchmark_key(key), []).append(bench)
    curves: dict[str, list[dict]] = {}
    for (kind, lookahead), benches in sorted(seen.items()):
        def median_of(label, statistic="median"):
            return float(np.median([b["summary"][label][statistic]["jaw_open_r"] for b in benches]))
        quartiles = np.median([b["summary"]["model"]["quartiles"]["jaw_open_r"] for b in benches], axis=0)
        above = [sum(c["model"]["jaw_open_r"] > c["ridge"]["jaw_open_r"] for c in b["clips"]) for b in benches]
        curves.setdefault(kind, []).append({
            "lookahead_ms": lookahead, "latency_ms": lookahead + front_end_ms(), "runs": len(benches),
            "clips": len(benches[0]["clips"]), "model": median_of("model"), "ridge": median_of("ridge"),
            "loudness": median_of("loudness"), "model_weighted": median_of("model", "weighted_mean"),
            "model_quartiles": [float(q) for q in quartiles], "above_ridge": above,
            "model_runs": [b["summary"]["model"]["median"]["jaw_open_r"] for b in benches]})
    return curves


def table(curves: dict[str, list[dict]]) -> str:
    lines = ["| benchmark | look-ahead | latency | TCN jawOpen r median (weighted mean) | quartiles over clips "
             "| ridge | loudness | TCN above ridge, clips | runs |", "|---|---|---|---|---|---|---|---|---|"]
    for kind, points in curves.items():
        for p in points:
            runs = " / ".join(f"{r:.3f}" for r in p["model_runs"]) if p["runs"] > 1 else "1"
            above = " / ".join(map(str, p["above_ridge"]))
            lines.append(f"| {kind} | {p['lookahead_ms']:g} ms | {p['latency_ms']:g} ms | {p['model']:.3f} "
                         f"({p['model_weighted']:.3f}) | {p['model_quartiles'][0]:.3f}–{p['model_quartiles'][1]:.3f} "
                         f"| {p['ridge']:.3f} | {p['loudness']:.3f} | {above} of {p['clips']} | {runs} |")
    return "\n".join(lines) + "\n"


def plot(path: Path, curves: dict[str, list[dict]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from voiceface.formats import atomic_path
    figure, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.3), squeeze=False)
    for axis, (kind, points) in zip(axes[0], curves.items()):
        x = [p["lookahead_ms"] for p in points]
        axis.fill_between(x, [p["model_quartiles"][0] for p in points], [p["model_quartiles"][1] for p in points],
                          color="tab:red", alpha=0.12, label="TCN, quartiles over clips")
        for p in points:
            if p["runs"] > 1:
                axis.scatter([p["lookahead_ms"]] * p["runs"], p["model_runs"], s=12, color="tab:red", alpha=0.5)
        for label, colour, name in (("model", "tab:red", "TCN"), ("ridge", "tab:blue", "ridge, same inputs"),
                                    ("loudness", "tab:grey", "loudness → jawOpen")):
            axis.plot(x, [p[label] for p in points], "-o", color=colour, label=f"{name} (median over clips)")
        for p in points:
            axis.annotate(f"{p['model']:.2f}", (p["lookahead_ms"], p["model"]), textcoords="offset points",
                          xytext=(0, 6), ha="center", fontsize=8, color="tab:red")
        for others in OTHERS_MS:
            axis.axvline(others, color="black", linestyle=":", linewidth=1)
            axis.annotate(f"Audio2Face-3D\nlooks {others:g} ms ahead" if others == 260 else f"{others:g} ms",
                          (others, 0.03), xycoords=("data", "axes fraction"), fontsize=7, ha="right", va="bottom",
                          xytext=(-3, 0), textcoords="offset points")
        clips = points[0]["clips"]
        axis.set_title(f"{kind} ({clips} clips)", fontsize=10)
        axis.set_xlabel(f"look-ahead, ms (latency: + {front_end_ms():g} ms of window and hop)")
        axis.set_ylim(bottom=min(0.0, *(p["loudness"] for p in points)))
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("jawOpen r on held-out clips")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=80)
    plt.close(figure)


def main(argv=None) -> int:
    from voiceface.errors import InputError
    from voiceface.evaluation import read_benchmark_report
    from voiceface.formats import write_text_atomic
    configure(globals(), argv, positional="REPORTS")
    reports = {}
    for name in REPORTS:
        try:
            reports[name] = read_benchmark_report(name)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    names = list(reports)
    for i, first in enumerate(names):
        for other in names[i + 1:]:
            if difference := recipe_difference(reports[first], reports[other]):
                print(f"error: {first} and {other} were trained or labelled otherwise ({difference}); a curve "
                      "compares look-aheads under one recipe: give reports that differ only in --lookahead-ms and "
                      "--seed", file=sys.stderr)
                return 1
    try:
        curves = curve_points(reports)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not curves:
        print(f"error: no benchmark in {', '.join(map(str, REPORTS)) or 'no files'}: run evaluate.py --benchmark "
              "with --lookahead-ms and give its --json", file=sys.stderr)
        return 1
    plot(Path(OUTPUT), curves)
    text = table(curves)
    write_text_atomic(Path(OUTPUT).with_suffix(".md"), text)
    print(text + f"wrote {OUTPUT} and {Path(OUTPUT).with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
