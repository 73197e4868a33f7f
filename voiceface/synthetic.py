"""Synthetic talking-face clips for tests and the built-in sample.

A real face photo (scikit-image's public-domain astronaut portrait, Eileen Collins) has its jaw
and lips warped open and shut following a speech-like loudness envelope; the voiced audio that
envelope modulates is muxed in as the clip's audio track. Because we know the envelope, the roll
angle and every frame's true time, tests can check what the pipeline measures against the truth.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

# Landmarks of the astronaut portrait, found once with MediaPipe on the 512x512 image and
# expressed in the 256x256 crop below (x, y in pixels).
CROP_Y0, CROP_X0, CROP_SIZE = 20, 95, 256   # a 256x256 crop centred on the face (face ~90 px wide)
LIP_LINE_Y = 146.0 - CROP_Y0                 # between inner lips (landmarks 13/14: y 143, 149)
MOUTH_CENTRE_X = 223.0 - CROP_X0             # landmark 13
MOUTH_HALF_WIDTH = 21.0                      # corners 61/291 are 42 px apart
CHIN_Y = 177.0 - CROP_Y0                     # landmark 152
JAW_HALF_WIDTH = 38.0                        # the lower face between the cheeks (234/454 are 89 px apart)
MAX_JAW_DROP_PX = 20.0                       # a wide-open mouth: about 2/3 of the lip-to-chin distance

VIDEO_TIME_BASE = Fraction(1, 90000)         # MPEG's 90 kHz clock: exact for 30, 25, 60 and 29.97 fps
AUDIO_SAMPLE_RATE = 48000                    # a typical camera rate, so the front-end must resample


@dataclass
class SyntheticClip:
    """What a generated clip is known to contain (the ground truth tests compare against)."""
    path: Path
    frame_times: np.ndarray        # (N,) seconds, each video frame's presentation time
    openness: np.ndarray           # (N,) jaw opening in [0, 1] drawn in each frame
    audio: np.ndarray              # (S,) float32 mono at AUDIO_SAMPLE_RATE, as muxed (from audio_start on)
    audio_start: float             # seconds: when the audio stream starts on the video's clock
    envelope: np.ndarray           # (S,) the loudness envelope the audio follows, in [0, 1]
    roll_degrees: float


def speech_envelope(duration: float, sample_rate: int, seed: int) -> np.ndarray:
    """A speech-like loudness envelope in [0, 1]: syllables at 3-6 Hz grouped into words,
    with pauses of 0.25-0.7 s between phrases. Returns (round(duration * sample_rate),)."""
    rng = np.random.default_rng(seed)
    n = int(round(duration * sample_rate))
    env = np.zeros(n)
    t = rng.uniform(0.2, 0.5)                   # start with a little silence
    while t < duration:
        for _ in range(rng.integers(2, 7)):     # syllables in a phrase
            length = rng.uniform(0.15, 0.3)
            peak = rng.uniform(0.5, 1.0)
            a, b = int(t * sample_rate), min(int((t + length) * sample_rate), n)
            if a >= n:
                break
            env[a:b] = np.maximum(env[a:b], peak * np.sin(np.linspace(0, np.pi, b - a)) ** 2)
            t += length + rng.uniform(0.0, 0.06)
        t += rng.uniform(0.25, 0.7)              # pause
    return env


def voiced_audio(envelope: np.ndarray, sample_rate: int, seed: int) -> np.ndarray:
    """Vowel-like audio following `envelope`: harmonics of a wandering 100-160 Hz pitch,
    shaped by two formant peaks, plus a little breath noise. Returns float32 in [-1, 1]."""
    rng = np.random.default_rng(seed + 1)
    n = envelope.shape[0]
    t = np.arange(n) / sample_rate
    f0 = 130 + 25 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    signal = np.zeros(n)
    for k in range(1, 30):
        freq = k * f0
        gain = np.exp(-((freq - 700) / 300) ** 2) + 0.5 * np.exp(-((freq - 1200) / 400) ** 2) + 0.05
        signal += gain * np.sin(k * phase) * (freq < sample_rate / 2)
    signal /= np.abs(signal).max()
    signal += 0.03 * rng.standard_normal(n)
    return (0.5 * envelope * signal).astype(np.float32)


def speech_utterance(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """Speech-like audio whose spectrum moves as speech's does: speech_envelope's loudness, a new
    vowel (two formants) every 120 ms and now and then a hiss (a fricative). voiced_audio keeps one
    vowel throughout, which no recording of a person does; this is the voice for the search for
    shared recordings (tests/test_recordings.py, benchmark_dataset.py)."""
    rng = np.random.default_rng(seed)
    envelope = speech_envelope(seconds, sample_rate, seed)
    t = np.arange(len(envelope)) / sample_rate
    segment = (t / 0.12).astype(int)
    f1, f2 = rng.uniform(300, 900, segment[-1] + 1)[segment], rng.uniform(900, 2500, segment[-1] + 1)[segment]
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum((np.exp(-((k * f0 - f1) / 150) ** 2) + 0.7 * np.exp(-((k * f0 - f2) / 250) ** 2) + 0.02)
                * np.sin(k * phase) for k in range(1, 40))
    hiss = np.diff(rng.standard_normal(len(t) + 1)) * (rng.random(segment[-1] + 1) < 0.3)[segment]
    audio = envelope * (voice / np.abs(voice).max() + 0.3 * hiss)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


def pulse_vowel(f0: int, formants, bandwidths, seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """A steady vowel as linear prediction models one: a pulse train at f0 Hz through a two-pole
    resonator at each formant (its bandwidth in Hz), nothing else, peak 0.5. Sharp formants over a
    spectrum that falls away above the last: what tests of the formant channels read. (N,) float64."""
    from scipy.signal import lfilter
    wave = np.zeros(int(round(seconds * sample_rate)))
    wave[::sample_rate // f0] = 1.0
    for frequency, bandwidth in zip(formants, bandwidths):
        radius, angle = np.exp(-np.pi * bandwidth / sample_rate), 2 * np.pi * frequency / sample_rate
        wave = lfilter([1.0], [1.0, -2 * radius * np.cos(angle), radius ** 2], wave)
    return 0.5 * wave / np.abs(wave).max()


ROOM_NOISES = ("digital", "white", "pink", "brown")


def room_noise(kind: str, level_dbfs: float, seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """What a microphone hears when nobody speaks: 'digital' silence (zeros), or white, pink (1/f)
    or brown (1/f^2) noise scaled to an RMS of level_dbfs. (N,) float32."""
    n = int(round(seconds * sample_rate))
    if kind == "digital":
        return np.zeros(n, np.float32)
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequency = np.maximum(np.fft.rfftfreq(n, 1 / sample_rate), 20.0)
    spectrum *= {"white": 1.0, "pink": frequency ** -0.5, "brown": frequency ** -1.0}[kind]
    noise = np.fft.irfft(spectrum, n)
    noise *= 10 ** (level_dbfs / 20) / max(np.sqrt(np.mean(noise ** 2)), 1e-12)
    return noise.astype(np.float32)


def face_image() -> np.ndarray:
    """The 256x256 RGB crop of the astronaut portrait centred on the face. (256, 256, 3) uint8."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[CROP_Y0:CROP_Y0 + CROP_SIZE, CROP_X0:CROP_X0 + CROP_SIZE])


