"""Stage 1.2 and the shared audio front-end, on generated audio and clips."""
import tracemalloc

import av
import numpy as np
import pytest
import soxr

from conftest import run_script
from voiceface.audio import (DB_FLOOR, AudioFrontEnd, Features, LevelNormaliser, compute_features, extract_file_features,
                             frame_count, load_audio, mel_band_edges, read_audio_features)
from voiceface.constants import HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH
from voiceface.synthetic import speech_envelope, voiced_audio, write_talking_face_clip

STAGE = "1_data_cleaning/2_extract_audio_features.py"


def write_audio(path, samples, rate, codec="pcm_s16le", channels=1, sample_format=None, bit_rate=None,
                container_format=None):
    """Encode float samples in [-1, 1] ((n,) or (channels, n)) with PyAV."""
    data = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    if data.shape[0] != channels:
        data = np.repeat(data[:1], channels, axis=0)
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        if sample_format:
            stream.format = sample_format
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def speech_48k():
    """Three seconds of the generated voiced speech with pauses, at 48 kHz, and its envelope."""
    envelope = speech_envelope(3.0, 48000, seed=0)
    return voiced_audio(envelope, 48000, seed=0), envelope


def test_a_1khz_sine_peaks_in_the_mel_bin_that_holds_1khz():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    features = compute_features(0.5 * np.sin(2 * np.pi * 1000 * t))
    peak = int(np.argmax(features.mel[50]))
    edges = mel_band_edges()
    assert edges[peak] < 1000 < edges[peak + 2]
    # the neighbour bins' centres are further from 1 kHz than this bin's
    assert abs(edges[peak + 1] - 1000) <= min(abs(edges[peak] - 1000), abs(edges[peak + 2] - 1000))
    # fixed reference: amplitude 0.5 is -6 dB under a full-scale sine (within the bin's rolloff)
    assert -8.5 < features.mel[50, peak] < -5.5
    assert abs(features.rms_db[50] - 20 * np.log10(0.5 / np.sqrt(2))) < 0.01


@pytest.mark.parametrize("n_samples", [0, 159, 160, 399, 400, 401, 16000, 16001, 48159])
def test_frame_count_is_floor_of_samples_over_hop(n_samples, tmp_path):
    assert frame_count(n_samples) == n_samples // HOP_LENGTH
    assert len(compute_features(np.zeros(n_samples))) == n_samples // HOP_LENGTH
    if n_samples >= WIN_LENGTH:
        noise = np.random.default_rng(0).uniform(-0.1, 0.1, n_samples)
        _, features = extract_file_features(write_audio(tmp_path / "a.wav", noise, SAMPLE_RATE))
        assert len(features) == n_samples // HOP_LENGTH


def test_same_audio_in_three_containers_gives_the_same_features(speech_48k, tmp_path):
    audio, _ = speech_48k
    audio_16k = soxr.resample(audio.astype(np.float64), 48000, SAMPLE_RATE)
    _, reference = extract_file_features(write_audio(tmp_path / "a16.wav", audio_16k, SAMPLE_RATE))
    _, stereo = extract_file_features(write_audio(tmp_path / "a48.wav", audio, 48000, channels=2))
    _, aac = extract_file_features(write_audio(tmp_path / "a.mp4", audio, 48000, codec="aac", bit_rate=128000))
    loud = reference.mel > -60           # where there is signal; below, codec noise floors differ
    for other, p99_db in ((stereo, 0.05), (aac, None)):
        assert len(other) == len(reference)
        difference = np.abs(other.mel - reference.mel)[loud]
        if p99_db is not None:            # lossless: only 16-bit rounding and resampling differ
            assert np.percentile(difference, 99) < p99_db
        else:                             # AAC at 128 kb/s: coding noise, no shift
            assert difference.mean() < 0.5 and np.median(difference) < 0.25
        assert (other.vad == reference.vad).mean() > 0.98


