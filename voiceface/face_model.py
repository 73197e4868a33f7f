"""Find, fetch and verify MediaPipe's face_landmarker.task (Face Landmarker v2, float16, v1)."""
from __future__ import annotations

import urllib.request
from pathlib import Path

from . import REPO_ROOT
from .errors import InputError
from .formats import atomic_path, sha256_file

FACE_MODEL_URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/"
                  "face_landmarker/float16/1/face_landmarker.task")
FACE_MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
DEFAULT_FACE_MODEL = REPO_ROOT / "checkpoints" / "face_landmarker.task"
DOWNLOAD_TIMEOUT_S = 30


def ensure_face_model(path: str | Path = DEFAULT_FACE_MODEL, option: str = "--model") -> Path:
    """Return the path of a verified face model: the file at `path`, downloaded there from the
    official URL when missing. Raises InputError with one line saying what to do (`option`: the
    calling script's setting for the path)."""
    path = Path(path)
    by_hand = (f"download {FACE_MODEL_URL} to {path} (SHA-256 {FACE_MODEL_SHA256[:12]}…), "
               f"or pass {option} PATH")
    if not path.exists():
        try:
            with urllib.request.urlopen(FACE_MODEL_URL, timeout=DOWNLOAD_TIMEOUT_S) as response, \
                    atomic_path(path) as tmp:
                tmp.write_bytes(response.read())
                if sha256_file(tmp) != FACE_MODEL_SHA256:
                    raise InputError(f"{path}: the downloaded face model's SHA-256 is wrong; {by_hand}")
        except InputError:
            raise
        except Exception as error:
            raise InputError(f"{path}: face model missing and its download failed "
                             f"({type(error).__name__}: {error}); {by_hand}") from None
    elif sha256_file(path) != FACE_MODEL_SHA256:
        raise InputError(f"{path}: not the official face model (SHA-256 differs); delete it to "
                         f"download it again, or {by_hand}")
    return path
