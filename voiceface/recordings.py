"""Clips that are the same recording, defined once: found from their audio, so that no split puts
one on each side (stage 1.3's train/val draw, both benchmarks of evaluate.py).

Talking-face corpora are gathered from other projects' samples, and those reuse footage: of the 33
real clips two Obama clips from two repositories are one 20 s address (the same audio to 0.4 dB,
the two mouths agreeing at r 0.93), and one clip of Alexandria Ocasio-Cortez is the first 4.6 s
of another. With one in training and the other held out, a benchmark scores a recording the model
has already heard and seen: on the speaker-dependent benchmark ridge, trained on 20 s of one Obama
clip, read the other's jaw at r 0.89 (100 ms look-ahead), against 0.18-0.42 on the other folds.

How. The loudness envelopes (mean log-mel over bands, each clip standardised) are cross-correlated
at every offset (FFT); the offsets whose mean product over their overlap is highest are the
candidates, and each is checked on the whole spectrogram over the overlap: Pearson r between the
two log-mels over the frames in the louder half of both (a pause's floor or room noise is no part
of the recording), with each band's mean and then each frame's mean taken out (so a gain, a
microphone's colouring or loudness alone does not matter, only how the spectrum's shape moves).
Two clips share a recording when some offset overlaps by at least MIN_SHARED_S and that r is at
least MIN_R. On the 33 real clips the two shared pairs give r 0.997 and 0.953 and the 526 others at
most 0.434 (`python -m voiceface.recordings data/real/processed` prints every pair); generated
clips, one synthetic voice whose spectrum barely changes, reach 0.617 between different utterances
(30 clips of 8 s). A 5 s excerpt re-encoded (AAC) is found at r 0.98, 9 dB quieter at 0.97, 9 dB quieter
with white noise at -60 dBFS at 0.93 (tests/test_recordings.py); noise near the quiet bands' level
lowers it (-50 dBFS: 0.85), so a copy remixed with loud noise can go unnoticed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import FRAME_RATE
from .dataset import FIXED_DB_FLOOR

MIN_SHARED_S = 2.0      # seconds of common audio that make two clips one recording
MIN_R = 0.85            # r of the two log-mels over that overlap, band and frame means out
CANDIDATES = 8          # offsets of the envelopes' cross-correlation checked on the whole spectrogram


@dataclass(frozen=True)
class SharedAudio:
    offset_s: float     # b's audio starts this much later on a's clock (a[t + offset] = b[t])
    seconds: float      # how long the two overlap there
    r: float            # spectral_r of the two log-mels over the overlap


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def spectral_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two equally long log-mels (frames x bands) over the frames in the louder half of
    both, with each band's mean and then each frame's mean taken out: what is left is how the
    spectrum's shape changes, which two takes of speech share only when they are the same sound
    (loudness alone, one syllable rhythm, matches unrelated generated clips at r 0.90)."""
    la, lb = a.mean(axis=1), b.mean(axis=1)
    loud = (la > np.median(la)) & (lb > np.median(lb))
    if loud.sum() < FRAME_RATE // 2:
        return 0.0
    a, b = a[loud], b[loud]
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def shared_audio(a: np.ndarray, b: np.ndarray, min_seconds: float = MIN_SHARED_S) -> SharedAudio:
    """The offset at which two log-mels (frames x bands, at FRAME_RATE) are most alike, checked on
    the whole spectrogram, with how long they overlap there and how alike they are (r 0 when they
    cannot overlap by min_seconds). Both in dB, compared above the fixed input's -80 dB floor: below
    it lie codec and room noise, which two copies of one recording do not share."""
    a, b = np.maximum(a, FIXED_DB_FLOOR), np.maximum(b, FIXED_DB_FLOOR)
    min_frames = int(round(min_seconds * FRAME_RATE))
    if min(len(a), len(b)) < min_frames:
        return SharedAudio(0.0, 0.0, 0.0)
    ea, eb = _standardised(a.mean(axis=1)), _standardised(b.mean(axis=1))
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    products = np.fft.irfft(np.fft.rfft(ea, size) * np.conj(np.fft.rfft(eb, size)), size)
    offsets = np.arange(-(len(b) - 1), len(a))                  # a[t + k] against b[t]
    sums = np.concatenate([products[size - (len(b) - 1):], products[:len(a)]])
    overlap = np.minimum(len(a), offsets + len(b)) - np.maximum(0, offsets)
    usable = overlap >= min_frames
    mean_product = np.where(usable, sums / np.maximum(overlap, 1), -np.inf)
    best = SharedAudio(0.0, 0.0, 0.0)
    for i in np.argsort(mean_product)[::-1][:CANDIDATES]:
        if not usable[i]:
            break
        k, n = int(offsets[i]), int(overlap[i])
        r = spectral_r(a[max(0, k):max(0, k) + n], b[max(0, -k):max(0, -k) + n])
        if r > best.r:
            best = SharedAudio(k / FRAME_RATE, n / FRAME_RATE, r)
    return best


