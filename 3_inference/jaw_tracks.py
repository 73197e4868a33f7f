"""What a benchmark's jawOpen r looks like: the video's jaw against the TCN's and ridge's, on a
held-out clip of each benchmark, as the fold's model (the one the benchmark scored) predicts it.

    python 3_inference/jaw_tracks.py runs/benchmark/benchmark.json --output runs/benchmark/jaw_tracks.png
    python 3_inference/jaw_tracks.py sd.json si.json --clip tk_obama_crop512 --start 20 --seconds 8
    python 3_inference/jaw_tracks.py si.json --strength mouth=2.3      # and the TCN as inference.py --strength makes it
    python 3_inference/jaw_tracks.py si.json --clip edt_uncrop_Obama,styletalk_andrew_clip_1 --rest speaker
    python 3_inference/jaw_tracks.py si.json --smoothing mouth=40     # and the TCN as inference.py --smoothing makes it

One panel per benchmark and look-ahead in the reports (evaluate.py --benchmark ... --json). Each shows
the clip whose TCN jawOpen r is the median over the benchmark's clips (the lower of the two middle
ones for an even count), unless --clip names them (a panel for each it scored); the pauses (voice activity 0) are shaded. The
fold's model is its run's last.pt and the labels its dataset's, sync-corrected as the benchmark
scored them; a run or dataset that is gone or changed since is refused in one line. The PNG carries
what it was drawn from (the reports' SHA-256 and the settings, in its text chunk `voiceface`); drawn
again from the same, it is skipped unless --force. With --strength the TCN is drawn a second time as
inference.py --strength would animate it (voiceface/strength.py, around the fold model's rest), and
each panel's line prints the jaw's amplitude (its spread over the video's) both ways. With --rest
speaker it is drawn as inference.py --rest would animate it with another of the speaker's videos: moved
onto the speaker's rest read from their other clips in the processed folder (strength.speaker_rests,
never from the clip drawn), the line printing jawOpen's MAE both ways. With --smoothing (alone or with
--strength) the second TCN track is also smoothed as inference.py --smoothing smooths it, and the line
prints how much the jaw flickers against the video (metrics.flicker) both ways.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: OUTPUT as --output) ----------------------
REPORTS = []                    # benchmark JSONs of evaluate.py --benchmark
OUTPUT = "jaw_tracks.png"       # the picture
CLIP = ""                       # the clip(s) to show, comma-separated: a panel for each benchmark that scored one;
#                                 default: each benchmark's median clip
START = 0.0                     # the excerpt's start in the clip, seconds
SECONDS = 10.0                  # the excerpt's length (the whole clip if shorter)
STRENGTH = ""                   # also draw the TCN with this inference.py --strength (e.g. mouth=2.3)
REST = ""                       # speaker: also draw the TCN moved onto its speaker's rest read from their other clips
SMOOTHING = ""                  # also draw the TCN with this inference.py --smoothing (e.g. mouth=40)
FORCE = False                   # draw again even when the picture says it was drawn from these reports and settings
# --- end of settings ---------------------------------------------------------------------------


def median_clip(bench: dict) -> str:
    """The clip whose TCN jawOpen r is the median over the benchmark's clips (the lower middle one)."""
    ranked = sorted(bench["clips"], key=lambda c: c["model"]["jaw_open_r"])
    return ranked[(len(ranked) - 1) // 2]["clip"]


def panel(key: str, bench: dict, clip: str, processed: Path, rests: dict | None = None) -> dict:
    """The tracks of one benchmark's clip as its fold's model and ridge predict them; with `rests`
    (strength.speaker_rests) the model's also moved onto the clip's speaker's rest."""
    from voiceface.dataset import MANIFEST_FILENAME
    from voiceface.engine import load_model
    from voiceface.errors import InputError
    from voiceface.evaluation import dataset_clips, score_clips
    from voiceface.formats import recorded_path, sha256_file
    from voiceface.strength import parse_strength, smooth_frames, with_smoothing
    fold = next((f for f in bench["folds"] if clip in f["held_out"]), None)
    if fold is None:
        raise InputError(f"{key}: no fold held {clip} out; give a clip the benchmark scored")
    checkpoint_path = recorded_path(fold["run_dir"]) / "last.pt"
    if not checkpoint_path.exists():
        raise InputError(f"{key}: {checkpoint_path} is gone; run the benchmark again (it reuses what is there)")
    model, checkpoint = load_model(checkpoint_path)      # a damaged or foreign file: refused in one line
    dataset = recorded_path(checkpoint["training"]["dataset_dir"])
    manifest = dataset / MANIFEST_FILENAME
    if not manifest.exists() or sha256_file(manifest) != checkpoint["dataset_manifest_sha256"]:
        raise InputError(f"{key}: {dataset} is not the dataset {checkpoint_path} was trained on (gone or remade); "
                         f"run the benchmark again")
    clips = [c for c in dataset_clips(dataset, "val", processed) if c[0] == clip]
    result = score_clips(checkpoint_path, clips, dataset, keep_tracks=True, progress=False,
                         loaded=(model, checkpoint))[0]
    strength = with_smoothing(parse_strength(STRENGTH), SMOOTHING)
    from voiceface.dataset import denormalize_targets
    from voiceface.strength import apply_strength, rest_of, with_rest
    tracks = result["tracks"]
    made = denormalize_targets(smooth_frames(tracks["model"], strength)[0])     # smoothed first, as the engine does
    if not strength.identity:       # the model's track as the engine would scale it: scores in [0, 1] around its rest
        tracks["strong"] = apply_strength(made, strength, rest_of(model, checkpoint))
    if rests is not None:
        if clip not in rests:
            raise InputError(f"{key}: {clip}'s speaker has no other clip in {processed} with pauses to read a rest "
                             "from; give --clip one whose speaker has")
        tracks["rested"] = apply_strength(made, with_rest(strength, rests[clip], "speaker"),
                                          rest_of(model, checkpoint))
    return {"key": key, "clip": clip, "result": result, "clips": len(bench["clips"]),
            "median": clip == median_clip(bench)}


def provenance() -> dict:
    """What a picture is drawn from: the script, each report's path and SHA-256, the settings
    (empty when a report cannot be read: nothing to compare, the picture is drawn or refused)."""
    from voiceface.formats import sha256_file
    try:
        reports = [{"path": str(r), "sha256": sha256_file(r)} for r in REPORTS]
    except OSError:
        return {}
    return {"made_by": "3_inference/jaw_tracks.py", "reports": reports, "clip": CLIP, "start": START, "seconds": SECONDS,
            **({"strength": STRENGTH} if STRENGTH else {}), **({"rest": REST} if REST else {}),
            **({"smoothing": SMOOTHING} if SMOOTHING else {})}


def drawn_from(path: Path) -> dict:
    """The provenance a picture of this script carries in its PNG text (empty for anything else)."""
    import json

    from PIL import Image
    try:
        with Image.open(path) as image:
            return json.loads(image.text.get("voiceface", "{}"))
    except (OSError, ValueError, AttributeError):
        return {}


def jaw_error(tracks: dict, which: str) -> float:
    """jawOpen's mean absolute error of a track against the video's, on the frames scored."""
    import numpy as np
    from voiceface.metrics import JAW_OPEN
    known = tracks["mask"].astype(bool)
    return float(np.abs(tracks[which][known, JAW_OPEN] - tracks["targets"][known, JAW_OPEN]).mean())


def adjusted() -> str:
    """The inference.py settings the second TCN track is drawn with ("--strength mouth=2 --smoothing mouth=40")."""
    return " ".join(f"--{name} {value}" for name, value in (("strength", STRENGTH), ("smoothing", SMOOTHING)) if value)


def flicker(tracks: dict, which: str) -> float:
    """How much a track's jaw flickers for its swing against the video's (metrics.flicker; 1: as the video)."""
    from voiceface.metrics import JAW_OPEN, flicker
    return flicker(tracks[which][:, JAW_OPEN], tracks["targets"][:, JAW_OPEN], tracks["mask"])


def amplitude(tracks: dict, which: str) -> float:
    """The jaw's spread in a track over the video's, on the frames scored (metrics.clip_metrics')."""
    from voiceface.metrics import JAW_OPEN, amplitude
    known = tracks["mask"].astype(bool)
    return amplitude(tracks[which][known, JAW_OPEN], tracks["targets"][known, JAW_OPEN])


def plot(path: Path, panels: list[dict], start: float, seconds: float, made_from: dict) -> None:
    import io
    import json

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image, PngImagePlugin
    from voiceface.constants import FRAME_RATE
    from voiceface.formats import atomic_path
    from voiceface.metrics import JAW_OPEN
    from voiceface.plots import drawable
    figure, axes = plt.subplots(len(panels), 1, figsize=(11, 2.5 * len(panels)), squeeze=False)
    for axis, p in zip(axes[:, 0], panels):
        tracks, result = p["result"]["tracks"], p["result"]
        frames = len(tracks["targets"])
        first = min(int(start * FRAME_RATE), max(0, frames - int(seconds * FRAME_RATE)))
        span = slice(first, min(frames, first + int(seconds * FRAME_RATE)))
        time = np.arange(frames)[span] / FRAME_RATE
        known = tracks["mask"][span]
        video = np.where(known, tracks["targets"][span, JAW_OPEN], np.nan)
        pause = tracks["vad"][span] == 0
        axis.fill_between(time, 0, 1, where=pause, transform=axis.get_xaxis_transform(), color="0.92", lw=0,
                          label="pause (no voice)")
        axis.plot(time, video, color="black", lw=1.4, label="video (MediaPipe)")
        axis.plot(time, tracks["model"][span, JAW_OPEN], color="tab:red", lw=1.2,
                  label=f"TCN, r {result['model']['jaw_open_r']:.2f}")
        axis.plot(time, tracks["ridge"][span, JAW_OPEN], color="tab:blue", lw=0.9, alpha=0.7,
                  label=f"ridge on the same inputs, r {result['ridge']['jaw_open_r']:.2f}")
        if "strong" in tracks:
            axis.plot(time, tracks["strong"][span, JAW_OPEN], color="tab:orange", lw=1.2,
                      label=f"TCN with {adjusted()}, " + (f"flicker {flicker(tracks, 'strong'):.2f} (TCN "
                                                          f"{flicker(tracks, 'model'):.2f})" if SMOOTHING else
                                                          f"amplitude {amplitude(tracks, 'strong'):.2f}"))
        if "rested" in tracks:
            axis.plot(time, tracks["rested"][span, JAW_OPEN], color="tab:green", lw=1.2,
                      label=f"TCN at the rest of the speaker's other clips{' and ' + adjusted() if adjusted() else ''}, "
                            f"MAE {jaw_error(tracks, 'rested'):.3f} (TCN {jaw_error(tracks, 'model'):.3f})")
        which = f"the median of its {p['clips']} clips" if p["median"] else f"one of its {p['clips']} clips"
        axis.set_title(f"{p['key']}: held-out {drawable(p['clip'])} ({which}; r over the whole clip)", fontsize=9)
        axis.set_ylabel("jawOpen")
        axis.set_xlim(time[0], time[-1])
        axis.legend(loc="upper right", fontsize=7, ncol=4 if "rested" not in tracks else 3)
    axes[-1, 0].set_xlabel("seconds into the clip")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=80, format="png")
    plt.close(figure)
    with atomic_path(path) as tmp:        # 64 colours: a quarter of the bytes, the same picture
        text = PngImagePlugin.PngInfo()     # what made it, as every artefact of the pipeline says
        text.add_text("voiceface", json.dumps(made_from))
        Image.open(buffer).convert("RGB").quantize(64).save(tmp, format="PNG", optimize=True, pnginfo=text)


