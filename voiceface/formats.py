"""Files on disk: atomic writes, provenance headers, and the blendshapes_and_pose.json format.

Every artefact carries a header saying what made it (format version, constants, names, source
hash, library versions); every reader checks it and refuses a mismatch with a clear message.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .constants import BLENDSHAPE_NAMES, N_BLENDSHAPES, POSE_NAMES
from .errors import FormatError, InputError

BLENDSHAPES_FORMAT = "voiceface/blendshapes_and_pose"
BLENDSHAPES_FORMAT_VERSION = 1
BLENDSHAPES_FILENAME = "blendshapes_and_pose.json"

# Decimal places kept in the JSON: finer than MediaPipe's own noise, and an hour of 30 fps video
# stays near 100 MB instead of 250 MB of full float64 digits.
ROUND_BLENDSHAPES = 4        # scores in [0, 1]: 1e-4
ROUND_TRANSLATION = 3        # centimetres: 0.01 mm
ROUND_ROTATION = 6           # quaternion components: unit norm kept to ~1e-6
ROUND_TIMESTAMP = 3          # milliseconds: 1 microsecond


def config_differences(ours: dict, stored: dict | None) -> list[str]:
    """The keys of a block of constants (the front-end's, the normalisation's, the formant channels')
    whose values stored with a file differ from this code's; empty when they all agree."""
    stored = stored or {}
    return sorted(k for k in ours if stored.get(k) != ours[k])


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (bounded memory for any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_path(path: str | os.PathLike) -> Path:
    """A path an artefact recorded (a checkpoint's training dataset, a report's fold run) as it can be
    found from here: as recorded when it is absolute or found, else from the repository root, where
    the stages usually run (a relative path is relative to where the stage that wrote it ran)."""
    from . import REPO_ROOT
    candidate = Path(path)
    return candidate if candidate.is_absolute() or candidate.exists() else REPO_ROOT / candidate


def written_since(path: str | os.PathLike, started: float) -> bool:
    """Whether `path` exists and was (re)written at or after `started` (time.time() before a stage
    ran; two seconds' slack for file systems with coarse times): the stage made it, as opposed to an
    older copy left from an earlier run."""
    path = Path(path)
    return path.exists() and path.stat().st_mtime >= started - 2


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries already imported that shape our outputs."""
    versions = {"python": platform.python_version()}
    for name in ("numpy", "mediapipe", "av", "soxr", "torch", "scipy"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "unknown"))   # torch: a str subclass pickle refuses
    if "av" in sys.modules:
        codec = sys.modules["av"].library_versions.get("libavcodec")
        versions["libavcodec"] = ".".join(map(str, codec)) if codec else "unknown"
    return versions


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def ensure_writable_folder(folder: str | os.PathLike, setting: str = "--output-dir") -> Path:
    """Create `folder` if needed and check that a file can be written in it, before any work is
    done: a read-only or missing location is one line naming it, not a traceback after an hour.
    Raises InputError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise InputError(f"{folder}: cannot write here ({error.strerror or error}); choose another {setting} "
                         "or make it writable") from None
    return folder


NAME_MAX = 255                 # bytes in a file's name: Linux and macOS file systems


def name_fits(path: Path) -> bool:
    """Whether a file system can hold the name (pathlib's exists() raises on one it cannot)."""
    return len(os.fsencode(Path(path).name)) <= NAME_MAX      # its bytes on disk, whatever their encoding


def check_name_fits(path: Path) -> None:
    """Refuse, in one line, an output whose name a file system cannot hold (a long title plus the
    output's own ending), before anything of it is written."""
    if not name_fits(path):
        raise InputError(f"{path}: a file name of {len(os.fsencode(path.name))} bytes, more than the {NAME_MAX} a file "
                         "system allows; give the input it is named after a shorter name")


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success rename it onto `path` (atomic on POSIX),
    on any error or interruption remove it. A reader never sees a half-written file and an
    existing file is never damaged."""
    path = Path(path)
    check_name_fits(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # hidden, marked partial, and ending in the target's extension (writers that go by it work); the
        # name's start only, so that a long name (a download's title) leaves room for the marks
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:40]}.", suffix=f".partial{path.suffix}", dir=path.parent)
    except OSError as error:
        raise InputError(f"{path.parent}: cannot write {path.name} here ({error.strerror or error}); choose "
                         "another output location or make it writable") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)                 # mkstemp makes 0600; give the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file whole or not at all (a report, a log rewritten each epoch)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, document: dict, indent: int | None = 1) -> None:
    write_text_atomic(path, json.dumps(document, indent=indent, allow_nan=False) + "\n")


class NpyRows:
    """A .npy file written a block of rows at a time, for arrays larger than memory: the same bytes as
    np.save of the whole array (its header states the rows declared here; close() refuses a file
    given more or fewer). Read back with np.load(..., mmap_mode="r") or read_npy_rows."""

    def __init__(self, path: str | os.PathLike, dtype, rows: int, columns: tuple[int, ...] = ()):
        self.path, self.dtype, self.shape = Path(path), np.dtype(dtype), (int(rows), *columns)
        self.written = 0
        self.file = open(self.path, "wb")
        np.lib.format.write_array_header_1_0(self.file, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                         "fortran_order": False, "shape": self.shape})

    def write(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows)
        if rows.shape[1:] != self.shape[1:] or self.written + len(rows) > self.shape[0]:
            raise ValueError(f"{self.path}: rows of shape {rows.shape} do not fit {self.shape} "
                             f"({self.written} rows written)")
        self.file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.written += len(rows)

    def close(self) -> None:
        self.file.close()
        if self.written != self.shape[0]:
            raise ValueError(f"{self.path}: {self.written} rows written of the {self.shape[0]} declared")


def read_npy_rows(path: str | os.PathLike, start: int, count: int) -> np.ndarray:
    """Rows start .. start + count of a .npy file, read without mapping the rest."""
    array = np.load(path, mmap_mode="r")
    rows = np.array(array[start:start + count])
    del array
    return rows


def write_blendshapes_json(path: str | os.PathLike, header: dict, times_ms: np.ndarray,
                           blendshapes: np.ndarray, pose: np.ndarray,
                           frame_indices: np.ndarray | None = None) -> None:
    """Write blendshapes_and_pose.json atomically.

    times_ms (N,), blendshapes (N, 52) and pose (N, 7) with NaN rows for frames without a face.
    The layout keeps the original format that renderers read (`frames`, `frameCount`,
    `failedFrames`, per frame `blendshapes`, `headPosition`, `headRotation`) and adds `header`.
    The header is indented for people; each frame is one compact line."""
    n = len(times_ms)
    assert blendshapes.shape == (n, N_BLENDSHAPES) and pose.shape == (n, len(POSE_NAMES))
    indices = np.arange(n) if frame_indices is None else frame_indices
    has_face = ~np.isnan(blendshapes).any(axis=1) & ~np.isnan(pose).any(axis=1)
    header = dict(format=BLENDSHAPES_FORMAT, format_version=BLENDSHAPES_FORMAT_VERSION, **header,
                  blendshape_names=list(BLENDSHAPE_NAMES), pose_names=list(POSE_NAMES),
                  rounding={"blendshapes": ROUND_BLENDSHAPES, "translation_cm": ROUND_TRANSLATION,
                            "rotation": ROUND_ROTATION, "timestamp_ms": ROUND_TIMESTAMP})
    # frame lines go to the file one by one: two hours at 30 fps are ~300 MB of JSON, never held at once
    with atomic_path(path) as tmp, open(tmp, "w") as out:
        out.write('{\n"header": ' + json.dumps(header, indent=1) +
                  f',\n"frameCount": {n},\n"failedFrames": {int((~has_face).sum())},\n"frames": [\n')
        for i in range(n):
            frame = {"frame_index": int(indices[i]), "timestamp": round(float(times_ms[i]), ROUND_TIMESTAMP),
                     "has_face": bool(has_face[i])}
            if has_face[i]:
                frame["blendshapes"] = {name: round(float(v), ROUND_BLENDSHAPES)
                                        for name, v in zip(BLENDSHAPE_NAMES, blendshapes[i])}
                x, y, z, qw, qx, qy, qz = (float(v) for v in pose[i])
                frame["headPosition"] = {"x": round(x, ROUND_TRANSLATION), "y": round(y, ROUND_TRANSLATION),
                                         "z": round(z, ROUND_TRANSLATION)}
                frame["headRotation"] = {"w": round(qw, ROUND_ROTATION), "x": round(qx, ROUND_ROTATION),
                                         "y": round(qy, ROUND_ROTATION), "z": round(qz, ROUND_ROTATION)}
            else:
                frame.update(blendshapes=None, headPosition=None, headRotation=None)
            out.write(json.dumps(frame, separators=(",", ":")) + (",\n" if i < n - 1 else "\n"))
        out.write("]\n}\n")


@dataclass
class BlendshapeTrack:
    """A blendshapes_and_pose.json in arrays. NaN rows where there is no face."""
    header: dict
    frame_indices: np.ndarray      # (N,) int
    times_ms: np.ndarray           # (N,) float64 presentation times in milliseconds
    blendshapes: np.ndarray        # (N, 52) float32
    pose: np.ndarray               # (N, 7) float64: x, y, z (cm), qw, qx, qy, qz
    has_face: np.ndarray           # (N,) bool


def check_header(header: dict, path, expected_format: str, expected_version: int) -> None:
    """Refuse a file of another format or version, naming the file and what to do."""
    if header.get("format") != expected_format:
        raise FormatError(f"{path}: not a {expected_format} file (format {header.get('format')!r}); "
                          "point to the output of the stage that writes it")
    if header.get("format_version") != expected_version:
        raise FormatError(f"{path}: format version {header.get('format_version')} but this code reads "
                          f"version {expected_version}; re-run the stage that made it with --force")


def read_blendshapes_json(path: str | os.PathLike) -> BlendshapeTrack:
    """Read a blendshapes_and_pose.json written by write_blendshapes_json, checking its header."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read blendshapes JSON ({error}); re-run stage 1.1 with --force")
    header = document.get("header", {})
    check_header(header, path, BLENDSHAPES_FORMAT, BLENDSHAPES_FORMAT_VERSION)
    if tuple(header.get("blendshape_names", ())) != BLENDSHAPE_NAMES or \
            tuple(header.get("pose_names", ())) != POSE_NAMES:
        raise FormatError(f"{path}: its blendshape or pose names differ from this code's; "
                          "re-run stage 1.1 with --force")
    frames = document["frames"]
    n = len(frames)
    blendshapes = np.full((n, N_BLENDSHAPES), np.nan, dtype=np.float32)
    pose = np.full((n, len(POSE_NAMES)), np.nan)
    for i, frame in enumerate(frames):
        if frame["has_face"]:
            scores = frame["blendshapes"]
            blendshapes[i] = [scores[name] for name in BLENDSHAPE_NAMES]
            p, r = frame["headPosition"], frame["headRotation"]
            pose[i] = (p["x"], p["y"], p["z"], r["w"], r["x"], r["y"], r["z"])
    return BlendshapeTrack(
        header=header,
        frame_indices=np.array([f["frame_index"] for f in frames], dtype=np.int64),
        times_ms=np.array([f["timestamp"] for f in frames], dtype=np.float64),
        blendshapes=blendshapes, pose=pose,
        has_face=np.array([f["has_face"] for f in frames], dtype=bool))
