"""What a strength does to a benchmark's figures, and which one gives the video's range of movement.
Every fold model of a benchmark report (evaluate.py --benchmark) is scored again on its held-out clips
as the benchmark scored them (sync-corrected labels, the same frames), its output scaled as
inference.py --strength would scale it (voiceface/strength.py: each score moved `gain` times as far
from the fold model's rest) at each gain of --gains, for the item --region names. Gain 1 gives the
benchmark's own figures, but for the scores clipped to [0, 1] as inference clips them (the benchmark
scores the model's output as it comes).

    python 3_inference/strength_check.py runs/benchmark/benchmark.json
    python 3_inference/strength_check.py sd.json si.json --gains 1 1.6 2.3 --json runs/strength.json

Prints, and writes beside --json as markdown, one table per benchmark and look-ahead: median over
clips (duration-weighted mean) of jawOpen r, the jaw's amplitude (its spread over the video's),
jawOpen MAE, mouth MAE (every jaw* and mouth* score) and jawOpen in the pauses (the video's beside
it); then the gain at which the median amplitude reaches the video's, read off the gains tried.
A --json that holds the scores of the same reports (by SHA-256), region and gains is not scored
again unless --force (run_pipeline.py's stage 8 runs it after every benchmark).

With --rest speaker, what inference.py --rest does: only the held-out clips whose speaker (by the
benchmark's speaker manifest) has other clips in the processed folder are scored, each gain twice,
from the model's rest and moved onto the speaker's rest read from those other clips (the median of
their faces in their pauses, voiceface/strength.py's face_at_rest), never from the clip itself; the
table adds every score's MAE and how far the jaw in the pauses lies from the video's.

    python 3_inference/strength_check.py si.json --gains 1 --rest speaker --json runs/rest.json

With --smoothing SPEC ..., what inference.py --smoothing does: each gain also with each smoothing (the
filter run over the model's 100 Hz output before the strength, voiceface/strength.py's
smooth_frames); the table adds how much the jaw flickers for its swing against the video
(voiceface/metrics.py's flicker: 1 is as steady as the video).

    python 3_inference/strength_check.py si.json --gains 1 --smoothing mouth=20 mouth=40 --json runs/smooth.json
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: GAINS as --gains) --------------------------
REPORTS = []                    # benchmark JSONs from evaluate.py --benchmark (at least one)
GAINS = [1.0, 1.5, 2.0, 2.5]    # the gains to score (1: the benchmark's own figures)
REGION = "mouth"                # the --strength item the gains set: mouth, upper, a blendshape's name, or "" for
#                                 every blendshape
JSON = ""                       # if given: every clip's figures as JSON, and the tables as markdown beside it
FORCE = False                   # score again even when --json holds these reports' scores at these gains
REST = ""                       # speaker: also each clip moved onto its speaker's rest read from their other clips
SMOOTHING = []                  # --smoothing texts (mouth=40, ...): also each gain with each of them
# --- end of settings ---------------------------------------------------------------------------


def spec(gain: float) -> str:
    """The --strength text that sets REGION to `gain`."""
    return f"{REGION}={gain:g}" if REGION else f"{gain:g}"


def score_fold(fold: dict, processed: Path, rests: dict | None = None) -> list[dict]:
    """Every held-out clip of one fold at every gain: the benchmark's scoring of the fold model's
    output, scaled from the model's rest; with `rests` (speaker_rests) only the clips it has, each
    gain also moved onto the clip's rest there ("G + rest" in the row's gains)."""
    import numpy as np
    from voiceface.constants import MOUTH_INDICES, N_BLENDSHAPES
    from voiceface.dataset import denormalize_targets
    from voiceface.engine import load_model
    from voiceface.errors import InputError
    from voiceface.evaluation import dataset_clips, score_clips
    from voiceface.formats import recorded_path
    from voiceface.metrics import JAW_OPEN, amplitude, flicker, pearson
    from voiceface.strength import (apply_strength, parse_strength, rest_of, smooth_frames, with_rest,
                                    with_smoothing)
    checkpoint_path = recorded_path(fold["run_dir"]) / "last.pt"
    if not checkpoint_path.exists():
        raise InputError(f"{checkpoint_path} is gone; run the benchmark again (it reuses what is there)")
    model, checkpoint = load_model(checkpoint_path)
    rest = rest_of(model, checkpoint)
    dataset = recorded_path(checkpoint["training"]["dataset_dir"])
    clips = [c for c in dataset_clips(dataset, "val", processed) if c[0] in fold["held_out"]
             and (rests is None or c[0] in rests)]
    if not clips:
        return []
    rows = []
    for result in score_clips(checkpoint_path, clips, dataset, keep_tracks=True, progress=False,
                              loaded=(model, checkpoint)):
        tracks = result["tracks"]
        known = tracks["mask"].astype(bool)
        pauses = known & (tracks["vad"] == 0)
        video = tracks["targets"][:, :N_BLENDSHAPES]
        row = {"clip": result["clip"], "duration_s": result["duration_s"],
               "video_pause_jaw_open": float(video[pauses, JAW_OPEN].mean()) if pauses.any() else None, "gains": {}}
        settings = [(f"{gain:g}", parse_strength(spec(gain))) for gain in GAINS]
        if rests is not None:
            settings = [entry for gain, strength in settings for entry in
                        ((gain, strength), (f"{gain} + rest", with_rest(strength, rests[result["clip"]], "speaker")))]
        settings = [entry for key, strength in settings for entry in [(key, strength)] + [
            (f"{key} ~ {smoothing}", with_smoothing(strength, smoothing)) for smoothing in SMOOTHING]]
        for key, strength in settings:
            face = apply_strength(denormalize_targets(smooth_frames(tracks["model"], strength)[0]), strength, rest)
            p, t = face[known, :N_BLENDSHAPES], video[known]
            row["gains"][key] = {
                "jaw_flicker": flicker(face[:, JAW_OPEN], video[:, JAW_OPEN], known),
                "jaw_open_r": pearson(p[:, JAW_OPEN], t[:, JAW_OPEN]),
                "jaw_open_amplitude": amplitude(p[:, JAW_OPEN], t[:, JAW_OPEN]),
                "jaw_open_mae": float(np.abs(p[:, JAW_OPEN] - t[:, JAW_OPEN]).mean()),
                "mouth_mae": float(np.abs(p[:, MOUTH_INDICES] - t[:, MOUTH_INDICES]).mean()),
                "pause_jaw_open": float(face[pauses, JAW_OPEN].mean()) if pauses.any() else None,
                "mae": float(np.abs(p[:, 1:] - t[:, 1:]).mean()),
                "pause_jaw_open_error": float(abs(face[pauses, JAW_OPEN].mean() - video[pauses, JAW_OPEN].mean()))
                if pauses.any() else None}
        rows.append(row)
    return rows


def video_range_gain(gains: list[float], amplitudes: list[float]) -> str:
    """Where the median amplitude crosses 1, by linear interpolation between the gains tried ("at
    mouth=1.58"), or which side of them it lies."""
    import numpy as np
    order = np.argsort(gains)
    g, a = np.asarray(gains, float)[order], np.asarray(amplitudes, float)[order]
    if a[-1] < 1:
        return f"beyond {spec(g[-1])} (amplitude {a[-1]:.3f} there)"
    if a[0] >= 1:
        return f"at {spec(g[0])} or below (amplitude {a[0]:.3f} there)"
    i = int(np.argmax(a >= 1))
    return f"at {spec(round(g[i - 1] + (1 - a[i - 1]) * (g[i] - g[i - 1]) / (a[i] - a[i - 1]), 2))}"


def label(key: str) -> str:
    """A row's --strength text, and --rest's and --smoothing's when the row has them ("mouth=1 --rest
    speaker --smoothing mouth=40")."""
    key, _, smoothing = key.partition(" ~ ")
    gain, _, rested = key.partition(" + ")
    return spec(float(gain)) + (" --rest speaker" if rested else "") + (f" --smoothing {smoothing}" if smoothing else "")


def table(rows: list[dict], title: str) -> str:
    import numpy as np
    if not rows:
        return f"{title}\n\nNo held-out clip has a speaker with other clips to read a rest from.\n"
    weights = np.array([r["duration_s"] for r in rows])

    def cell(gain: str, key: str, digits: int) -> str:
        have = [(r["gains"][gain][key], w) for r, w in zip(rows, weights) if r["gains"][gain].get(key) is not None]
        if not have:
            return "–"
        values, w = map(np.array, zip(*have))
        return f"{np.median(values):.{digits}f} ({np.average(values, weights=w):.{digits}f})"

    gains = list(rows[0]["gains"])
    rested = any(" + " in g for g in gains)
    smoothed = any(" ~ " in g for g in gains)
    extra = (" every score's MAE | jawOpen in the pauses, off the video's |" if rested else "") + (
        " jaw flicker (the video's: 1) |" if smoothed else "")
    quiet = [r["video_pause_jaw_open"] for r in rows if r["video_pause_jaw_open"] is not None]
    lines = [title, "", f"{len(rows)} clips. Median over clips (duration-weighted mean); the video's jawOpen in the "
             f"pauses: {np.median(quiet):.3f}." if quiet else f"{len(rows)} clips. Median over clips "
             "(duration-weighted mean).", "",
             "| --strength | jawOpen r | jawOpen amplitude | jawOpen MAE | mouth MAE | jawOpen in the pauses |" + extra,
             "|---|---|---|---|---|---|" + "---|---|" * rested + "---|" * smoothed]
    for gain in gains:
        lines.append(f"| {label(gain)} | {cell(gain, 'jaw_open_r', 3)} | {cell(gain, 'jaw_open_amplitude', 2)} | "
                     f"{cell(gain, 'jaw_open_mae', 4)} | {cell(gain, 'mouth_mae', 4)} | {cell(gain, 'pause_jaw_open', 3)} |"
                     + (f" {cell(gain, 'mae', 4)} | {cell(gain, 'pause_jaw_open_error', 3)} |" if rested else "")
                     + (f" {cell(gain, 'jaw_flicker', 2)} |" if smoothed else ""))
    plain = [g for g in gains if " + " not in g and " ~ " not in g]
    amplitudes = [float(np.median([r["gains"][g]["jaw_open_amplitude"] for r in rows])) for g in plain]
    lines += ["", f"The median clip's jaw moves as far as the video's {video_range_gain([float(g) for g in plain], amplitudes)}."]
    return "\n".join(lines) + "\n"


def provenance() -> dict:
    """What a --json is scored from: each report's path and SHA-256, the region and the gains
    (empty when a report cannot be read: nothing to compare, it is scored or refused)."""
    from voiceface.formats import sha256_file
    try:
        reports = [{"path": str(r), "sha256": sha256_file(r)} for r in REPORTS]
    except OSError:
        return {}
    return {"made_by": "3_inference/strength_check.py", "reports": reports, "region": REGION,
            "gains": [float(g) for g in GAINS]} | ({"rest": REST} if REST else {}) | (
        {"smoothing": list(SMOOTHING)} if SMOOTHING else {})


def scored_from(path: Path) -> dict:
    """The provenance a --json of this script records (empty for anything else)."""
    import json
    try:
        return json.loads(path.read_text()).get("made_from", {})
    except (OSError, ValueError, AttributeError):
        return {}


def main(argv=None) -> int:
    configure(globals(), argv, positional="REPORTS")
    from voiceface.evaluation import rescore_folds
    from voiceface.formats import recorded_path
    from voiceface.strength import benchmark_rest_problem, parse_smoothing, parse_strength, speaker_rests
    try:
        if not GAINS:
            raise ValueError("--gains: give one or more gains, e.g. --gains 1 1.5 2")
        for gain in GAINS:
            parse_strength(spec(gain))
    except ValueError as error:
        print(f"error: {str(error).replace('--strength ', '--region/--gains: ')}", file=sys.stderr)
        return 2
    try:
        for smoothing in SMOOTHING:
            if parse_smoothing(smoothing) is None:
                raise ValueError(f"--smoothing {smoothing!r}: smooths nothing; give time constants above 0 ms, "
                                 "e.g. mouth=40")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if problem := benchmark_rest_problem(REST, "each clip moved onto its speaker's rest "
                                                     "read from their other clips"):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    made_from = provenance()
    if JSON and not FORCE and made_from and scored_from(Path(JSON)) == made_from:
        print(f"skipped: {JSON} holds these reports' scores at these gains (--force scores them again)")
        return 0
    rests = {}                          # per processed folder and manifest, read once (MediaPipe's tracks are on disk)

    def score(fold: dict, report: dict) -> list[dict]:
        processed = recorded_path(report["processed_dir"])
        if not REST:
            return score_fold(fold, processed)
        key = (str(processed), report.get("settings", {}).get("speaker_manifest"))
        if key not in rests:
            rests[key] = speaker_rests(key[1], processed)
        return score_fold(fold, processed, rests[key])
    return rescore_folds(REPORTS, score, table, JSON, {"reports": [str(r) for r in REPORTS], "region": REGION,
                                                       "rest": REST, "smoothing": list(SMOOTHING),
                                                       "made_from": made_from})

if __name__ == "__main__":
    sys.exit(run_main(main))
