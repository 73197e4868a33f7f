"""Epic's Live Link Face, defined once: its 61 values (the 52 ARKit blendshapes in its own order,
head yaw/pitch/roll and the eyes' rotations), the take CSV, and the UDP packet that Unreal Engine's
Live Link Face source receives (what the iPhone app sends, port 11111 by default).

The packet, version 6, in network byte order (big-endian), as Unreal's AppleARKitFaceSupport
plugin serialises it (`FAppleARKitLiveLinkRemotePublisher::PublishBlendShapes`: version, device
id, subject name, frame time, blendshape count, values; UnrealEngine
Engine/Plugins/Runtime/AR/AppleAR/AppleARKitFaceSupport/.../AppleARKitLiveLinkSource.cpp), with
the frame time of version 6 as laid out by think-biq/LLV's README and encoded by
JimWest/PyLiveLinkFace (pylivelinkface.py):

    uint8    packet version (6)
    int32    length of the device id, then its bytes (an FString: Unreal reads a length first)
    int32    length of the subject name, then its bytes
    int32    frame number  \\  FQualifiedFrameTime: the frame's time at the frame rate
    float32  sub-frame      |
    int32    rate numerator |  (fps = numerator / denominator)
    int32    rate denominator /
    uint8    number of values (61)
    float32  x 61          the values, in LIVE_LINK_NAMES order

(PyLiveLinkFace writes the version as a little-endian uint32 and prefixes "$" to its 36-character
device id: the bytes are the same, since 6, 0, 0, 0, 36 read as a uint8 then a big-endian int32
is version 6 then length 36, and "$" is byte 36.)
"""
from __future__ import annotations

import math
import socket
import struct
from dataclasses import dataclass

import numpy as np

PACKET_VERSION = 6
DEFAULT_PORT = 11111            # Live Link Face's default
LIVE_LINK_BLENDSHAPES = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel",
    "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft",
    "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight",
    "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft",
    "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut")
# (note JawRight before JawLeft and MouthRight before MouthLeft, unlike Unreal's enum)
LIVE_LINK_ROTATIONS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                       "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
LIVE_LINK_NAMES = LIVE_LINK_BLENDSHAPES + LIVE_LINK_ROTATIONS           # 61
LIVE_LINK_HEADER = ("Timecode", "BlendShapeCount", *LIVE_LINK_NAMES)     # the take CSV's columns
N_VALUES = len(LIVE_LINK_NAMES)
assert N_VALUES == 61


def _source_columns() -> list[int | None]:
    """For each Live Link blendshape, the index of the MediaPipe name it is (eyeBlinkLeft ->
    EyeBlinkLeft; TongueOut, which MediaPipe lacks, is None)."""
    from .constants import BLENDSHAPE_NAMES
    index = {name.lower(): i for i, name in enumerate(BLENDSHAPE_NAMES)}
    return [index.get(name.lower()) for name in LIVE_LINK_BLENDSHAPES]


SOURCE_COLUMNS = _source_columns()