def test_a_folder_of_studio_formats_is_read_whole_and_gives_the_same_features(speech_48k, tmp_path):
    """AIFF and CAF (Apple's, common in audio tools), FLAC in Matroska and 24-bit WAV: a folder
    input finds each, and each decodes to the same features as 16-bit WAV."""
    from voiceface.cli import AUDIO_EXTENSIONS, expand_inputs
    audio, _ = speech_48k
    folder = tmp_path / "sounds"
    folder.mkdir()
    reference = extract_file_features(write_audio(folder / "a.wav", audio, 48000))[1]
    for name, codec, container, sample_format in (("b.aif", "pcm_s16be", "aiff", None),
                                                   ("c.aiff", "pcm_s16be", "aiff", None),
                                                   ("d.caf", "pcm_s16le", "caf", None),
                                                   ("e.mka", "flac", "matroska", "s16"),
                                                   ("f.wav", "pcm_s24le", None, None)):
        write_audio(folder / name, audio, 48000, codec=codec, container_format=container, sample_format=sample_format)
    (folder / "notes.txt").write_text("not a sound")
    files, errors = expand_inputs([folder], AUDIO_EXTENSIONS)
    assert [f.name for f in files] == ["a.wav", "b.aif", "c.aiff", "d.caf", "e.mka", "f.wav"] and not errors
    for path in files[1:]:
        features = extract_file_features(path)[1]
        assert len(features) == len(reference), path.name
        assert np.abs(features.mel - reference.mel)[reference.mel > -60].max() < 0.05, path.name


@pytest.mark.parametrize("chunk", [1, 7, 159, 161, 1000, 4801])
def test_chunked_and_whole_give_identical_frames(speech_48k, chunk):
    audio = soxr.resample(speech_48k[0].astype(np.float64), 48000, SAMPLE_RATE)
    whole = compute_features(audio)
    front_end = AudioFrontEnd()
    parts = Features.concatenate([front_end.process(audio[i:i + chunk]) for i in range(0, len(audio), chunk)])
    assert np.array_equal(parts.mel, whole.mel) and np.array_equal(parts.rms_db, whole.rms_db)
    assert np.array_equal(parts.vad, whole.vad)


@pytest.mark.parametrize("chunk", [1, 159, 4801])
def test_formants_are_chunk_invariant_and_agree_with_the_eigenvalues(speech_48k, chunk):
    from voiceface.lpc import FormantInputs, levinson, line_spectral_frequencies, line_spectral_frequencies_fast
    audio = soxr.resample(speech_48k[0].astype(np.float64), 48000, SAMPLE_RATE)
    whole = compute_features(audio, formants=True)
    assert np.array_equal(whole.mel, compute_features(audio).mel)            # the mel is not touched
    front_end = AudioFrontEnd(formants=True)
    parts = Features.concatenate([front_end.process(audio[i:i + chunk]) for i in range(0, len(audio), chunk)])
    assert parts.lsf.shape == (len(whole), 16) and np.array_equal(parts.lsf, whole.lsf)
    assert (np.diff(whole.lsf, axis=1) > 0).all() and (whole.lsf > 0).all() and (whole.lsf < np.pi).all()
    # the grid search against the companion matrices' eigenvalues, on random stable filters of order 16
    rng = np.random.default_rng(3)
    r = np.array([np.correlate(x, x, "full")[399:416] for x in rng.normal(size=(200, 400)) *
                  np.hanning(400) * np.cumsum(rng.normal(size=(200, 400)), axis=1)])
    a = levinson(r)
    assert np.abs(line_spectral_frequencies_fast(a) - line_spectral_frequencies(a)).max() < 3e-4
    # the formant inputs stream as they run on the whole clip
    streamer = FormantInputs()
    chunks = np.concatenate([streamer.process(whole.lsf[i:i + 37], whole.vad[i:i + 37]) for i in range(0, len(whole), 37)])
    assert np.allclose(chunks, FormantInputs().process(whole.lsf, whole.vad), atol=1e-6)