def recording_groups(mels: dict[str, np.ndarray], min_seconds: float = MIN_SHARED_S,
                     min_r: float = MIN_R) -> list[tuple[list[str], SharedAudio]]:
    """The clips that share a recording, as groups (joined through any shared pair), each with the
    clips in name order and its most alike pair's SharedAudio; clips that share nothing are left out."""
    names = sorted(mels)
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    evidence: dict[str, SharedAudio] = {}
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            found = shared_audio(mels[first], mels[second], min_seconds)
            if found.r >= min_r:
                a, b = root(first), root(second)
                parent[b] = a
                kept = [e for e in (evidence.pop(a, None), evidence.pop(b, None), found) if e is not None]
                evidence[a] = max(kept, key=lambda e: e.seconds)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    return [(members, evidence[r]) for r, members in groups.items() if len(members) > 1]


def merge_recordings(groups: dict[str, str], shared: list[tuple[list[str], SharedAudio]]) -> dict[str, str]:
    """clip -> group label (a speaker, or the clip itself), with the clips of each shared recording
    moved into one group, so that a split by these labels never parts them."""
    merged = dict(groups)
    for members, _ in shared:
        labels = {merged[m] for m in members}
        if len(labels) > 1:
            joined = " + ".join(sorted(labels))
            merged = {clip: joined if label in labels else label for clip, label in merged.items()}
    return merged


def with_partners(named: list[str], shared: list[tuple[list[str], SharedAudio]]) -> list[str]:
    """The named clips and every clip that shares a recording with one of them."""
    out = set(map(str, named))
    for members, _ in shared:
        if out & set(members):
            out |= set(members)
    return sorted(out)


def to_dict(shared: list[tuple[list[str], SharedAudio]]) -> list[dict]:
    return [{"clips": members, "shared_seconds": round(found.seconds, 2), "offset_s": round(found.offset_s, 3),
             "r": round(found.r, 3)} for members, found in shared]


def describe(shared: list[tuple[list[str], SharedAudio]]) -> list[str]:
    return [f"{', '.join(members)}: one recording ({found.seconds:.1f} s of the same audio, r {found.r:.2f})"
            for members, found in shared]


def _main(folder: str) -> None:       # every pair's best r, for choosing the thresholds
    from pathlib import Path
    from .audio import read_audio_features
    mels = {p.parent.name: np.asarray(read_audio_features(p).mel)
            for p in sorted(Path(folder).glob("*/audio_features.npz"))}
    names = sorted(mels)
    rows = sorted(((shared_audio(mels[a], mels[b]), a, b) for i, a in enumerate(names) for b in names[i + 1:]),
                  key=lambda row: -row[0].r)
    for found, a, b in rows:
        print(f"{found.r:.3f}  {found.seconds:6.1f} s  {a}  {b}")


if __name__ == "__main__":
    import sys
    _main(sys.argv[1])