def live_link_values(blendshapes: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(N, 52) MediaPipe-ordered scores and (N, 7) pose -> (N, 61) Live Link Face values: the
    blendshapes in its order (TongueOut 0), head yaw, pitch and roll in radians from the quaternion
    (yaw about the camera's y axis, pitch about x, roll about the view axis), eye rotations 0 (not
    predicted)."""
    from .pose import quaternion_to_euler_degrees
    blendshapes, pose = np.atleast_2d(blendshapes), np.atleast_2d(pose)
    out = np.zeros((len(blendshapes), N_VALUES), np.float32)
    for k, column in enumerate(SOURCE_COLUMNS):
        if column is not None:
            out[:, k] = blendshapes[:, column]
    if len(pose):
        pitch, yaw, roll = np.radians(quaternion_to_euler_degrees(pose[:, 3:])).T
        out[:, len(LIVE_LINK_BLENDSHAPES):len(LIVE_LINK_BLENDSHAPES) + 3] = np.stack([yaw, pitch, roll], 1)
    return out


# --- the take CSV ---------------------------------------------------------------------------------
def live_link_timecode(seconds: float, fps: float) -> str:
    """HH:MM:SS:FF.fff — frame FF within the second at `fps`, and the fraction of a frame."""
    whole = int(math.floor(seconds + 1e-9))
    frame = (seconds - whole) * fps
    h, m, s = whole // 3600, whole // 60 % 60, whole % 60
    return f"{h:02d}:{m:02d}:{s:02d}:{int(frame + 1e-6):02d}.{int(round((frame - int(frame + 1e-6)) * 1000)) % 1000:03d}"


def write_live_link_csv(path, frames, fps: float) -> None:
    """Frames (voiceface.engine.Frames) as a Live Link Face take CSV, written atomically."""
    from .formats import atomic_path
    values = live_link_values(frames.blendshapes, frames.pose) if len(frames.times) else np.zeros((0, N_VALUES))
    lines = [",".join(LIVE_LINK_HEADER)]
    for t, row in zip(frames.times, values):
        lines.append(",".join([live_link_timecode(float(t), fps), str(N_VALUES)] + [f"{v:.6f}" for v in row]))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


# --- the UDP packet -------------------------------------------------------------------------------
@dataclass
class Packet:
    device_id: str
    subject: str
    frame_number: int
    sub_frame: float
    rate_numerator: int
    rate_denominator: int
    values: np.ndarray          # (61,) float32
    version: int = PACKET_VERSION

    @property
    def fps(self) -> float:
        return self.rate_numerator / self.rate_denominator

    @property
    def seconds(self) -> float:
        """The frame's time (seconds since midnight when sent by our sender or the app)."""
        return (self.frame_number + self.sub_frame) / self.fps


def encode_packet(packet: Packet) -> bytes:
    device, subject = packet.device_id.encode("utf-8"), packet.subject.encode("utf-8")
    values = np.asarray(packet.values, ">f4").reshape(-1)
    if len(values) != N_VALUES:
        raise ValueError(f"a Live Link Face packet carries {N_VALUES} values, not {len(values)}")
    return b"".join([struct.pack(">B", packet.version),
                     struct.pack(">i", len(device)), device, struct.pack(">i", len(subject)), subject,
                     struct.pack(">ifii", packet.frame_number, packet.sub_frame, packet.rate_numerator,
                                 packet.rate_denominator),
                     struct.pack(">B", N_VALUES), values.tobytes()])


def decode_packet(data: bytes) -> Packet:
    """A packet back from its bytes; ValueError (one line) for anything else."""
    try:
        version = data[0]
        offset = 1
        strings = []
        for _ in range(2):
            (length,) = struct.unpack_from(">i", data, offset)
            if not 0 <= length <= 1024:
                raise ValueError(f"a name of {length} bytes")
            strings.append(data[offset + 4:offset + 4 + length].decode("utf-8"))
            offset += 4 + length
        frame, sub_frame, numerator, denominator = struct.unpack_from(">ifii", data, offset)
        (count,) = struct.unpack_from(">B", data, offset + 16)
        values = np.frombuffer(data, ">f4", count=count, offset=offset + 17).astype(np.float32)
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"not a Live Link Face packet ({len(data)} bytes: {error})") from None
    if version != PACKET_VERSION or count != N_VALUES or denominator <= 0:
        raise ValueError(f"a Live Link Face packet of version {version} with {count} values; this reads version "
                         f"{PACKET_VERSION} with {N_VALUES}")
    return Packet(strings[0], strings[1], frame, sub_frame, numerator, denominator, values, version)


def parse_address(text: str) -> tuple[str, int]:
    """'HOST' or 'HOST:PORT' -> (host, port); ValueError naming what is wrong."""
    host, _, port = str(text).rpartition(":") if ":" in str(text) else (str(text), "", str(DEFAULT_PORT))
    if not host:
        raise ValueError(f"--livelink {text!r}: give HOST or HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--livelink {text!r}: port {port!r} is not a number; e.g. {host}:{DEFAULT_PORT}") from None
    if not 0 < number < 65536:
        raise ValueError(f"--livelink {text!r}: port {number} is outside 1-65535; Live Link Face uses {DEFAULT_PORT}")
    return host, number


class Sender:
    """Sends frames to a Live Link Face source over UDP, one datagram per frame. The frame time is
    the time of day of the audio instant the frame shows (so a receiver on a synchronised clock
    reads the end-to-end latency from it), at the output frame rate."""

    def __init__(self, address: str, subject: str, fps: float, device_id: str | None = None):
        import uuid
        host, port = parse_address(address)
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as error:
            raise ValueError(f"--livelink {address}: cannot find host {host!r} ({error.strerror}); "
                             "give the address of the machine running Unreal") from None
        self.address = info[4]
        self.socket = socket.socket(info[0], socket.SOCK_DGRAM)
        self.subject, self.fps = subject, fps
        self.rate = (int(round(fps * 1000)), 1000) if abs(fps - round(fps)) > 1e-9 else (int(round(fps)), 1)
        self.device_id = device_id or str(uuid.uuid4())
        self.sent, self.refused = 0, 0

    def send(self, values: np.ndarray, time_of_day_s: float) -> None:
        frames = time_of_day_s * self.fps
        whole = int(math.floor(frames))
        packet = Packet(self.device_id, self.subject, whole, float(frames - whole), *self.rate, values)
        try:
            self.socket.sendto(encode_packet(packet), self.address)
            self.sent += 1
        except ConnectionRefusedError:      # an earlier datagram found no listener (ICMP): Unreal may start later
            self.refused += 1
        except OSError as error:
            raise ValueError(f"--livelink {self.address[0]}:{self.address[1]}: cannot send "
                             f"({error.strerror or error}); check the address and the network") from None

    def close(self) -> None:
        self.socket.close()


def time_of_day(wall_clock_s: float) -> float:
    """Seconds since local midnight of a time.time() value: Live Link frame times are timecodes."""
    import time
    local = time.localtime(wall_clock_s)
    return local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec + (wall_clock_s % 1.0)