def test_stage_stores_formants_and_redoes_files_written_without_them(tmp_path):
    from voiceface.lpc import processed_clip_lsf
    from voiceface.errors import InputError
    path = write_audio(tmp_path / "a.wav", voiced_audio(speech_envelope(2.0, SAMPLE_RATE, 1), SAMPLE_RATE, 1),
                       SAMPLE_RATE)
    assert run_script(STAGE, path, "--output-dir", tmp_path / "out").returncode == 0
    target = tmp_path / "out" / "a" / "audio_features.npz"
    stored = read_audio_features(target)
    assert stored.lsf.shape == (len(stored.mel), 16) and stored.meta["lsf"]["lpc_order"] == 16
    with np.load(target) as npz:                         # as stage 1.2 wrote it before the formants were stored
        arrays = {k: npz[k] for k in npz.files if k != "lsf"}
    with open(target, "wb") as f:
        np.savez(f, **arrays)
    assert read_audio_features(target).lsf is None
    with pytest.raises(InputError, match="re-run stage 1.2 with --force"):
        processed_clip_lsf(target.parent)
    again = run_script(STAGE, path, "--output-dir", tmp_path / "out")
    assert again.returncode == 0 and "skipped" not in again.stdout
    assert np.array_equal(read_audio_features(target).lsf, stored.lsf)


def test_audio_after_t_never_changes_frames_before_t(speech_48k):
    audio = soxr.resample(speech_48k[0].astype(np.float64), 48000, SAMPLE_RATE)
    t = 12345                                  # a sample index inside a hop
    changed = audio.copy()
    changed[t:] = np.random.default_rng(1).uniform(-1, 1, len(audio) - t)
    before, after = compute_features(audio), compute_features(changed)
    done = t // HOP_LENGTH                     # frames whose window ends at or before sample t
    assert np.array_equal(before.mel[:done], after.mel[:done])
    assert np.array_equal(before.vad[:done], after.vad[:done])
    assert not np.array_equal(before.mel[done:done + 3], after.mel[done:done + 3])


def test_voice_activity_is_right_on_95_percent_of_frames(speech_48k):
    audio, envelope = speech_48k
    features = compute_features(soxr.resample(audio.astype(np.float64), 48000, SAMPLE_RATE))
    # truth: a frame is speech when the envelope within its window is above 5 % of full scale,
    # held for the same 100 ms hangover the detector promises
    hop_48k = 3 * HOP_LENGTH
    ends = (np.arange(len(features)) + 1) * hop_48k
    voiced = np.array([envelope[max(0, e - 3 * WIN_LENGTH):e].max() > 0.05 for e in ends])
    truth = voiced.copy()
    for lag in range(1, 11):
        truth[lag:] |= voiced[:-lag]
    assert 0.2 < truth.mean() < 0.9                      # the clip really has speech and pauses
    assert (features.vad == truth).mean() >= 0.95


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
def test_loud_stationary_noise_from_the_start_is_not_voice_but_speech_over_it_is(speech_48k, kind):
    # a recording that opens on 2 s of fan noise at -40 dBFS, loud enough to pass the level test
    # before the noise floor has adapted, then speech 20 dB above that noise
    from voiceface.synthetic import room_noise
    speech = soxr.resample(speech_48k[0].astype(np.float64), 48000, SAMPLE_RATE)
    noise = room_noise(kind, -40.0, 2.0 + len(speech) / SAMPLE_RATE, SAMPLE_RATE, seed=4)
    audio = noise.copy()
    audio[2 * SAMPLE_RATE:] += speech * (10 ** (-20 / 20) / np.sqrt(np.mean(speech ** 2)))   # -20 dBFS speech
    features = compute_features(audio)
    assert features.vad[:200].sum() == 0                                       # noise alone: never voice
    alone = compute_features(speech * (10 ** (-20 / 20) / np.sqrt(np.mean(speech ** 2)))).vad.astype(bool)
    assert features.vad[200:][alone].mean() >= 0.95                            # the speech is still found
    chunked = AudioFrontEnd()                                                   # and streamed, the same decisions
    parts = [chunked.process(audio[i:i + 1234]).vad for i in range(0, len(audio), 1234)]
    assert np.array_equal(np.concatenate(parts), features.vad)


