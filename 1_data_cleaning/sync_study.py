"""The measurements behind voiceface/sync.py, on any folder of processed clips (a study, not a stage):

1. chance: the sync evidence of *mismatched* pairs (the mouth of one clip against the audio of
   another), whose 99th percentile of peak * sqrt(seconds) is sync.CHANCE_Z;
2. evidence: how many clips each way of estimating the lag places above that chance level
   (loudness alone, 3 or 6 mel bands, fitted in-sample or cross-validated);
3. precision: offsets injected by moving a confident clip's audio, recovered within a frame or not;
4. effect: the ridge baseline's jawOpen r (median over clips) on the two benchmarks, strictly causal
   and with 100 ms look-ahead, with no correction, with stage 1.3's correction, and with a second
   pass that re-estimates each clip's lag against a ridge model's prediction.

    python 1_data_cleaning/sync_study.py --processed-dir data/real/processed \\
        --speaker-manifest ../shared/realdata/manifest.csv --output runs/sync_study.md

The benchmarks are those of 3_inference/evaluate.py (speaker-dependent: leave one clip out of each
speaker with >= 4 clips; speaker-independent: 5 folds of whole speakers), with the ridge model only.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: PROCESSED_DIR as --processed-dir) -------
PROCESSED_DIR = REPO_ROOT / "data/processed"   # stage 1.1 and 1.2 outputs, one folder per clip
SPEAKER_MANIFEST = ""           # CSV naming each clip's speaker (the benchmarks need it)
OUTPUT = REPO_ROOT / "runs/sync_study.md"      # the tables
NULL_PAIRS = 10                 # mismatched pairs per clip for the chance level
SEED = 0
TYPICAL_LEAD_MS = "natural"     # the lead corrected clips are moved onto, as stage 1.3's setting: natural, median or ms
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv)
    import numpy as np
    from voiceface import sync
    from voiceface.audio import DB_FLOOR, read_audio_features
    from voiceface.constants import FRAME_RATE
    from voiceface.dataset import (ClipPose, has_both_outputs, model_inputs, normalize_targets, speaker_folds,
                                   speakers_from_manifest, synchronize_features)
    from voiceface.errors import InputError
    from voiceface.formats import read_blendshapes_json, write_text_atomic
    from voiceface.metrics import JAW_OPEN, pearson
    from voiceface.progress import say
    from voiceface.ridge import RidgeBaseline, shift_targets

    try:
        sync.lead_from_setting(TYPICAL_LEAD_MS, {})          # refused before the study's quarter hour, not after
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    processed = Path(PROCESSED_DIR)
    folders = sorted(p for p in processed.iterdir() if has_both_outputs(p)) if processed.is_dir() else []
    if len(folders) < 2:
        print(f"error: {processed}: {len(folders)} clip folders with stage 1.1 and 1.2 outputs; the study sets clips "
              "against each other: give --processed-dir a folder of several", file=sys.stderr)
        return 1
    try:
        speakers = speakers_from_manifest(SPEAKER_MANIFEST)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    raw = {f.name: (read_blendshapes_json(f / "blendshapes_and_pose.json"), read_audio_features(f / "audio_features.npz"))
           for f in folders}
    names = sorted(raw)
    clips = {n: synchronize_features(n, *raw[n]) for n in names}
    seconds = {n: clips[n].mask.sum() / FRAME_RATE for n in names}
    rng = np.random.default_rng(SEED)
    lines = [f"# Sync study: {len(names)} clips of {PROCESSED_DIR}", ""]

    def signal_of(mel, kind):
        if kind == "loudness":
            power = 10 ** (np.asarray(mel, np.float64) / 10)
            level = 10 * np.log10(power.mean(axis=1) + 1e-12)
            return sync.box_smooth(np.maximum(level, np.percentile(level, 10)), sync.SMOOTH_S)
        return sync.band_envelopes(mel, kind)

    def peak(mouth_clip, mel, kind, cross_validated):
        """(peak evidence, lag s) of a clip's mouth against the audio features `mel`."""
        clip = clips[mouth_clip]
        mouth = sync.box_smooth(np.nan_to_num(sync.mouth_track(clip.targets)), sync.SMOOTH_S)
        signal = signal_of(mel, kind)
        if cross_validated:
            lags, evidence = sync.evidence_by_lag(mouth, signal, clip.mask, int(sync.SEARCH_S * FRAME_RATE))
        else:                                   # the in-sample multiple correlation, for comparison
            signal = signal[:, None] if signal.ndim == 1 else signal
            lags = np.arange(-int(sync.SEARCH_S * FRAME_RATE), int(sync.SEARCH_S * FRAME_RATE) + 1)
            evidence = np.full(len(lags), np.nan)
            for i, lag in enumerate(lags):
                m, a = sync._lagged(mouth, int(lag), len(mouth))
                use = clip.mask[m]
                if use.sum() < sync.MIN_OVERLAP_S * FRAME_RATE:
                    continue
                x = signal[a][use]
                x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
                y = mouth[m][use] - mouth[m][use].mean()
                fit = x @ np.linalg.solve(x.T @ x + sync.RIDGE * np.eye(x.shape[1]), x.T @ y)
                evidence[i] = np.corrcoef(fit, y)[0, 1]
        best = int(np.nanargmax(evidence))
        return float(evidence[best]), lags[best] / FRAME_RATE

    def foreign_mel(clip, other):
        mel = clips[other].mel
        return np.concatenate([mel] * int(np.ceil(len(clips[clip].mel) / len(mel))))[:len(clips[clip].mel)]

    pairs = [(a, b) for a in names for b in rng.choice([x for x in names if x != a], min(NULL_PAIRS, len(names) - 1),
                                                        replace=False)]
    # 1 and 2: the chance level of each estimator, and the clips above it
    lines += ["## Chance level and the clips above it", "",
              "| estimator | chance: 99th percentile of peak·√s over mismatched pairs | clips above | their seconds |",
              "|---|---|---|---|"]
    for kind, cross_validated, label in (("loudness", False, "loudness"), (3, True, "3 bands, cross-validated"),
                                         (6, False, "6 bands, in-sample"), (6, True, "6 bands, cross-validated (used)")):
        chance = float(np.percentile([peak(a, foreign_mel(a, b), kind, cross_validated)[0] * np.sqrt(seconds[a])
                                      for a, b in pairs], 99))
        above = [n for n in names if peak(n, clips[n].mel, kind, cross_validated)[0] * np.sqrt(seconds[n]) > chance]
        lines.append(f"| {label} | {chance:.2f} | {len(above)} | {sum(seconds[n] for n in above):.0f} of "
                     f"{sum(seconds.values()):.0f} |")
        say(lines[-1])
    # 3: injected offsets on the confident clips
    estimates = {n: sync.estimate_clip_lag(clips[n].targets, clips[n].mel, clips[n].mask) for n in names}
    confident = [n for n in names if estimates[n].confident]
    errors = []
    for n in confident:
        for shift in (-30, -15, -5, 5, 15, 30):                 # frames the audio is moved later (> 0)
            mel = clips[n].mel
            moved = (np.concatenate([np.full((shift, mel.shape[1]), DB_FLOOR, np.float32), mel[:-shift]]) if shift > 0 else
                     np.concatenate([mel[-shift:], np.full((-shift, mel.shape[1]), DB_FLOOR, np.float32)]))
            again = sync.estimate_clip_lag(clips[n].targets, moved, clips[n].mask)
            errors.append(abs(again.lag_s - estimates[n].lag_s + shift / FRAME_RATE))
    errors = np.array(errors)
    lines += ["", f"Injected offsets (-300 to +300 ms) on the {len(confident)} confident clips: "
              f"{100 * np.mean(errors <= 1 / 30 + 1e-9):.0f} % recovered within one video frame (33 ms), "
              f"{100 * np.mean(errors <= 0.0101):.0f} % within 10 ms; largest error {1000 * errors.max():.0f} ms.", ""]
    say(lines[-2])
    # 4: the ridge baseline on the two benchmarks, with and without correction
    lead, how = sync.lead_from_setting(TYPICAL_LEAD_MS, estimates, speakers)
    corrected = {n: sync.correction_s(estimates[n], lead) for n in names}
    group = {n: speakers.get(n) or n for n in names}
    dependent = [[n] for n in names if sum(group[m] == group[n] for m in names) >= 4]
    independent = speaker_folds({n: len(clips[n].mel) for n in names}, speakers, 5, SEED)

    def benchmark(shifts: dict, lookahead: int, folds: list, same_speaker: bool) -> float:
        data = {}
        for n in names:
            clip = synchronize_features(n, *raw[n], shifts.get(n, 0.0))
            targets = np.nan_to_num(normalize_targets(clip.targets, ClipPose.of(clip.targets, clip.mask)))
            data[n] = (model_inputs(clip.mel, clip.vad, "fixed"), targets, clip.mask)
        rs = []
        for held in folds:
            train = [n for n in names if n not in held and (not same_speaker or group[n] == group[held[0]])]
            model = RidgeBaseline.fit(*zip(*[data[n] for n in train]), lookahead)
            for n in held:
                truth, known = shift_targets(data[n][1], data[n][2], lookahead)
                rs.append(pearson(model.predict(data[n][0])[known, JAW_OPEN], truth[known, JAW_OPEN]))
        return float(np.median(rs))

    def row(label, shifts):
        cells = [benchmark(shifts, lookahead, folds, same)
                 for folds, same in ((dependent, True), (independent, False)) for lookahead in (0, 10)]
        lines.append(f"| {label} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
        say(lines[-1])

    lines += [f"## The ridge baseline's jawOpen r (median over clips), typical lead {lead * 1000:.0f} ms ({how})", "",
              "| labels | speaker-dependent, causal | speaker-dependent, 100 ms | speaker-independent, causal | "
              "speaker-independent, 100 ms |", "|---|---|---|---|---|"]
    row("as the clips are", {})
    row("stage 1.3's correction", corrected)
    # the second pass: each clip's lag against a leave-one-clip-out ridge prediction (centred +-200 ms)
    data = {}
    for n in names:
        clip = synchronize_features(n, *raw[n], corrected[n])
        data[n] = (model_inputs(clip.mel, clip.vad, "fixed"),
                   np.nan_to_num(normalize_targets(clip.targets, ClipPose.of(clip.targets, clip.mask))), clip.mask)
    second = {}
    for n in names:
        model = RidgeBaseline.fit(*zip(*[data[m] for m in names if m != n]), 20, grid=(100.0,))
        prediction = model.predict(data[n][0])[:, JAW_OPEN]
        prediction = np.concatenate([prediction[20:], np.repeat(prediction[-1:], 20)])    # output t -> face t
        mouth = sync.box_smooth(np.nan_to_num(sync.mouth_track(clips[n].targets)), sync.SMOOTH_S)
        again = sync.estimate_lag_from(mouth, prediction, clips[n].mask)
        second[n] = again.lag_s if again.confident else corrected[n]
    row("second pass against a ridge prediction", second)
    write_text_atomic(OUTPUT, "\n".join(lines) + "\n")       # (makes the folder)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
