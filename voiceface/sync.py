"""Audio-video sync, defined once: how far each clip's sound is from its mouth movement, how sure
that estimate is, and the shift that corrects it. Stage 1.3, the synchronisation plot and the
evaluation all use this module.

Web video is routinely 0-400 ms out of sync, and each clip is out by its own amount; trained on
such clips a model learns a blur of offsets, and evaluated on them it is scored against the wrong
frames. Each confident clip is moved onto one lead, the lag a recording made in sync shows under
this estimator: NATURAL_LEAD_S, 0 ms. The mouth's first movements do come before the sound
(Schwartz & Savariaux 2014 measured -20 to +70 ms on chained syllables), but this estimator
weighs the whole opening against the whole sound, and on two corpora synchronised at their source
its pooled evidence peaks at 0 ms (ten GRID clips) and -10 ms (eight LRS2 clips). The median over
the web clips' confident speakers (-94 ms on the 33 real clips, still available as "median") is
mostly those uploads' own offset: models trained on it are 60-80 ms early on both corpora
(ARCHITECTURE.md, "Which lead the labels keep").

The estimate. For every lag L in +-SEARCH_S, the mouth track m(t + L) is fitted by ridge
regression on N_BANDS smoothed band envelopes of the log-mel at t, and the cross-validated
correlation of that fit is the evidence for L; the lag is the argmax (refined between frames by a
parabola). Loudness alone is one band; several bands follow vowels (low, open jaw) apart from
fricatives (high, narrow jaw): on the 33 real clips six bands found a trustworthy lag in 12 clips
where loudness found one in 6.

Confidence. Speech has a syllable rhythm, so an *unrelated* recording also correlates with a mouth
at some lag, and the shorter the clip the higher that chance peak: measured on real clips with the
mouth of one clip against the audio of another (330 pairs), the peak evidence of such mismatched
pairs has a 99th percentile of 1.52 / sqrt(seconds) (0.68 for a 5 s clip, 0.34 for 20 s). The
confidence is the peak over that chance level (>= 1: above 99 % of unrelated pairs), the role
SyncNet's median-minus-minimum distance plays there (Chung & Zisserman, "Out of time: automated
lip sync in the wild", 2016). A clip under it, or whose best lag is on the edge of the search, is
"unsure": its offset cannot be told from the audio, and the user chooses to keep it uncorrected
or drop it. For clips above it, offsets injected by shifting the audio are recovered within one
video frame (tested on generated clips; measured on the real ones).

The second pass (second_pass; 1_data_cleaning/sync_second_pass.py, stage 1.3 --second-pass). A
trained model's predicted jaw follows the mouth far better than six band envelopes, so against it
some clips the first pass could not judge become clear. The prediction must come from a model that
never heard the clip (a benchmark's fold model); its lags are calibrated against the first pass on
the clips both trust, and only clips unsure in the first pass take them: wherever the sound
alone can place a clip, its own estimate stands.

Sign convention (as everywhere in this project): a negative lag means the mouth moves before the
sound. A clip is corrected by taking each audio frame's target from `shift` later on the video's
clock, shift = lag - typical lead, which moves its lag onto the typical lead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import BLENDSHAPE_NAMES, FRAME_RATE

SEARCH_S = 1.0                  # lags searched either way: web video is out by up to ~0.5 s, plus the natural lead
N_BANDS = 6                     # mel bands whose envelopes explain the mouth (loudness alone is 1)
SMOOTH_S = 0.05                 # envelopes and mouth smoothed by a centred box this long (the face moves at <10 Hz)
RIDGE = 1.0                     # ridge strength of the per-lag fit, on standardised envelopes
CHANCE_Z = 1.52                 # 99th percentile of peak * sqrt(seconds) over mismatched real clips (see above)
MIN_OVERLAP_S = 2.0             # a lag needs this much usable overlap to count
NATURAL_LEAD_S = 0.0            # the lag clips are moved to: a recording in sync, as this estimator sees it (above)
MODEL_CHANCE_Z = 1.41          # the same for a fold model's predicted jawOpen against another clip's mouth (1,056 pairs)
MIN_CHANCE_PAIRS = 300          # the second pass measures its own chance level only from this many mismatched pairs
MAX_CHANCE_PAIRS = 3000         # ... and from at most this many, drawn at random (the pairs grow as clips squared)
MOUTH_SHAPES = ("jawOpen",)     # the mouth-opening track the audio is aligned to
CV_BLOCK_S = 1.0                # blocks alternately fitted and scored (cross-validated evidence)

SYNC_METHOD = "cross-validated ridge fit of jawOpen on mel band envelopes, per lag"


def sync_config() -> dict:
    """The estimator's constants: stored in the dataset manifest beside each clip's figures."""
    return {"method": SYNC_METHOD, "search_s": SEARCH_S, "n_bands": N_BANDS, "smooth_s": SMOOTH_S, "ridge": RIDGE,
            "chance_z": CHANCE_Z, "min_overlap_s": MIN_OVERLAP_S, "cv_block_s": CV_BLOCK_S,
            "mouth_shapes": list(MOUTH_SHAPES)}


@dataclass
class SyncEstimate:
    """One clip's sync estimate. lag_s < 0: the mouth moves first."""
    lag_s: float
    peak_r: float               # evidence at the chosen lag
    confidence: float           # peak_r over the chance level for this much audio (>= 1: trusted)
    confident: bool
    reason: str                 # why not confident ("" when confident)

    def to_dict(self) -> dict:
        return {"measured_lag_ms": round(self.lag_s * 1000, 1), "evidence": round(self.peak_r, 3),
                "confidence": round(self.confidence, 3), "confident": self.confident,
                **({"unsure_because": self.reason} if self.reason else {})}