@pytest.mark.parametrize("zeros_ms", [5, 50, 300])
def test_room_noise_after_digital_silence_is_not_voice(speech_48k, zeros_ms):
    # sound that opens on digital silence (an encoder's priming, a file's silent head, a microphone's
    # first buffers) and then on room noise: the step up from -120 dB is not a swing of the sound (it
    # was: after 50 ms of zeros, 0.3-0.5 s of pink noise at -45 dBFS was voice, and the models' mouths
    # opened 0.04 wider there than in the same noise without the zeros)
    from voiceface.synthetic import room_noise
    speech = soxr.resample(speech_48k[0].astype(np.float64), 48000, SAMPLE_RATE)
    speech *= 10 ** (-20 / 20) / np.sqrt(np.mean(speech ** 2))                 # -20 dBFS
    zeros = int(zeros_ms * SAMPLE_RATE / 1000)
    audio = np.concatenate([np.zeros(zeros), room_noise("pink", -45.0, 2.0 + len(speech) / SAMPLE_RATE,
                                                        SAMPLE_RATE, seed=5)])
    audio[zeros + 2 * SAMPLE_RATE:] += speech
    features = compute_features(audio)
    opening = zeros // HOP_LENGTH + 200
    assert features.vad[:opening].sum() == 0                                    # zeros, then noise: never voice
    alone = compute_features(speech).vad.astype(bool)
    assert features.vad[opening:opening + len(alone)][alone].mean() >= 0.95     # the speech is still found
    for size in (97, 1234):                           # streamed, the zeros over several chunks: the same decisions
        chunked = AudioFrontEnd()
        parts = [chunked.process(audio[i:i + size]).vad for i in range(0, len(audio), size)]
        assert np.array_equal(np.concatenate(parts), features.vad), size


@pytest.mark.parametrize("down_db", [30, 40])
def test_quiet_speech_keeps_its_voice_and_reads_as_loud_speech(speech_48k, down_db):
    # the generated speech peaks at -19 dBFS; 30 and 40 dB lower its loudest frames sit at -49 and
    # -59 dBFS, where a fixed -55 dBFS minimum lost most or all of its voice (and the running level
    # stopped following it); the minimum under the recording's recent peak keeps both
    from voiceface.dataset import MEL_SCALE_DB, model_inputs
    audio = soxr.resample(np.tile(speech_48k[0], 3).astype(np.float64), 48000, SAMPLE_RATE)
    loud, quiet = compute_features(audio), compute_features(audio * 10 ** (-down_db / 20))
    assert loud.rms_db.max() > -25 and quiet.rms_db.max() < -45
    assert (quiet.vad == loud.vad).mean() >= 0.97
    streamed = AudioFrontEnd()                                # the peak is state: chunks give the same voice
    quiet_audio = audio * 10 ** (-down_db / 20)
    parts = [streamed.process(quiet_audio[i:i + 997]).vad for i in range(0, len(quiet_audio), 997)]
    assert np.array_equal(np.concatenate(parts), quiet.vad)
    tail = slice(300, None)                                   # after the running level's first 3 s
    gap = np.abs(model_inputs(loud.mel, loud.vad, "level") - model_inputs(quiet.mel, quiet.vad, "level"))[tail]
    assert gap.max() * MEL_SCALE_DB < 1.0                     # dB: the level inputs read alike (measured 0.1, 0.4)


