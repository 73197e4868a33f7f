"""Before stage 1.1, for one long video of one person: cut it into parts that can be held out in turn.

The speaker-dependent benchmark (3_inference/evaluate.py, stage 7 of run_pipeline.py) measures a
model on a recording of its speaker that it never trained on: it leaves out each of the speaker's
recordings in turn and needs at least four. One long video of yourself is one recording, and stage
1.3 holds out whole speakers, so it would get no measure at all. This script cuts each video into
PARTS files of about equal length at key frames, copying the compressed picture and sound (no
decoding, no re-encoding, no loss: 0.05 s for the minute of the 512² Obama clip), and writes the speaker manifest
that names every part as that video's speaker:

    python 1_data_cleaning/split_recording.py me.mp4 --output-dir data/raw_parts --parts 5
    python run_pipeline.py --raw-dir data/raw_parts --speaker-manifest data/raw_parts/speakers.csv --one-speaker

Outputs: <output-dir>/<name>_partK.<ext> (K = 1 .. PARTS; the source's container, or Matroska, .mkv, for a
container FFmpeg reads here but is not written again: a named .wmv, say) and <output-dir>/
speakers.csv (columns clip, speaker; rows for other clips already in it are kept). Each part's clock
starts at its first key frame, its sound's as its picture's, so the sound keeps the offset it had in
the source; a phone's display rotation goes with the picture. Adjacent parts share no audio, so the
benchmark treats them as separate recordings: a model is scored on minutes it never heard, though
recorded in the same session (the same room, microphone and day), which is why the figure is the
speaker-dependent one and not the speaker-independent one. Parts are written to temporary files and
renamed when complete; existing parts are kept unless --force; a bad input gets one line.
"""
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import (VIDEO_EXTENSIONS, check_unique_stems, configure, expand_inputs, out_of_range, run_batch,
                           run_main)

# --- settings (each can be given on the command line: OUTPUT_DIR as --output-dir) -------------
INPUTS = []                                    # videos, folders or globs: each is one recording of one speaker
OUTPUT_DIR = REPO_ROOT / "data/raw_parts"      # the parts and speakers.csv go here
PARTS = 5                                      # parts per video (the speaker-dependent benchmark needs at least 4)
MIN_PART_SECONDS = 10.0                        # shortest part allowed: the offset between a shorter clip's sound and
#                                                picture is mostly unsure (the real clips: 4 of 22 under 10 s confident)
SPEAKER = ""                                   # the speaker named in speakers.csv; default: each video's file name
MANIFEST = ""                                  # the speaker manifest written; default: <output-dir>/speakers.csv
FORCE = False                                  # cut again over existing parts
# --- end of settings ---------------------------------------------------------------------------


def part_paths(path: Path, output_dir: Path, parts: int) -> list[Path]:
    from voiceface.video import part_suffix
    width = len(str(parts))
    return [output_dir / f"{path.stem}_part{k:0{width}d}{part_suffix(path)}" for k in range(1, parts + 1)]


def split_video(path: Path, output_dir: Path, parts: int, min_part_s: float, force: bool) -> str:
    from voiceface.errors import InputError
    from voiceface.formats import check_name_fits
    from voiceface.video import cut_at_keyframes, keyframe_times, probe_duration
    outputs = part_paths(path, output_dir, parts)
    for out in outputs:
        check_name_fits(out)
    if all(out.exists() for out in outputs) and not force:
        return f"skipped {path.name}: its {parts} parts exist in {output_dir}"
    duration = probe_duration(path)
    keyframes = keyframe_times(path)
    if not keyframes or duration <= 0:
        raise InputError(f"{path}: no key frame or no length found; re-export it")
    span = duration - keyframes[0]
    if span / parts < min_part_s:
        most = int(span // min_part_s)
        advice = (f"give --parts {most} or fewer (the speaker-dependent benchmark needs 4 recordings)" if most >= 2
                  else "it is one clip as it is")
        raise InputError(f"{path}: {span:.1f} s is too short for {parts} parts of at least {min_part_s:g} s; {advice}")
    starts = []
    for k in range(parts):
        target = keyframes[0] + span * k / parts
        nearest = min(keyframes, key=lambda t: abs(t - target))
        if starts and nearest <= starts[-1]:
            raise InputError(f"{path}: only {len(keyframes)} key frames, too few to cut into {parts} parts; give fewer "
                             "--parts, or re-encode it with a key frame every second or two")
        starts.append(nearest)
    lengths = [b - a for a, b in zip(starts, starts[1:] + [duration])]
    if min(lengths) < min_part_s:
        raise InputError(f"{path}: its key frames are too far apart for {parts} parts of at least {min_part_s:g} s "
                         f"(the shortest would be {min(lengths):.1f} s); give fewer --parts, or re-encode it with a "
                         "key frame every second or two")
    cut_at_keyframes(path, starts, outputs)
    return (f"{path.name}: {parts} parts of {min(lengths):.1f}-{max(lengths):.1f} s -> "
            f"{outputs[0].name} .. {outputs[-1].name}")


def main(argv=None) -> int:
    configure(globals(), argv, positional="INPUTS")
    from voiceface.dataset import speaker_of, update_speaker_manifest
    from voiceface.errors import InputError
    from voiceface.formats import ensure_writable_folder
    if PARTS < 2:
        print("error: --parts must be 2 or more", file=sys.stderr)
        return 1
    if problem := out_of_range(("--min-part-seconds", MIN_PART_SECONDS, 0, False)):
        print(f"error: {problem}", file=sys.stderr)
        return 1
    if SPEAKER and speaker_of(SPEAKER) != SPEAKER:
        print(f"error: --speaker {SPEAKER!r} does not name one person (no commas; not only words such as 'male' "
              "or 'woman', which two different people share); give a name", file=sys.stderr)
        return 1
    if not INPUTS:
        print("error: give the video(s) to cut: split_recording.py VIDEO [VIDEO ...] --output-dir DIR", file=sys.stderr)
        return 1
    output_dir = Path(OUTPUT_DIR)
    try:
        ensure_writable_folder(output_dir)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    files, errors = expand_inputs(INPUTS, VIDEO_EXTENSIONS)
    files, duplicate_errors = check_unique_stems(files)
    unnamed = [path for path in files if not SPEAKER and speaker_of(path.stem) != path.stem]
    for path in unnamed:
        errors.append(f"{path}: its name {path.stem!r} does not name a speaker for speakers.csv; give --speaker NAME")
    files = [path for path in files if path not in unnamed]
    task = partial(split_video, output_dir=output_dir, parts=PARTS, min_part_s=MIN_PART_SECONDS, force=FORCE)
    code = run_batch(task, files, errors + duplicate_errors, 1, "cutting recordings into parts")
    from voiceface.formats import name_fits
    rows = {}
    for path in files:                    # every video whose parts are all there, cut now or before
        parts = part_paths(path, output_dir, PARTS)
        if all(name_fits(part) and part.exists() for part in parts):
            rows.update({part.stem: SPEAKER or path.stem for part in parts})
    if rows:
        manifest = Path(MANIFEST) if MANIFEST else output_dir / "speakers.csv"
        try:
            update_speaker_manifest(manifest, rows)
        except InputError as error:     # a manifest of the user's it cannot read: left as it is
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"speaker manifest: {manifest} ({len(rows)} parts)")
    return code


if __name__ == "__main__":
    sys.exit(run_main(main))