def box_smooth(x: np.ndarray, seconds: float) -> np.ndarray:
    """Centred moving average over `seconds` along axis 0 (offline: the future is allowed here)."""
    width = max(1, int(round(seconds * FRAME_RATE)))
    if width == 1:
        return np.asarray(x, np.float64)
    kernel = np.ones(width) / width
    x = np.asarray(x, np.float64)
    pad = [(width // 2, width - 1 - width // 2)] + [(0, 0)] * (x.ndim - 1)
    padded = np.pad(x, pad, mode="edge")
    if x.ndim == 1:
        return np.convolve(padded, kernel, mode="valid")
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(x.shape[1])], axis=1)


def band_envelopes(mel_db: np.ndarray, n_bands: int = N_BANDS) -> np.ndarray:
    """(T, 80) dB -> (T, n_bands): each band's mean power in dB, floored at its own 10th
    percentile (pauses' noise carries no timing), smoothed by SMOOTH_S."""
    edges = np.linspace(0, mel_db.shape[1], n_bands + 1).round().astype(int)
    power = 10.0 ** (np.asarray(mel_db, np.float64) / 10.0)
    bands = np.stack([10 * np.log10(power[:, a:b].mean(axis=1) + 1e-12) for a, b in zip(edges[:-1], edges[1:])], 1)
    bands = np.maximum(bands, np.percentile(bands, 10, axis=0))
    return box_smooth(bands, SMOOTH_S)


def mouth_track(targets: np.ndarray) -> np.ndarray:
    """The mouth-opening signal the audio is aligned to, from (T, >= 52) targets (NaN allowed)."""
    columns = [BLENDSHAPE_NAMES.index(name) for name in MOUTH_SHAPES]
    return np.asarray(targets, np.float64)[:, columns].mean(axis=1)


def _lagged(series: np.ndarray, lag: int, length: int) -> tuple[slice, slice]:
    """Slices (into the mouth, into the audio) pairing mouth[t + lag] with audio[t]."""
    if lag >= 0:
        return slice(lag, length), slice(0, length - lag)
    return slice(0, length + lag), slice(-lag, length)