def test_the_exponential_average_is_scipys_first_order_filter():
    """audio.exponential_average (NumPy, by doubling, in blocks) against scipy.signal.lfilter, the
    filter it stands for: powers spanning 120 dB, a short and a long time constant, lengths across
    a block's end; and a call on the first frames gives them what the whole call gives, exactly."""
    from scipy.signal import lfilter
    from voiceface.audio import EXPONENTIAL_BLOCK, exponential_average
    rng = np.random.default_rng(3)
    for length in (1, 2, 37, 1000, EXPONENTIAL_BLOCK + 5, 2 * EXPONENTIAL_BLOCK + 900):
        for alpha in (1 / 300, 0.4):
            x, start = 10 ** rng.uniform(-12, 0, (length, 5)), 10 ** rng.uniform(-6, 0, 5)
            expected, _ = lfilter([alpha], [1.0, alpha - 1.0], x, axis=0, zi=((1 - alpha) * start)[None, :])
            got = exponential_average(x, alpha, start)
            assert np.max(np.abs(got - expected) / expected) < 1e-13, (length, alpha)
            assert np.array_equal(exponential_average(x[:length // 2 + 1], alpha, start), got[:length // 2 + 1])


def test_level_normaliser_is_causal_streamable_and_removes_a_gain(speech_48k):
    audio = soxr.resample(np.tile(speech_48k[0], 5).astype(np.float64), 48000, SAMPLE_RATE)   # 15 s
    quiet, loud = compute_features(audio * 0.05), compute_features(audio * 0.5)        # 20 dB apart
    whole = LevelNormaliser().process(loud.mel, loud.vad)
    streamer = LevelNormaliser()
    chunks = np.concatenate([streamer.process(loud.mel[i:i + 37], loud.vad[i:i + 37])
                             for i in range(0, len(loud), 37)])
    assert np.allclose(chunks, whole, atol=1e-4)
    # causal: later frames never change earlier outputs
    assert np.array_equal(LevelNormaliser().process(loud.mel[:500], loud.vad[:500]), whole[:500])
    tail = slice(-300, None)                             # after several time constants of speech
    speechy = loud.mel[tail] > -60
    raw_gap = np.abs(loud.mel[tail] - quiet.mel[tail])[speechy].mean()
    normalised = LevelNormaliser().process(quiet.mel, quiet.vad)
    normalised_gap = np.abs(whole[tail] - normalised[tail])[speechy].mean()
    assert raw_gap > 15 and normalised_gap < 3
    # the floor follows the level too: the quiet copy's softest frames and pauses read as the loud one's
    assert np.abs(whole[tail] - normalised[tail]).max() < 3
    assert np.percentile(np.abs(whole - normalised)[tail], 99) < 1.0


def test_a_band_that_holds_nothing_reads_as_the_floor_in_the_level_input(speech_48k):
    # a phone line (8 kHz sampling) leaves the bins above 4 kHz empty: against a level of nothing
    # they must read as the floor, 0 like a quiet bin at its usual level, not 40 dB above it
    from voiceface.audio import mel_band_edges
    audio = soxr.resample(np.tile(speech_48k[0], 2).astype(np.float64), 48000, SAMPLE_RATE) * 0.3
    phone = soxr.resample(soxr.resample(audio, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)
    full, narrow = compute_features(audio), compute_features(phone)
    empty = mel_band_edges()[:-2] > 4200                       # bands wholly above the phone's cut-off
    assert narrow.mel[:, empty].max() < -100                   # nothing there
    inputs = LevelNormaliser().process(narrow.mel, narrow.vad)[200:]
    assert np.abs(inputs[:, empty]).max() < 0.5                # dB: the floor against a level raised to it
    below = ~empty & (mel_band_edges()[2:] < 3500)              # below the cut-off the same reading as full band
    assert np.median(np.abs(inputs[:, below] - LevelNormaliser().process(full.mel, full.vad)[200:, below])) < 1.0


@pytest.mark.parametrize("mode", ["fixed", "level"])
def test_noise_added_to_the_inputs_matches_noise_mixed_into_the_sound(speech_48k, mode):
    # training's --noise-augment adds noise to stored inputs; a microphone mixes it into the sound
    from voiceface.dataset import ModelInputs, add_noise_to_inputs, level_inputs_against, level_inputs_and_level
    from voiceface.synthetic import room_noise
    audio = soxr.resample(np.tile(speech_48k[0], 4).astype(np.float64), 48000, SAMPLE_RATE) * 0.3   # 12 s
    noise = room_noise("pink", -38.0, len(audio) / SAMPLE_RATE, SAMPLE_RATE, seed=3)               # ~15 dB below
    clean, mixed, alone = compute_features(audio), compute_features(audio + noise), compute_features(noise)
    vad = clean.vad                                         # the same frames averaged, to compare the mixing alone
    inputs = ModelInputs(mode).process(clean.mel, vad)
    level_db = level_inputs_and_level(clean.mel, vad)[1] if mode == "level" else None
    added, new_level = add_noise_to_inputs(inputs, alone.mel, level_db)
    truth = ModelInputs(mode).process(mixed.mel, vad)
    settled = slice(400, None)                              # the level's running mean has heard 3 s of speech
    error = np.abs(added - truth)[settled] * 45.0           # dB
    assert np.median(error) < 1.0 and np.percentile(error, 90) < 4.0
    if mode == "level":                                     # the level moves by the noise's power: measured
        assert new_level.shape == level_db.shape and np.all(new_level >= level_db - 1e-9)
        # the same noisy frames measured against the clean speech's level are further from the truth
        unmoved = np.abs(level_inputs_against(added * 45.0 + new_level, level_db) - truth)[settled] * 45.0
        assert np.median(unmoved) > np.median(error) + 0.5


@pytest.mark.parametrize("mode", ["fixed", "level"])
@pytest.mark.parametrize("rt60, drr", [(0.3, 6.0), (0.7, 0.0)])
def test_a_rooms_echo_added_to_the_inputs_follows_the_echo_of_the_sound(speech_48k, mode, rt60, drr):
    # training's --reverb-augment adds a late tail to stored inputs; a room convolves the sound
    from voiceface.dataset import ModelInputs, add_reverb_to_inputs, level_inputs_and_level
    from voiceface.degrade import room_reverb
    audio = soxr.resample(np.tile(speech_48k[0], 4).astype(np.float64), 48000, SAMPLE_RATE) * 0.3   # 12 s
    clean, wet = compute_features(audio), compute_features(room_reverb(audio, rt60, drr, seed=2))
    inputs = ModelInputs(mode).process(clean.mel, clean.vad)
    level_db = level_inputs_and_level(clean.mel, clean.vad)[1] if mode == "level" else None
    added, _ = add_reverb_to_inputs(inputs, rt60, drr, level_db)
    truth = ModelInputs(mode).process(wet.mel, clean.vad)  # the same frames averaged: the echo alone compared
    error, dry = (np.abs(x - truth)[400:] * 45.0 for x in (added, inputs))   # dB, once the level has settled
    # measured: 90th percentile 3.6-5.3 dB against the dry inputs' 5.5-23 dB (the pauses the tail fills)
    assert np.percentile(error, 90) < 6.0 and np.percentile(error, 90) < 0.7 * np.percentile(dry, 90)
    if mode == "level":
        assert np.median(error) < 2.0


def test_stage_writes_features_that_line_up_with_the_video(tmp_path):
    on_time = write_talking_face_clip(tmp_path / "in" / "on_time.mp4", duration=3.0, seed=5)
    late = write_talking_face_clip(tmp_path / "in" / "late.mp4", duration=3.0, seed=5, audio_start=0.25)
    result = run_script(STAGE, tmp_path / "in", "--output-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    for clip, expected_offset in ((on_time, 0.0), (late, 0.25)):
        stored = read_audio_features(tmp_path / "out" / clip.path.stem / "audio_features.npz")
        assert stored.mel.shape == (len(stored.times), 80) and stored.meta["front_end"]["n_mels"] == 80
        assert np.allclose(stored.times, (np.arange(len(stored.times)) + 1) / 100)
        # where does the generated sound's first sample land on the video's clock?
        source, decoded = load_audio(clip.path)
        truth = soxr.resample(clip.audio.astype(np.float64), 48000, SAMPLE_RATE)
        lags = np.arange(0, 1200)
        scores = [np.dot(decoded[k:k + 16000], truth[:16000]) for k in lags]
        content_start = stored.meta["audio_offset_s"] + lags[int(np.argmax(scores))] / SAMPLE_RATE
        assert abs(content_start - expected_offset) < 0.001, content_start


@pytest.mark.parametrize("name, codec, extra", [
    ("u8.wav", "pcm_u8", {}), ("s16.wav", "pcm_s16le", {}), ("s24.wav", "pcm_s24le", {}),
    ("f32.wav", "pcm_f32le", {}), ("a.flac", "flac", {}), ("a.mp3", "libmp3lame", {"bit_rate": 192000}),
    ("a.ogg", "libopus", {"bit_rate": 128000}), ("a.m4a", "aac", {"bit_rate": 128000}),
    ("a.mov", "aac", {"bit_rate": 128000}), ("a.mkv", "flac", {}), ("a.webm", "libopus", {"bit_rate": 128000}),
])
def test_common_containers_decode_to_the_same_speech(speech_48k, tmp_path, name, codec, extra):
    audio, _ = speech_48k
    _, reference = extract_file_features(write_audio(tmp_path / "ref.wav", audio, 48000, codec="pcm_f32le"))
    _, features = extract_file_features(write_audio(tmp_path / name, audio, 48000, codec=codec, **extra))
    assert abs(len(features) - len(reference)) <= 2          # lossy codecs pad their last frame
    n = min(len(features), len(reference))
    loud = reference.mel[:n] > -60
    tolerance = 0.6 if name.endswith((".wav", ".flac", ".mkv")) else 1.5   # u8 is 8-bit: coarse
    assert np.median(np.abs(features.mel[:n] - reference.mel[:n])[loud]) < tolerance
    assert (features.vad[:n] == reference.vad[:n]).mean() > 0.97


def test_digital_silence_is_valid_and_has_no_voice(tmp_path):
    path = write_audio(tmp_path / "silence.wav", np.zeros(SAMPLE_RATE), SAMPLE_RATE)
    result = run_script(STAGE, path, "--output-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    stored = read_audio_features(tmp_path / "out" / "silence" / "audio_features.npz")
    assert len(stored.vad) == 100 and stored.vad.sum() == 0 and np.all(stored.mel == DB_FLOOR)


def test_each_bad_input_gets_one_line_and_the_rest_are_processed(tmp_path):
    folder = tmp_path / "in"
    write_talking_face_clip(folder / "good.mp4", duration=1.0, seed=6)
    write_talking_face_clip(folder / "no_audio.mp4", duration=1.0, seed=6, with_audio=False)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    (folder / "empty.mp3").write_bytes(b"")
    write_audio(folder / "too_short.wav", np.full(300, 0.1), SAMPLE_RATE)
    output = tmp_path / "out"
    (output / "corrupt").mkdir(parents=True)
    (output / "corrupt" / "audio_features.npz").write_bytes(b"an earlier result")
    result = run_script(STAGE, folder, "--output-dir", output, "--force")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    for name, cause in (("no_audio", "no audio stream"), ("corrupt", "not a readable"), ("empty", "empty file"),
                        ("too_short", "shorter than one 25 ms window")):
        lines = [line for line in errors if f"/{name}." in line]
        assert len(lines) == 1 and cause in lines[0], (name, errors)
    assert read_audio_features(output / "good" / "audio_features.npz").vad.any()
    assert (output / "corrupt" / "audio_features.npz").read_bytes() == b"an earlier result"
    assert "1 done" in result.stderr and "4 failed" in result.stderr


def test_reader_refuses_other_front_end_constants_and_the_stage_makes_them_again(tmp_path):
    path = write_audio(tmp_path / "a.wav", np.full(16000, 0.1), SAMPLE_RATE)
    run_script(STAGE, path, "--output-dir", tmp_path / "out")
    target = tmp_path / "out" / "a" / "audio_features.npz"
    with np.load(target) as npz:
        arrays = dict(npz)
    arrays["meta"] = np.array(str(arrays["meta"]).replace('"n_mels": 80', '"n_mels": 128'))
    with open(target, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(Exception, match="other front-end constants.*n_mels"):
        read_audio_features(target)
    # features of an older front-end are made again on the next run, without --force
    again = run_script(STAGE, path, "--output-dir", tmp_path / "out")
    assert again.returncode == 0 and "1 done, 0 skipped" in again.stderr
    assert read_audio_features(target).mel.shape[1] == 80
    skipped = run_script(STAGE, path, "--output-dir", tmp_path / "out")
    assert "0 done, 1 skipped" in skipped.stderr


def test_a_long_file_runs_in_bounded_memory(tmp_path):
    minutes = 5
    rng = np.random.default_rng(2)
    path = tmp_path / "long.wav"
    with av.open(str(path), "w") as container:      # written in pieces: 5 min of 48 kHz stereo
        stream = container.add_stream("pcm_s16le", rate=48000)
        stream.layout = "stereo"
        for k in range(minutes * 60):
            frame = av.AudioFrame.from_ndarray(rng.uniform(-0.3, 0.3, (2, 48000)).astype(np.float32),
                                               format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, k * 48000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    decoded_bytes = minutes * 60 * 48000 * 2 * 8          # the whole file as float64: 230 MB
    tracemalloc.start()
    _, features = extract_file_features(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(features) == minutes * 60 * 100
    output_bytes = features.mel.nbytes + features.rms_db.nbytes + features.vad.nbytes   # 9.7 MB
    assert peak < 2 * output_bytes + 30e6 < decoded_bytes / 4