def main(argv=None) -> int:
    from voiceface.errors import InputError
    from voiceface.evaluation import parse_benchmark_key, read_benchmark_report
    from voiceface.formats import recorded_path
    configure(globals(), argv, positional="REPORTS")
    from voiceface.cli import out_of_range
    if problem := out_of_range(("--seconds", SECONDS, 0, True, "the excerpt's length"),
                               ("--start", START, 0, False, "seconds into the clip")):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from voiceface.strength import benchmark_rest_problem, parse_smoothing, parse_strength, speaker_rests
    try:
        parse_strength(STRENGTH)
        parse_smoothing(SMOOTHING)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if problem := benchmark_rest_problem(REST, "the TCN also drawn at its speaker's rest "
                                                     "read from their other clips"):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    output = Path(OUTPUT)
    made_from = provenance()
    if not FORCE and made_from and drawn_from(output) == made_from:
        print(f"skipped: {output} was drawn from these reports with these settings (--force draws it again)")
        return 0
    panels, clips = [], [c.strip() for c in CLIP.split(",") if c.strip()]
    try:
        for name in REPORTS:
            report = read_benchmark_report(name)
            benches = sorted(report.get("benchmarks", {}).items(),   # by kind, then look-ahead
                             key=lambda kv: parse_benchmark_key(kv[0]))
            processed = recorded_path(report["processed_dir"])
            rests = speaker_rests(report.get("settings", {}).get("speaker_manifest"), processed) if REST else None
            for key, bench in benches:
                scored = {c["clip"] for c in bench["clips"]}
                for clip in [c for c in clips if c in scored] if clips else [median_clip(bench)]:
                    panels.append(panel(key, bench, clip, processed, rests))
                    r = panels[-1]["result"]
                    print(f"{key}: {clip}: jawOpen r TCN {r['model']['jaw_open_r']:.3f}, ridge {r['ridge']['jaw_open_r']:.3f}"
                          + (f"; the jaw's amplitude {amplitude(r['tracks'], 'model'):.2f}, with {adjusted()} "
                             f"{amplitude(r['tracks'], 'strong'):.2f}" if STRENGTH else "")
                          + (f"; the jaw's flicker against the video's {flicker(r['tracks'], 'model'):.2f}, with "
                             f"{adjusted()} {flicker(r['tracks'], 'strong'):.2f}" if SMOOTHING else "")
                          + (f"; jawOpen MAE {jaw_error(r['tracks'], 'model'):.3f}, at the speaker's rest "
                             f"{jaw_error(r['tracks'], 'rested'):.3f}" if REST else ""))
        if not panels:
            raise InputError(f"no benchmark {'scored ' + CLIP if CLIP else 'found'} in {', '.join(map(str, REPORTS)) or 'no files'}: "
                             f"give the JSONs evaluate.py --benchmark wrote")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    plot(output, panels, START, SECONDS, made_from)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
