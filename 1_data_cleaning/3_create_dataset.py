"""Stage 1.3: the synchronised dataset — stage 1.1's 30 fps targets on stage 1.2's 100 Hz audio
timeline, normalised, windowed and split by speaker, with a sync check of every clip.

Inputs:  <processed-dir>/<clip>/blendshapes_and_pose.json and audio_features.npz (stages 1.1, 1.2).
Outputs: <output-dir>/dataset_manifest.json and, for each of train/ and val/, arrays that can be
         memory-mapped (np.load(..., mmap_mode="r")): mel.npy and mel_level.npy (T, 80) float32,
         the model's two input modes, and level_db.npy (T, 80) float32, the running level in dB
         each mel_level frame is measured against (training splices silence and noise against it);
         targets.npy (T, 59) float32, normalised; mask.npy, vad.npy
         (T,) uint8; rms_db.npy (T,) float32; windows.npy (M, 3) int64 rows (start, length,
         loss_start) into those arrays; when stage 1.2 stored them, formants.npy (T, 16), the
         formant inputs of train.py --formants, and lsf.npy (T, 16) radians, the frequencies they
         come from. Clips lie end to end; the manifest gives each one's span. A split with no clip
         (no held-out clip) has T = 0 and the same columns.

    python 1_data_cleaning/3_create_dataset.py --processed-dir data/processed --output-dir data/dataset \
        --speaker-manifest ../shared/realdata/manifest.csv

A clip missing an input, made with other constants, whose audio and video lengths differ by more
than a second, whose audio is speech for under 5 % of it (a muted track), or with no usable frame,
is left out with one line and named in the manifest; the exit code is then 1.

Sync (voiceface/sync.py): each clip's audio-video lag is estimated from its mouth against its
audio, with a confidence against what unrelated audio reaches. Confident clips are shifted so
that their lag equals the lead of a recording made in sync (TYPICAL_LEAD_MS=natural: 0 ms, what
this estimator measures on corpora synchronised at their source; "median" takes the corpus's own
median over speakers instead, -94 ms on the web clips, which is mostly their uploads' offset);
unsure clips are kept uncorrected (UNSURE_SYNC=keep) or left out (drop). The manifest records per
clip the measured lag, confidence, applied shift and the lag measured after correction.
SYNC_CORRECTION=False turns this off; CLIP_LAG_CORRECTIONS sets a clip's shift by hand. SECOND_PASS
(the output of sync_second_pass.py, from trained models that never heard each clip) places unsure
clips whose lag a model's prediction can tell.

Shared recordings (voiceface/recordings.py): clips whose audio is the same recording (corpora
reuse footage: two of the 33 real pairs are) are found from their log-mels, named in the manifest
(`shared_recordings`) and kept on one side of the split; a clip named in VAL_CLIPS takes its
partners with it.
"""
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, out_of_range, over_limit, run_main

