"""Audio-video sync (voiceface/sync.py): the estimate on arrays with known answers, and end to end
on generated clips whose sound was moved by known amounts before muxing."""
import json

import numpy as np
import pytest

from conftest import QUICK_TRAINING, built_once, run_script
from voiceface import sync
from voiceface.constants import BLENDSHAPE_NAMES, FRAME_RATE

JAW = BLENDSHAPE_NAMES.index("jawOpen")


def smooth_noise(n, seed, seconds=0.08):
    rng = np.random.default_rng(seed)
    return sync.box_smooth(rng.standard_normal(n), seconds)


def test_a_known_lag_between_mouth_and_bands_is_found_to_the_frame():
    n = 1200                                                    # 12 s
    mouth = smooth_noise(n, 0)
    for lag in (-40, -12, 0, 25, 60):                           # frames; < 0: the mouth moves first
        # bands that follow the mouth `lag` frames later, with some noise of their own
        bands = np.stack([np.roll(mouth, lag) * w + 0.3 * smooth_noise(n, 10 + k) for k, w in enumerate((1, -0.5, 2))], 1)
        estimate = sync.estimate_lag_from(mouth, bands, np.ones(n, bool))
        assert estimate.confident, estimate
        assert abs(estimate.lag_s * FRAME_RATE - (-lag)) <= 1.0


def test_the_evidence_is_each_lags_cross_validated_ridge_fit_as_written_out_plainly():
    """evidence_by_lag computes every lag's two folds from sums of products; its reference fits and
    scores each fold as the docstring says, one lag at a time. The two agree on a mouth with masked
    frames, a stretch of NaN and a stretch where it does not move (a fold with no spread scores 0, a
    lag with too little overlap is NaN), and find the lag put in."""
    rng = np.random.default_rng(3)
    frames, lags = 700, 40
    envelopes = -50 + sync.box_smooth(rng.normal(0, 8, (frames, sync.N_BANDS)), 0.03)
    mouth = np.roll(0.02 * envelopes[:, 2] + rng.normal(0, 0.05, frames), 7)       # mouth[t + 7] follows envelopes[t]
    mouth[100:160], mouth[600:] = np.nan, -1.0           # -1.0: about its mean, 0.02 * -50
    valid = rng.random(frames) > 0.2
    block = int(round(sync.CV_BLOCK_S * FRAME_RATE))

    found, evidence = sync.evidence_by_lag(mouth, envelopes, valid, lags)
    assert list(found) == list(range(-lags, lags + 1))
    np.testing.assert_allclose(evidence, sync.evidence_by_lag_plainly(mouth, envelopes, valid, lags)[1], atol=1e-10)
    assert np.isfinite(evidence).all() and found[np.argmax(evidence)] == 7
    # a mouth that moves only in the first block: one fold scores on still blocks, the other fits on
    # them (weights of 0, a fit with no spread); each scores 0, as written out plainly, not NaN
    everywhere = np.ones(frames, bool)
    for level in (0.1, 0.1234567, 0.73):
        still = np.full(frames, level)
        still[:block] = rng.random(block)
        for evidence_of in (sync.evidence_by_lag, sync.evidence_by_lag_plainly):
            assert (evidence_of(still, envelopes, everywhere, 3)[1] == 0.0).all(), (level, evidence_of)
        # too short an overlap: NaN
        assert np.isnan(evidence_of(mouth[:150], envelopes[:150], valid[:150], 2)[1]).all()


def test_unrelated_audio_is_not_trusted():
    n = 600                                                     # 6 s: the length of many web clips
    trusted = [sync.estimate_lag_from(smooth_noise(n, seed), np.stack([smooth_noise(n, 100 + seed + k) for k in range(6)], 1),
                                      np.ones(n, bool)).confident for seed in range(20)]
    assert sum(trusted) <= 2                                    # the chance level is the 99th percentile
    too_short = sync.estimate_lag_from(smooth_noise(150, 0), smooth_noise(150, 0), np.ones(150, bool))
    assert not too_short.confident and "overlap" in too_short.reason


