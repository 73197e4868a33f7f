"""Stage 1.3: the synchronised dataset — stage 1.1's 30 fps targets on stage 1.2's 100 Hz audio
timeline, normalised, windowed and split by speaker, with a sync check of every clip.

Inputs:  <processed-dir>/<clip>/blendshapes_and_pose.json and audio_features.npz (stages 1.1, 1.2).
Outputs: <output-dir>/dataset_manifest.json and, for each of train/ and val/, arrays that can be
         memory-mapped (np.load(..., mmap_mode="r")): mel.npy and mel_level.npy (T, 80) float32,
         the model's two input modes; targets.npy (T, 59) float32, normalised; mask.npy, vad.npy
         (T,) uint8; rms_db.npy (T,) float32; windows.npy (M, 3) int64 rows (start, length,
         loss_start) into those arrays. Clips lie end to end; the manifest gives each one's span.

    python 1_data_cleaning/3_create_dataset.py --processed-dir data/processed --output-dir data/dataset \
        --speaker-manifest ../shared/realdata/manifest.csv

A clip missing an input, made with other constants, whose audio and video lengths differ by more
than a second, or with no usable frame, is left out with one line and named in the manifest; the
exit code is then 1. The sync check estimates each clip's audio-video lag from mouth opening
against loudness and warns beyond +-3 video frames; LAG_CORRECTION_MS and CLIP_LAG_CORRECTIONS
shift the targets of clips whose lag is known.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure

# --- settings (each can be given on the command line: OUTPUT_DIR as --output-dir) -------------
PROCESSED_DIR = REPO_ROOT / "data/processed"   # stage 1.1 and 1.2 outputs, one folder per clip
OUTPUT_DIR = REPO_ROOT / "data/dataset"        # the dataset folder (replaced whole with --force)
WINDOW_SECONDS = 8.0            # training window length; the design note's 0.24 s is compared in ARCHITECTURE.md
STRIDE_SECONDS = 4.0            # step between windows
WARMUP_SECONDS = 2.0            # leading part of a mid-clip window left out of the loss (no past seen yet)
VAL_FRACTION = 0.2              # share of the duration held out, by whole speakers
VAL_CLIPS = []                  # clips (or speakers) to hold out instead of drawing them
SPEAKER_MANIFEST = ""           # CSV with short_name and speaker columns; clips of one speaker stay together
SEED = 0                        # for the draw of validation speakers
LAG_CORRECTION_MS = 0.0         # shift every clip's targets this much later (audio trailing the picture)
CLIP_LAG_CORRECTIONS = []       # per clip, as name=ms (e.g. sad_RD_Radio2=-240)
MAX_DURATION_MISMATCH_S = 1.0   # audio and video longer or shorter than each other by more: left out
LAG_WARN_FRAMES = 3.0           # warn when a clip's measured lag is beyond this many video frames
FORCE = False                   # rebuild an existing dataset
# --- end of settings ---------------------------------------------------------------------------


def load_clip(folder: Path, lag_correction_s: float):
    """One clip's synchronised features, or raise InputError saying why it is left out."""
    from voiceface.audio import AUDIO_FEATURES_FILENAME, read_audio_features
    from voiceface.dataset import synchronize_features
    from voiceface.errors import InputError
    from voiceface.formats import BLENDSHAPES_FILENAME, read_blendshapes_json
    video_file, audio_file = folder / BLENDSHAPES_FILENAME, folder / AUDIO_FEATURES_FILENAME
    for path, stage in ((video_file, "1.1"), (audio_file, "1.2")):
        if not path.exists():
            raise InputError(f"{folder.name}: {path.name} is missing; run stage {stage} on this clip")
    track, audio = read_blendshapes_json(video_file), read_audio_features(audio_file)
    video_s, audio_s = track.header["video"]["duration_s"], audio.meta["duration_s"]
    if abs(video_s - audio_s) > MAX_DURATION_MISMATCH_S:
        raise InputError(f"{folder.name}: audio lasts {audio_s:.2f} s but video {video_s:.2f} s; check that "
                         "both come from the same recording")
    clip = synchronize_features(folder.name, track, audio, lag_correction_s)
    if not clip.mask.any():
        raise InputError(f"{folder.name}: no audio frame has a face to learn from (all masked); check the video")
    return clip, float(track.header["video"]["fps"])


