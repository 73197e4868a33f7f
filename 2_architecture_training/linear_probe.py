"""How much of jawOpen can a linear model read from the mel, on the training speakers and on
held-out ones? A diagnostic (not a stage): the ridge baseline of the evaluation (voiceface/ridge.py:
stacked frames, the strength chosen by leave-one-clip-out) fitted on a dataset's training split,
scored as the frame-weighted mean of per-clip Pearson r on both splits; optionally with the
training data frequency-warped (vocal-tract-length perturbation) as train.py's --freq-warp does.

With --extra it also asks whether features the mel does not hold linearly would help a linear
reader: each held-out clip is scored by ridge on the mel alone and on the mel with the extra
channels appended (the same stacking, look-ahead and strength search):

- `loudness`: the frame's loudness in the input's own units, log of the summed power of its 80
  bins — a nonlinear function of the input (a linear reader of log-mel cannot form it);
- `lsf`: the 16 line spectral frequencies of a 16th-order LPC fit of the frame's 25 ms of audio
  (the front-end's frame, pre-emphasised: voiceface/lpc.py): a smooth code of the formants, which
  say how open the vocal tract is. As stage 1.2 stored them.
- `pitch`: the voice's pitch by pYIN (librosa) over the 40 ms of audio ending at each frame's end:
  octaves from the clip's median voiced pitch (0 where unvoiced) and the probability the frame is
  voiced, both × 0.3 (the spread of the level inputs). Stress and emphasis raise the pitch and open
  the jaw wider; does the mel hold that already? (The median is the whole clip's: a probe, not
  a streaming feature. About 6 s of computing per minute of audio.)
- `embedding`: a pretrained speech encoder, Google's `speech_embedding` (Apache-2.0; trained for
  keyword spotting on a large speech corpus, arXiv:2002.01322) as the two ONNX files that the
  `openwakeword==0.4.0` wheel on PyPI carries (`openwakeword/resources/models/melspectrogram.onnx`
  and `embedding_model.onnx`; give that folder as --embedding-models, the wheel unzipped; not a
  requirement of the project). Its 96 numbers per frame read the 76 of its own mel frames (760 ms)
  that end where the frame's 25 ms window ends — strictly causal, every 10 ms — each standardised
  over the training frames and × 0.3. About 9 s of computing per minute of audio (decoding included).

    python 2_architecture_training/linear_probe.py --dataset-dir data/dataset --lookahead-ms 100
    python 2_architecture_training/linear_probe.py --dataset-dir DIR --extra loudness lsf pitch
    python 2_architecture_training/linear_probe.py --dataset-dir DIR --extra embedding --embedding-models MODELS
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

import numpy as np

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main
from voiceface.formats import recorded_path

# --- settings (each can be given on the command line: DATASET_DIR as --dataset-dir) ----------
DATASET_DIR = REPO_ROOT / "data/dataset"   # a stage 1.3 output
INPUT = "mel_level"             # mel (fixed scale) or mel_level (causal level normalisation)
LOOKAHEAD_MS = 100.0            # the face of this long ago is read from the audio up to now
WARPS = [1.0]                   # training copies warped by these factors (e.g. 0.85 0.92 1.0 1.08 1.15)
EXTRA = []                      # channels to try beside the mel: loudness, lsf, pitch, embedding (see above)
EMBEDDING_MODELS = ""           # embedding: the folder holding openwakeword 0.4.0's melspectrogram.onnx and embedding_model.onnx
# --- end of settings ---------------------------------------------------------------------------


def frame_loudness(x: np.ndarray) -> np.ndarray:
    """(T, 80) inputs in either mode -> (T, 1): log of the frame's summed power, in the inputs' units."""
    from voiceface.dataset import MEL_SCALE_DB
    db = np.asarray(x, np.float64) * MEL_SCALE_DB
    peak = db.max(axis=1, keepdims=True)
    return ((peak + 10 * np.log10(np.power(10.0, (db - peak) / 10).sum(axis=1, keepdims=True))) / MEL_SCALE_DB).astype(np.float32)


PITCH_WINDOW = 640              # pitch: samples (40 ms at 16 kHz) ending at each frame's end
PITCH_RANGE_HZ = (65.0, 400.0)  # pitch: the voices looked for
PITCH_SCALE = 0.3               # pitch channels' scale beside the level inputs (as the formant channels')


def frame_pitch(folder: Path, frames: int) -> np.ndarray:
    """(T, 2) pitch channels of a processed clip (see `pitch` above), on its stage 1.2 frames: frame
    i's 40 ms of audio end where its mel frame's window ends, (i + 1) hops after the first sample."""
    import librosa

    from voiceface.audio import AUDIO_FEATURES_FILENAME, load_audio, read_audio_features
    from voiceface.constants import HOP_LENGTH, SAMPLE_RATE
    from voiceface.errors import InputError
    stored = read_audio_features(folder / AUDIO_FEATURES_FILENAME)
    if len(stored.times) != frames or not np.allclose(stored.times, (np.arange(frames) + 1) * HOP_LENGTH / SAMPLE_RATE):
        raise InputError(f"{folder}: its stage 1.2 frames are not the dataset's ({len(stored.times)} against {frames}); "
                         "re-run stage 1.3")
    _, audio = load_audio(stored.meta["source"]["path"])
    padded = np.concatenate([np.zeros(PITCH_WINDOW - HOP_LENGTH, np.float32), audio])
    f0, voiced, probability = librosa.pyin(padded, fmin=PITCH_RANGE_HZ[0], fmax=PITCH_RANGE_HZ[1], sr=SAMPLE_RATE,
                                           frame_length=PITCH_WINDOW, hop_length=HOP_LENGTH, center=False)
    out = np.zeros((frames, 2), np.float32)
    n = min(frames, len(f0))
    octaves = np.log2(f0[:n])
    voiced = voiced[:n] & np.isfinite(octaves)
    if voiced.any():
        out[:n, 0] = np.where(voiced, octaves - np.median(octaves[voiced]), 0.0)
    out[:n, 1] = probability[:n]
    return out * PITCH_SCALE


EMBEDDING_WINDOW = 76          # embedding: its own mel frames per embedding (10 ms apart)
EMBEDDING_SCALE = 0.3           # embedding channels' spread beside the level inputs


def frame_embedding(folder: Path, frames: int) -> np.ndarray:
    """(T, 96) speech embeddings of a processed clip (see `embedding` above), on its stage 1.2 frames:
    the encoder's mel frame j (400 samples every 160) is padded to end (j + 1) hops after the first
    sample, as frame j's window does, and embedding i reads its mel frames i - 75 ... i (silence
    before the file's start)."""
    import onnxruntime

    from voiceface.audio import AUDIO_FEATURES_FILENAME, load_audio, read_audio_features
    from voiceface.constants import HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH
    from voiceface.errors import InputError
    models = Path(EMBEDDING_MODELS)
    if not (models / "embedding_model.onnx").is_file() or not (models / "melspectrogram.onnx").is_file():
        raise InputError(f"--embedding-models {models}: no melspectrogram.onnx and embedding_model.onnx there; unzip "
                         "the openwakeword 0.4.0 wheel (pip download --no-deps openwakeword==0.4.0) and give its "
                         "openwakeword/resources/models folder")
    stored = read_audio_features(folder / AUDIO_FEATURES_FILENAME)
    if len(stored.times) != frames or not np.allclose(stored.times, (np.arange(frames) + 1) * HOP_LENGTH / SAMPLE_RATE):
        raise InputError(f"{folder}: its stage 1.2 frames are not the dataset's ({len(stored.times)} against {frames}); "
                         "re-run stage 1.3")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    mel_model, embedding_model = (onnxruntime.InferenceSession(str(models / name), options,
                                                               providers=["CPUExecutionProvider"])
                                  for name in ("melspectrogram.onnx", "embedding_model.onnx"))
    _, audio = load_audio(stored.meta["source"]["path"])
    lead = WIN_LENGTH - HOP_LENGTH + (EMBEDDING_WINDOW - 1) * HOP_LENGTH
    padded = np.concatenate([np.zeros(lead, np.float32), audio]) * 32767   # the encoder reads 16-bit sample values
    mel = np.squeeze(mel_model.run(None, {"input": padded[None].astype(np.float32)})[0]) / 10 + 2   # openwakeword's scaling
    windows = np.lib.stride_tricks.sliding_window_view(mel, EMBEDDING_WINDOW, axis=0).transpose(0, 2, 1)
    out = np.concatenate([embedding_model.run(None, {"input_1": windows[i:i + 512, ..., None].astype(np.float32)})[0]
                          .reshape(-1, 96) for i in range(0, len(windows), 512)])
    return np.concatenate([out, np.repeat(out[-1:], max(0, frames - len(out)), axis=0)])[:frames]


