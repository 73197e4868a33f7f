"""Benchmark stage 1.1 (not a test): its frames per second beside a bare loop of MediaPipe calls
on the same, already decoded frames, and the speed-up of --workers 2 over one worker.

    python 1_data_cleaning/benchmark_extract_blendshapes.py                       # generated clips
    python 1_data_cleaning/benchmark_extract_blendshapes.py --clips ../shared/realdata/vr_face*.mp4

The stage's time includes everything it does per clip (decoding, hashing, JSON); the bare loop
only calls the face model. Aim: ratio >= 0.9; two workers >= 1.7x one on two or more files.
"""
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.cli import configure, run_batch, run_main
from voiceface.face_model import DEFAULT_FACE_MODEL, ensure_face_model
from voiceface.video import video_duration_or_zero

# --- settings (each can be given on the command line: CLIPS as --clips) ----------------------
CLIPS = []                      # videos to time; empty: generate GENERATED_CLIPS clips
GENERATED_CLIPS = 4             # how many clips to generate when none are given
GENERATED_DURATION = 20.0       # seconds each
MODEL = DEFAULT_FACE_MODEL      # face_landmarker.task
MAX_FACES = 2                   # as stage 1.1's default: its separate check looks for this many
REPEATS = 3                     # best of this many runs: two shared cores make single timings noisy
# --- end of settings ---------------------------------------------------------------------------


def bare_mediapipe_fps(clip: Path, model: Path) -> tuple[float, int]:
    """Decode every frame first, then time only the calls of a tracking landmarker (one face, VIDEO
    mode), the one stage 1.1 follows the face with."""
    from voiceface.landmarks import create_landmarker, to_mediapipe_image
    from voiceface.video import iter_video_frames
    frames = [(t, to_mediapipe_image(rgb)) for t, rgb in iter_video_frames(clip)]
    landmarker = create_landmarker(model, 1)
    start = time.perf_counter()
    for index, (_, image) in enumerate(frames):
        landmarker.detect_for_video(image, index * 33)
    elapsed = time.perf_counter() - start
    landmarker.close()
    return len(frames) / elapsed, len(frames)


def stage_fps(clip: Path, model: Path) -> float:
    """The whole of stage 1.1 on one clip, JSON written included."""
    sys.path.insert(0, str(Path(__file__).parent))
    extract = __import__("1_extract_blendshapes").extract_clip
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        message = extract(clip, Path(out), model, True, MAX_FACES, 0.5, 0.5, False)
        elapsed = time.perf_counter() - start
    frames = int(message.split(": ")[1].split(" ")[0])
    return frames / elapsed


def batch_seconds(clips: list[Path], model: Path, workers: int) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    extract = __import__("1_extract_blendshapes").extract_clip
    with tempfile.TemporaryDirectory() as out:
        task = partial(extract, output_dir=Path(out), model=model, force=True, max_faces=MAX_FACES,
                       min_detection=0.5, min_tracking=0.5, progress=False)
        start = time.perf_counter()
        run_batch(task, clips, [], workers, f"{workers} worker(s)", cost=video_duration_or_zero)
        return time.perf_counter() - start


def main(argv=None) -> int:
    configure(globals(), argv)
    from voiceface.cli import out_of_range
    from voiceface.errors import InputError
    if refusal := out_of_range(("--generated-clips", GENERATED_CLIPS, 1, False),
                               ("--generated-duration", GENERATED_DURATION, 1, False, "seconds"),
                               ("--max-faces", MAX_FACES, 1, False), ("--repeats", REPEATS, 1, False)):
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    scratch = tempfile.TemporaryDirectory()
    clips = [Path(c) for c in CLIPS]
    bare = ours = 0.0
    try:
        model = ensure_face_model(MODEL)
        if not clips:
            from voiceface.synthetic import write_talking_face_clip
            clips = [write_talking_face_clip(Path(scratch.name) / f"bench_{k}.mp4", duration=GENERATED_DURATION,
                                             seed=k).path for k in range(GENERATED_CLIPS)]
        for _ in range(REPEATS):       # interleaved, so a slow spell of the machine hits both
            fps, frames = bare_mediapipe_fps(clips[0], model)
            bare = max(bare, fps)
            ours = max(ours, stage_fps(clips[0], model))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"clip {clips[0].name}: {frames} frames")
    print(f"  bare MediaPipe loop (decoded frames): {bare:7.1f} frames/s")
    print(f"  stage 1.1 (decode + model + JSON):     {ours:7.1f} frames/s")
    print(f"  ratio stage / bare:                    {ours / bare:7.2f}   (aim >= 0.9)")
    if len(clips) >= 2:
        one = batch_seconds(clips, model, 1)
        two = batch_seconds(clips, model, 2)
        print(f"{len(clips)} clips: 1 worker {one:.1f} s, 2 workers {two:.1f} s, speed-up {one / two:.2f}x "
              "(aim >= 1.7x)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
