"""How much of a MediaPipe blendshape track is measurement noise (a study, not a stage).

Stage 1.1's labels are one reading of each frame by the face landmarker. Read the same frames a
second time, slightly changed in a way that leaves the face as it is — mirrored left to right,
scaled to 80 % of its size, or re-encoded as JPEG at quality 75 — and the two readings of a
symmetric shape (jawOpen, mouthClose, mouthFunnel, the mean of the two smiles) should agree. Where
they differ, at least one is noise.

If each reading is the true track plus its own independent noise of the same size, their
correlation r_tt is the share of the track's variance that is face, and no prediction from sound
can correlate with one reading better than sqrt(r_tt): the ceiling of the benchmarks' r. Errors the
two readings share (the same pixels, the same model) do not show up here, so the true ceiling is at
or below this one.

    python 1_data_cleaning/label_noise.py --raw-dir ../shared/realdata --output runs/label_noise.md
    python 1_data_cleaning/label_noise.py --raw-dir ../shared/realdata --clips edt_uncrop_Obama tk_obama_crop512

Reports per clip and as medians over clips: each shape's r between the reading of the original
frames and each changed reading, the implied ceiling, and the frame-to-frame jitter of jawOpen
(mean |second difference|) of each reading.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: RAW_DIR as --raw-dir) -------------------
RAW_DIR = REPO_ROOT / "data/raw"                    # the videos
CLIPS: list = []                                    # clip names (file stems) to read; none: every video
FACE_MODEL = REPO_ROOT / "checkpoints/face_landmarker.task"   # MediaPipe's model
SCALE = 0.8                                         # the scaled reading: this size, area-averaged
JPEG_QUALITY = 75                                   # the re-encoded reading: JPEG at this quality
OUTPUT = REPO_ROOT / "runs/label_noise.md"          # the tables
# --- end of settings ---------------------------------------------------------------------------

SHAPES = ("jawOpen", "mouthClose", "mouthFunnel", "smile")
READINGS = ("mirrored", "scaled", "jpeg")


def shape_tracks(blendshapes):
    """The symmetric shapes of a (N, 52) track, as {name: (N,)}; smile is the mean of the two sides."""
    from voiceface.constants import BLENDSHAPE_NAMES
    index = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
    tracks = {n: blendshapes[:, index[n]] for n in SHAPES if n != "smile"}
    tracks["smile"] = (blendshapes[:, index["mouthSmileLeft"]] + blendshapes[:, index["mouthSmileRight"]]) / 2
    return tracks


def read_four_ways(video, model_path, scale, quality):
    """(N, 52) blendshapes of each frame read as it is, mirrored, scaled and re-encoded: {reading: array},
    NaN rows where a reading found no face. One tracking landmarker per reading, as stage 1.1."""
    import cv2
    import numpy as np
    from voiceface.constants import N_BLENDSHAPES
    from voiceface.landmarks import create_landmarker, to_mediapipe_image
    from voiceface.progress import native_stderr_silenced
    from voiceface.video import iter_video_frames

    def changed(rgb, reading):
        if reading == "mirrored":
            return np.ascontiguousarray(rgb[:, ::-1])
        if reading == "scaled":
            h, w = rgb.shape[:2]
            return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        if reading == "jpeg":         # RGB in, RGB out: the channel order does not matter to the codec
            ok, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
            return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        return rgb

    names = ("original",) + READINGS
    with native_stderr_silenced():
        landmarkers = {n: create_landmarker(model_path, 1) for n in names}
    rows = {n: [] for n in names}
    try:
        last_ms = -1
        for time_s, rgb in iter_video_frames(video):
            stamp_ms = max(int(round(time_s * 1000)), last_ms + 1)
            last_ms = stamp_ms
            for n in names:
                result = landmarkers[n].detect_for_video(to_mediapipe_image(changed(rgb, n)), stamp_ms)
                rows[n].append(np.array([c.score for c in result.face_blendshapes[0]]) if result.face_blendshapes
                               else np.full(N_BLENDSHAPES, np.nan))
    finally:
        for landmarker in landmarkers.values():
            landmarker.close()
    return {n: np.asarray(r, dtype=np.float64) for n, r in rows.items()}


def compare(readings):
    """{'frames', 'r': {reading: {shape: r}}, 'jitter': {reading: jawOpen jitter}} on frames that
    every reading saw a face in."""
    import numpy as np
    from voiceface.metrics import pearson
    both = np.all([~np.isnan(r).any(axis=1) for r in readings.values()], axis=0)
    tracks = {n: shape_tracks(r[both]) for n, r in readings.items()}
    out = {"frames": int(both.sum()), "r": {}, "jitter": {}}
    for n in READINGS:
        out["r"][n] = {s: float(pearson(tracks["original"][s], tracks[n][s])) for s in SHAPES}
    for n, t in tracks.items():
        out["jitter"][n] = float(np.abs(np.diff(t["jawOpen"], 2)).mean())
    return out


def main(argv=None) -> int:
    configure(globals(), argv)
    import numpy as np
    from voiceface.cli import VIDEO_EXTENSIONS, out_of_range, over_limit
    from voiceface.errors import InputError
    from voiceface.face_model import ensure_face_model
    from voiceface.formats import write_text_atomic
    from voiceface.progress import say

    refusal = out_of_range(("--scale", SCALE, 0, True)) or over_limit(("--scale", SCALE, 1, True, "a smaller reading"))
    refusal = refusal or out_of_range(("--jpeg-quality", JPEG_QUALITY, 1, False)) or over_limit(
        ("--jpeg-quality", JPEG_QUALITY, 100, False))
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    try:
        model = ensure_face_model(FACE_MODEL, "--face-model")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    raw = Path(RAW_DIR)
    videos = sorted(p for p in raw.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS
                    and (not CLIPS or p.stem in CLIPS)) if raw.is_dir() else []
    if not videos:
        print(f"error: {RAW_DIR}: no videos{' named ' + ' '.join(CLIPS) if CLIPS else ''}; give --raw-dir a folder "
              "of them", file=sys.stderr)
        return 1
    results = {}
    for video in videos:
        results[video.stem] = compare(read_four_ways(video, model, SCALE, JPEG_QUALITY))
        r = results[video.stem]["r"]
        say(f"{video.stem}: {results[video.stem]['frames']} frames, jawOpen r mirrored "
            f"{r['mirrored']['jawOpen']:.3f}, scaled {r['scaled']['jawOpen']:.3f}, jpeg {r['jpeg']['jawOpen']:.3f}")

    def cell(values):
        return f"{np.median(values):.3f} ({np.min(values):.3f}–{np.max(values):.3f})"

    lines = [f"# Label noise: {len(videos)} clips of {RAW_DIR}, each read as it is, mirrored, scaled to "
             f"{SCALE:.0%} and re-encoded as JPEG at quality {JPEG_QUALITY}", "",
             "Median over clips (range). Ceiling: sqrt of the r between two readings, the best r any "
             "prediction can reach against one reading if the readings' noises are independent.", "",
             "| shape | " + " | ".join(f"r, {n} | ceiling" for n in READINGS) + " |",
             "|---|" + "---|---|" * len(READINGS)]
    for s in SHAPES:
        cells = []
        for n in READINGS:
            r = [v["r"][n][s] for v in results.values()]
            cells += [cell(r), cell(np.sqrt(np.clip(r, 0, 1)))]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "jawOpen jitter (mean |second difference|), median over clips: " + ", ".join(
        f"{n} {np.median([v['jitter'][n] for v in results.values()]):.4f}" for n in ("original",) + READINGS), "",
              "| clip | frames | " + " | ".join(f"{s} r {n}" for n in READINGS for s in SHAPES) + " | jawOpen jitter |",
              "|---|---|" + "---|" * (len(READINGS) * len(SHAPES) + 1)]
    for name, v in results.items():
        lines.append(f"| {name} | {v['frames']} | " + " | ".join(f"{v['r'][n][s]:.3f}" for n in READINGS for s in SHAPES)
                     + f" | {v['jitter']['original']:.4f} |")
    write_text_atomic(OUTPUT, "\n".join(lines) + "\n")       # (makes the folder)
    say("\n".join(lines[:12]))
    say(f"-> {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
