"""The synchronised dataset, defined once: targets put onto the audio's 100 Hz timeline, the
normalisation (and its inverse, which inference uses), windows and the split. The sync check and
correction live in voiceface/sync.py.

Targets are 59 values a frame: the 52 blendshapes, then x, y, z, qw, qx, qy, qz of the head.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import (DB_CEILING, LEVEL_FLOOR_BELOW_DB, LEVEL_NORM_SECONDS, LEVEL_NORM_START_DB, AudioFeatureFile,
                    relative_to_level)
from .constants import FRAME_RATE, N_BLENDSHAPES, N_TARGETS
from .errors import InputError
from .formats import BlendshapeTrack
from .pose import mean_quaternion, quaternion_conjugate, quaternion_multiply, slerp

MAX_GAP_S = 0.10                # face-less stretches longer than this are masked, shorter interpolated
TRANSLATION_SCALE_CM = 10.0     # relative head translation / this lies in [-1, 1] (real clips: |x| <= 9.9 cm)
FIXED_DB_FLOOR = -80.0          # dB: the fixed mode's range is the design note's [-80, 10] dB
MEL_OFFSET_DB = (DB_CEILING + FIXED_DB_FLOOR) / 2  # -35 dB: the middle of the clipped range
MEL_SCALE_DB = (DB_CEILING - FIXED_DB_FLOOR) / 2   # 45 dB: [-80, 10] dB maps onto [-1, 1]; both modes' scale


class SideBySide:
    """Arrays of the same rows read as one, their columns side by side: a row index or slice gives
    what np.concatenate(parts, axis=1)[rows] would, without the joined copy (train.py --formants
    reads a split's mel and its formant channels so, each memory-mapped)."""

    def __init__(self, *parts):
        self.parts = parts
        self.shape = (len(parts[0]), sum(part.shape[1] for part in parts))
        self.dtype = np.result_type(*parts)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        return np.concatenate([np.asarray(part[rows]) for part in self.parts], axis=1)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)


def normalisation_config() -> dict:
    """The parameters of normalize_features, stored in the dataset and every checkpoint."""
    return {"mel": {"offset_db": MEL_OFFSET_DB, "scale_db": MEL_SCALE_DB, "clip_db": [FIXED_DB_FLOOR, DB_CEILING]},
            "mel_level": {"scale_db": MEL_SCALE_DB, "floor_below_level_db": LEVEL_FLOOR_BELOW_DB,
                          "time_constant_s": LEVEL_NORM_SECONDS, "start_db": LEVEL_NORM_START_DB},
            "blendshapes": {"clip": [0.0, 1.0]},
            "translation": {"relative_to": "the clip's median position", "scale_cm": TRANSLATION_SCALE_CM},
            "rotation": {"relative_to": "the clip's mean rotation", "form": "unit quaternion"}}


@dataclass
class SyncedClip:
    """One clip on the audio timeline (T frames at 100 Hz)."""
    name: str
    mel: np.ndarray             # (T, 80) dB
    vad: np.ndarray             # (T,) uint8
    rms_db: np.ndarray          # (T,) dBFS
    targets: np.ndarray         # (T, 59) raw units (cm, quaternion), NaN where masked
    mask: np.ndarray            # (T,) bool: a face was seen at (or within MAX_GAP_S around) this time
    video_times_s: np.ndarray   # (T,) each audio frame's time on the video's clock
    lsf: np.ndarray | None = None   # (T, 16) line spectral frequencies (None: not stored by stage 1.2)


