"""Stage 1.1: 52 blendshapes and head pose per video frame, with MediaPipe Face Landmarker v2.

Inputs:  video files, folders (searched recursively) or quoted globs; default data/raw/.
Outputs: <output-dir>/<clip>/blendshapes_and_pose.json, one entry per video frame, stamped with
         the frame's presentation time from the container (so variable frame rates stay right).

    python 1_data_cleaning/1_extract_blendshapes.py data/raw/ --output-dir data/processed --workers 2

Existing outputs are skipped unless --force. Each output is written to a temporary file and
renamed, so an interrupted run never leaves a partial JSON. Bad inputs get one line each, the
rest are processed, and the exit code is 1 if any failed.
"""
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import (VIDEO_EXTENSIONS, check_unique_stems, configure, expand_inputs, out_of_range, over_limit,
                           run_batch, run_main)
from voiceface.face_model import DEFAULT_FACE_MODEL, ensure_face_model
from voiceface.formats import BLENDSHAPES_FILENAME, write_blendshapes_json
from voiceface.video import video_duration_or_zero

# --- settings (each can be given on the command line: OUTPUT_DIR as --output-dir) -------------
INPUTS = [REPO_ROOT / "data/raw"]           # video files, folders or globs
OUTPUT_DIR = REPO_ROOT / "data/processed"   # one folder per clip, named after the video file
MODEL = DEFAULT_FACE_MODEL                  # face_landmarker.task; downloaded here when missing
WORKERS = 1                                 # processes, each working on one video at a time
FORCE = False                               # redo clips whose JSON already exists
MAX_FACES = 2                               # faces the separate check looks for (1: no check)
FACE_CHECK_SECONDS = 1.0                    # how often that check runs; the followed face is tracked in between
DETECT_EVERY_FRAME = False                  # the first version's mode: look for MAX_FACES in every frame (more jitter)
MIN_DETECTION_CONFIDENCE = 0.5              # MediaPipe's default: lower finds more, wrongly too
MIN_TRACKING_CONFIDENCE = 0.5               # below this, the face is searched for again
# --- end of settings ---------------------------------------------------------------------------


def extract_clip(video: Path, output_dir: Path, model: Path, force: bool, max_faces: int,
                 min_detection: float, min_tracking: float, progress: bool,
                 face_check_s: float = 1.0, detect_every_frame: bool = False) -> str:
    from voiceface.landmarks import extract_blendshapes_and_pose
    target = output_dir / video.stem / BLENDSHAPES_FILENAME
    note = ""
    if target.exists() and not force:
        if not made_on_its_side(video, target):
            return f"skipped {video.name}: {target} exists"
        note = " (redone: the earlier file read its frames on their side, before this stage turned them upright)"
    header, times_ms, blendshapes, pose = extract_blendshapes_and_pose(
        video, model, max_faces, min_detection, min_tracking, progress=progress, face_check_s=face_check_s,
        detect_every_frame=detect_every_frame)
    write_blendshapes_json(target, header, times_ms, blendshapes, pose)
    missing = header["video"]["frame_count"] - int((~(blendshapes != blendshapes).any(axis=1)).sum())
    return f"{video.name}: {header['video']['frame_count']} frames ({missing} without a face) -> {target}{note}"


def made_on_its_side(video: Path, target: Path) -> bool:
    """Whether `target` was made from a video a player turns (a phone's display rotation) before
    stage 1.1 turned such frames upright: its header names no rotation, or another one."""
    import json
    from voiceface.video import probe_video
    try:
        rotation = probe_video(video).rotation_deg
    except Exception:
        return False                          # unreadable now: the skip stands, as for any other file
    if not rotation:
        return False
    try:
        header = json.loads(target.read_text()).get("header", {})
    except (OSError, ValueError):
        return False
    return header.get("video", {}).get("rotation_deg", 0) != rotation


def main(argv=None) -> int:
    configure(globals(), argv, positional="INPUTS")
    if problem := (out_of_range(("--workers", WORKERS, 1, False), ("--max-faces", MAX_FACES, 1, False, "1: no check"),
                                ("--face-check-seconds", FACE_CHECK_SECONDS, 0, True),
                                ("--min-detection-confidence", MIN_DETECTION_CONFIDENCE, 0, False),
                                ("--min-tracking-confidence", MIN_TRACKING_CONFIDENCE, 0, False))
                   or over_limit(("--min-detection-confidence", MIN_DETECTION_CONFIDENCE, 1, False),
                                 ("--min-tracking-confidence", MIN_TRACKING_CONFIDENCE, 1, False))):
        print(f"error: {problem}", file=sys.stderr)          # (a confidence over 1 failed every video, one by one)
        return 2
    from voiceface.errors import InputError
    from voiceface.formats import ensure_writable_folder
    try:
        ensure_writable_folder(OUTPUT_DIR)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        model = ensure_face_model(MODEL)
    except Exception as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    files, errors = expand_inputs(INPUTS, VIDEO_EXTENSIONS)
    files, duplicate_errors = check_unique_stems(files)
    task = partial(extract_clip, output_dir=Path(OUTPUT_DIR), model=model, force=FORCE,
                   max_faces=MAX_FACES, min_detection=MIN_DETECTION_CONFIDENCE,
                   min_tracking=MIN_TRACKING_CONFIDENCE, progress=WORKERS <= 1, face_check_s=FACE_CHECK_SECONDS,
                   detect_every_frame=DETECT_EVERY_FRAME)
    return run_batch(task, files, errors + duplicate_errors, WORKERS, "stage 1.1 blendshapes",
                     cost=video_duration_or_zero)


if __name__ == "__main__":
    sys.exit(run_main(main))
