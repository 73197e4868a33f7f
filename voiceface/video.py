"""Video decoding with PyAV (which bundles FFmpeg): RGB frames with their presentation times."""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError

PREFETCH_FRAMES = 8     # decoded frames queued ahead, so decoding overlaps the face model


@dataclass
class VideoInfo:
    width: int
    height: int
    average_fps: float          # from the container; per-frame times are what we actually use
    expected_frames: int        # the container's frame count (0 when it does not say)
    duration_s: float           # the video stream's duration (0 when it does not say)
    start_time_s: float         # presentation time of the stream's first frame
    rotation_deg: int = 0       # the display rotation frames are turned by (0, 90, 180, 270; counterclockwise)


STREAM_NEEDS = {"video": "stage 1.1 needs a video of the face",
                "audio": "the speech is read from the sound; give the recording with its sound"}


def open_container(path: Path, kind: str = "video"):
    """An open PyAV container with at least one `kind` ("video" or "audio") stream, or InputError
    in one line: missing, empty, unreadable, or without such a stream."""
    import av
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes); re-export or copy it again")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        what = "video" if kind == "video" else "audio or video"
        raise InputError(f"{path}: not a readable {what} file ({error.strerror or error}); "
                         "check that it is complete") from None
    if not getattr(container.streams, kind):
        container.close()
        raise InputError(f"{path}: has no {kind} stream; {STREAM_NEEDS[kind]}")
    return container


def has_sound(path) -> bool:
    """Whether a media file has an audio stream."""
    import av
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False


def display_rotation(frame) -> int:
    """The counterclockwise turn in degrees (0, 90, 180 or 270) that a player gives this decoded
    frame, from the container's display matrix (a phone filming upright stores its frames on
    their side and says so there). FFmpeg's command line turns such frames upright by default;
    PyAV hands them over as stored, and MediaPipe reads a face on its side worse (ARCHITECTURE.md,
    stage 1.1: jawOpen r 0.63-0.83 against the upright reading, upside down -0.40) with its
    head pose rolled by the turn."""
    degrees = float(getattr(frame, "rotation", 0) or 0)
    return int(round(degrees / 90)) % 4 * 90