def interpolate_targets(times_s: np.ndarray, frame_times_s: np.ndarray, blendshapes: np.ndarray,
                        pose: np.ndarray, has_face: np.ndarray, max_gap_s: float = MAX_GAP_S):
    """Targets at `times_s` from video frames at `frame_times_s`: blendshapes and translation
    linearly, rotation by slerp, between the two face frames around each time. Times outside the
    span of face frames, or between face frames more than max_gap_s apart, are masked.
    Returns (targets (T, 59) with NaN where masked, mask (T,) bool)."""
    valid_times = frame_times_s[has_face]
    values = np.concatenate([blendshapes[has_face].astype(np.float64), pose[has_face]], axis=1)   # (K, 59)
    targets = np.full((len(times_s), N_TARGETS), np.nan)
    if len(valid_times) == 0:
        return targets, np.zeros(len(times_s), bool)
    left = np.clip(np.searchsorted(valid_times, times_s, side="right") - 1, 0, len(valid_times) - 1)
    right = np.minimum(left + 1, len(valid_times) - 1)
    span = valid_times[right] - valid_times[left]
    inside = (times_s >= valid_times[0]) & (times_s <= valid_times[-1])
    mask = inside & (span <= max_gap_s + 1e-9)
    fraction = np.where(span > 0, (times_s - valid_times[left]) / np.where(span > 0, span, 1), 0.0)
    fraction = np.clip(fraction, 0.0, 1.0)
    linear = values[left, :N_BLENDSHAPES + 3] * (1 - fraction[:, None]) + values[right, :N_BLENDSHAPES + 3] * fraction[:, None]
    rotation = slerp(values[left, N_BLENDSHAPES + 3:], values[right, N_BLENDSHAPES + 3:], fraction)
    targets[mask] = np.concatenate([linear, rotation], axis=1)[mask]
    return targets, mask


def has_both_outputs(folder) -> bool:
    """Whether a clip folder holds stage 1.1's track and stage 1.2's features (what read_processed_clip reads)."""
    from pathlib import Path

    from .audio import AUDIO_FEATURES_FILENAME
    from .formats import BLENDSHAPES_FILENAME
    return (Path(folder) / BLENDSHAPES_FILENAME).exists() and (Path(folder) / AUDIO_FEATURES_FILENAME).exists()


def read_processed_clip(folder) -> tuple[BlendshapeTrack, AudioFeatureFile]:
    """A processed clip folder's stage 1.1 track and stage 1.2 features."""
    from pathlib import Path

    from .audio import AUDIO_FEATURES_FILENAME, read_audio_features
    from .formats import BLENDSHAPES_FILENAME, read_blendshapes_json
    folder = Path(folder)
    return read_blendshapes_json(folder / BLENDSHAPES_FILENAME), read_audio_features(folder / AUDIO_FEATURES_FILENAME)


def synchronize_features(name: str, track: BlendshapeTrack, audio: AudioFeatureFile,
                         lag_correction_s: float = 0.0, max_gap_s: float = MAX_GAP_S) -> SyncedClip:
    """Put the 52 blendshapes and 7 pose values of stage 1.1 onto the audio frame times of stage
    1.2, using the audio's start on the container clock. A positive lag_correction_s takes each
    frame's target from that much later in the video (for audio that trails the picture)."""
    video_times = audio.meta["audio_start_s"] + audio.times                 # (T,) container clock
    targets, mask = interpolate_targets(video_times + lag_correction_s, track.times_ms / 1000.0,
                                        track.blendshapes, track.pose, track.has_face, max_gap_s)
    return SyncedClip(name=name, mel=audio.mel, vad=audio.vad, rms_db=audio.rms_db, targets=targets,
                      mask=mask, video_times_s=video_times, lsf=audio.lsf)


@dataclass
class ClipPose:
    """A clip's reference pose: targets are made relative to it."""
    median_translation_cm: np.ndarray       # (3,)
    mean_rotation: np.ndarray               # (4,) unit quaternion

    @staticmethod
    def of(targets: np.ndarray, mask: np.ndarray) -> "ClipPose":
        pose = targets[mask, N_BLENDSHAPES:]
        return ClipPose(np.median(pose[:, :3], axis=0), mean_quaternion(pose[:, 3:]))

    def to_dict(self) -> dict:
        return {"median_translation_cm": self.median_translation_cm.round(4).tolist(),
                "mean_rotation": self.mean_rotation.round(6).tolist()}