@functools.lru_cache(maxsize=4)
def jaw_geometry(h: int, w: int) -> tuple[np.ndarray, ...]:
    """What `open_mouth` needs of an (h, w) image whatever the opening: the pixel rows y and columns x,
    how far each pixel follows the jaw's drop across and down the face, and the lens of the parted
    lips. (h, w) float64 each."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    # horizontal weight: 1 across the jaw, smooth fall-off towards the cheeks
    across = np.clip((JAW_HALF_WIDTH - np.abs(x - MOUTH_CENTRE_X)) / 12.0, 0, 1)
    # vertical weight: 1 from the lips to the chin, fading to 0 over 30 px of neck
    down = np.where(y < LIP_LINE_Y, 0.0, np.clip(1 - (y - CHIN_Y) / 30.0, 0, 1))
    # the lips part most in the middle: a lens shape between the mouth corners
    lens = np.sqrt(np.clip(1 - ((x - MOUTH_CENTRE_X) / MOUTH_HALF_WIDTH) ** 2, 0, 1))
    for shared in (y, x, across, down, lens):       # cached: every caller gets these very arrays
        shared.setflags(write=False)
    return y, x, across, down, lens


def open_mouth(image: np.ndarray, openness: float) -> np.ndarray:
    """Drop the jaw by `openness` * MAX_JAW_DROP_PX: the lower face moves down, the gap between
    the lips becomes a dark mouth with a strip of upper teeth, the neck stretches. (H, W, 3) uint8."""
    from scipy.ndimage import map_coordinates
    h, w, _ = image.shape
    y, x, across, down, lens = jaw_geometry(h, w)
    drop = openness * MAX_JAW_DROP_PX
    # beside the mouth the skin stretches over 2x the drop (a slope under 1 px/px, so the map never folds)
    dy = drop * across * down * np.maximum(lens, np.clip((y - LIP_LINE_Y) / (2 * MAX_JAW_DROP_PX), 0, 1))
    source_y = y - dy
    gap = (y >= LIP_LINE_Y) & (source_y < LIP_LINE_Y)
    source_y = np.where(gap, LIP_LINE_Y - 1, source_y)    # the skin beside the mouth stretches
    # only the lower face moves and the rest maps onto itself: resampling just the moved pixels gives
    # the same image as resampling all of it, in a quarter of the time (the test media's main cost)
    moved = source_y != y
    out = image.astype(np.float64)
    for c in range(3):
        out[..., c][moved] = map_coordinates(image[..., c].astype(np.float64), [source_y[moved], x[moved]],
                                             order=1, mode="nearest")
    mouth = gap & (lens > 0)
    depth = (y - LIP_LINE_Y)
    teeth = mouth & (depth < 0.25 * drop * lens)
    out[mouth] = (45, 12, 18)
    out[teeth] = (225, 220, 205)
    return np.clip(out, 0, 255).astype(np.uint8)


def bystander(face: np.ndarray) -> np.ndarray:
    """The face at 70% size, mouth shut, on the same background: a second, smaller person."""
    from skimage.transform import rescale
    small = (rescale(face, 0.7, channel_axis=-1, preserve_range=True)).astype(np.uint8)
    canvas = np.empty_like(face)
    canvas[:] = face[0, 0]
    top, left = (face.shape[0] - small.shape[0]) // 2, (face.shape[1] - small.shape[1]) // 2
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas


def write_faceless_clip(path: str | Path, duration: float = 1.0, fps: int = 30) -> Path:
    """A valid video with sound and no face in it: a grey gradient. For the no-face error."""
    import av
    path = Path(path)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = video.height = 128
        video.pix_fmt = "yuv420p"
        ramp = np.linspace(60, 200, 128).astype(np.uint8)
        picture = np.repeat(np.repeat(ramp[None, :, None], 128, axis=0), 3, axis=2)
        for _ in range(int(duration * fps)):
            for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    return path


def mux_mono_audio(container, stream, samples: np.ndarray, rate: int, first_sample: int = 0) -> None:
    """Encode mono float samples into `stream` of `container` in AAC-sized frames (1024 samples),
    the first stamped at first_sample, and flush the encoder."""
    import av
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    for offset in range(0, len(samples), 1024):
        frame = av.AudioFrame.from_ndarray(samples[None, offset:offset + 1024], format="flt", layout="mono")
        frame.sample_rate, frame.pts = rate, first_sample + offset
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_audio_file(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """A sound-only AAC file (.m4a) of mono float samples at `rate`."""
    import av
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        mux_mono_audio(container, stream, samples, rate)
    return path


def write_empty_video(path: str | Path) -> Path:
    """A video stream with not a single frame beside one second of silent audio: a zero-length
    video. Matroska keeps the empty track (mp4 would drop it); use a .mkv path."""
    import av
    path = Path(path)
    with av.open(str(path), "w", format="matroska") as container:
        video = container.add_stream("libx264", rate=30)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*sound.encode(frame), *sound.encode()]:
            container.mux(packet)
    return path


def frame_times(duration: float, fps: float, variable_frame_rate: bool, seed: int) -> np.ndarray:
    """Presentation times (seconds) of the frames: k / fps, or for a variable frame rate,
    intervals drawn between 1/60 s and 1/15 s (a phone camera under changing light)."""
    if not variable_frame_rate:
        return np.arange(int(round(duration * fps))) / fps
    rng = np.random.default_rng(seed + 2)
    intervals = rng.choice([1 / 60, 1 / 30, 1 / 24, 1 / 15], size=int(duration * 60) + 1)
    times = np.concatenate([[0.0], np.cumsum(intervals)])
    return times[times < duration]


def write_talking_face_clip(path: str | Path, duration: float = 4.0, seed: int = 0, fps: float = 30.0,
                            roll_degrees: float = 0.0, variable_frame_rate: bool = False,
                            audio_start: float = 0.0, mouth_lead: float = 0.0,
                            with_audio: bool = True, muted_audio: bool = False, second_face: bool = False,
                            faststart: bool = False, extra_width: int = 0, display_rotation: int = 0,
                            keyframe_seconds: float = 0.0) -> SyntheticClip:
    """Write an H.264 + AAC mp4 of the astronaut speaking. Returns the ground truth.

    roll_degrees: the whole picture turned counter-clockwise by this angle (a tilted head).
    audio_start: seconds the audio stream starts after the first video frame, in sync: the sound
    of those first seconds is missing, as when a recorder starts its streams at different times.
    mouth_lead: seconds the mouth moves ahead of the sound (real speakers: 0.05-0.15 s).
    muted_audio: an audio track of digital silence (a video exported with its sound muted).
    second_face: a smaller, silent copy of the face beside the speaker (the frame is 2x as wide).
    faststart: put the index at the front (as for streaming), so a truncated copy still opens.
    extra_width: even number of pixels of background added on the right; a width that is not a
    multiple of 32 makes FFmpeg pad each decoded row, as most real resolutions (700, 1366) do.
    display_rotation: 90, 180 or 270: frames stored turned clockwise by this angle, with a display
    matrix that tells players to turn them back (counterclockwise), as phones record upright video.
    keyframe_seconds: a key frame at least this often (phones: every 1-2 s); 0: the encoder's default."""
    import av
    from skimage.transform import rotate

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    envelope = speech_envelope(duration, AUDIO_SAMPLE_RATE, seed)
    audio = voiced_audio(envelope, AUDIO_SAMPLE_RATE, seed)
    times = frame_times(duration, fps, variable_frame_rate, seed)
    sample_at = np.clip(np.round((times + mouth_lead) * AUDIO_SAMPLE_RATE).astype(int), 0, len(envelope) - 1)
    openness = envelope[sample_at]
    face = face_image()

    container = av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {})
    video = container.add_stream("libx264", rate=int(round(fps)))
    video.width, video.height = CROP_SIZE * (2 if second_face else 1) + extra_width, CROP_SIZE
    if display_rotation % 180:
        video.width, video.height = video.height, video.width
    if display_rotation:
        video.set_display_rotation(display_rotation)
    video.pix_fmt = "yuv420p"
    video.time_base = video.codec_context.time_base = VIDEO_TIME_BASE
    video.options = {"crf": "18", "preset": "veryfast"}    # near-lossless, so MediaPipe sees the warp
    if keyframe_seconds > 0:
        video.options["g"] = str(max(1, int(round(keyframe_seconds * fps))))
    if with_audio:
        sound = container.add_stream("aac", rate=AUDIO_SAMPLE_RATE)
        sound.layout = "mono"
    for t, amount in zip(times, openness):
        picture = open_mouth(face, float(amount))
        if roll_degrees:
            picture = rotate(picture, roll_degrees, mode="edge", preserve_range=True).astype(np.uint8)
        if second_face:
            picture = np.concatenate([picture, bystander(face)], axis=1)
        if extra_width:
            picture = np.pad(picture, ((0, 0), (0, extra_width), (0, 0)), mode="edge")
        if display_rotation:
            picture = np.ascontiguousarray(np.rot90(picture, -(display_rotation // 90)))
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = int(round(t / VIDEO_TIME_BASE))
        frame.time_base = VIDEO_TIME_BASE
        for packet in video.encode(frame):
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    if with_audio:
        start = int(round(audio_start * AUDIO_SAMPLE_RATE))
        audio = audio[start:]                               # what the video shows before is unheard
        if muted_audio:
            audio = np.zeros_like(audio)                    # what the file holds, returned as its truth
        mux_mono_audio(container, sound, audio, AUDIO_SAMPLE_RATE, start)
    container.close()
    return SyntheticClip(path=path, frame_times=times, openness=openness, audio=audio,
                         audio_start=audio_start, envelope=envelope, roll_degrees=roll_degrees)


def rewrite_container(source: str | Path, target: str | Path, video_codec: str = "", audio_codec: str = "",
                      audio_rate: int = 32000, audio_bit_rate: int = 0) -> Path:
    """The same recording in the container `target`'s suffix names: its packets copied where no codecs
    are given (an H.264 + AAC mp4 into a transport stream, .ts), or both streams encoded again with
    `video_codec` and `audio_codec` (an MPEG-1 + MPEG audio program stream, .mpg, as the GRID corpus
    is stored; the key frame of every picture is the encoder's choice)."""
    import av
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as source_file, av.open(str(target), "w") as out:
        video_in, audio_in = source_file.streams.video[0], source_file.streams.audio[0]
        if not video_codec:
            streams = {s.index: out.add_stream_from_template(s) for s in (video_in, audio_in)}
            for packet in source_file.demux(video_in, audio_in):
                if packet.dts is not None:                        # the flushing packets carry no time
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)
            return target
        video = out.add_stream(video_codec, rate=video_in.average_rate)
        video.width, video.height, video.pix_fmt = video_in.width, video_in.height, "yuv420p"
        sound = out.add_stream(audio_codec, rate=audio_rate)
        sound.layout = "mono"
        if audio_bit_rate:                                        # some encoders need one (Windows Media's)
            sound.bit_rate = audio_bit_rate
        resampler = av.AudioResampler(format=sound.format, layout="mono", rate=audio_rate)
        for frame in source_file.decode(video_in, audio_in):
            if isinstance(frame, av.VideoFrame):
                frame.pict_type = av.video.frame.PictureType.NONE
                packets = video.encode(frame)
            else:
                packets = [p for part in resampler.resample(frame) for p in sound.encode(part)]
            for packet in packets:
                out.mux(packet)
        for stream in (video, sound):
            for packet in stream.encode():
                out.mux(packet)
    return target