# --- settings (each can be given on the command line: OUTPUT_DIR as --output-dir) -------------
PROCESSED_DIR = REPO_ROOT / "data/processed"   # stage 1.1 and 1.2 outputs, one folder per clip
OUTPUT_DIR = REPO_ROOT / "data/dataset"        # the dataset folder (replaced whole with --force)
CLIPS = []                      # only these clip folders of the processed dir; empty: all of them
WINDOW_SECONDS = 8.0            # training window length; the design note's 0.24 s is compared in ARCHITECTURE.md
STRIDE_SECONDS = 4.0            # step between windows
WARMUP_SECONDS = 2.0            # leading part of a mid-clip window left out of the loss (no past seen yet)
VAL_FRACTION = 0.2              # share of the duration held out, by whole speakers
VAL_CLIPS = []                  # clips (or speakers) to hold out instead of drawing them
SPEAKER_MANIFEST = ""           # CSV with short_name and speaker columns; clips of one speaker stay together
SEED = 0                        # for the draw of validation speakers
SYNC_CORRECTION = True          # shift each confidently measured clip onto the typical lead (voiceface/sync.py)
UNSURE_SYNC = "keep"            # clips whose lag cannot be trusted: keep (uncorrected) or drop
TYPICAL_LEAD_MS = "natural"     # the lag every clip is moved to: natural (0 ms, sync.NATURAL_LEAD_S), median (the median
#                                 over speakers of confident clips) or a number of ms
CLIP_LAG_CORRECTIONS = []       # by hand, per clip, as name=ms: take its targets this much later (overrides the estimate)
SECOND_PASS = ""                # a JSON of sync_second_pass.py: clips unsure here but placed by a model's prediction are
#                                 moved by its calibrated lag (confident clips keep this stage's estimate)
TARGET_SMOOTHING_MS = 0.0       # zero-phase Gaussian smoothing (sigma) of the blendshape targets; 0: none
CENTRE_TRAINING_CLIPS = True    # move each training clip's blendshapes so that their centres coincide (validation clips stay as extracted)
CENTRE_ON = "rest"              # a clip's centre: rest (each shape's median in its pauses), mean, or low (each shape's 10th percentile)
SCALE_TRAINING_CLIPS = False    # also scale each training clip's blendshapes about its centre so that each shape's spread
#                                 is the training clips' median spread (the factor held to 1/2-2; validation clips stay as extracted)
MAX_DURATION_MISMATCH_S = 1.0   # audio and video longer or shorter than each other by more: left out
MIN_SPEECH_FRACTION = 0.05      # audio that is voice for less of its length (a muted or silent track) is left out: its
#                                 moving face would teach a mouth that talks in silence (the real clips: 57 % or more)
FORCE = False                   # rebuild an existing dataset
# --- end of settings ---------------------------------------------------------------------------


def load_clip(folder: Path):
    """One clip's stage 1.1 track and stage 1.2 features, synchronised without any lag correction,
    or raise InputError saying why it is left out. Returns (clip, track, audio)."""
    from voiceface.audio import AUDIO_FEATURES_FILENAME, read_audio_features
    from voiceface.dataset import read_processed_clip, synchronize_features
    from voiceface.errors import InputError
    from voiceface.formats import BLENDSHAPES_FILENAME
    if not (folder / BLENDSHAPES_FILENAME).exists() and (folder / AUDIO_FEATURES_FILENAME).exists():
        source = read_audio_features(folder / AUDIO_FEATURES_FILENAME).meta
        if source.get("video_start_s", 0.0) is None:     # stage 1.2 read an audio file: stage 1.1 never will
            raise InputError(f"{folder.name}: made from an audio file ({Path(source['source']['path']).name}), with no "
                             "face to learn from; training needs the videos (give audio files to inference.py)")
    for path, stage in ((folder / BLENDSHAPES_FILENAME, "1.1"), (folder / AUDIO_FEATURES_FILENAME, "1.2")):
        if not path.exists():
            raise InputError(f"{folder.name}: {path.name} is missing; run stage {stage} on this clip")
    track, audio = read_processed_clip(folder)
    video_s, audio_s = track.header["video"]["duration_s"], audio.meta["duration_s"]
    if abs(video_s - audio_s) > MAX_DURATION_MISMATCH_S:
        raise InputError(f"{folder.name}: audio lasts {audio_s:.2f} s but video {video_s:.2f} s; check that "
                         "both come from the same recording")
    speech = float(audio.vad.mean()) if len(audio.vad) else 0.0
    if speech < MIN_SPEECH_FRACTION:
        raise InputError(f"{folder.name}: its audio is speech for {speech:.0%} of its {audio_s:.1f} s (a muted or "
                         f"silent track?); the model learns the face from its sound: give the video with its speech")
    clip = synchronize_features(folder.name, track, audio)
    if not clip.mask.any():
        raise InputError(f"{folder.name}: no audio frame has a face to learn from (all masked); check the video")
    return clip, track, audio


def parse_clip_shifts(items: list) -> dict[str, float]:
    """name=ms items -> {name: seconds}."""
    shifts = {}
    for item in items:
        name, _, value = str(item).partition("=")
        shifts[name] = float(value) / 1000
    return shifts


CENTRES = ("low", "mean", "rest")