def upright(image: np.ndarray, rotation_deg: int) -> np.ndarray:
    """An (H, W, C) frame turned as a player shows it (rotation_deg from display_rotation)."""
    if not rotation_deg:
        return image
    return np.ascontiguousarray(np.rot90(image, rotation_deg // 90))


def probe_video(path: str | Path) -> VideoInfo:
    """What the container says of its first video stream; width and height as shown (turned by
    the display rotation, read from the first frame)."""
    import av
    path = Path(path)
    container = open_container(path)
    with container:
        stream = container.streams.video[0]
        tb = stream.time_base
        try:
            rotation = display_rotation(next(container.decode(stream)))
        except (StopIteration, av.error.FFmpegError):
            rotation = 0                 # no frame decodes: iter_video_frames says so
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation % 180:
            width, height = height, width
        return VideoInfo(
            rotation_deg=rotation, width=width, height=height,
            average_fps=float(stream.average_rate or stream.guessed_rate or 0),
            expected_frames=int(stream.frames or 0),
            duration_s=float(stream.duration * tb) if stream.duration else 0.0,
            start_time_s=float(stream.start_time * tb) if stream.start_time is not None else 0.0)


def probe_duration(path: str | Path) -> float:
    """Seconds of a media file from its container (0 when it does not say)."""
    import av
    try:
        with av.open(str(path)) as container:
            return float(container.duration) / 1e6 if container.duration else 0.0
    except av.error.FFmpegError:
        return 0.0


def video_duration_or_zero(path: str | Path) -> float:
    """Seconds of video, for ordering work; 0 for a file that cannot be probed (its error is
    reported when it is processed)."""
    try:
        info = probe_video(path)
        return info.duration_s or info.expected_frames / max(info.average_fps, 1.0)
    except Exception:
        return 0.0


def iter_video_frames(path: str | Path) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (presentation time in seconds, RGB frame (H, W, 3) uint8) for each frame, in order,
    turned upright as a player shows it (the container's display rotation).

    Times are the container's presentation timestamps, not index / fps, so variable-frame-rate
    video keeps its true timing. A background thread decodes ahead of the consumer. Raises
    InputError when the file cannot be decoded, has no frames, or ends before its stated length."""
    path = Path(path)
    container = open_container(path)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    expected = int(stream.frames or 0)
    fps = float(stream.average_rate or stream.guessed_rate or 30)
    frames: queue.Queue = queue.Queue(maxsize=PREFETCH_FRAMES)
    stop = threading.Event()
    done = object()

    def decode():
        try:
            for index, frame in enumerate(container.decode(stream)):
                time_s = frame.time if frame.time is not None else index / fps
                # FFmpeg pads rows to an aligned stride (700 px: 2112 bytes, not 2100); MediaPipe
                # reads the buffer as packed rows, so a padded frame would reach it sheared
                image = upright(frame.to_ndarray(format="rgb24"), display_rotation(frame))
                item = (time_s, np.ascontiguousarray(image))
                while not stop.is_set():
                    try:
                        frames.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            frames.put(done)
        except Exception as error:       # handed to the consumer, which raises it
            frames.put(error)

    worker = threading.Thread(target=decode, daemon=True)
    worker.start()
    count = 0
    try:
        while True:
            item = frames.get()
            if item is done:
                break
            if isinstance(item, Exception):
                raise InputError(f"{path}: video is corrupt or truncated after {count} frames "
                                 f"({item}); re-export or copy it again") from None
            count += 1
            yield item
    finally:
        stop.set()
        worker.join()
        container.close()
    if count == 0:
        raise InputError(f"{path}: video has no frames (zero length); re-export it")
    # a stream that declares more frames than decode is cut short (a truncated download or copy)
    if expected and count < 0.98 * expected - 1:
        raise InputError(f"{path}: video is truncated: {count} of its {expected} frames decode; "
                         "copy or download it again")


def keyframe_times(path: str | Path) -> list[float]:
    """Presentation times (seconds) of the first video stream's key frames, in order: the places a
    file can be cut without decoding it (packets only: 0.01 s for a minute of 512² video)."""
    path = Path(path)
    with open_container(path) as container:
        stream = container.streams.video[0]
        return sorted(_packet_time(packet) for packet in container.demux(stream)
                      if packet.is_keyframe and (packet.pts is not None or packet.dts is not None))


def cut_at_keyframes(path: str | Path, starts_s: list[float], outputs: list[Path]) -> None:
    """Copy the first video and audio streams of `path` into one file per start, `outputs`, each
    beginning at its key frame in `starts_s` (times from keyframe_times, the first usually the
    file's first key frame): no decoding, no re-encoding, no loss.

    Each part's clock starts at its key frame, for its sound as for its picture, so the offset
    between them is the source's; the display rotation goes with the picture. A sound packet goes
    to the part its presentation time falls in; a picture packet to the part of the key frame before
    it in decoding order. Parts are written to temporary files beside them and renamed once all are
    complete, so a failure leaves nothing half-written."""
    import av
    from contextlib import ExitStack
    from .formats import atomic_path
    path = Path(path)
    containers, pairs, muxer = [], [], _muxer_for(path)
    try:
        with ExitStack() as parts:          # each part under a temporary name, all renamed once all are complete
            temporaries = [parts.enter_context(atomic_path(out)) for out in outputs]
            with open_container(path) as source:
                if not source.streams.audio:
                    raise InputError(f"{path}: has no audio stream; {STREAM_NEEDS['audio']}")
                video, audio = source.streams.video[0], source.streams.audio[0]
                for temporary in temporaries:
                    containers.append(av.open(str(temporary), "w", format=muxer))
                    # from the source's streams, with their side data: a phone's display rotation goes along
                    try:
                        pairs.append((containers[-1].add_stream_from_template(video),
                                      containers[-1].add_stream_from_template(audio)))
                    except ValueError:       # PyAV: "'matroska' format does not support 'wmv2' codec"
                        raise InputError(f"{path}: its {video.codec_context.name} picture and "
                                         f"{audio.codec_context.name} sound cannot be copied into {muxer} parts; "
                                         "convert it to mp4 (H.264 and AAC) and cut that") from None
                part = -1
                for packet in source.demux(video, audio):
                    if packet.dts is None and packet.pts is None:
                        continue                     # the demuxer's empty packet at the end of a stream
                    time_s = _packet_time(packet)
                    if packet.stream.type == "video":
                        if packet.is_keyframe and part + 1 < len(starts_s) and time_s >= starts_s[part + 1] - 1e-6:
                            part += 1
                        if part >= 0:                # pictures before the first start cannot be decoded alone
                            _mux_copy(containers[part], pairs[part], packet, starts_s[part])
                    else:
                        target = max(0, sum(start <= time_s + 1e-6 for start in starts_s[1:]))
                        _mux_copy(containers[target], pairs[target], packet, starts_s[target])
            while containers:
                containers.pop(0).close()
    except av.error.FFmpegError as error:
        raise InputError(f"{path}: could not be cut ({error.strerror or error}); check that it is complete") from None
    finally:
        for out in containers:
            try:
                out.close()
            except Exception:
                pass


def _packet_time(packet) -> float:
    """A packet's presentation time in seconds, or its decoding time where it has none (some AVI)."""
    return float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base)


def part_suffix(path: Path) -> str:
    """The file ending of the parts `path` is cut into: its own where a muxer here writes that
    container again, .mkv otherwise (Matroska holds most codecs)."""
    from .cli import VIDEO_MUXERS
    return path.suffix.lower() if path.suffix.lower() in VIDEO_MUXERS else ".mkv"


def _muxer_for(path: Path) -> str:
    """The container format the parts of `path` are written in, the one their ending names: the
    source's own (mp4 for .m4v, an MPEG program stream for .mpg, a transport stream for .ts and a
    camcorder's .mts), or Matroska."""
    from .cli import VIDEO_MUXERS
    return VIDEO_MUXERS[part_suffix(path)]


def _mux_copy(container, streams: tuple, packet, origin_s: float) -> None:
    """One packet into a part's container, its times moved so that the part's clock starts at origin_s."""
    out_video, out_audio = streams
    shift = int(round(origin_s / packet.time_base))
    if packet.pts is not None:
        packet.pts -= shift
    if packet.dts is not None:
        packet.dts -= shift
    packet.stream = out_video if packet.stream.type == "video" else out_audio
    container.mux(packet)
