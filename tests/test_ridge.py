"""The ridge baseline (voiceface/ridge.py), fitted one clip at a time, against the textbook solution."""
import numpy as np
import pytest

from voiceface import ridge
from voiceface.ridge import RidgeBaseline, stack_frames


def clips(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    inputs = [rng.normal(size=(int(rng.integers(150, 300)), 80)).astype(np.float32) for _ in range(n)]
    targets = [np.clip(0.2 + 0.05 * x[:, :52] + 0.03 * np.roll(x[:, 3:55], 4, axis=0)
                       + 0.05 * rng.normal(size=(len(x), 52)), 0, 1) for x in inputs]
    masks = [rng.random(len(x)) > 0.1 for x in inputs]
    return inputs, targets, masks


def textbook(inputs, targets, masks, lookahead, strength, leave_out=None):
    """Standardise the stacked frames of the clips kept, solve (X'X + s I) w = X'y, intercept unshrunk."""
    offsets = ridge.context_offsets(lookahead)
    kept = [k for k in range(len(inputs)) if k != leave_out]
    shifted = [ridge.shift_targets(np.asarray(targets[k], np.float64), masks[k], lookahead) for k in range(len(inputs))]
    x = np.concatenate([stack_frames(inputs[k], offsets)[shifted[k][1]] for k in range(len(inputs))]).astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    design = np.concatenate([np.c_[(stack_frames(inputs[k], offsets)[shifted[k][1]] - mean) / std,
                                   np.ones(shifted[k][1].sum())] for k in kept])
    y = np.concatenate([shifted[k][0][shifted[k][1]] for k in kept])
    penalty = np.eye(design.shape[1])
    penalty[-1, -1] = 0
    return mean, std, np.linalg.solve(design.T @ design + strength * penalty, design.T @ y)


def test_the_fit_is_the_textbook_ridge_solution():
    inputs, targets, masks = clips(4)
    model = RidgeBaseline.fit(inputs, targets, masks, lookahead=4, grid=(30.0,))
    mean, std, weights = textbook(inputs, targets, masks, 4, 30.0)
    assert np.allclose(model.mean, mean) and np.allclose(model.std, std)
    assert np.allclose(model.weights, weights, atol=1e-8)


def test_the_strength_is_chosen_by_leaving_one_clip_out():
    inputs, targets, masks = clips(4, seed=1)
    grid = (1.0, 1e3, 1e5)
    model = RidgeBaseline.fit(inputs, targets, masks, lookahead=0, grid=grid)
    offsets = ridge.context_offsets(0)
    for strength in grid:            # the held-out jawOpen r, per clip, averaged — computed the long way
        scores = []
        for k in range(len(inputs)):
            mean, std, weights = textbook(inputs, targets, masks, 0, strength, leave_out=k)
            design = np.c_[(stack_frames(inputs[k], offsets)[masks[k]] - mean) / std, np.ones(masks[k].sum())]
            scores.append(np.corrcoef(design @ weights[:, ridge.JAW_OPEN], targets[k][masks[k], ridge.JAW_OPEN])[0, 1])
        assert np.isclose(model.scores[strength], np.mean(scores), atol=1e-9)
    assert model.strength == max(model.scores, key=model.scores.get)


def test_more_clips_than_folds_are_left_out_in_groups(monkeypatch):
    monkeypatch.setattr(ridge, "MAX_FOLDS", 3)
    inputs, targets, masks = clips(7, seed=2)
    model = RidgeBaseline.fit(inputs, targets, masks, lookahead=2, grid=(1.0, 100.0))
    assert set(model.scores) == {1.0, 100.0} and all(np.isfinite(list(model.scores.values())))
    _, _, weights = textbook(inputs, targets, masks, 2, model.strength)
    assert np.allclose(model.weights, weights, atol=1e-8)       # the final fit uses every clip


def test_line_spectral_frequencies_mark_the_formants_of_a_synthetic_vowel():
    from voiceface.lpc import LPC_ORDER, audio_lsf
    from voiceface.synthetic import pulse_vowel
    rate, formants, bandwidths = 16000, (700.0, 1200.0, 2600.0), (80.0, 90.0, 120.0)
    lsf = audio_lsf(pulse_vowel(120, formants, bandwidths, 1.0, rate))       # a 120 Hz glottal pulse train
    assert lsf.shape == (100, LPC_ORDER)                  # one row per 10 ms front-end frame
    assert (np.diff(lsf, axis=1) > 0).all() and (lsf > 0).all() and (lsf < np.pi).all()
    hz = lsf[50] * rate / (2 * np.pi)
    middles, gaps = (hz[1:] + hz[:-1]) / 2, np.diff(hz)
    # a close pair of lines at each formant, about as far apart as its bandwidth; the third one less
    # closely: nothing above it, the spectrum falls 58 dB under its mean over 4-8 kHz, and lpc.py's
    # white-noise floor (30 dB under the mean) lifts that valley, which takes some of the fit from F3
    # (its pair 98 Hz high and 1.6 bandwidths wide at a floor of 1e-3; 55 Hz low and 1.1 at 1e-9)
    for frequency, bandwidth, off, wide in zip(formants, bandwidths, (60, 60, 120), (1.5, 1.5, 2.0)):
        nearest = np.argmin(np.abs(middles - frequency))
        assert abs(middles[nearest] - frequency) < off and gaps[nearest] < wide * bandwidth, (frequency, hz)
    assert np.median(gaps) > 4 * max(bandwidths)                # the other lines spread out
    silent = audio_lsf(np.zeros(1600))                    # no spectrum: the flat filter's evenly spaced lines
    assert np.allclose(silent, np.pi * np.arange(1, 17) / 17, atol=1e-3)


def test_the_linear_probe_scores_held_out_clips_with_and_without_extra_channels(learn_dataset):
    from conftest import run_script
    result = run_script("2_architecture_training/linear_probe.py", "--dataset-dir", learn_dataset / "dataset",
                        "--lookahead-ms", 40, "--extra", "loudness", "lsf")
    assert result.returncode == 0, result.stderr
    line = [x for x in result.stdout.splitlines() if x.startswith("held-out sample_24")]
    assert len(line) == 1 and "with loudness + lsf" in line[0], result.stdout
    plain, extra = (float(x) for x in line[0].split("jawOpen r ")[1].replace(" on the mel,", "").split()[:2])
    assert 0.3 < plain <= 1 and 0.3 < extra <= 1                # the generated jaw follows the generated sound
    refused = run_script("2_architecture_training/linear_probe.py", "--dataset-dir", learn_dataset / "dataset",
                         "--extra", "brightness")
    assert refused.returncode == 2 and "brightness" in refused.stdout


def test_the_linear_probes_pitch_channels_follow_the_generated_voice(learn_dataset):
    """The generated voice's pitch wanders as 130 + 25 sin(...) Hz: pYIN on the frames' 40 ms finds
    it voiced where the voice activity says speech, and its swing of log2(155 / 105) = 0.56 octave."""
    import importlib.util
    from voiceface import REPO_ROOT
    from voiceface.audio import AUDIO_FEATURES_FILENAME, read_audio_features
    from voiceface.errors import InputError
    spec = importlib.util.spec_from_file_location("linear_probe", REPO_ROOT / "2_architecture_training/linear_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    folder = learn_dataset / "processed" / "sample_24"
    stored = read_audio_features(folder / AUDIO_FEATURES_FILENAME)
    pitch = probe.frame_pitch(folder, len(stored.times)) / probe.PITCH_SCALE
    octaves, probability = pitch[:, 0], pitch[:, 1]
    speech = stored.vad.astype(bool)
    voiced = octaves != 0
    assert voiced[speech].mean() > 0.8 and voiced[~speech].mean() < 0.3, (voiced[speech].mean(), voiced[~speech].mean())
    assert probability[speech].mean() > max(0.1, 10 * probability[~speech].mean())
    swing = np.percentile(octaves[voiced], 98) - np.percentile(octaves[voiced], 2)
    assert 0.4 < swing < 0.7, swing
    with pytest.raises(InputError, match="re-run stage 1.3"):
        probe.frame_pitch(folder, len(stored.times) + 5)


def test_the_running_voice_mean_is_causal_and_holds_through_pauses():
    from voiceface.lpc import running_voice_mean
    values = np.r_[np.full(5, 2.0), np.full(5, 4.0), np.full(400, 1.0)][:, None] * np.ones((1, 3))
    vad = np.r_[np.zeros(5), np.ones(5), np.zeros(5), np.ones(395)].astype(bool)
    mean = running_voice_mean(values, vad, start=np.zeros(3))
    assert np.allclose(mean[:6], 0.0)                            # nothing voiced before frame 5: the start
    assert np.allclose(mean[6:11, 0], [4.0] * 5)                 # the plain average of the voiced frames before
    assert np.allclose(mean[11:16, 0], 4.0)                      # held through the pause
    assert np.allclose(mean[16, 0], (5 * 4.0 + 1.0) / 6)         # then the new voice comes in
    assert 1.0 < mean[-1, 0] < 1.05                              # and after 3 s of it, an average of 3 s
    changed = values.copy()
    changed[200:] = 9.0                                          # the future does not move the past
    assert np.array_equal(running_voice_mean(changed, vad, start=np.zeros(3))[:201], mean[:201])


def test_the_linear_probes_speech_embedding_reads_only_the_past(learn_dataset, tmp_path):
    """The embedding channel's framing, with two stand-in ONNX files of the encoder's interface
    (openwakeword's are not a requirement): a 'mel' that is each 400-sample frame's summed |x|, and
    an 'embedding' that returns the first and the last of its 76 mel frames. Embedding i must end
    with the frame whose 25 ms window ends where stage 1.2's frame i ends, and start 75 frames
    before it (silence before the file)."""
    import importlib.util
    import torch
    from voiceface import REPO_ROOT
    from voiceface.audio import AUDIO_FEATURES_FILENAME, load_audio, read_audio_features
    from voiceface.errors import InputError

    class Mel(torch.nn.Module):
        def forward(self, x):                                   # (1, N) -> (1, 1, F, 32)
            frames = torch.nn.functional.conv1d(x.abs()[:, None], torch.ones(1, 1, 400), stride=160)
            return frames.transpose(1, 2)[:, None].expand(-1, -1, -1, 32)

    class Embedding(torch.nn.Module):
        def forward(self, x):                                   # (B, 76, 32, 1) -> (B, 1, 1, 96)
            ends = torch.stack([x[:, 0, 0, 0], x[:, -1, 0, 0]], dim=1)
            return ends.repeat(1, 48)[:, None, None]

    torch.onnx.export(Mel(), (torch.zeros(1, 4000),), str(tmp_path / "melspectrogram.onnx"), input_names=["input"],
                      dynamic_axes={"input": {1: "n"}}, opset_version=17, dynamo=False)
    torch.onnx.export(Embedding(), (torch.zeros(2, 76, 32, 1),), str(tmp_path / "embedding_model.onnx"),
                      input_names=["input_1"], dynamic_axes={"input_1": {0: "b"}}, opset_version=17, dynamo=False)
    spec = importlib.util.spec_from_file_location("linear_probe", REPO_ROOT / "2_architecture_training/linear_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    folder = learn_dataset / "processed" / "sample_24"
    stored = read_audio_features(folder / AUDIO_FEATURES_FILENAME)
    frames = len(stored.times)
    probe.EMBEDDING_MODELS = str(tmp_path)
    embedding = probe.frame_embedding(folder, frames)
    assert embedding.shape == (frames, 96)
    _, audio = load_audio(stored.meta["source"]["path"])
    samples = np.abs(audio.astype(np.float64)) * 32767

    def window_sum(i):                                          # stage 1.2's frame i: 400 samples ending at (i + 1) * 160
        return samples[max(0, (i + 1) * 160 - 400):(i + 1) * 160].sum() / 10 + 2 if i >= 0 else 2.0

    for i in (0, 1, 74, 75, 76, 300, frames // 2, len(audio) // 160 - 1):
        assert np.isclose(embedding[i, 1], window_sum(i), rtol=1e-3), i          # ends with frame i, not later
        assert np.isclose(embedding[i, 0], window_sum(i - 75), rtol=1e-3), i     # and begins 75 frames before it
    probe.EMBEDDING_MODELS = str(tmp_path / "absent")
    with pytest.raises(InputError, match="openwakeword 0.4.0"):
        probe.frame_embedding(folder, frames)


def test_the_shrunk_system_is_solved_by_cholesky_and_one_it_refuses_by_lu():
    """solve_shrunk: (gram + s I') w = b with the last (intercept) entry unshrunk; a matrix that is
    not positive definite (Cholesky refuses it) is still solved, as np.linalg.solve solves it."""
    rng = np.random.default_rng(3)
    x = np.c_[rng.normal(size=(200, 5)), np.ones(200)]
    right = rng.normal(size=(6, 2))
    penalty = np.diag([1.0] * 5 + [0.0])
    assert np.allclose(ridge.solve_shrunk(x.T @ x, 7.0, right), np.linalg.solve(x.T @ x + 7.0 * penalty, right))
    indefinite = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])      # eigenvalues 3.5, -0.5, 3
    solved = ridge.solve_shrunk(indefinite, 0.5, np.array([1.0, 2.0, 3.0]))
    assert np.allclose(solved, np.linalg.solve(indefinite + np.diag([0.5, 0.5, 0.0]), [1.0, 2.0, 3.0]))