def clip_centre_shapes(clip, on: str):
    """(52,) a clip's centre over its frames with a face: each blendshape's 10th percentile (low: the
    face closed, which does not depend on how much of the clip is speech), its mean, or its face at
    rest (voiceface.dataset.rest_face, as training splices into silence; a clip with too few frames
    without voice takes low)."""
    import numpy as np
    from voiceface.constants import N_BLENDSHAPES
    from voiceface.dataset import rest_face
    if on == "rest":
        face = rest_face(np.asarray(clip.targets, np.float64), clip.mask, clip.vad)
        if face is not None:
            return face
        on = "low"
    shapes = np.asarray(clip.targets, np.float64)[clip.mask.astype(bool)][:, :N_BLENDSHAPES]
    return np.percentile(shapes, 10, axis=0) if on == "low" else shapes.mean(axis=0)


MAX_SCALE = 2.0                 # --scale-training-clips: a clip's factor stays within [1/2, 2] (a shape that
#                                 hardly moves in a clip would otherwise have its noise blown up)


def clip_spreads(clip):
    """(52,) each blendshape's standard deviation over a clip's frames with a face."""
    import numpy as np
    from voiceface.constants import N_BLENDSHAPES
    return np.asarray(clip.targets, np.float64)[clip.mask.astype(bool)][:, :N_BLENDSHAPES].std(axis=0)


# settings that say where things are or how to run, not what the dataset holds
NOT_CONTENT = {"processed_dir", "output_dir", "force"}


def stale_because(manifest_path: Path, folders: list[Path], settings: dict) -> str:
    """Why an existing dataset no longer matches what it was made from ("" when it still does): a
    setting that shapes its content differs (given now, or a default changed by an update), the
    audio front-end's constants changed, or a clip's audio features or labels were rewritten (stage 1.2
    or 1.1 run again after an update). A stale dataset would only be refused later, by train.py, or
    not at all."""
    import json
    from voiceface.audio import AUDIO_FEATURES_FILENAME, front_end_differences
    from voiceface.cli import settings_for_header
    from voiceface.formats import BLENDSHAPES_FILENAME, sha256_file
    from voiceface.recordings import search_config
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return "its manifest cannot be read"
    made, now = manifest.get("settings", {}), settings_for_header(settings)
    changed = sorted(k for k in now if k not in NOT_CONTENT and made.get(k, "(not recorded)") != now[k])
    if changed:
        return f"made with other settings ({', '.join(changed)})"
    made_from = (manifest.get("sync") or {}).get("second_pass") or {}
    if SECOND_PASS and (not Path(SECOND_PASS).exists() or made_from.get("sha256") != sha256_file(SECOND_PASS)[:16]):
        return f"{SECOND_PASS} changed"
    different = front_end_differences(manifest.get("front_end"))
    if different:
        return f"made with other audio front-end constants ({', '.join(different)})"
    # (datasets made before 2026-12-07 did not record the search for shared recordings: not checked)
    if manifest.get("shared_recordings_search", search_config()) != search_config():
        return "made with other constants of the search for shared recordings (voiceface/recordings.py)"
    by_name = {f.name: f for f in folders}
    # (datasets made before 2026-12-05 recorded only the features: their labels are not checked)
    for key, filename, what in (("inputs_sha256", AUDIO_FEATURES_FILENAME, "audio features"),
                                ("labels_sha256", BLENDSHAPES_FILENAME, "blendshapes")):
        for name, digest in manifest.get(key, {}).items():
            made_from = by_name[name] / filename if name in by_name else None
            if made_from is None or not made_from.exists() or sha256_file(made_from)[:16] != digest:
                return f"the {what} of {name} changed"
    return ""