def main(argv=None) -> int:
    configure(globals(), argv)
    from voiceface.errors import InputError
    from voiceface.lpc import processed_clip_lsf
    from voiceface.dataset import read_dataset_manifest, warp_mel
    from voiceface.metrics import JAW_OPEN, pearson
    from voiceface.ridge import RidgeBaseline, shift_targets
    dataset = Path(DATASET_DIR)
    try:
        manifest = read_dataset_manifest(dataset)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    lookahead = int(round(LOOKAHEAD_MS / 10))
    unknown = sorted(set(EXTRA) - {"loudness", "lsf", "pitch", "embedding"})
    if unknown:
        print(f"--extra {' '.join(unknown)}: not a channel this probe knows; use loudness, lsf, pitch and/or embedding")
        return 2

    def split(name):
        x, y, m = (np.load(dataset / name / f"{key}.npy") for key in (INPUT, "targets", "mask"))
        clips = [c for c in manifest["clips"] if c["split"] == name]
        spans = [slice(c["start"], c["start"] + c["frames"]) for c in clips]
        return [x[s] for s in spans], [y[s] for s in spans], [m[s].astype(bool) for s in spans], [c["clip"] for c in clips]

    def per_clip(model, xs, ys, ms) -> tuple[list, list]:
        rs, weights = [], []
        for x, y, m in zip(xs, ys, ms):
            truth, known = shift_targets(y, m, lookahead)
            rs.append(pearson(model.predict(x)[known, JAW_OPEN], truth[known, JAW_OPEN]))
            weights.append(known.sum())
        return rs, weights

    def score(model, xs, ys, ms) -> float:
        rs, weights = per_clip(model, xs, ys, ms)
        return float(np.average(rs, weights=weights))

    train, held_out = split("train"), split("val")
    warped = [[warp_mel(x, a) if a != 1 else x for a in WARPS for x in train[0]],
              [y for _ in WARPS for y in train[1]], [m for _ in WARPS for m in train[2]]]
    model = RidgeBaseline.fit(*warped, lookahead)
    print(f"{INPUT}, look-ahead {LOOKAHEAD_MS:g} ms, warps {WARPS}, ridge strength {model.strength:g} "
          f"(chosen by leave-one-clip-out): jawOpen r on training speakers {score(model, *train[:3]):.3f}, "
          f"on held-out speakers {score(model, *held_out[:3]):.3f}")
    if not EXTRA:
        return 0

    embeddings = {}

    def clip_embedding(x, name):         # each clip's embeddings, computed once (scaled in with_extra)
        if name not in embeddings:
            embeddings[name] = frame_embedding(recorded_path(manifest["processed_dir"]) / name, len(x))
        return embeddings[name]

    def with_extra(xs, names):
        out = []
        for x, name in zip(xs, names):
            channels = [x]
            if "loudness" in EXTRA:
                channels.append(frame_loudness(x))
            if "lsf" in EXTRA:
                lsf = processed_clip_lsf(recorded_path(manifest["processed_dir"]) / name)
                if len(lsf) != len(x):
                    raise InputError(f"{name}: {len(lsf)} frames of audio against {len(x)} in {dataset}; "
                                     "a dataset of other processed clips? re-run stage 1.3")
                channels.append(lsf)
            if "pitch" in EXTRA:
                channels.append(frame_pitch(recorded_path(manifest["processed_dir"]) / name, len(x)))
            if "embedding" in EXTRA:
                mean, spread = embedding_scale
                channels.append(((clip_embedding(x, name) - mean) / spread * EMBEDDING_SCALE).astype(np.float32))
            out.append(np.concatenate(channels, axis=1))
        return out

    try:
        if "embedding" in EXTRA:
            stacked = np.concatenate([clip_embedding(x, name) for x, name in zip(train[0], train[3])])
            embedding_scale = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6
        extra = RidgeBaseline.fit(with_extra(train[0], train[3]), train[1], train[2], lookahead)
        extra_r, _ = per_clip(extra, with_extra(held_out[0], held_out[3]), *held_out[1:3])
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    plain_r, _ = per_clip(model, *held_out[:3])
    for name, a, b in zip(held_out[3], plain_r, extra_r):
        print(f"held-out {name}: jawOpen r {a:.3f} on the mel, {b:.3f} with {' + '.join(EXTRA)} "
              f"(strength {model.strength:g} / {extra.strength:g})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