def main(argv=None) -> int:
    settings = configure(globals(), argv)
    import shutil
    import tempfile

    import numpy as np
    from tqdm import tqdm
    from voiceface.audio import front_end_config
    from voiceface.cli import settings_for_header
    from voiceface.constants import BLENDSHAPE_NAMES, FRAME_RATE, N_BLENDSHAPES, POSE_NAMES
    from voiceface.dataset import (DATASET_FORMAT, DATASET_FORMAT_VERSION, INPUT_MODES, MANIFEST_FILENAME,
                                   ClipPose, create_sequences, measure_av_lag, model_inputs,
                                   normalisation_config, normalize_targets, speakers_from_manifest,
                                   split_clips)
    from voiceface.errors import InputError
    from voiceface.formats import library_versions, now_iso, sha256_file, write_json_atomic

    output = Path(OUTPUT_DIR)
    if (output / MANIFEST_FILENAME).exists() and not FORCE:
        print(f"skipped: {output / MANIFEST_FILENAME} exists (--force rebuilds it)")
        return 0
    folders = sorted(p for p in Path(PROCESSED_DIR).iterdir() if p.is_dir()) if Path(PROCESSED_DIR).is_dir() else []
    if not folders:
        print(f"error: {PROCESSED_DIR}: no clip folders; run stages 1.1 and 1.2 first", file=sys.stderr)
        return 1
    per_clip_lag = {}
    for item in CLIP_LAG_CORRECTIONS:
        name, _, value = str(item).partition("=")
        per_clip_lag[name] = float(value)
    clips, excluded, reports = {}, [], {}
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    for folder in tqdm(folders, desc="stage 1.3 clips", unit="clip", disable=len(folders) < 2):
        correction_ms = per_clip_lag.get(folder.name, LAG_CORRECTION_MS)
        try:
            clip, fps = load_clip(folder, correction_ms / 1000)
        except InputError as error:
            tqdm.write(f"error: {error}", file=sys.stderr)
            excluded.append({"clip": folder.name, "reason": str(error)})
            continue
        clips[clip.name] = clip
        lag_s, r = measure_av_lag(np.nan_to_num(clip.targets[:, jaw]), clip.rms_db, clip.mask)
        reports[clip.name] = {"video_fps": fps, "lag_ms": round(lag_s * 1000),
                              "lag_video_frames": round(lag_s * fps, 1), "lag_correlation": round(r, 3),
                              "lag_correction_ms": correction_ms}
    if not clips:
        print("error: no clip could be used; see the lines above", file=sys.stderr)
        return 1
    speakers = speakers_from_manifest(SPEAKER_MANIFEST)
    durations = {name: len(c.mel) / FRAME_RATE for name, c in clips.items()}
    splits = split_clips(durations, speakers, VAL_FRACTION, SEED, VAL_CLIPS)
    window, stride, warmup = (int(round(s * FRAME_RATE)) for s in (WINDOW_SECONDS, STRIDE_SECONDS, WARMUP_SECONDS))

    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
    scratch.chmod(0o755)                          # mkdtemp makes 0700
    manifest_clips, statistics = [], {}
    try:
        for split in ("train", "val"):
            names = [n for n in sorted(clips) if splits[n] == split]
            arrays = {k: [] for k in ("mel", "mel_level", "targets", "mask", "vad", "rms_db")}
            windows, offset = [], 0
            for name in names:
                clip = clips[name]
                reference = ClipPose.of(clip.targets, clip.mask)
                targets = np.nan_to_num(normalize_targets(clip.targets, reference))
                arrays["mel"].append(model_inputs(clip.mel, clip.vad, "fixed"))
                arrays["mel_level"].append(model_inputs(clip.mel, clip.vad, "level"))
                arrays["targets"].append(targets)
                arrays["mask"].append(clip.mask.astype(np.uint8))
                arrays["vad"].append(clip.vad.astype(np.uint8))
                arrays["rms_db"].append(clip.rms_db.astype(np.float32))
                clip_windows = create_sequences(len(clip.mel), window, stride, warmup)
                clip_windows[:, 0] += offset
                windows.append(clip_windows)
                report = reports[name]
                manifest_clips.append({
                    "clip": name, "split": split, "speaker": speakers.get(name, name),
                    "start": offset, "frames": len(clip.mel), "duration_s": round(durations[name], 3),
                    "masked_fraction": round(1 - float(clip.mask.mean()), 4),
                    "speech_fraction": round(float(clip.vad.mean()), 4),
                    "windows": len(clip_windows), **report, "reference_pose": reference.to_dict()})
                offset += len(clip.mel)
            split_dir = scratch / split
            split_dir.mkdir()
            for key, parts in arrays.items():
                np.save(split_dir / f"{key}.npy", np.concatenate(parts) if parts else np.zeros((0,)))
            np.save(split_dir / "windows.npy", np.concatenate(windows) if windows else np.zeros((0, 3), np.int64))
            if names:
                mask = np.concatenate(arrays["mask"]).astype(bool)
                targets = np.concatenate(arrays["targets"])[mask]
                statistics[split] = {
                    "frames": int(offset), "usable_frames": int(mask.sum()), "clips": len(names),
                    "windows": int(sum(len(w) for w in windows)),
                    "mel_mean": np.concatenate(arrays["mel"]).mean(axis=0).round(4).tolist(),
                    "mel_std": np.concatenate(arrays["mel"]).std(axis=0).round(4).tolist(),
                    "target_mean": targets.mean(axis=0).round(5).tolist(),
                    "target_std": targets.std(axis=0).round(5).tolist(),
                    "target_min": targets.min(axis=0).round(5).tolist(),
                    "target_max": targets.max(axis=0).round(5).tolist(),
                    "speech_fraction": round(float(np.concatenate(arrays["vad"]).mean()), 4)}
        manifest = {
            "format": DATASET_FORMAT, "format_version": DATASET_FORMAT_VERSION,
            "created_by": "1_data_cleaning/3_create_dataset.py", "created_at": now_iso(),
            "processed_dir": str(PROCESSED_DIR), "settings": settings_for_header(settings),
            "frame_rate": FRAME_RATE, "blendshape_names": list(BLENDSHAPE_NAMES), "pose_names": list(POSE_NAMES),
            "target_layout": f"{N_BLENDSHAPES} blendshapes then {len(POSE_NAMES)} pose values",
            "input_modes": {"mel.npy": "fixed", "mel_level.npy": "level", "available": list(INPUT_MODES)},
            "windows": {"length": window, "stride": stride, "warmup": warmup},
            "normalisation": normalisation_config(), "front_end": front_end_config(),
            "clips": manifest_clips, "excluded": excluded, "statistics": statistics,
            "inputs_sha256": {name: sha256_file(Path(PROCESSED_DIR) / name / "audio_features.npz")[:16]
                              for name in sorted(clips)},
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

    print(f"{'clip':32s} {'split':5s} {'seconds':>7s} {'masked':>7s} {'lag ms':>7s} {'r':>5s}   "
          "(lag < 0: the mouth moves before the sound)")
    for entry in manifest_clips:
        warn = ""
        if abs(entry["lag_video_frames"]) > LAG_WARN_FRAMES:
            warn = f"  <- lag beyond ±{LAG_WARN_FRAMES:g} video frames" + (
                " (weak correlation: unsure)" if entry["lag_correlation"] < 0.2 else "")
        print(f"{entry['clip']:32s} {entry['split']:5s} {entry['duration_s']:7.1f} {entry['masked_fraction']:7.3f} "
              f"{entry['lag_ms']:7d} {entry['lag_correlation']:5.2f}{warn}")
    print(f"dataset: {statistics.get('train', {}).get('clips', 0)} train clips, "
          f"{statistics.get('val', {}).get('clips', 0)} val clips, {len(excluded)} left out -> {output}")
    return 1 if excluded else 0


if __name__ == "__main__":
    sys.exit(main())
