"""Stage 1.2: the audio front-end over videos or audio files — 16 kHz mono, 80-bin log-mel at
100 Hz (causal 25 ms windows, 10 ms hop), RMS level and voice activity, and each frame's 16 line
spectral frequencies (the formants, for models trained with --formants).

Inputs:  videos or audio files (wav, flac, mp3, ogg/opus, m4a/aac, mp4, mov, mkv, webm), folders
         (searched recursively) or quoted globs; default data/raw/.
Outputs: <output-dir>/<clip>/audio_features.npz — mel (T, 80) float32 dB, times (T,) seconds from
         the audio's first sample, rms_db (T,), vad (T,), lsf (T, 16) radians, and `meta` (JSON:
         format version, every front-end and formant constant, the audio's start on the container
         clock and its offset from the first video frame, source SHA-256, library versions) — and
         audio_features.json, a summary for people (duration, frames, speech fraction, dB range,
         offset).

    python 1_data_cleaning/2_extract_audio_features.py data/raw/ --output-dir data/processed --workers 2

The front-end itself (voiceface/audio.py) is the one inference uses. Existing outputs are skipped
unless --force (or written before the line spectral frequencies were stored); files are written
atomically; a bad input gets one line and the rest go on.
"""
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import (AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, check_unique_stems, configure, expand_inputs,
                           out_of_range, run_batch, run_main)

# --- settings (each can be given on the command line: OUTPUT_DIR as --output-dir) -------------
INPUTS = [REPO_ROOT / "data/raw"]           # audio or video files, folders or globs
OUTPUT_DIR = REPO_ROOT / "data/processed"   # one folder per clip, named after the file
WORKERS = 1                                 # processes, each working on one file at a time
FORCE = False                               # redo files whose features already exist
# --- end of settings ---------------------------------------------------------------------------


def extract_clip(path: Path, output_dir: Path, force: bool) -> str:
    import numpy as np
    from voiceface.audio import (AUDIO_FEATURES_FILENAME, DB_FLOOR, extract_file_features, not_numbers_note,
                                 read_audio_features, write_audio_features)
    from voiceface.errors import FormatError, InputError
    from voiceface.constants import FRAME_RATE, SAMPLE_RATE
    from voiceface.formats import library_versions, now_iso, sha256_file, write_json_atomic
    target = output_dir / path.stem / AUDIO_FEATURES_FILENAME
    if target.exists() and not force:
        try:                 # redone when its line spectral frequencies are missing or of other constants,
            complete = read_audio_features(target).lsf is not None
        except FormatError:  # or when this code's front-end differs (features are cheap to make again)
            complete = False
        except InputError:
            complete = True  # unreadable: its readers say so, and --force redoes it
        if complete:
            return f"skipped {path.name}: {target} exists"
    source, features = extract_file_features(path, formants=True)
    duration = source.samples / SAMPLE_RATE
    meta = {
        "created_by": "1_data_cleaning/2_extract_audio_features.py", "created_at": now_iso(),
        "source": {"path": str(path), "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
                   "codec": source.codec, "sample_rate": source.source_rate, "channels": source.source_channels,
                   "samples_not_numbers": source.not_numbers},       # NaN or infinite: taken as silence
        "duration_s": round(duration, 4), "frame_count": len(features),
        "audio_start_s": round(source.start_s, 6),
        "video_start_s": None if source.video_start_s is None else round(source.video_start_s, 6),
        "audio_offset_s": round(source.offset_s, 6),
        "times": "seconds from the audio's first sample to the end of each frame's window; add "
                 "audio_offset_s for the time since the first video frame",
        "libraries": library_versions(),
    }
    meta = write_audio_features(target, meta, features)
    speech = float(features.vad.mean())
    summary = dict(meta, speech_fraction=round(speech, 4),
                   mel_db={"min": float(features.mel.min()), "max": float(features.mel.max()),
                           "p1": round(float(np.percentile(features.mel, 1)), 2),
                           "p99": round(float(np.percentile(features.mel, 99)), 2),
                           "fraction_at_floor": round(float((features.mel <= DB_FLOOR).mean()), 4),
                           "fraction_below_80_db": round(float((features.mel <= -80).mean()), 4),
                           "fraction_at_ceiling": round(float((features.mel >= 10).mean()), 4)},
                   rms_dbfs={"speech_median": round(float(np.median(features.rms_db[features.vad == 1])), 2)
                             if speech > 0 else None,
                             "max": round(float(features.rms_db.max()), 2)},
                   frame_rate=FRAME_RATE)
    write_json_atomic(target.with_suffix(".json"), summary)
    note = "" if speech > 0 else " (no speech found: silence throughout)"
    if source.not_numbers:
        note += f" ({not_numbers_note(source.not_numbers)})"
    return f"{path.name}: {duration:.2f} s, {len(features)} frames, {100 * speech:.0f}% speech{note} -> {target}"


def main(argv=None) -> int:
    configure(globals(), argv, positional="INPUTS")
    if problem := out_of_range(("--workers", WORKERS, 1, False)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from voiceface.errors import InputError
    from voiceface.formats import ensure_writable_folder
    try:
        ensure_writable_folder(OUTPUT_DIR)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    files, errors = expand_inputs(INPUTS, VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)
    files, duplicate_errors = check_unique_stems(files)
    task = partial(extract_clip, output_dir=Path(OUTPUT_DIR), force=FORCE)
    return run_batch(task, files, errors + duplicate_errors, WORKERS, "stage 1.2 audio features",
                     cost=lambda p: p.stat().st_size)


if __name__ == "__main__":
    sys.exit(run_main(main))
