"""Clips that are the same recording, defined once: found from their audio, so that no split puts
one on each side (stage 1.3's train/val draw, both benchmarks of evaluate.py).

Talking-face corpora are gathered from other projects' samples, and those reuse footage: of the 33
real clips two Obama clips from two repositories are one 20 s address (the same audio to 0.4 dB,
the two mouths agreeing at r 0.93), and one clip of Alexandria Ocasio-Cortez is the first 4.6 s
of another. With one in training and the other held out, a benchmark scores a recording the model
has already heard and seen: on the speaker-dependent benchmark ridge, trained on 20 s of one Obama
clip, read the other's jaw at r 0.89 (100 ms look-ahead), against 0.18-0.42 on the other folds.

How. Each clip's log-mel is floored FLOOR_BELOW_LEVEL_DB under its own level (so a copy's gain
moves its floor with it). The loudness envelopes (mean log-mel over bands, each clip standardised)
are cross-correlated at every offset (FFT); the offsets whose mean product over their overlap is
highest are the candidates, and each whose envelopes correlate at MIN_ENVELOPE_R over its overlap
is checked on the whole spectrogram there: Pearson r between the two log-mels over the frames in
the louder half of both (a pause's floor or room noise is no part of the recording), with each
band's mean and then each frame's mean taken out (so a gain, a microphone's colouring or loudness
alone does not matter, only how the spectrum's shape moves). Two clips share a recording when some
offset overlaps by at least MIN_SHARED_S and that r is at least MIN_R. On the 33 real clips the two
shared pairs give r 0.997 and 0.954 and the 526 others at most 0.436 (`python -m
voiceface.recordings data/realf/processed` prints every pair); generated clips, one synthetic voice
whose spectrum barely changes, reach 0.621 between different utterances (30 clips of 8 s). A 5 s
excerpt re-encoded (AAC) is found at r 0.98, 9 dB quieter at 0.98, 30 dB quieter at 0.98, 9 dB
quieter with white noise at -60 dBFS at 0.93 (tests/test_recordings.py); noise near the quiet
bands' level lowers it (-50 dBFS: 0.86), so a copy remixed with loud noise can go unnoticed (of
excerpts of the real clips, 2 of 13 under pink noise at 10 dB SNR are found, 9 of 13 under the
babble of four others; `1_data_cleaning/recordings_study.py` measures it, ARCHITECTURE.md has the table).

Which pairs. Comparing every pair grows as the clips squared (0.7-1.4 ms a pair of 4 s generated
clips: 6-10 minutes for 1,020 clips, 4.7 hours for 5,020). An index of landmarks nominates the
pairs worth the comparison: each clip's spectral peaks (the largest log-mel value within
PEAK_FRAMES frames and PEAK_BANDS bands, the PEAKS_PER_S strongest of each second), each paired with
the next FAN_OUT peaks close after it into a key (its band, the other's band, the frames between),
as audio fingerprints are made (Wang 2003, "An industrial-strength audio search algorithm"). Two
clips that share a recording share many keys at one offset; a pair is compared when MIN_VOTES of
its shared keys agree on an offset within VOTE_BIN frames, and more than its matches spread evenly
over its offsets would put in any one bin but with probability CHANCE_PAIRS (chance_votes). Measured
(ARCHITECTURE.md, "Clips that are one recording"): every excerpt the comparison finds among the
degraded excerpts of the real clips has 19 or more such votes, unrelated real clips 6 at most; noise
in the sound multiplies the keys unrelated clips share by chance (copies of the real clips under pink
noise at 10 dB SNR: 24 % of unrelated pairs had MIN_VOTES, 8 % pass the chance level as well).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .constants import FRAME_RATE

MIN_SHARED_S = 2.0      # seconds of common audio that make two clips one recording
MIN_R = 0.85            # r of the two log-mels over that overlap, band and frame means out
CANDIDATES = 8          # offsets of the envelopes' cross-correlation checked on the whole spectrogram
MIN_ENVELOPE_R = 0.5    # ... each only when the two envelopes' Pearson r over its overlap reaches this
FLOOR_BELOW_LEVEL_DB = 30.0     # log-mels compared above this far under the clip's own level (see prepare)
# the index of landmarks (candidate_pairs)
PEAK_FRAMES = 5         # a peak is the largest log-mel value within this many frames either side
PEAK_BANDS = 3          # ... and this many mel bands
PEAKS_PER_S = 30        # the strongest peaks kept in each second
FAN_OUT = 6             # each peak paired with the next this many peaks ...
PAIR_FRAMES = 48        # ... that follow it within this many frames
PAIR_BANDS = 20         # ... and this many bands up or down
VOTE_BIN = 3            # offsets of a pair's shared keys counted in bins of this many frames
MIN_VOTES = 4           # shared keys at one offset that make a pair worth comparing
CHANCE_PAIRS = 1e-3     # ... and more than chance gives: a pair's matches spread evenly over its offsets would
#                         reach that many in one bin this rarely (noise in the sound multiplies chance matches)
PREPARED_BYTES = 1 << 28    # prepared log-mels kept for the comparisons, the least recently used given up past this
#                             (about 1.1 hours of audio); a clip given up is read and prepared again when a pair needs it


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


@dataclass(frozen=True)
class Prepared:
    """What every pair needs of one clip, made once: the floored log-mel, its standardised loudness
    envelope, and running sums of that envelope and of its square (with a leading 0)."""
    mel: np.ndarray
    envelope: np.ndarray
    sums: np.ndarray
    squares: np.ndarray


def prepare(mel: np.ndarray, floor_db: float | None = None) -> Prepared:
    """Below a floor lie codec and room noise, which two copies of one recording do not share. The
    floor follows the clip's gain: FLOOR_BELOW_LEVEL_DB under its level (the 95th percentile of its
    frames' mean log-mel), which for the real clips' median level (-48.8 dB) is the fixed input's
    -80 dB. The fixed -80 dB floor (`floor_db`, kept for recordings_study.py) missed excerpts 30 or
    40 dB quieter than their original in 12 of 13 clips each; this one finds all 26 (ARCHITECTURE.md,
    "Clips that are one recording")."""
    mel = np.asarray(mel, np.float64)
    if floor_db is None:
        floor_db = np.percentile(mel.mean(axis=1), 95) - FLOOR_BELOW_LEVEL_DB
    mel = np.maximum(mel, floor_db)
    envelope = _standardised(mel.mean(axis=1))
    return Prepared(mel, envelope, np.concatenate([[0.0], np.cumsum(envelope)]),
                    np.concatenate([[0.0], np.cumsum(envelope * envelope)]))


def shared_audio(a: np.ndarray, b: np.ndarray, min_seconds: float = MIN_SHARED_S,
                 min_envelope_r: float | None = MIN_ENVELOPE_R, floor_db: float | None = None,
                 trace: list | None = None) -> SharedAudio:
    """The offset at which two log-mels (frames x bands, at FRAME_RATE) are most alike, checked on
    the whole spectrogram, with how long they overlap there and how alike they are (r 0 when they
    cannot overlap by min_seconds, or when no candidate offset's envelopes correlate at
    min_envelope_r; None checks every candidate). Both in dB, each compared above a floor under its
    own level, or above `floor_db` when given (prepare); `trace` as in _shared."""
    return _shared(prepare(a, floor_db), prepare(b, floor_db), min_seconds, min_envelope_r, trace)


def _shared(a: Prepared, b: Prepared, min_seconds: float, min_envelope_r: float | None,
            trace: list | None = None) -> SharedAudio:
    """shared_audio on prepared clips. The candidates are the offsets where the two envelopes' mean
    product is highest; each is checked on the spectrogram (spectral_r, three quarters of the
    search's time) only when the envelopes' own Pearson r over that overlap reaches min_envelope_r.
    Measured (ARCHITECTURE.md, "Clips that are one recording"): every candidate of the 33 real clips
    and of 156 excerpts of them degraded as voiceface/degrade.py degrades that reached spectral r
    0.85 (297) had an envelope r of 0.724 or more; below 0.5 no candidate reached a spectral r of
    0.48, and 73 % of the unrelated pairs' candidates fall there. `trace` gets (offset, envelope r,
    spectral r or None when not checked) of each candidate (recordings_study.py)."""
    min_frames = int(round(min_seconds * FRAME_RATE))
    na, nb = len(a.mel), len(b.mel)
    if min(na, nb) < min_frames:
        return SharedAudio(0.0, 0.0, 0.0)
    size = 1 << int(np.ceil(np.log2(na + nb)))
    products = np.fft.irfft(np.fft.rfft(a.envelope, size) * np.conj(np.fft.rfft(b.envelope, size)), size)
    offsets = np.arange(-(nb - 1), na)                          # a[t + k] against b[t]
    sums = np.concatenate([products[size - (nb - 1):], products[:na]])
    overlap = np.minimum(na, offsets + nb) - np.maximum(0, offsets)
    usable = overlap >= min_frames
    mean_product = np.where(usable, sums / np.maximum(overlap, 1), -np.inf)
    best = SharedAudio(0.0, 0.0, 0.0)
    for i in np.argsort(mean_product)[::-1][:CANDIDATES]:
        if not usable[i]:
            break
        k, n = int(offsets[i]), int(overlap[i])
        a0, b0 = max(0, k), max(0, -k)
        sa, sb = a.sums[a0 + n] - a.sums[a0], b.sums[b0 + n] - b.sums[b0]
        spread = (a.squares[a0 + n] - a.squares[a0] - sa * sa / n) * (b.squares[b0 + n] - b.squares[b0] - sb * sb / n)
        envelope_r = (sums[i] - sa * sb / n) / np.sqrt(spread) if spread > 0 else -1.0
        if min_envelope_r is not None and envelope_r < min_envelope_r:
            if trace is not None:
                trace.append((k, float(envelope_r), None))
            continue
        r = spectral_r(a.mel[a0:a0 + n], b.mel[b0:b0 + n])
        if trace is not None:
            trace.append((k, float(envelope_r), r))
        if r > best.r:
            best = SharedAudio(k / FRAME_RATE, n / FRAME_RATE, r)
    return best


def _running_max(x: np.ndarray, half: int, axis: int) -> np.ndarray:
    """The largest value within `half` places either side along one axis."""
    out, n = x.copy(), x.shape[axis]
    for k in range(1, min(half, n - 1) + 1):
        early = [slice(None)] * x.ndim
        late = [slice(None)] * x.ndim
        early[axis], late[axis] = slice(0, n - k), slice(k, n)
        np.maximum(out[tuple(early)], x[tuple(late)], out=out[tuple(early)])
        np.maximum(out[tuple(late)], x[tuple(early)], out=out[tuple(late)])
    return out


def landmarks(prepared: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """(key, frame) of each of a prepared clip's landmark pairs: its spectral peaks above its floor,
    the PEAKS_PER_S strongest of each second, each paired with the next FAN_OUT peaks that follow
    within PAIR_FRAMES frames and PAIR_BANDS bands, the key coding both bands and the frames between."""
    mel = prepared.mel
    top = _running_max(_running_max(mel, PEAK_FRAMES, 0), PEAK_BANDS, 1)
    frame, band = np.nonzero((mel == top) & (mel > mel.min()))
    second = frame // FRAME_RATE
    order = np.lexsort((-mel[frame, band], second))           # each second's peaks, strongest first
    frame, band, second = frame[order], band[order], second[order]
    keep = np.arange(len(frame)) - np.searchsorted(second, second) < PEAKS_PER_S
    order = np.lexsort((band[keep], frame[keep]))
    frame, band = frame[keep][order], band[keep][order]
    keys, frames = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for k in range(1, FAN_OUT + 1):
        apart, up = frame[k:] - frame[:-k], band[k:] - band[:-k]
        ok = (apart > 0) & (apart <= PAIR_FRAMES) & (np.abs(up) <= PAIR_BANDS)
        keys.append(((band[:-k][ok] * (2 * PAIR_BANDS + 1) + up[ok] + PAIR_BANDS) * (PAIR_FRAMES + 1)
                     + apart[ok]).astype(np.int64))
        frames.append(frame[:-k][ok].astype(np.int64))
    return np.concatenate(keys), np.concatenate(frames)


def pair_votes(prepared: list[Prepared], min_votes: int = MIN_VOTES,
               chance: float | None = CHANCE_PAIRS) -> dict[tuple[int, int], int]:
    """{(i, j): votes} for the pairs, i < j, of prepared clips with at least min_votes landmark keys
    in common at one offset (within VOTE_BIN frames), and more than chance_votes allows (chance None:
    min_votes alone); votes the most at any offset."""
    return votes_of_landmarks([landmarks(p) for p in prepared], min_votes, chance)


def chance_votes(matches: np.ndarray, bins: np.ndarray, chance: float = CHANCE_PAIRS) -> np.ndarray:
    """For pairs with `matches` shared keys at any of `bins` offset bins: the fewest votes in one bin
    that matches spread evenly at random (Poisson, matches / bins a bin) reach in any bin with a
    probability under `chance` (a union bound over the bins). Noise in the sound adds peaks, so
    unrelated clips share more keys by chance (pink noise at 20 dB SNR: 9 % of the pairs between
    the real clips' noisy copies had MIN_VOTES at one offset); their best bin then grows with them."""
    rate = np.asarray(matches, np.float64) / np.maximum(np.asarray(bins, np.float64), 1.0)
    limit = chance / np.maximum(np.asarray(bins, np.float64), 1.0)     # per bin
    votes = np.zeros(rate.shape, np.int64)
    log_rate = np.log(np.maximum(rate, 1e-300))
    tail = np.ones(rate.shape)           # P(X >= k), from k = 0
    open_ = tail > limit
    k, log_factorial = 0, 0.0
    while open_.any():
        tail = tail - np.exp(k * log_rate - rate - log_factorial)     # less P(X = k): P(X >= k + 1)
        k += 1
        log_factorial += np.log(k)
        votes[open_] = k
        open_ &= tail > limit
    return votes


def votes_of_landmarks(marks: list[tuple[np.ndarray, np.ndarray]], min_votes: int = MIN_VOTES,
                       chance: float | None = CHANCE_PAIRS) -> dict[tuple[int, int], int]:
    """pair_votes from each clip's landmarks (what a search over more audio than memory holds keeps
    of a clip). Each clip's keys are looked up in an index of every clip's (sorted keys), so the work
    grows with the matches found, not with the pairs of clips."""
    if len(marks) < 2:
        return {}
    spans = np.array([int(m[1].max() - m[1].min()) if len(m[1]) else 0 for m in marks])
    keys = np.concatenate([m[0] for m in marks])
    frames = np.concatenate([m[1] for m in marks])
    clips = np.repeat(np.arange(len(marks)), [len(m[0]) for m in marks])
    order = np.argsort(keys, kind="stable")
    keys, frames, clips = keys[order], frames[order], clips[order]
    found: dict[tuple[int, int], int] = {}
    for i, (own_keys, own_frames) in enumerate(marks):
        lo, hi = np.searchsorted(keys, own_keys), np.searchsorted(keys, own_keys, side="right")
        counts = hi - lo
        at = np.repeat(hi - np.cumsum(counts), counts) + np.arange(counts.sum())   # every match's place
        later = clips[at] > i
        at = at[later]
        if not len(at):
            continue
        other = clips[at]
        offset = np.repeat(own_frames, counts)[later] - frames[at]               # own frame - other's frame
        partners, matches = np.unique(other, return_counts=True)          # (work of the matches, not of all clips)
        needed = np.full(len(partners), min_votes, np.int64)
        if chance is not None:               # the offsets a pair can have, in bins: both clips' spans of keys
            bins = (spans[i] + spans[partners]) / VOTE_BIN + 1
            needed = np.maximum(min_votes, chance_votes(matches, bins, chance))
        others, votes = [], []
        for shift in (0, VOTE_BIN // 2 + 1):                 # two binnings, so an offset near a bin edge counts whole
            place = (offset + shift - offset.min()) // VOTE_BIN
            width = int(place.max()) + 1
            code, count = np.unique(other * width + place, return_counts=True)
            enough = count >= needed[np.searchsorted(partners, code // width)]
            others.append(code[enough] // width)
            votes.append(count[enough])
        others, votes = np.concatenate(others), np.concatenate(votes)
        for j, v in zip(others.tolist(), votes.tolist()):
            found[i, j] = max(found.get((i, j), 0), v)
    return found


def candidate_pairs(prepared: list[Prepared], min_votes: int = MIN_VOTES) -> list[tuple[int, int]]:
    """The pairs (i, j), i < j, in order, that recording_groups compares: pair_votes' pairs."""
    return sorted(pair_votes(prepared, min_votes))


class _Kept:
    """make(i), kept for the next call with i up to `budget` bytes (None: every one), the least
    recently used given up first (and the two latest always kept: a pair)."""

    def __init__(self, make, budget: int | None):
        self.make, self.budget, self.kept, self.bytes = make, budget, OrderedDict(), 0

    def __call__(self, i: int) -> Prepared:
        if i in self.kept:
            self.kept.move_to_end(i)
            return self.kept[i]
        item = self.kept[i] = self.make(i)
        self.bytes += _size(item)
        while self.budget is not None and self.bytes > self.budget and len(self.kept) > 2:
            _, old = self.kept.popitem(last=False)
            self.bytes -= _size(old)
        return item


def _size(prepared: Prepared) -> int:
    return sum(a.nbytes for a in (prepared.mel, prepared.envelope, prepared.sums, prepared.squares))


def _in_blocks(pairs: list[tuple[int, int]], sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """The pairs in an order that reads each clip again at most once for each block of others: the clips
    cut, in order, into blocks of up to half the budget, and the pairs taken block pair by block pair
    (as a database joins two tables larger than memory). In order of the clips where they all fit."""
    if sum(sizes) <= budget:
        return pairs
    block, filled, current = [], 0, 0
    for size in sizes:
        if filled and filled + size > budget // 2:
            current, filled = current + 1, 0
        block.append(current)
        filled += size
    return sorted(pairs, key=lambda pair: (block[pair[0]], block[pair[1]], *pair))


def recording_groups(mels: Mapping[str, np.ndarray], min_seconds: float = MIN_SHARED_S, min_r: float = MIN_R,
                     min_envelope_r: float | None = MIN_ENVELOPE_R,
                     min_votes: int | None = MIN_VOTES,
                     chance: float | None = CHANCE_PAIRS) -> list[tuple[list[str], SharedAudio]]:
    """The clips that share a recording, as groups (joined through any shared pair), each with the
    clips in name order and its most alike pair's SharedAudio; clips that share nothing are left out.
    The pairs compared are those the index of landmarks nominates (candidate_pairs; with `chance`
    None on min_votes alone), or every pair when min_votes is None (the time then grows as the clips
    squared).

    `mels` is read one clip at a time, each once while the prepared clips fit PREPARED_BYTES: past
    that the index keeps only each clip's landmarks (about 10 MB an hour of audio, where a prepared
    log-mel takes 240 MB), the pairs are compared block by block (_in_blocks) and a clip in a
    nominated pair that was given up is read again. Given a mapping that reads each log-mel from its
    file when asked (MelFiles: stage 1.3, the benchmarks), it searches more audio than memory holds;
    with min_votes None every clip is kept, as every pair needs it. The groups do not depend on the
    order the pairs are compared in; past the budget, which of two equally long overlaps a group
    reports can."""
    names = sorted(mels)
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    prepared = _Kept(lambda i: prepare(mels[names[i]]), PREPARED_BYTES if min_votes is not None else None)
    if min_votes is None:
        pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    else:
        marks, sizes = [], []
        for i in range(len(names)):
            marks.append(landmarks(prepared(i)))
            sizes.append(_size(prepared(i)))
        pairs = _in_blocks(sorted(votes_of_landmarks(marks, min_votes, chance)), sizes, PREPARED_BYTES)
    evidence: dict[str, SharedAudio] = {}
    for i, j in pairs:
        first, second = names[i], names[j]
        found = _shared(prepared(i), prepared(j), min_seconds, min_envelope_r)
        if found.r >= min_r:
            a, b = root(first), root(second)
            parent[b] = a
            kept = [e for e in (evidence.pop(a, None), evidence.pop(b, None), found) if e is not None]
            evidence[a] = max(kept, key=lambda e: e.seconds)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    return [(members, evidence[r]) for r, members in groups.items() if len(members) > 1]


class MelFiles(Mapping):
    """{clip: its audio_features.npz} read as {clip: its log-mel}, each read from its file when asked,
    so that recording_groups holds one clip's at a time."""

    def __init__(self, files: Mapping[str, object]):
        self.files = dict(files)

    def __getitem__(self, name: str) -> np.ndarray:
        from .audio import read_audio_features
        return read_audio_features(self.files[name]).mel

    def __iter__(self):
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


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


def search_config() -> dict:
    """The search's constants, which stage 1.3's manifest records (a dataset made with others is rebuilt)."""
    return {"min_shared_s": MIN_SHARED_S, "min_r": MIN_R, "candidates": CANDIDATES, "min_envelope_r": MIN_ENVELOPE_R,
            "floor_below_level_db": FLOOR_BELOW_LEVEL_DB,
            "index": {"peak_frames": PEAK_FRAMES, "peak_bands": PEAK_BANDS, "peaks_per_s": PEAKS_PER_S,
                      "fan_out": FAN_OUT, "pair_frames": PAIR_FRAMES, "pair_bands": PAIR_BANDS, "vote_bin": VOTE_BIN,
                      "min_votes": MIN_VOTES, "chance_pairs": CHANCE_PAIRS}}


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
    rows = sorted(((shared_audio(mels[a], mels[b], min_envelope_r=None), a, b) for i, a in enumerate(names)
                   for b in names[i + 1:]),
                  key=lambda row: -row[0].r)
    for found, a, b in rows:
        print(f"{found.r:.3f}  {found.seconds:6.1f} s  {a}  {b}")


if __name__ == "__main__":
    import sys
    _main(sys.argv[1])
