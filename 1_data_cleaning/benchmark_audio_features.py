"""Benchmark the audio front-end (not a test): its speed as a multiple of real time beside
librosa.feature.melspectrogram + power_to_db on the same 16 kHz audio, on one core, and the ratio.
Also the front-end with the line spectral frequencies (what stage 1.2 computes; a model trained with
--formants streams them too), and decoding + resampling of a file, which the front-end's figure
leaves out.

    python 1_data_cleaning/benchmark_audio_features.py
    python 1_data_cleaning/benchmark_audio_features.py --clip ../shared/realdata/tk_obama_crop512.mp4

Aim: >= 300x real time on one core, and not slower than librosa.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")          # one core, for both sides
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`


from voiceface.benchmarks import best_seconds
from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: CLIP as --clip) -------------------------
CLIP = None                     # a file to time; none: 10 minutes of generated speech
GENERATED_MINUTES = 10.0        # length of the generated audio
REPEATS = 3                     # best of this many runs
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv)
    from voiceface.cli import out_of_range
    from voiceface.errors import InputError
    if refusal := out_of_range(("--generated-minutes", GENERATED_MINUTES, 0, True), ("--repeats", REPEATS, 1, False)):
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    import librosa
    from voiceface.audio import (MEL_FMAX, MEL_FMIN, AudioFrontEnd, Features, extract_file_features,
                                 load_audio)
    from voiceface.constants import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, WIN_LENGTH
    scratch = tempfile.TemporaryDirectory()
    if CLIP is None:
        import av
        from voiceface.synthetic import speech_envelope, voiced_audio
        path = Path(scratch.name) / "speech.wav"
        samples = voiced_audio(speech_envelope(GENERATED_MINUTES * 60, SAMPLE_RATE, 0), SAMPLE_RATE, 0)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("pcm_s16le", rate=SAMPLE_RATE)
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, 0
            for packet in [*stream.encode(frame), *stream.encode()]:
                container.mux(packet)
    else:
        path = Path(CLIP)
    try:
        _, audio = load_audio(path)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    duration = len(audio) / SAMPLE_RATE

    def ours(formants=False):
        front_end = AudioFrontEnd(formants=formants)
        # as the stage does: blocks of 10 s
        Features.concatenate([front_end.process(audio[i:i + 160000]) for i in range(0, len(audio), 160000)])

    def reference():
        mel = librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH,
                                             win_length=WIN_LENGTH, n_mels=N_MELS, fmin=MEL_FMIN, fmax=MEL_FMAX)
        librosa.power_to_db(mel, ref=1.0)

    reference()                                        # librosa's first call compiles and caches
    ours_s, librosa_s = best_seconds(ours, REPEATS), best_seconds(reference, REPEATS)
    formants_s = best_seconds(lambda: ours(formants=True), REPEATS)
    file_s = best_seconds(lambda: extract_file_features(path, formants=True), REPEATS)
    print(f"audio: {path.name}, {duration:.1f} s")
    print(f"  front-end (mel + rms + vad):          {duration / ours_s:8.0f}x real time")
    print(f"  librosa melspectrogram + power_to_db: {duration / librosa_s:8.0f}x real time")
    print(f"  ratio ours / librosa:                 {librosa_s / ours_s:8.2f}   (aim >= 1, and >= 300x real time)")
    print(f"  front-end with the formants:          {duration / formants_s:8.0f}x real time")
    print(f"  whole file (decode + resample + all): {duration / file_s:8.0f}x real time   (as stage 1.2 runs it)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