def main(argv=None) -> int:
    settings = configure(globals(), argv)
    import shutil
    import tempfile

    import numpy as np
    from voiceface.progress import progress_bar, say
    from voiceface.audio import AUDIO_FEATURES_FILENAME, front_end_config
    from voiceface.cli import settings_for_header
    from voiceface.constants import BLENDSHAPE_NAMES, FRAME_RATE, N_BLENDSHAPES, N_MELS, N_TARGETS, POSE_NAMES
    from voiceface.lpc import LPC_ORDER, FormantInputs, formant_config
    from voiceface.dataset import (DATASET_FORMAT, DATASET_FORMAT_VERSION, FORMANT_FILES, INPUT_FILES, INPUT_MODES,
                                   MANIFEST_FILENAME,
                                   ClipPose, create_sequences, model_inputs, normalisation_config,
                                   clips_not_in_manifest, level_inputs_and_level, normalize_targets, smooth_targets,
                                   speakers_from_manifest, split_clips, synchronize_features)
    from voiceface.recordings import (MelFiles, describe, merge_recordings, recording_groups, search_config, to_dict,
                                      with_partners)
    from voiceface.sync import (BY_ESTIMATE, BY_HAND, BY_SECOND_PASS, CORRECTION_OFF, UNSURE_KEPT, correction_s,
                                estimate_clip_lag, lead_from_setting, read_second_pass, sync_config)
    from voiceface.errors import InputError
    from voiceface.formats import (BLENDSHAPES_FILENAME, NpyRows, ensure_writable_folder, library_versions, now_iso,
                                   read_npy_rows, sha256_file, write_json_atomic)
    from voiceface.metrics import Moments

    output = Path(OUTPUT_DIR)
    # settings past what they mean, refused before any work (--stride-seconds 0 ended in a traceback,
    # --val-fraction 1.5 or -0.2 made a split anyway)
    if problem := (out_of_range(("--window-seconds", WINDOW_SECONDS, 0, True), ("--stride-seconds", STRIDE_SECONDS, 0, True),
                                ("--warmup-seconds", WARMUP_SECONDS, 0, False), ("--val-fraction", VAL_FRACTION, 0, False),
                                ("--target-smoothing-ms", TARGET_SMOOTHING_MS, 0, False, "0: off"),
                                ("--max-duration-mismatch-s", MAX_DURATION_MISMATCH_S, 0, False),
                                ("--min-speech-fraction", MIN_SPEECH_FRACTION, 0, False))
                   or over_limit(("--warmup-seconds", WARMUP_SECONDS, WINDOW_SECONDS, True, "part of a window"),
                                 ("--val-fraction", VAL_FRACTION, 1, True, "a share of the duration"),
                                 ("--min-speech-fraction", MIN_SPEECH_FRACTION, 1, False, "a share of the clip"))):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        ensure_writable_folder(output.parent)
        lead_from_setting(TYPICAL_LEAD_MS, {})          # a value that is not a lead is refused before any work
        second, second_header = read_second_pass(SECOND_PASS) if SECOND_PASS else ({}, None)
    except (InputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    folders = sorted(p for p in Path(PROCESSED_DIR).iterdir() if p.is_dir()) if Path(PROCESSED_DIR).is_dir() else []
    if (output / MANIFEST_FILENAME).exists() and not FORCE:
        stale = stale_because(output / MANIFEST_FILENAME, folders, settings)
        if not stale:
            print(f"skipped: {output / MANIFEST_FILENAME} exists (--force rebuilds it)")
            return 0
        print(f"rebuilding {output}: {stale}")
    if CLIPS:
        unknown = sorted(set(map(str, CLIPS)) - {f.name for f in folders})
        if unknown:
            print(f"error: --clips names {', '.join(unknown)}, not clip folders of {PROCESSED_DIR}; check the names",
                  file=sys.stderr)
            return 1
        folders = [f for f in folders if f.name in set(map(str, CLIPS))]
    if not folders:
        print(f"error: {PROCESSED_DIR}: no clip folders; run stages 1.1 and 1.2 first", file=sys.stderr)
        return 1
    try:
        speakers = speakers_from_manifest(SPEAKER_MANIFEST)
        unnamed = clips_not_in_manifest(SPEAKER_MANIFEST, [f.name for f in folders])
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # (said for a whole folder: with --clips, as the benchmarks make each fold's dataset, it was said once before)
    if not CLIPS and unnamed:
        say(f"note: {SPEAKER_MANIFEST} has no row for {len(unnamed)} of the {len(folders)} clips "
            f"({', '.join(unnamed[:5])}{', …' if len(unnamed) > 5 else ''}): each is taken as a speaker of its own; "
            "add a row (clip,speaker) for each to say who speaks", file=sys.stderr)
    unknown = sorted(set(map(str, VAL_CLIPS)) - {f.name for f in folders} - set(speakers.values()))
    if unknown:          # a misspelt name would otherwise hold out nothing, silently
        print(f"error: --val-clips names {', '.join(unknown)}, neither a clip folder of {PROCESSED_DIR}"
              + (" nor a speaker of --speaker-manifest" if SPEAKER_MANIFEST else "") + "; check the names",
              file=sys.stderr)
        return 1
    if UNSURE_SYNC not in ("keep", "drop"):
        print(f"error: --unsure-sync {UNSURE_SYNC!r}: say keep or drop", file=sys.stderr)
        return 2
    manual = parse_clip_shifts(CLIP_LAG_CORRECTIONS)
    if (CENTRE_TRAINING_CLIPS or SCALE_TRAINING_CLIPS) and CENTRE_ON not in CENTRES:
        print(f"error: --centre-on {CENTRE_ON!r}: say {', '.join(CENTRES)}", file=sys.stderr)
        return 1
    # The clips are read in three passes, each holding one clip's arrays at a time, so that a corpus
    # larger than memory can be made (ARCHITECTURE.md, "Stage 1.3 in bounded memory"): 1. each clip's
    # lag and length; 2. each clip read again, moved onto the typical lead and written to the split's
    # files; 3. the training clips' targets centred in place, once every training clip's centre is known.
    seen, excluded, estimates = {}, [], {}
    for folder in progress_bar(folders, desc="stage 1.3 clips", unit="clip", enabled=len(folders) >= 2):
        try:
            clip, track, _ = load_clip(folder)
        except InputError as error:
            say(f"error: {error}", file=sys.stderr)
            excluded.append({"clip": folder.name, "reason": str(error)})
            continue
        estimates[folder.name] = estimate_clip_lag(clip.targets, clip.mel, clip.mask)
        seen[folder.name] = {"folder": folder, "frames": len(clip.mel), "video_fps": float(track.header["video"]["fps"]),
                             "lsf": clip.lsf is not None}
        del clip, track
    if not seen:
        print("error: no clip could be used; see the lines above", file=sys.stderr)
        return 1
    lead_s, lead_from = lead_from_setting(TYPICAL_LEAD_MS, estimates, speakers)
    shifts, reports, dropped = {}, {}, []
    for name in seen:
        estimate = estimates[name]
        if name in manual:
            shift, how = manual[name], BY_HAND
        elif not SYNC_CORRECTION:
            shift, how = 0.0, CORRECTION_OFF
        elif estimate.confident:
            shift, how = correction_s(estimate, lead_s), BY_ESTIMATE
        elif second.get(name, {}).get("corrects"):
            shift, how = second[name]["lag_ms"] / 1000 - lead_s, BY_SECOND_PASS
        elif UNSURE_SYNC == "drop":
            dropped.append({"clip": name, "reason": estimate.reason})
            continue
        else:
            shift, how = 0.0, UNSURE_KEPT
        report = {"video_fps": seen[name]["video_fps"], **estimate.to_dict(),
                  "applied_shift_ms": round(shift * 1000, 1), "correction": how}
        if name in second:
            report["second_pass"] = {k: second[name][k] for k in ("model_lag_ms", "model_confidence", "lag_ms")}
        shifts[name], reports[name] = shift, report
    if not shifts:
        print("error: every clip was dropped as unsure; use --unsure-sync keep", file=sys.stderr)
        return 1
    durations = {name: seen[name]["frames"] / FRAME_RATE for name in shifts}
    # clips that are one recording (corpora reuse footage) stay on one side of the split; the search
    # reads each clip's log-mel from its file again, one at a time
    shared = recording_groups(MelFiles({name: seen[name]["folder"] / AUDIO_FEATURES_FILENAME for name in shifts}))
    for line in describe(shared):
        say(f"shared recording: {line}; its clips stay on one side of the split")
    val_clips = with_partners(VAL_CLIPS, shared)
    partners = sorted(set(val_clips) - set(map(str, VAL_CLIPS)))
    if partners:
        say(f"held out with them, as the same recording: {', '.join(partners)}")
    groups = merge_recordings({name: speakers.get(name) or name for name in durations}, shared)
    splits = split_clips(durations, groups, VAL_FRACTION, SEED, val_clips)
    window, stride, warmup = (int(round(s * FRAME_RATE)) for s in (WINDOW_SECONDS, STRIDE_SECONDS, WARMUP_SECONDS))
    # the formant channels (train.py --formants) when stage 1.2 stored every clip's frequencies
    formants = all(seen[name]["lsf"] for name in shifts)
    # each file of a split: its type and columns (a split with no clip, e.g. no held-out clip, has no rows)
    columns = {"mel": (np.float32, (N_MELS,)), "mel_level": (np.float32, (N_MELS,)),
               "level_db": (np.float32, (N_MELS,)), "targets": (np.float32, (N_TARGETS,)),
               "mask": (np.uint8, ()), "vad": (np.uint8, ()), "rms_db": (np.float32, ())}
    if formants:
        columns.update(formants=(np.float32, (LPC_ORDER,)), lsf=(np.float32, (LPC_ORDER,)))

    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
    scratch.chmod(0o755)                          # mkdtemp makes 0700
    entries, statistics, centres, spreads = {}, {}, {}, {}
    names_of = {split: [n for n in sorted(shifts) if splits[n] == split] for split in ("train", "val")}
    try:
        passing = progress_bar(total=len(shifts), desc="stage 1.3 dataset", unit="clip", enabled=len(shifts) >= 2)
        for split, names in names_of.items():
            split_dir = scratch / split
            split_dir.mkdir()
            rows = sum(seen[n]["frames"] for n in names)
            files = {key: NpyRows(split_dir / f"{key}.npy", dtype, rows, tail) for key, (dtype, tail) in columns.items()}
            windows, offset, mel_moments, speech = [], 0, Moments(), 0
            for name in names:
                clip, track, audio = load_clip(seen[name]["folder"])
                if shifts[name]:
                    clip = synchronize_features(name, track, audio, shifts[name])
                    after = estimate_clip_lag(clip.targets, clip.mel, clip.mask)
                    reports[name]["lag_after_ms"] = round(after.lag_s * 1000, 1)
                del track, audio
                if split == "train" and (CENTRE_TRAINING_CLIPS or SCALE_TRAINING_CLIPS):
                    centres[name] = clip_centre_shapes(clip, CENTRE_ON)
                if split == "train" and SCALE_TRAINING_CLIPS:
                    spreads[name] = clip_spreads(clip)
                reference = ClipPose.of(clip.targets, clip.mask)
                mel = model_inputs(clip.mel, clip.vad, "fixed")
                files["mel"].write(mel)
                mel_moments.add(mel)
                level_inputs, level_db = level_inputs_and_level(clip.mel, clip.vad)
                files["mel_level"].write(level_inputs)
                files["level_db"].write(level_db)
                if formants:
                    files["formants"].write(FormantInputs().process(clip.lsf, clip.vad))
                    files["lsf"].write(clip.lsf.astype(np.float32))
                # the training clips' centring and scaling is done in place once every centre is known
                files["targets"].write(np.nan_to_num(smooth_targets(normalize_targets(clip.targets, reference),
                                                                    clip.mask, TARGET_SMOOTHING_MS / 1000)))
                files["mask"].write(clip.mask.astype(np.uint8))
                files["vad"].write(clip.vad.astype(np.uint8))
                speech += int(clip.vad.astype(bool).sum())
                files["rms_db"].write(clip.rms_db.astype(np.float32))
                clip_windows = create_sequences(len(clip.mel), window, stride, warmup)
                clip_windows[:, 0] += offset
                windows.append(clip_windows)
                entries[name] = {
                    "clip": name, "split": split, "speaker": speakers.get(name, name),
                    "start": offset, "frames": len(clip.mel), "duration_s": round(durations[name], 3),
                    "masked_fraction": round(1 - float(clip.mask.mean()), 4),
                    "speech_fraction": round(float(clip.vad.mean()), 4),
                    "windows": len(clip_windows), "sync": reports[name], "reference_pose": reference.to_dict()}
                offset += len(clip.mel)
                passing.update(1)
            for file in files.values():
                file.close()
            np.save(split_dir / "windows.npy", np.concatenate(windows) if windows else np.zeros((0, 3), np.int64))
            statistics[split] = {"mel": mel_moments, "frames": offset, "windows": int(sum(len(w) for w in windows)),
                                 "speech": speech}
        passing.close()

        # each recording has its own resting face (jawOpen at rest 0.037-0.128 across one speaker's five
        # clips), which the sound cannot tell: centred, the training clips differ only in how they move.
        # Validation clips keep their labels as extracted, so every score is against the video.
        offsets = {}
        if CENTRE_TRAINING_CLIPS:
            # the common centre is each shape's median over the recordings, one vote each: a mean weighted
            # by frames let one long clip decide it (Obama's 61 s clip at rest 0.022 put his other clips'
            # pauses at 0.08 against their 0.12-0.15; two clips of a speaker resting open-mouthed at 0.4 put
            # every new speaker's pauses at 0.152 against the video's 0.124)
            common = np.median(np.stack(list(centres.values())), axis=0) if centres else None
            offsets = {n: common - c for n, c in centres.items()}
        # each recording also has its own swing — how far the face in it moves, from framing, distance and
        # the speaker — which the sound cannot tell either: scaled, the training clips move alike
        factors = {}
        if spreads:
            typical = np.median(np.stack(list(spreads.values())), axis=0)     # one vote per recording, as above
            factors = {n: np.clip(typical / np.maximum(sd, 1e-6), 1 / MAX_SCALE, MAX_SCALE) for n, sd in spreads.items()}
        for name in sorted(offsets.keys() | factors.keys()):
            entry = entries[name]
            targets = np.load(scratch / "train" / "targets.npy", mmap_mode="r+")    # mapped a clip at a time
            span = targets[entry["start"]:entry["start"] + entry["frames"], :N_BLENDSHAPES]
            if name in factors:       # about the clip's own centre, before that centre is moved
                span[:] = centres[name] + (span - centres[name]) * factors[name]
            span[:] = np.clip(span + offsets.get(name, 0.0), 0.0, 1.0)
            del span, targets
            if name in offsets:
                entry["centring_offset"] = np.round(offsets[name], 5).tolist()
            if name in factors:
                entry["scaling_factor"] = np.round(factors[name], 4).tolist()
        for split, names in names_of.items():
            if not names:
                del statistics[split]
                continue
            shapes = Moments()            # the targets as written, centred in place
            for name in names:
                entry = entries[name]
                mask = read_npy_rows(scratch / split / "mask.npy", entry["start"], entry["frames"]).astype(bool)
                shapes.add(read_npy_rows(scratch / split / "targets.npy", entry["start"], entry["frames"])[mask])
            made = statistics[split]
            statistics[split] = {
                "frames": made["frames"], "usable_frames": shapes.count, "clips": len(names), "windows": made["windows"],
                "mel_mean": made["mel"].mean().round(4).tolist(), "mel_std": made["mel"].std().round(4).tolist(),
                "target_mean": shapes.mean().round(5).tolist(), "target_std": shapes.std().round(5).tolist(),
                "target_min": shapes.low.round(5).tolist(), "target_max": shapes.high.round(5).tolist(),
                "speech_fraction": round(made["speech"] / made["frames"], 4)}
        manifest_clips = [entries[name] for names in names_of.values() for name in names]
        manifest = {
            "format": DATASET_FORMAT, "format_version": DATASET_FORMAT_VERSION,
            "created_by": "1_data_cleaning/3_create_dataset.py", "created_at": now_iso(),
            "processed_dir": str(PROCESSED_DIR), "settings": settings_for_header(settings),
            "frame_rate": FRAME_RATE, "blendshape_names": list(BLENDSHAPE_NAMES), "pose_names": list(POSE_NAMES),
            "target_layout": f"{N_BLENDSHAPES} blendshapes then {len(POSE_NAMES)} pose values",
            "input_modes": {**{file: mode for mode, file in INPUT_FILES.items()}, "available": list(INPUT_MODES)},
            "windows": {"length": window, "stride": stride, "warmup": warmup},
            "normalisation": normalisation_config(), "front_end": front_end_config(),
            "formants": {**formant_config(), "files": FORMANT_FILES} if formants else None,
            "sync": {**sync_config(), "correction": SYNC_CORRECTION, "unsure_clips": UNSURE_SYNC,
                     "typical_lead_ms": round(lead_s * 1000, 1), "typical_lead_from": lead_from,
                     "confident_clips": sum(e.confident for e in estimates.values()), "dropped_as_unsure": dropped,
                     "second_pass": second_header},
            "target_smoothing_ms": TARGET_SMOOTHING_MS,
            "centre_training_clips": CENTRE_TRAINING_CLIPS, "centre_on": CENTRE_ON,
            "scale_training_clips": SCALE_TRAINING_CLIPS,
            "clips": manifest_clips, "excluded": excluded, "shared_recordings": to_dict(shared),
            "shared_recordings_search": search_config(),
            "statistics": statistics,
            "inputs_sha256": {name: sha256_file(Path(PROCESSED_DIR) / name / AUDIO_FEATURES_FILENAME)[:16]
                              for name in sorted(shifts)},
            "labels_sha256": {name: sha256_file(Path(PROCESSED_DIR) / name / BLENDSHAPES_FILENAME)[:16]
                              for name in sorted(shifts)},
            "libraries": library_versions()}
        write_json_atomic(scratch / MANIFEST_FILENAME, manifest)
        # swap the finished folder in: an earlier dataset survives anything that failed above
        if output.exists():
            old = output.with_name(f".{output.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            output.rename(old)
            scratch.rename(output)
            shutil.rmtree(old)
        else:
            scratch.rename(output)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

    print(f"{'clip':32s} {'split':5s} {'seconds':>7s} {'masked':>7s} {'lag ms':>7s} {'conf.':>5s} {'shift ms':>8s}   "
          "(lag < 0: the mouth moves before the sound; confidence >= 1: above chance)")
    for entry in manifest_clips:
        sync = entry["sync"]
        note = "" if sync["correction"] == BY_ESTIMATE else f"  {sync['correction']}"
        print(f"{entry['clip']:32s} {entry['split']:5s} {entry['duration_s']:7.1f} {entry['masked_fraction']:7.3f} "
              f"{sync['measured_lag_ms']:7.0f} {sync['confidence']:5.2f} {sync['applied_shift_ms']:8.0f}{note}")
    for entry in dropped:
        print(f"{entry['clip']:32s} dropped: {entry['reason']}")
    handled = Counter(r["correction"] for r in reports.values())
    by_hand = f"{handled[BY_HAND]} set by hand, " if handled[BY_HAND] else ""
    drawn = f"drawn: python 1_data_cleaning/plot_synchronisation.py --dataset-dir {output}"
    if SYNC_CORRECTION:
        placed = handled[BY_SECOND_PASS]
        print(f"sync: typical lead {lead_s * 1000:.0f} ms ({lead_from}); {handled[BY_ESTIMATE]} clips corrected, "
              + (f"{placed} more placed by the second pass, " if placed else "") + by_hand
              + f"{handled[UNSURE_KEPT] + len(dropped)} unsure ({UNSURE_SYNC}); {drawn}")
    else:
        confident = sum(estimates[n].confident for n, r in reports.items() if r["correction"] == CORRECTION_OFF)
        print(f"sync: correction off (--no-sync-correction), {handled[CORRECTION_OFF]} clips as they are "
              f"({confident} of them measured confidently), {by_hand}{drawn}")
    print(f"dataset: {statistics.get('train', {}).get('clips', 0)} train clips, "
          f"{statistics.get('val', {}).get('clips', 0)} val clips, {len(excluded)} left out -> {output}")
    return 1 if excluded else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