def normalize_mel(mel_db: np.ndarray) -> np.ndarray:
    """dB clipped to [-80, 10] and mapped to [-1, 1]. (T, 80) -> (T, 80) float32."""
    return ((np.clip(mel_db, FIXED_DB_FLOOR, DB_CEILING) - MEL_OFFSET_DB) / MEL_SCALE_DB).astype(np.float32)


def normalize_targets(targets: np.ndarray, reference: ClipPose) -> np.ndarray:
    """Raw targets (T, 59) to the model's scale: blendshapes clipped to [0, 1]; translation minus
    the clip's median, over TRANSLATION_SCALE_CM; rotation relative to the clip's mean rotation,
    unit norm, w >= 0. NaN rows stay NaN."""
    out = np.array(targets, dtype=np.float64, copy=True)
    out[:, :N_BLENDSHAPES] = np.clip(out[:, :N_BLENDSHAPES], 0.0, 1.0)
    out[:, N_BLENDSHAPES:N_BLENDSHAPES + 3] = (out[:, N_BLENDSHAPES:N_BLENDSHAPES + 3]
                                               - reference.median_translation_cm) / TRANSLATION_SCALE_CM
    q = quaternion_multiply(quaternion_conjugate(reference.mean_rotation), out[:, N_BLENDSHAPES + 3:])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out[:, N_BLENDSHAPES + 3:] = q * np.where(q[:, :1] < 0, -1.0, 1.0)
    return out.astype(np.float32)


def denormalize_targets(normalised: np.ndarray, reference: ClipPose | None = None) -> np.ndarray:
    """Model-scale targets (T, 59) back to real units: blendshapes in [0, 1], translation in cm
    and rotation as a unit quaternion, relative to `reference` (none: the neutral pose at the
    origin, which is what inference reports)."""
    out = np.array(normalised, dtype=np.float64, copy=True)
    out[:, :N_BLENDSHAPES] = np.clip(out[:, :N_BLENDSHAPES], 0.0, 1.0)
    out[:, N_BLENDSHAPES:N_BLENDSHAPES + 3] *= TRANSLATION_SCALE_CM
    q = out[:, N_BLENDSHAPES + 3:]
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    if reference is not None:
        out[:, N_BLENDSHAPES:N_BLENDSHAPES + 3] += reference.median_translation_cm
        q = quaternion_multiply(reference.mean_rotation, q)
    out[:, N_BLENDSHAPES + 3:] = q
    return out


MIN_REST_FRAMES = 10            # fewer frames with a face and no voice than this: no rest face to take


def rest_face(targets: np.ndarray, mask: np.ndarray, vad: np.ndarray) -> np.ndarray | None:
    """(52,) the face at rest: each blendshape's median over the frames with a face and no voice;
    None with under MIN_REST_FRAMES of them. Training splices it into silence (train.py), and stage
    1.3 can centre each training clip on it (--centre-on rest)."""
    quiet = np.asarray(mask).astype(bool) & (np.asarray(vad) == 0)
    if quiet.sum() < MIN_REST_FRAMES:
        return None
    return np.median(np.asarray(targets)[quiet][:, :N_BLENDSHAPES], axis=0)


def clip_rest_faces(targets: np.ndarray, mask: np.ndarray, vad: np.ndarray, clips: list[dict]) -> dict:
    """{clip start frame: its rest_face, or None} for the clips (manifest entries) lying end to end
    in one split's arrays."""
    faces = {}
    for clip in clips:
        span = slice(clip["start"], clip["start"] + clip["frames"])
        faces[clip["start"]] = rest_face(np.asarray(targets[span]), np.asarray(mask[span]), np.asarray(vad[span]))
    return faces


def create_sequences(n_frames: int, window: int, stride: int, warmup: int) -> np.ndarray:
    """Windows over one clip of n_frames: (M, 3) int64 rows (start, length, loss_start).

    Windows of `window` frames every `stride` frames, plus one ending at the clip's end so no
    frame is left out; a clip shorter than a window is one window. The first `warmup` frames of
    a window (loss_start) are excluded from the loss, because the model has not yet seen the past
    it would have at inference — except in a window that starts at the clip's start, where
    inference has no past either."""
    if n_frames <= 0:
        return np.zeros((0, 3), np.int64)
    if n_frames <= window:
        return np.array([[0, n_frames, 0]], np.int64)
    starts = list(range(0, n_frames - window + 1, stride))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    return np.array([[s, window, 0 if s == 0 else min(warmup, window - 1)] for s in starts], np.int64)