def test_the_typical_lead_counts_each_speaker_once_and_the_correction_moves_a_lag_onto_it():
    def estimate(lag_s, confident=True):
        return sync.SyncEstimate(lag_s, 0.5, 2.0 if confident else 0.5, confident, "" if confident else "unsure")
    estimates = {"a1": estimate(-0.2), "a2": estimate(-0.21), "a3": estimate(-0.19), "b": estimate(-0.05),
                 "c": estimate(-0.04), "d": estimate(0.4, confident=False)}
    speakers = {"a1": "A", "a2": "A", "a3": "A"}
    lead, how = sync.typical_lead_s(estimates, speakers)
    assert lead == pytest.approx(-0.05) and "3 speakers" in how          # a per-clip median would say -0.19
    assert sync.typical_lead_s({"d": estimates["d"]}, {})[0] == sync.NATURAL_LEAD_S
    assert sync.correction_s(estimates["a1"], lead) == pytest.approx(-0.15)   # targets taken 150 ms earlier
    assert sync.correction_s(estimates["d"], lead) == 0.0                    # unsure: left as it is
    # stage 1.3's --typical-lead-ms: a recording in sync by default, the corpus median on request, or ms
    assert sync.lead_from_setting("natural", estimates, speakers)[0] == sync.NATURAL_LEAD_S == 0.0
    assert sync.lead_from_setting("median", estimates, speakers)[0] == pytest.approx(-0.05)
    assert sync.lead_from_setting("-40", estimates, speakers)[0] == pytest.approx(-0.04)
    for bad in ("soon", "nan", "inf"):
        with pytest.raises(ValueError, match="natural"):
            sync.lead_from_setting(bad, estimates, speakers)


def test_the_second_pass_calibrates_a_models_lags_and_places_only_what_it_can_tell():
    n = 1200                                                    # 12 s clips
    mouths, predictions, first = {}, {}, {}
    band_lags = {"a": -0.2, "b": -0.1, "c": 0.0, "d": 0.15}     # the first pass sure of these four
    model_delay = 0.03                                          # the model's own "in sync" sits 30 ms late
    for k, (name, lag) in enumerate(list(band_lags.items()) + [("unsure", -0.12), ("unrelated", -0.12)]):
        mouths[name] = smooth_noise(n, 200 + k)
        frames = int(round((lag + model_delay) * FRAME_RATE))
        source = smooth_noise(n, 300 + k) if name == "unrelated" else mouths[name]
        predictions[name] = np.roll(source, -frames) + 0.3 * smooth_noise(n, 400 + k)
        sure = name in band_lags
        first[name] = sync.SyncEstimate(band_lags.get(name, 0.4), 0.5, 2.0 if sure else 0.5, sure, "" if sure else "unsure")
    valids = {name: np.ones(n, bool) for name in mouths}
    result = sync.second_pass(mouths, predictions, valids, first)
    assert result["pairs"] == 30 and result["chance_z"] == sync.MODEL_CHANCE_Z     # too few pairs to measure its own
    smoothed = {name: sync.box_smooth(p, sync.SMOOTH_S) for name, p in predictions.items()}
    every = sync.mismatched_chance_z(mouths, smoothed, valids)
    drawn = sync.mismatched_chance_z(mouths, smoothed, valids, max_pairs=12)   # a large corpus: a draw of its pairs
    assert every[1] == 30 and drawn[1] == 12 and np.isfinite(drawn[0])
    assert drawn == sync.mismatched_chance_z(mouths, smoothed, valids, max_pairs=12)    # seeded: the same draw
    assert result["calibrated_on"] == ["a", "b", "c", "d"]
    assert abs(result["calibration_ms"] - 30) <= 10
    rows = result["clips"]
    assert rows["unsure"]["corrects"] and abs(rows["unsure"]["lag_ms"] - (-120)) <= 10     # within a frame
    assert not rows["unrelated"]["model_confident"] and not rows["unrelated"]["corrects"]
    assert not any(rows[name]["corrects"] for name in band_lags)     # the first pass's estimate stands for these
    for name, lag in band_lags.items():
        assert abs(rows[name]["lag_ms"] - 1000 * lag) <= 10


def test_stage_1_3_refuses_a_file_that_is_not_a_second_pass_in_one_line(tmp_path):
    (tmp_path / "processed").mkdir()
    for text in ("not json", json.dumps({"clips": []}), json.dumps({"format": "other", "clips": {}})):
        (tmp_path / "second.json").write_text(text)
        result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", tmp_path / "processed",
                            "--output-dir", tmp_path / "dataset", "--second-pass", tmp_path / "second.json")
        assert result.returncode == 1 and result.stderr.strip().count("\n") == 0, result.stderr
        assert "second.json" in result.stderr and not (tmp_path / "dataset").exists()


def test_stage_1_3_refuses_a_lead_that_is_not_one_in_one_line(tmp_path):
    result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", tmp_path, "--output-dir",
                        tmp_path / "dataset", "--typical-lead-ms", "early")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "--typical-lead-ms early" in result.stderr, result.stderr
    assert not (tmp_path / "dataset").exists()


