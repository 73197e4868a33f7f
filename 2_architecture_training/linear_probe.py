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
  (the front-end's causal framing, pre-emphasised, Hamming): a smooth code of the formants, which
  say how open the vocal tract is. Read from each clip's source file (named in its stage 1.2 JSON).

    python 2_architecture_training/linear_probe.py --dataset-dir data/dataset --lookahead-ms 100
    python 2_architecture_training/linear_probe.py --dataset-dir DIR --extra loudness lsf
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

import numpy as np

from voiceface import REPO_ROOT
from voiceface.cli import configure

# --- settings (each can be given on the command line: DATASET_DIR as --dataset-dir) ----------
DATASET_DIR = REPO_ROOT / "data/dataset"   # a stage 1.3 output
INPUT = "mel_level"             # mel (fixed scale) or mel_level (causal level normalisation)
LOOKAHEAD_MS = 100.0            # the face of this long ago is read from the audio up to now
WARPS = [1.0]                   # training copies warped by these factors (e.g. 0.85 0.92 1.0 1.08 1.15)
EXTRA = []                      # channels to try beside the mel: loudness, lsf (see above)
LPC_ORDER = 16                  # 16 kHz audio: 2 + kHz poles, the usual rule
# --- end of settings ---------------------------------------------------------------------------


def frame_loudness(x: np.ndarray) -> np.ndarray:
    """(T, 80) inputs in either mode -> (T, 1): log of the frame's summed power, in the inputs' units."""
    from voiceface.dataset import MEL_SCALE_DB
    db = np.asarray(x, np.float64) * MEL_SCALE_DB
    peak = db.max(axis=1, keepdims=True)
    return ((peak + 10 * np.log10(np.power(10.0, (db - peak) / 10).sum(axis=1, keepdims=True))) / MEL_SCALE_DB).astype(np.float32)


def lpc(frames: np.ndarray, order: int) -> np.ndarray:
    """(n, samples) windowed frames -> (n, order + 1) prediction polynomials A(z) = 1 + a1 z^-1 + …
    by the autocorrelation method (Levinson-Durbin, every frame at once; a silent frame gives A = 1)."""
    spectrum = np.fft.rfft(frames, 2 * frames.shape[1], axis=1)
    r = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :order + 1]
    r[:, 0] = r[:, 0] * (1 + 1e-9) + 1e-12                    # white-noise floor: stable in silence
    a = np.zeros((len(frames), order + 1)); a[:, 0] = 1.0
    error = r[:, 0].copy()
    for i in range(1, order + 1):
        k = -(r[:, i] + np.einsum("nj,nj->n", a[:, 1:i], r[:, i - 1:0:-1])) / error
        a[:, 1:i + 1] = a[:, 1:i + 1] + k[:, None] * np.c_[a[:, i - 1:0:-1], np.ones(len(a))]
        error = error * (1 - k ** 2)
    return a


def line_spectral_frequencies(a: np.ndarray) -> np.ndarray:
    """(n, p + 1) polynomials (p even) -> (n, p) line spectral frequencies in radians, ascending:
    the angles in (0, pi) of the roots of A(z) ± z^-(p+1) A(1/z), which interlace on the unit
    circle for a stable A; formants sit between close pairs."""
    n, p = a.shape[0], a.shape[1] - 1
    padded = np.c_[a, np.zeros(n)]
    mirrored = padded[:, ::-1]
    angles = []
    for poly in (padded + mirrored, padded - mirrored):        # P and Q, degree p + 1, leading 1
        companion = np.zeros((n, p + 1, p + 1))
        companion[:, 0, :] = -poly[:, 1:] / poly[:, :1]
        companion[:, np.arange(1, p + 1), np.arange(p)] = 1.0
        angles.append(np.abs(np.angle(np.linalg.eigvals(companion))))
    # 2p + 2 roots: z = 1 (Q), z = -1 (P) and p conjugate pairs, whose |angle| comes twice each
    return np.sort(np.concatenate(angles, axis=1), axis=1)[:, 1:-1:2]


def audio_lsf(wave: np.ndarray, order: int = LPC_ORDER) -> np.ndarray:
    """16 kHz audio -> (floor(n / 160), order) line spectral frequencies per front-end frame
    (frame i: the 400 samples ending at sample (i + 1) * 160, zeros before the start)."""
    from scipy.signal import lfilter
    from voiceface.constants import HOP_LENGTH, WIN_LENGTH
    x = lfilter([1.0, -0.97], [1.0], np.r_[np.zeros(WIN_LENGTH), np.asarray(wave, np.float64)])
    count = len(wave) // HOP_LENGTH
    index = (np.arange(count)[:, None] + 1) * HOP_LENGTH + np.arange(WIN_LENGTH)[None, :]
    out = np.empty((count, order))
    for start in range(0, count, 2000):                         # 20 s at a time: bounded memory
        frames = x[index[start:start + 2000]] * np.hamming(WIN_LENGTH)
        out[start:start + 2000] = line_spectral_frequencies(lpc(frames, order))
    return out.astype(np.float32)


def main(argv=None) -> int:
    configure(globals(), argv)
    import json

    from voiceface.audio import AUDIO_FEATURES_FILENAME, load_audio, read_audio_features
    from voiceface.dataset import MANIFEST_FILENAME, warp_mel
    from voiceface.metrics import JAW_OPEN, pearson
    from voiceface.ridge import RidgeBaseline, shift_targets
    dataset = Path(DATASET_DIR)
    manifest = json.loads((dataset / MANIFEST_FILENAME).read_text())
    lookahead = int(round(LOOKAHEAD_MS / 10))
    unknown = sorted(set(EXTRA) - {"loudness", "lsf"})
    if unknown:
        print(f"--extra {' '.join(unknown)}: not a channel this probe knows; use loudness and/or lsf")
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

    def with_extra(xs, names):
        out = []
        for x, name in zip(xs, names):
            channels = [x]
            if "loudness" in EXTRA:
                channels.append(frame_loudness(x))
            if "lsf" in EXTRA:
                source = read_audio_features(Path(manifest["processed_dir"]) / name / AUDIO_FEATURES_FILENAME).meta["source"]
                lsf = audio_lsf(load_audio(source["path"])[1])
                if len(lsf) != len(x):
                    raise SystemExit(f"{name}: {len(lsf)} LPC frames against {len(x)} in the dataset; "
                                     f"is {source['path']} the file stage 1.2 read?")
                channels.append(lsf)
            out.append(np.concatenate(channels, axis=1))
        return out

    extra = RidgeBaseline.fit(with_extra(train[0], train[3]), train[1], train[2], lookahead)
    plain_r, _ = per_clip(model, *held_out[:3])
    extra_r, _ = per_clip(extra, with_extra(held_out[0], held_out[3]), *held_out[1:3])
    for name, a, b in zip(held_out[3], plain_r, extra_r):
        print(f"held-out {name}: jawOpen r {a:.3f} on the mel, {b:.3f} with {' + '.join(EXTRA)} "
              f"(strength {model.strength:g} / {extra.strength:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