def smooth_targets(targets: np.ndarray, mask: np.ndarray, sigma_s: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing (standard deviation sigma_s) of the 52 blendshape columns of
    normalised targets (T, 59), over known frames only (a masked frame neither contributes nor is
    filled). Labels are made offline, so looking both ways is allowed here; it removes the tracker's
    frame-to-frame jitter, which no audio can predict. sigma_s 0: unchanged."""
    if sigma_s <= 0:
        return targets
    from scipy.ndimage import gaussian_filter1d
    sigma = sigma_s * FRAME_RATE
    known = np.asarray(mask, bool).astype(np.float64)
    values = np.nan_to_num(np.asarray(targets, np.float64)[:, :N_BLENDSHAPES]) * known[:, None]
    weight = gaussian_filter1d(known, sigma, mode="nearest")
    smoothed = gaussian_filter1d(values, sigma, axis=0, mode="nearest") / np.maximum(weight, 1e-9)[:, None]
    out = np.array(targets, dtype=np.float32, copy=True)
    out[known > 0, :N_BLENDSHAPES] = smoothed[known > 0]
    return out


INPUT_MODES = ("fixed", "level")   # the two ways the model may see the mel (stage 2 compares them)
INPUT_FILES = {"fixed": "mel.npy", "level": "mel_level.npy"}   # each mode's array in a dataset split
LEVEL_FILE = "level_db.npy"     # the running level (T, 80) dB each 'level' frame was measured against
FORMANT_FILES = {"inputs": "formants.npy", "lsf": "lsf.npy"}   # the formant inputs and the raw frequencies (radians)
DATASET_FORMAT = "voiceface/dataset"
DATASET_FORMAT_VERSION = 2    # 2: level_db.npy; the level mode's floor follows the running level
MANIFEST_FILENAME = "dataset_manifest.json"


def read_dataset_manifest(dataset_dir) -> dict:
    """A stage 1.3 dataset's manifest; InputError (one line, naming the folder) where the folder
    holds none, or one that is not a dataset manifest (a clip folder given for a dataset, say)."""
    import json
    from pathlib import Path
    path = Path(dataset_dir) / MANIFEST_FILENAME
    if not path.is_file():
        raise InputError(f"{dataset_dir}: no dataset here ({MANIFEST_FILENAME}); make one with stage 1.3 "
                         "(1_data_cleaning/3_create_dataset.py) or give the folder it wrote")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{path}: not a readable dataset manifest ({error}); re-run stage 1.3") from None
    if not isinstance(manifest, dict) or manifest.get("format") != DATASET_FORMAT:
        raise InputError(f"{path}: not a stage 1.3 dataset manifest; re-run stage 1.3")
    return manifest


class ModelInputs:
    """What the model sees, from a clip's mel (T, 80) dB and vad (T,), fed from its first frame on
    in chunks of any size. 'fixed': dB mapped from [-80, 10] onto [-1, 1]. 'level': the causal
    running-mean level normalisation of voiceface.audio (floored LEVEL_FLOOR_BELOW_DB under the
    running broadband level), over the same 45 dB scale (it keeps
    state, so chunks give the whole-clip result). With `formants`, the 16 formant channels of
    voiceface.lpc.FormantInputs follow the 80 (from the frames' line spectral frequencies, `lsf`).
    Training data, offline inference and the streaming engine all go through this. Returns
    (T, 80) or (T, 96) float32."""

    def __init__(self, mode: str, formants: bool = False):
        from .audio import LevelNormaliser
        from .lpc import FormantInputs
        if mode not in INPUT_MODES:
            raise ValueError(f"input mode {mode!r} is not one of {INPUT_MODES}")
        self.mode = mode
        self.level = LevelNormaliser() if mode == "level" else None
        self.formants = FormantInputs() if formants else None

    def process(self, mel_db: np.ndarray, vad: np.ndarray, lsf: np.ndarray | None = None) -> np.ndarray:
        if self.level is None:
            mel = normalize_mel(mel_db)
        else:
            mel = (self.level.process(mel_db, vad) / MEL_SCALE_DB).astype(np.float32)
        if self.formants is None:
            return mel
        if lsf is None:
            raise ValueError("a model that reads formants needs the frames' line spectral frequencies")
        return np.concatenate([mel, self.formants.process(lsf, vad)], axis=1)


def level_inputs_and_level(mel_db: np.ndarray, vad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A whole clip's 'level' model inputs (T, 80), as model_inputs(mel_db, vad, "level") gives them,
    and the running level (T, 80) dB each frame was measured against: what a stretch of silence
    spliced in at frame t is measured against (the normaliser holds its mean through unvoiced
    frames). Stage 1.3 stores both (INPUT_FILES["level"], LEVEL_FILE), from one pass."""
    from .audio import LevelNormaliser
    relative_db, level_db = LevelNormaliser().process_with_level(mel_db, vad)
    return (relative_db / MEL_SCALE_DB).astype(np.float32), level_db


def level_inputs_against(mel_db: np.ndarray, level_db: np.ndarray) -> np.ndarray:
    """Level-mode model inputs of frames in dB measured against a given running level (e.g. silence
    spliced in where level_inputs_and_level says the level stood), floored as the normaliser floors."""
    return (relative_to_level(mel_db, level_db) / MEL_SCALE_DB).astype(np.float32)


def inputs_in_db(inputs: np.ndarray, level_db: np.ndarray | None = None) -> np.ndarray:
    """Stored model inputs (T, 80) back in dB: the fixed scale's (`level_db` None), or a level-mode
    input plus the running level it was measured against. (T, 80) float64."""
    return np.asarray(inputs, np.float64) * MEL_SCALE_DB + (MEL_OFFSET_DB if level_db is None else level_db)


def inputs_from_db(mel_db: np.ndarray, level_db: np.ndarray | None = None) -> np.ndarray:
    """The inverse of inputs_in_db: the fixed scale, clipped to [-1, 1] as normalize_mel clips
    (`level_db` None), or level-mode inputs measured against `level_db`. (T, 80) float32."""
    if level_db is None:
        return np.clip((np.asarray(mel_db, np.float64) - MEL_OFFSET_DB) / MEL_SCALE_DB, -1.0, 1.0).astype(np.float32)
    return level_inputs_against(mel_db, level_db)


def add_noise_to_inputs(inputs: np.ndarray, noise_db: np.ndarray, level_db: np.ndarray | None = None,
                        below_loudest_db: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Model inputs (T, 80) of the same frames with noise of mel `noise_db` (T, 80; dB) added in the
    power domain, as a microphone would mix them: at its own level, or with `below_loudest_db`
    moved so that its loudest tenth sits that far below the frames' (training's --noise-augment).
    Fixed mode (`level_db` None): the frames' dB are the inputs' scale. Level mode: each frame's dB
    is its input plus `level_db`, the running level it was measured against (LEVEL_FILE),
    and the noisy frame is measured against that level plus the noise's mean power per bin: the
    normaliser's mean is a mean of power, so stationary noise adds its own power to it.
    Returns (new inputs (T, 80) float32, the new level (T, 80) or None)."""
    speech_db = inputs_in_db(inputs, level_db)
    noise_db = np.asarray(noise_db, np.float64)
    if below_loudest_db is not None:
        noise_db = noise_db + np.percentile(speech_db, 90) - below_loudest_db - np.percentile(noise_db, 90)
    noise_power = 10 ** (noise_db / 10)
    total_db = 10 * np.log10(10 ** (speech_db / 10) + noise_power)
    if level_db is not None:
        level_db = 10 * np.log10(10 ** (np.asarray(level_db, np.float64) / 10) + noise_power.mean(axis=0))
    return inputs_from_db(total_db, level_db), level_db


def add_reverb_to_inputs(inputs: np.ndarray, rt60_s: float, drr_db: float,
                         level_db: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Model inputs (T, 80) of the same frames heard in a room (training's --reverb-augment): each
    mel bin's power plus a late reverberant tail, the power of the frames before it decaying 60 dB
    in rt60_s, the tail's energy drr_db under the direct sound's (the statistical model
    voiceface.degrade.room_reverb applies to the sound, in the power spectrogram: each frame's tail
    is a*(tail + c*power) of the frame before, a = 10^(-6 / (rt60_s * FRAME_RATE))). Fixed mode
    (`level_db` None) as add_noise_to_inputs; level mode: the frames' dB rebuilt against `level_db`
    and measured again against it raised by the tail's share, 10*log10(1 + 10^(-drr_db/10)), as
    the normaliser's mean of power over the voice rises. Returns (new inputs, the new level or None)."""
    from scipy.signal import lfilter
    power = 10 ** (inputs_in_db(inputs, level_db) / 10)
    a = 10 ** (-6.0 / (rt60_s * FRAME_RATE))
    c = 10 ** (-drr_db / 10) * (1 - a) / a                  # sum over k >= 1 of c * a^k is 10^(-drr/10)
    tail = lfilter([0.0, c * a], [1.0, -a], power, axis=0)
    wet_db = 10 * np.log10(power + tail)
    if level_db is not None:
        level_db = np.asarray(level_db, np.float64) + 10 * np.log10(1 + 10 ** (-drr_db / 10))
    return inputs_from_db(wet_db, level_db), level_db


WARP_AXES = ("mel", "hz")


def warp_mel(mel: np.ndarray, factor: float, axis: str = "mel") -> np.ndarray:
    """Vocal-tract-length perturbation of a mel spectrogram, (T, n_mels) -> (T, n_mels); formants
    move up (factor > 1) or down as another voice's would (linear interpolation between bins).
    axis "mel": bin k takes the value at bin k / factor, the mel axis itself stretched; on the
    Slaney scale that moves a formant at 4 kHz by 42 % for a factor of 1.15. axis "hz": each
    band's centre frequency f takes the value the spectrum has at f / factor, a voice's vocal
    tract scaled: every formant moves by the factor itself (ARCHITECTURE.md, "Frequency warp").
    Training's --freq-warp (--freq-warp-axis) and the linear probe use it."""
    n_bins = mel.shape[1]
    if axis not in WARP_AXES:
        raise ValueError(f"no warp axis {axis!r}; choose one of {', '.join(WARP_AXES)}")
    if axis == "mel":
        source = np.arange(n_bins) / factor
    else:
        from voiceface.audio import hz_to_mel, mel_band_edges
        centres_hz = mel_band_edges()[1:-1]
        centres = hz_to_mel(centres_hz)                  # evenly spaced on the mel scale
        source = (hz_to_mel(centres_hz / factor) - centres[0]) / (centres[1] - centres[0])
    source = np.clip(source, 0, n_bins - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, n_bins - 1)
    fraction = (source - low).astype(mel.dtype)
    return mel[:, low] * (1 - fraction) + mel[:, high] * fraction


def model_inputs(mel_db: np.ndarray, vad: np.ndarray, mode: str) -> np.ndarray:
    """ModelInputs over a whole clip at once."""
    return ModelInputs(mode).process(mel_db, vad)


def split_clips(durations: dict[str, float], speakers: dict[str, str], val_fraction: float, seed: int,
                val_clips: list[str] | None = None) -> dict[str, str]:
    """'train' or 'val' for each clip. With val_clips, exactly the clips named there are val, and
    every clip of a speaker named there (naming one clip of a speaker keeps the speaker's other
    clips in train: that is the speaker-dependent benchmark). Otherwise whole speakers are drawn
    with a fixed seed until val holds at least val_fraction of the duration, keeping at least one
    speaker in train: clips of one speaker always go together (windows of one speaker, let alone
    one clip, on both sides would leak). A val_fraction of 0 (and no val_clips): every clip trains."""
    group = {clip: speakers.get(clip) or clip for clip in durations}
    if not val_clips and val_fraction <= 0:
        return {clip: "train" for clip in durations}
    if val_clips:
        named = set(map(str, val_clips))
        return {clip: "val" if clip in named or group[clip] in named else "train" for clip in durations}
    groups = sorted(set(group.values()))
    size = {g: sum(d for c, d in durations.items() if group[c] == g) for g in groups}
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    target = val_fraction * sum(durations.values())
    chosen, val_time = set(), 0.0
    # whole speakers in a seeded random order, each taken only if it does not overshoot the
    # target (one speaker with most of the data would otherwise make val the larger half)
    for g in order:
        if val_time >= target or len(chosen) >= len(groups) - 1:
            break
        if val_time + size[g] <= target * 1.1:
            chosen.add(g)
            val_time += size[g]
    if not chosen and len(groups) > 1:
        chosen.add(min(groups, key=lambda g: size[g]))
    return {clip: "val" if group[clip] in chosen else "train" for clip in durations}


def speaker_window_chances(window_starts: np.ndarray, clips: list[dict], balance: float) -> np.ndarray | None:
    """Each training window's chance of being drawn (they sum to 1) when every speaker's share of the
    draw is its share of the windows raised to the power 1 - `balance`, renormalised: 0 leaves every
    window alike (a speaker with a third of the audio gets a third of the draw), 1 gives every speaker
    the same share however much it recorded. `window_starts`: the windows' first frames in the split;
    `clips`: the split's manifest entries (start, frames, speaker; a clip without a speaker is its
    own). None where the windows are one speaker's: nothing to balance."""
    window_starts = np.asarray(window_starts, np.int64)
    starts = np.array([c["start"] for c in clips], np.int64)
    order = np.argsort(starts)
    clip_of = order[np.searchsorted(starts[order], window_starts, side="right") - 1]
    speaker = np.array([c.get("speaker") or c["clip"] for c in clips], dtype=object)[clip_of]
    names, index = np.unique(speaker.astype(str), return_inverse=True)
    if len(names) < 2:
        return None
    windows_each = np.bincount(index, minlength=len(names)).astype(np.float64)
    share = (windows_each / windows_each.sum()) ** (1.0 - balance)
    chances = (share / share.sum() / windows_each)[index]
    return chances / chances.sum()


def speaker_folds(durations: dict[str, float], speakers: dict[str, str], n_folds: int, seed: int = 0) -> list[list[str]]:
    """Clips in n_folds groups of whole speakers with about equal duration: the largest speakers
    first, each into the fold with the least so far (ties broken by a seeded draw)."""
    group = {clip: speakers.get(clip) or clip for clip in durations}
    size: dict[str, float] = {}
    for clip, seconds in durations.items():
        size[group[clip]] = size.get(group[clip], 0.0) + seconds
    rng = np.random.default_rng(seed)
    load, fold_of = np.zeros(n_folds), {}
    for speaker in sorted(size, key=lambda g: (-size[g], rng.random())):
        fold = int(np.argmin(load))
        fold_of[speaker] = fold
        load[fold] += size[speaker]
    return [sorted(c for c in durations if fold_of[group[c]] == f) for f in range(n_folds)]


GENERIC_SPEAKER_WORDS = {"male", "female", "man", "woman", "older", "old", "young", "younger"}


def speaker_of(description: str) -> str | None:
    """A speaker's identity from a manifest description: the text before the first comma
    ("Barack Obama, male, English (...)" -> "Barack Obama"); None when that text only describes
    ("male", "older female"), since two clips of "male" need not be the same man."""
    name = description.split(",")[0].strip()
    if not name or set(name.lower().split()) <= GENERIC_SPEAKER_WORDS:
        return None
    return name


def manifest_rows(path: str) -> list[tuple[str | None, str]]:
    """(clip, speaker description) for each row of a speaker manifest: a CSV with short_name (or
    clip) and speaker columns; InputError in one line when it cannot be read or lacks them.

    Read as spreadsheets write it: UTF-8 with or without Excel's byte-order mark, and a field that
    is not UTF-8 in Windows' own code page (Excel's plain "CSV"; a clip in the file system's bytes
    as well); commas, or the semicolons of a spreadsheet set to a
    language whose decimal mark is a comma, or tabs; column names in any case and spaces around
    values ignored; a clip given as its video's file name ("talk.mp4") taken as the clip "talk"."""
    import csv
    import io
    from .cli import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS
    what = "give a CSV with the columns clip (or short_name) and speaker"
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read the speaker manifest ({error.strerror or error}); {what}") from None
    if b"\0" in raw:                     # a spreadsheet's own file (.xlsx, .ods: zip archives), or not text at all
        raise InputError(f"{path}: cannot read the speaker manifest (it is not text: save the spreadsheet as CSV); "
                         f"{what}")
    # lossless: bytes that are not UTF-8 stay as surrogate escapes, and each such field is read below
    text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:                       # one column, or none: read as commas, and say what is missing below
        dialect = csv.excel
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter, skipinitialspace=True)
        header, *rows = list(reader) or [[]]
    except csv.Error as error:
        raise InputError(f"{path}: cannot read the speaker manifest ({error}); {what}") from None
    columns = [name.strip().lower() for name in header]
    if not set(columns) & {"clip", "short_name"} or "speaker" not in columns:
        raise InputError(f"{path}: the speaker manifest's columns are {', '.join(sorted(set(columns) - {''})) or 'none'}; "
                         f"{what}")
    def windows(field: str) -> str:         # a field that is not UTF-8: Windows' code page, Excel's plain CSV
        if not any("\udc80" <= ch <= "\udcff" for ch in field):
            return field
        return field.encode("utf-8", "surrogateescape").decode("cp1252", errors="replace")

    media = VIDEO_EXTENSIONS + AUDIO_EXTENSIONS
    read = []
    for row in rows:
        values = dict(zip(columns, (value.strip() for value in row)))
        clip, speaker = values.get("short_name") or values.get("clip"), windows(values.get("speaker") or "")
        if clip and clip.lower().endswith(media):
            clip = clip.rsplit(".", 1)[0]
        if clip and windows(clip) != clip:      # and as the file system names it (a Latin-1 file name's own bytes)
            read.append((windows(clip), speaker))
        if clip or speaker:
            read.append((clip or None, speaker))
    return read


def update_speaker_manifest(manifest: Path, rows: dict[str, str]) -> None:
    """Write clip -> speaker rows into a speaker manifest (clip,speaker), keeping its rows for other
    clips (atomically): split_recording.py's parts, gather_clips.py's links."""
    import csv
    import io
    from .formats import atomic_path
    kept = {}
    if manifest.exists():               # read as every stage reads it (a spreadsheet's CSV too), once per clip
        for clip, speaker in manifest_rows(str(manifest)):
            if clip and clip not in rows:
                kept.setdefault(clip, speaker)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["clip", "speaker"])
    writer.writerows(list(kept.items()) + sorted(rows.items()))
    with atomic_path(manifest) as tmp:      # a name that is not UTF-8 (Latin-1) as the bytes the file system has
        tmp.write_bytes(text.getvalue().encode("utf-8", errors="surrogateescape"))


def speakers_from_manifest(path: str | None) -> dict[str, str]:
    """clip -> speaker, from a speaker manifest (see speaker_of); clips of unnamed speakers are left
    out, so each stays its own speaker."""
    if not path:
        return {}
    rows = [(clip, speaker_of(description)) for clip, description in manifest_rows(path)]
    return {clip: speaker for clip, speaker in rows if speaker}


def clips_not_in_manifest(path: str | None, clips: list[str]) -> list[str]:
    """The clips a speaker manifest has no row for (each will be a speaker of its own: a misspelt
    name or column would otherwise split one person's videos silently)."""
    if not path:
        return []
    named = {clip for clip, _ in manifest_rows(path)}
    return [clip for clip in clips if clip not in named]