def evidence_by_lag(mouth: np.ndarray, envelopes: np.ndarray, valid: np.ndarray,
                    max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """(lags in frames, evidence per lag): the cross-validated correlation between mouth[t + lag]
    and its ridge fit on envelopes[t] (NaN where the overlap is too short). The clip is cut into
    blocks of CV_BLOCK_S; the weights are fitted on the even blocks and scored on the odd ones and
    the other way round, and the two correlations averaged. An in-sample multiple correlation would
    be biased upwards by about sqrt(K / N) (0.17 for 6 bands on a 3 s clip), most at the lags with
    the least overlap; this one is unbiased and keeps its sign. envelopes (T, K) or (T,).

    Everything a fold's fit and score need is in each half's count, and the sums of products of
    [envelopes, mouth] centred on that half's own mean (so no precision is lost, and a mouth that
    does not move in a half has a spread of 0 there, as the reference finds), so each lag costs two
    small products and the ridge algebra runs for all lags at once: 5.6-6.0x faster than
    evidence_by_lag_plainly (its reference; 1_data_cleaning/benchmark_dataset.py on the 33 real
    clips), which took 9.0 of stage 1.3's 13.9 s there."""
    envelopes = envelopes[:, None] if envelopes.ndim == 1 else envelopes
    length = min(len(mouth), len(envelopes))
    k = envelopes.shape[1]
    lags = np.arange(-max_lag, max_lag + 1)
    block = int(round(CV_BLOCK_S * FRAME_RATE))
    usable = np.asarray(valid, bool)[:length] & np.isfinite(mouth[:length])
    odd_block = (np.arange(length) // block) % 2 == 1           # by position in the lag's overlap
    products = np.zeros((len(lags), 2, k + 1, k + 1))          # per lag and half: [x, y] centred, products summed
    counts = np.zeros((len(lags), 2))
    counted = np.zeros(len(lags), bool)
    for i, lag in enumerate(lags):
        m_slice, a_slice = _lagged(mouth, int(lag), length)
        use = usable[m_slice]
        if np.count_nonzero(use) < MIN_OVERLAP_S * FRAME_RATE:
            continue
        counted[i] = True
        z = np.empty((len(use), k + 1))
        z[:, :k], z[:, k] = envelopes[a_slice], mouth[m_slice]
        odd = odd_block[:len(use)]
        for h, rows in enumerate((use & ~odd, use & odd)):
            part = z[rows]
            if len(part):
                part -= part.mean(axis=0)
                products[i, h], counts[i, h] = part.T @ part, len(part)
    evidence = np.full(len(lags), np.nan)
    if not counted.any():
        return lags, evidence
    # fold f fits on half f and is scored on the other: (L, 2, ...) each
    fit, test = products[counted], products[counted][:, ::-1]
    n_fit, n_test = counts[counted], counts[counted][:, ::-1]
    folds = (n_fit >= 10) & (n_test >= 10)
    std = np.maximum(np.sqrt(np.diagonal(fit[..., :k, :k], axis1=-2, axis2=-1) / np.maximum(n_fit, 1)[..., None]), 1e-9)
    # on envelopes standardised by the fitting half: xf'xf = Cxx / (s s'), xf'yf = Cxy / s
    system = fit[..., :k, :k] / (std[..., :, None] * std[..., None, :]) + RIDGE * np.eye(k)
    weights = np.linalg.solve(system, (fit[..., :k, k] / std)[..., None])[..., 0]
    beta = weights / std                     # the fit on the scoring half: envelopes @ beta, plus a constant
    fit_var = np.einsum("...i,...ij,...j->...", beta, test[..., :k, :k], beta)
    covariance = np.einsum("...i,...i->...", beta, test[..., :k, k])
    truth_var = test[..., k, k]
    n = np.maximum(n_test, 1)
    spread = (np.sqrt(np.maximum(fit_var, 0) / n) > 1e-12) & (np.sqrt(truth_var / n) > 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(spread, covariance / np.sqrt(fit_var * truth_var), 0.0)
    scored = folds.any(axis=1)
    mean_score = np.where(folds, scores, 0.0).sum(axis=1) / np.maximum(folds.sum(axis=1), 1)
    evidence[np.flatnonzero(counted)[scored]] = mean_score[scored]
    return lags, evidence


def evidence_by_lag_plainly(mouth: np.ndarray, envelopes: np.ndarray, valid: np.ndarray,
                            max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """evidence_by_lag as its docstring says it, one lag and one fold at a time: the reference the
    tests hold it to and its benchmark times it against (1_data_cleaning/benchmark_dataset.py).
    Stage 1.3 ran this until 2026-12-06."""
    envelopes = envelopes[:, None] if envelopes.ndim == 1 else envelopes
    length = min(len(mouth), len(envelopes))
    lags = np.arange(-max_lag, max_lag + 1)
    evidence = np.full(len(lags), np.nan)
    block = int(round(CV_BLOCK_S * FRAME_RATE))
    for i, lag in enumerate(lags):
        m_slice, a_slice = _lagged(mouth, int(lag), length)
        use = valid[m_slice] & np.isfinite(mouth[m_slice])
        if use.sum() < MIN_OVERLAP_S * FRAME_RATE:
            continue
        y, x = mouth[m_slice], envelopes[a_slice]
        half = (np.arange(len(y)) // block) % 2
        scores = []
        for fold in (0, 1):
            fit_on, test_on = use & (half == fold), use & (half != fold)
            if fit_on.sum() < 10 or test_on.sum() < 10:
                continue
            mean, std = x[fit_on].mean(axis=0), np.maximum(x[fit_on].std(axis=0), 1e-9)
            xf, yf = (x[fit_on] - mean) / std, y[fit_on] - y[fit_on].mean()
            weights = np.linalg.solve(xf.T @ xf + RIDGE * np.eye(x.shape[1]), xf.T @ yf)
            fit = ((x[test_on] - mean) / std) @ weights
            truth = y[test_on]
            scores.append(float(np.corrcoef(fit, truth)[0, 1]) if fit.std() > 1e-12 and truth.std() > 1e-12 else 0.0)
        if scores:
            evidence[i] = float(np.mean(scores))
    return lags, evidence


def estimate_lag_from(mouth: np.ndarray, signal: np.ndarray, valid: np.ndarray,
                      search_s: float = SEARCH_S, chance_z: float = CHANCE_Z) -> SyncEstimate:
    """The lag of `mouth` against an audio-derived `signal` ((T,) or (T, K), on the same frames),
    with its confidence against `chance_z` (peak * sqrt(seconds) that unrelated pairs reach). Used
    with band envelopes (estimate_clip_lag) and, in the second pass, with a model's predicted
    mouth track (second_pass, with MODEL_CHANCE_Z)."""
    max_lag = int(round(search_s * FRAME_RATE))
    lags, evidence = evidence_by_lag(mouth, signal, valid, max_lag)
    if not np.isfinite(evidence).any():
        return SyncEstimate(0.0, 0.0, 0.0, False, f"under {MIN_OVERLAP_S:g} s of usable overlap")
    best = int(np.nanargmax(evidence))
    peak = float(evidence[best])
    inside = 0 < best < len(lags) - 1 and np.isfinite(evidence[best - 1]) and np.isfinite(evidence[best + 1])
    offset = 0.0
    if inside:
        a, b, c = evidence[best - 1], evidence[best], evidence[best + 1]
        denominator = a - 2 * b + c
        offset = float(np.clip(0.5 * (a - c) / denominator, -0.5, 0.5)) if denominator < 0 else 0.0
    lag_s = (lags[best] + offset) / FRAME_RATE
    seconds = float(np.asarray(valid, bool).sum()) / FRAME_RATE
    chance = chance_z / np.sqrt(max(seconds, 1e-9))
    confidence = peak / chance
    reason = ""
    if not inside:
        reason = f"best lag on the edge of the +-{search_s:g} s search"
    elif confidence < 1.0:
        reason = (f"evidence {peak:.2f} is within what unrelated audio reaches over {seconds:.1f} s "
                  f"(99th percentile {chance:.2f})")
    return SyncEstimate(lag_s, peak, confidence, not reason, reason)


def smoothed_mouth(targets: np.ndarray) -> np.ndarray:
    """The mouth track both passes align, smoothed as the envelopes are (masked frames as 0)."""
    return box_smooth(np.nan_to_num(mouth_track(targets)), SMOOTH_S)


def estimate_clip_lag(targets: np.ndarray, mel_db: np.ndarray, mask: np.ndarray,
                      search_s: float = SEARCH_S) -> SyncEstimate:
    """A clip's lag from its synchronised targets (T, 59; NaN where masked) and mel (T, 80) dB."""
    return estimate_lag_from(smoothed_mouth(targets), band_envelopes(mel_db), np.asarray(mask, bool), search_s)


def typical_lead_s(estimates: dict[str, SyncEstimate], speakers: dict[str, str] | None = None,
                   fallback_s: float = NATURAL_LEAD_S) -> tuple[float, str]:
    """The corpus's typical lag, and how it was found: the median over speakers of each speaker's
    median lag over confident clips (a speaker with five clips counts once: on the real clips one
    speaker held 5 of the 12 confident clips and pulled a per-clip median from -59 to -102 ms);
    fallback_s when no clip is confident."""
    speakers = speakers or {}
    by_speaker: dict[str, list[float]] = {}
    for clip, estimate in estimates.items():
        if estimate.confident:
            by_speaker.setdefault(speakers.get(clip) or clip, []).append(estimate.lag_s)
    if not by_speaker:
        return fallback_s, f"no confident clip: the default {fallback_s * 1000:g} ms"
    lead = float(np.median([np.median(lags) for lags in by_speaker.values()]))
    clips = sum(len(v) for v in by_speaker.values())
    return lead, f"median over {len(by_speaker)} speakers of their confident clips ({clips} clips)"


# how stage 1.3 handled a clip's offset: each clip's "correction" in the dataset manifest
BY_ESTIMATE = "estimated"                               # a confident clip moved onto the typical lead
BY_SECOND_PASS = "second pass (--second-pass)"          # an unsure clip a trained model's jaw placed
BY_HAND = "by hand (--clip-lag-corrections)"
UNSURE_KEPT = "none: unsure, kept uncorrected"
CORRECTION_OFF = "off (--no-sync-correction)"

LEAD_CHOICES = "natural (NATURAL_LEAD_S), median (the corpus's median over speakers of confident clips) or a number of ms"


def lead_from_setting(setting, estimates: dict[str, SyncEstimate],
                      speakers: dict[str, str] | None = None) -> tuple[float, str]:
    """The lead clips are moved onto, and how it was chosen, from stage 1.3's --typical-lead-ms:
    "natural", "median" or milliseconds. ValueError names the choices for anything else."""
    text = str(setting).strip().lower()
    if text == "natural":
        return NATURAL_LEAD_S, "natural: a recording in sync, as measured on GRID and LRS2"
    if text == "median":
        return typical_lead_s(estimates, speakers)
    try:
        ms = float(text)
    except ValueError:
        ms = float("nan")
    if not np.isfinite(ms):
        raise ValueError(f"--typical-lead-ms {setting}: give {LEAD_CHOICES}")
    return ms / 1000, "given in ms"


def correction_s(estimate: SyncEstimate, lead_s: float) -> float:
    """The shift that moves a confident clip's lag onto lead_s (0 for an unsure one): targets are
    then taken from that much later on the video's clock (negative: earlier)."""
    return estimate.lag_s - lead_s if estimate.confident else 0.0


# --- the second pass: each clip's lag against a model's prediction instead of band envelopes ----
SECOND_PASS_FORMAT = "voiceface/sync-second-pass"
SECOND_PASS_FORMAT_VERSION = 1


def read_second_pass(path) -> tuple[dict, dict]:
    """A second-pass file's clips ({name: row of second_pass}) and what stage 1.3's manifest records
    of it (file, SHA-256, calibration, chance level, the clips it places); InputError naming the
    file when it is not one, FormatError when it is of another version."""
    import json
    from pathlib import Path
    from .errors import InputError
    from .formats import check_header, sha256_file
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"--second-pass {path}: cannot be read ({error}); give the JSON sync_second_pass.py wrote")
    if not isinstance(document, dict) or not isinstance(document.get("clips"), dict):
        raise InputError(f"--second-pass {path}: not a second-pass file; give the JSON sync_second_pass.py wrote")
    check_header(document, path, SECOND_PASS_FORMAT, SECOND_PASS_FORMAT_VERSION)
    header = {"file": str(path), "sha256": sha256_file(path)[:16], "calibration_ms": document["calibration_ms"],
              "chance_z": document["chance_z"],
              "clips_it_places": sorted(n for n, r in document["clips"].items() if r["corrects"])}
    return document["clips"], header


def mismatched_chance_z(mouths: dict[str, np.ndarray], signals: dict[str, np.ndarray],
                        valids: dict[str, np.ndarray], max_pairs: int = MAX_CHANCE_PAIRS,
                        seed: int = 0) -> tuple[float, int]:
    """The 99th percentile of peak evidence * sqrt(seconds) over pairs of one clip's mouth with
    another clip's signal (what unrelated speech reaches): every pair, or `max_pairs` of them drawn
    at random (seeded) from a larger corpus; and the number of pairs used."""
    max_lag = int(round(SEARCH_S * FRAME_RATE))
    pairs = [(a, b) for a in mouths for b in signals if a != b]
    if len(pairs) > max_pairs:
        chosen = np.random.default_rng(seed).choice(len(pairs), max_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(chosen)]
    z = []
    for a, b in pairs:
        n = min(len(mouths[a]), len(signals[b]))
        _, evidence = evidence_by_lag(mouths[a][:n], signals[b][:n], valids[a][:n], max_lag)
        if np.isfinite(evidence).any():
            z.append(np.nanmax(evidence) * np.sqrt(valids[a][:n].sum() / FRAME_RATE))
    return (float(np.percentile(z, 99)) if z else float("nan")), len(z)


def second_pass(mouths: dict[str, np.ndarray], predictions: dict[str, np.ndarray], valids: dict[str, np.ndarray],
                first: dict[str, SyncEstimate]) -> dict:
    """Each clip's lag against a model's predicted mouth track (`predictions`, on the clip's frames
    as they are: no shift; from a model that never heard the clip), beside the first pass's band
    estimate (`first`). The model's "in sync" is where it learnt the lead, give or take its own
    delay, so its lags are calibrated: less the median of (model lag - band lag) over the clips both
    passes are confident of. Its chance level: MODEL_CHANCE_Z, or the one measured here on
    mismatched pairs (at most MAX_CHANCE_PAIRS of them) where there are MIN_CHANCE_PAIRS and it is higher.

    Returns {"chance_z_measured", "pairs", "chance_z", "calibration_ms", "calibrated_on", "clips":
    {name: {"band": first's dict, "model_lag_ms", "model_evidence", "model_confidence",
    "model_confident", "lag_ms" (calibrated), "corrects": whether stage 1.3 --second-pass moves it
    (unsure in the first pass, confident in this one)}}}."""
    smoothed = {name: box_smooth(np.asarray(p, np.float64), SMOOTH_S) for name, p in predictions.items()}
    measured, pairs = mismatched_chance_z(mouths, smoothed, valids)
    chance_z = max(MODEL_CHANCE_Z, measured) if pairs >= MIN_CHANCE_PAIRS else MODEL_CHANCE_Z
    estimates = {name: estimate_lag_from(mouths[name], smoothed[name], valids[name], chance_z=chance_z)
                 for name in predictions}
    both = [name for name, e in estimates.items() if e.confident and first[name].confident]
    calibration = float(np.median([estimates[n].lag_s - first[n].lag_s for n in both])) if both else 0.0
    clips = {}
    for name, e in estimates.items():
        clips[name] = {"band": first[name].to_dict(), "model_lag_ms": round(e.lag_s * 1000, 1),
                       "model_evidence": round(e.peak_r, 3), "model_confidence": round(e.confidence, 3),
                       "model_confident": e.confident, "lag_ms": round((e.lag_s - calibration) * 1000, 1),
                       "corrects": bool(e.confident and not first[name].confident),
                       **({"model_unsure_because": e.reason} if e.reason else {})}
    return {"chance_z_measured": None if not np.isfinite(measured) else round(measured, 3), "pairs": pairs,
            "chance_z": round(chance_z, 3), "calibration_ms": round(calibration * 1000, 1),
            "calibrated_on": sorted(both), "clips": clips}