# audio moved later (> 0) or earlier (< 0) than the picture by these many seconds, as a badly made
# upload would have it; mouth_lead moves the mouth ahead of its sound by the same amount
OFFSETS = (-0.3, -0.1, 0.1, 0.3, 0.5)


@pytest.fixture(scope="module")
def offset_corpus(tmp_path_factory, face_model):
    """Generated clips in three corpora: originals (all in sync), the same clips with their audio
    moved by OFFSETS (two left in sync), and a held-out in-sync clip. Stages 1.1 and 1.2 done."""
    from voiceface.synthetic import write_talking_face_clip

    def build(root):
        seeds = [60 + k for k in range(len(OFFSETS) + 2)]
        for name, offset_of in (("original", lambda k: 0.0), ("moved", lambda k: ([0.0, 0.0] + list(OFFSETS))[k])):
            for k, seed in enumerate(seeds):
                write_talking_face_clip(root / name / "raw" / f"clip_{k}.mp4", duration=5.0, seed=seed,
                                        mouth_lead=offset_of(k))
            write_talking_face_clip(root / name / "raw" / "held_out.mp4", duration=5.0, seed=90)
        for name in ("original", "moved"):
            for script in ("1_data_cleaning/1_extract_blendshapes.py", "1_data_cleaning/2_extract_audio_features.py"):
                result = run_script(script, root / name / "raw", "--output-dir", root / name / "processed",
                                    "--workers", 2)
                assert result.returncode == 0, result.stderr
        return root
    return built_once(tmp_path_factory, "offsets", build)


def build(corpus, dataset, *extra):
    result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", corpus / "processed", "--output-dir",
                        dataset, "--val-clips", "held_out", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads((dataset / "dataset_manifest.json").read_text())


def test_known_offsets_are_recovered_within_a_frame_and_corrected(offset_corpus, tmp_path):
    manifest = build(offset_corpus / "moved", tmp_path / "dataset")
    entries = {c["clip"]: c["sync"] for c in manifest["clips"]}
    frame_ms = 1000 / 30
    assert manifest["sync"]["typical_lead_ms"] == 0.0 and manifest["sync"]["typical_lead_from"].startswith("natural")
    for k, offset in enumerate(OFFSETS):
        entry = entries[f"clip_{k + 2}"]
        assert entry["confident"], entry
        # the audio `offset` late means the mouth moves `offset` before its sound: lag -offset
        assert abs(entry["measured_lag_ms"] - (-1000 * offset)) <= frame_ms, (offset, entry)
        assert abs(entry["applied_shift_ms"] - (-1000 * offset)) <= frame_ms
        assert abs(entry["lag_after_ms"] - manifest["sync"]["typical_lead_ms"]) <= frame_ms
    # the corpus's own median (most of these clips are in sync: near 0), and a lead given in ms
    median = build(offset_corpus / "moved", tmp_path / "median", "--typical-lead-ms", "median")
    assert abs(median["sync"]["typical_lead_ms"]) <= frame_ms and "median over" in median["sync"]["typical_lead_from"]
    given = build(offset_corpus / "moved", tmp_path / "given", "--typical-lead-ms", "-100")
    assert given["sync"]["typical_lead_ms"] == -100.0
    for entry in given["clips"]:
        if entry["sync"]["confident"]:
            assert abs(entry["sync"]["lag_after_ms"] + 100) <= frame_ms, entry


def held_out_jaw_r(dataset, run):
    result = run_script("2_architecture_training/train.py", "--dataset-dir", dataset, "--run-dir", run,
                        "--epochs", 12, *QUICK_TRAINING)
    assert result.returncode == 0, result.stderr
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return history[-1]["val"]["jaw_open_r"]


def test_corrected_clips_train_like_the_originals(offset_corpus, tmp_path):
    build(offset_corpus / "original", tmp_path / "original")
    build(offset_corpus / "moved", tmp_path / "corrected")
    build(offset_corpus / "moved", tmp_path / "uncorrected", "--no-sync-correction")
    r = {name: held_out_jaw_r(tmp_path / name, tmp_path / f"run_{name}") for name in ("original", "corrected", "uncorrected")}
    # correction recovers what the offsets cost: no worse than the in-sync originals (it may come out
    # better: the two corpora are different renders, and a 12-epoch run moves by a few hundredths)
    assert r["corrected"] >= r["original"] - 0.05, r
    assert r["uncorrected"] < r["corrected"] - 0.05, r
