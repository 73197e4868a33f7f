"""voiceface/degrade.py: each way of making the sound worse does what it says, and keeps time."""
import numpy as np
import pytest
import soxr

from voiceface.constants import SAMPLE_RATE
from voiceface.degrade import active_power, conditions, mix_at_snr, mp3_round_trip, phone_band
from voiceface.synthetic import room_noise, speech_envelope, voiced_audio


@pytest.fixture(scope="module")
def speech():
    """Four seconds of the generated voiced speech with pauses, at 16 kHz, and its frames' voice activity."""
    from voiceface.audio import compute_features
    envelope = speech_envelope(4.0, 48000, seed=4)
    samples = soxr.resample(voiced_audio(envelope, 48000, seed=4).astype(np.float64), 48000, SAMPLE_RATE)
    samples = samples.astype(np.float32)
    return samples, compute_features(samples).vad


def band_power(x, low, high):
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    hz = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return spectrum[(hz >= low) & (hz < high)].sum()


def test_noise_is_mixed_at_the_asked_ratio_to_the_active_speech(speech):
    samples, vad = speech
    power = active_power(samples, vad)
    assert vad.mean() < 0.85 and power > 1.2 * np.mean(samples.astype(np.float64) ** 2)   # pauses do not dilute it
    noise = room_noise("pink", -30.0, 1.5, SAMPLE_RATE, seed=1)     # shorter than the speech: looped
    for snr in (30.0, 10.0):
        added = mix_at_snr(samples, noise, snr, power) - samples
        assert len(added) == len(samples)
        assert 10 * np.log10(power / np.mean(added.astype(np.float64) ** 2)) == pytest.approx(snr, abs=0.05)


def test_the_phone_band_keeps_the_voice_below_4_khz_and_nothing_above(speech):
    samples, _ = speech
    narrow = phone_band(samples)
    assert len(narrow) == len(samples)
    assert band_power(narrow, 4200, 8000) < 1e-4 * band_power(samples, 4200, 8000)
    assert band_power(narrow, 100, 3400) == pytest.approx(band_power(samples, 100, 3400), rel=0.02)
    assert np.corrcoef(narrow, samples)[0, 1] > 0.95                 # and in time with it


def test_an_mp3_round_trip_comes_back_in_time_and_close(speech):
    samples, _ = speech
    coded = mp3_round_trip(samples)
    assert len(coded) == len(samples)
    lags = np.arange(-200, 201)
    r = [np.dot(np.roll(coded, -k)[1000:-1000], samples[1000:-1000]) for k in lags]
    assert lags[int(np.argmax(r))] == 0                              # the encoder's delay removed
    assert np.corrcoef(coded, samples)[0, 1] > 0.9


def test_the_conditions_in_order_with_a_babble_only_of_other_recordings(speech):
    samples, vad = speech
    power = active_power(samples, vad)
    alone = conditions(power, [])
    assert list(alone)[:3] == ["as recorded", "phone band (8 kHz sampling)", "MP3 at 32 kbit/s"]
    assert not any(name.startswith("babble") for name in alone)
    voices = [np.roll(samples, 4000 * k) for k in range(1, 6)]
    named = conditions(power, voices)
    babble = [name for name in named if name.startswith("babble")]
    assert babble == ["babble of 4 other recordings, 10 dB SNR"]
    assert np.array_equal(named["as recorded"](samples), samples)
    assert np.allclose(named["20 dB quieter"](samples), samples / 10, atol=1e-7)
    mixed = named[babble[0]](samples)
    assert 10 * np.log10(power / np.mean((mixed - samples).astype(np.float64) ** 2)) == pytest.approx(10.0, abs=0.05)


@pytest.mark.parametrize("rt60, drr", [(0.3, 6.0), (0.6, 0.0)])
def test_a_rooms_echo_decays_as_asked_and_keeps_the_timing(speech, rt60, drr):
    from voiceface.degrade import room_impulse_response, room_reverb
    h = room_impulse_response(rt60, drr, seed=3).astype(np.float64)
    assert h[0] == 1.0 and 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(drr, abs=0.01)
    # Schroeder's backward integral of the tail: its fall from -5 to -25 dB, times 3, is the RT60
    decay = np.cumsum(h[1:][::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(decay / decay[0])
    t5, t25 = (np.argmax(decay_db <= level) / SAMPLE_RATE for level in (-5.0, -25.0))
    assert 3 * (t25 - t5) == pytest.approx(rt60, rel=0.1)
    samples, _ = speech
    wet = room_reverb(samples, rt60, drr, seed=3)
    assert len(wet) == len(samples)
    lags = np.arange(-100, 101)
    r = [np.dot(np.roll(wet, -k)[1000:-1000], samples[1000:-1000]) for k in lags]
    assert lags[int(np.argmax(r))] == 0                              # the direct sound still leads
    assert 0.3 < np.corrcoef(wet, samples)[0, 1] < 0.95              # and the echo is really there
