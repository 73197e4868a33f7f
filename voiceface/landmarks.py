"""MediaPipe Face Landmarker v2 on a video: 52 blendshape scores and head pose per frame."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cli import STOP_ASKED, ctrl_c_deferred
from .constants import BLENDSHAPE_NAMES, N_BLENDSHAPES, N_POSE
from .errors import InputError
from .formats import library_versions, now_iso, sha256_file
from .pose import make_sign_continuous, matrix_to_pose
from .video import iter_video_frames, probe_video

os.environ.setdefault("GLOG_minloglevel", "2")        # MediaPipe's C++ start-up chatter (most of it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")    # bypasses these: see native_stderr_silenced)


FACE_CHECK_SECONDS = 1.0        # default spacing of the separate look for other faces


def create_landmarker(model_path: str | Path, max_faces: int = 1, min_detection: float = 0.5,
                      min_tracking: float = 0.5, video: bool = True):
    """A Face Landmarker that outputs blendshapes and the facial transformation matrix. Close it
    when done. In VIDEO mode with max_faces=1 it *tracks*: the face detector runs only until a
    face is found (and again when tracking is lost), then each frame's landmarks start from the
    last ones. With max_faces > 1 it runs the detector in every frame in which it has not yet found
    max_faces faces — for one speaker, every frame — and the landmarks restart from a fresh
    detection each time (measured on real clips: 50 % more frame-to-frame jitter of jawOpen).
    IMAGE mode (video=False) detects in every call: the sparse look for other faces uses it."""
    from mediapipe.tasks.python import BaseOptions, vision
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE, num_faces=max_faces,
        min_face_detection_confidence=min_detection, min_face_presence_confidence=min_detection,
        min_tracking_confidence=min_tracking,
        output_face_blendshapes=True, output_facial_transformation_matrixes=True)
    return vision.FaceLandmarker.create_from_options(options)


def _image_class():
    """MediaPipe's Image with its C pointer defaulting to None. Its `__del__` reads the pointer,
    which `__init__` sets only after loading the library; a Ctrl-C landing before that (the
    interrupt is raised in whatever Python line runs) left a half-built Image whose `__del__`
    printed "Exception ignored ... AttributeError: 'Image' object has no attribute '_image_ptr'"
    with a traceback under the one line a stopped run gives (seen once in 347 tests; Pillow's
    ImageTk.PhotoImage had the same fault: python-pillow/Pillow#8018, fixed in #8341)."""
    global _IMAGE_CLASS
    if _IMAGE_CLASS is None:
        import mediapipe as mp

        class Image(mp.Image):
            _image_ptr = None
        _IMAGE_CLASS = Image
    return _IMAGE_CLASS


_IMAGE_CLASS = None


def to_mediapipe_image(rgb: np.ndarray):
    import mediapipe as mp
    return _image_class()(image_format=mp.ImageFormat.SRGB, data=rgb)


def face_centre_and_area(landmarks) -> tuple[np.ndarray, float]:
    """Centre (normalised x, y) and bounding-box area of one face's landmarks."""
    xy = np.array([(p.x, p.y) for p in landmarks])
    low, high = xy.min(axis=0), xy.max(axis=0)
    return (low + high) / 2, float(np.prod(high - low))


def choose_face(result, previous_centre: np.ndarray | None) -> tuple[int, np.ndarray]:
    """Which detected face to follow: the largest when none is being followed, otherwise the one
    nearest to where the followed face was, so a second face walking in cannot take over."""
    measured = [face_centre_and_area(lm) for lm in result.face_landmarks]
    if previous_centre is None:
        index = int(np.argmax([area for _, area in measured]))
    else:
        index = int(np.argmin([np.linalg.norm(c - previous_centre) for c, _ in measured]))
    return index, measured[index][0]


@dataclass
class FaceCensus:
    """The sparse look for other faces: every `every_s` seconds of video a separate landmarker in
    IMAGE mode (its own detector, so the tracked one is never disturbed) counts the faces, and
    says whether the followed face is the largest of them."""
    every_s: float
    checks: int = 0
    max_seen: int = 0
    with_several: int = 0
    followed_not_largest: int = 0
    next_check_s: float = 0.0

    def due(self, time_s: float) -> bool:
        return self.every_s > 0 and time_s >= self.next_check_s

    def record(self, result, time_s: float, followed_centre: np.ndarray | None) -> None:
        self.next_check_s = time_s + self.every_s
        self.checks += 1
        n = len(result.face_landmarks)
        self.max_seen = max(self.max_seen, n)
        if n > 1:
            self.with_several += 1
            if followed_centre is not None:
                measured = [face_centre_and_area(lm) for lm in result.face_landmarks]
                nearest = int(np.argmin([np.linalg.norm(c - followed_centre) for c, _ in measured]))
                self.followed_not_largest += nearest != int(np.argmax([a for _, a in measured]))

    def to_dict(self) -> dict:
        return {"max_seen": self.max_seen, "checked_frames": self.checks,
                "checked_frames_with_several_faces": self.with_several,
                "checked_frames_following_a_smaller_face": self.followed_not_largest,
                "check_every_s": self.every_s}


def extract_blendshapes_and_pose(video_path: str | Path, model_path: str | Path, max_faces: int = 2,
                                 min_detection: float = 0.5, min_tracking: float = 0.5,
                                 progress: bool = False, face_check_s: float = FACE_CHECK_SECONDS,
                                 detect_every_frame: bool = False,
                                 max_seconds: float = 0.0) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Run the face landmarker over every frame of a video.

    The followed face is tracked (VIDEO mode, one face). Other faces are looked for separately
    every face_check_s seconds (up to max_faces; 0 or max_faces 1: never) and reported in the
    header. detect_every_frame=True restores the first version's mode for comparison: max_faces
    faces looked for in every frame, following the largest at first sight, then the nearest.
    max_seconds > 0: only the frames of the video's first max_seconds (strength.face_at_rest's rest
    needs a minute or two of a video, not all of it).

    Returns (header, times_ms (N,), blendshapes (N, 52), pose (N, 7)): one row per video frame,
    times in milliseconds from the container's presentation timestamps, NaN rows where no face
    was found, quaternions unit-norm and sign-continuous. Raises InputError for unreadable
    video or when no frame has a face."""
    from .progress import native_stderr_silenced, progress_bar
    video_path = Path(video_path)
    info = probe_video(video_path)
    times, scores, poses = [], [], []
    followed_centre = None
    census = FaceCensus(face_check_s if max_faces > 1 and not detect_every_frame else 0.0)
    frames_with_several = 0
    # each landmarker is closed the moment it exists, whatever stops the run: a Ctrl-C landing
    # between creating one and the loop's `try` left it to its __del__ at interpreter exit, when
    # MediaPipe's modules are torn down ("Exception ignored in FaceLandmarker.__del__ ... TypeError:
    # 'NoneType' object is not callable" under the stopped run's one line; once in 350 tests)
    with contextlib.ExitStack() as closing:
        with native_stderr_silenced(), ctrl_c_deferred():   # MediaPipe's C++ start-up warnings, on every run
            landmarker = closing.enter_context(contextlib.closing(create_landmarker(
                model_path, max_faces if detect_every_frame else 1, min_detection, min_tracking)))
            checker = closing.enter_context(contextlib.closing(create_landmarker(
                model_path, max_faces, min_detection, min_tracking, video=False))) if census.every_s > 0 else None
        bar = closing.enter_context(contextlib.closing(progress_bar(
            total=info.expected_frames or None, desc=video_path.name, unit="frame", leave=False, enabled=progress)))
        last_ms, names_checked = -1, False
        for time_s, rgb in iter_video_frames(video_path):
            if STOP_ASKED.is_set():         # a Ctrl-C that arrived inside MediaPipe's calls
                raise KeyboardInterrupt
            if max_seconds > 0 and time_s - info.start_time_s >= max_seconds:
                break
            # MediaPipe's VIDEO mode wants strictly increasing integer milliseconds
            stamp_ms = max(int(round((time_s - info.start_time_s) * 1000)), last_ms + 1)
            last_ms = stamp_ms
            with ctrl_c_deferred():          # a Ctrl-C here is seen at the next frame
                image = to_mediapipe_image(rgb)
                if not times:               # the graph's own threads warn during the first call
                    with native_stderr_silenced():
                        result = landmarker.detect_for_video(image, stamp_ms)
                else:
                    result = landmarker.detect_for_video(image, stamp_ms)
            times.append(time_s * 1000.0)
            n_faces = len(result.face_blendshapes)
            frames_with_several += n_faces > 1
            if n_faces == 0 or not result.facial_transformation_matrixes:
                scores.append(np.full(N_BLENDSHAPES, np.nan))
                poses.append(np.full(N_POSE, np.nan))
                followed_centre = None
            else:
                if not names_checked:
                    check_blendshape_names(result)
                    names_checked = True
                index, followed_centre = choose_face(result, followed_centre)
                categories = result.face_blendshapes[index]
                scores.append(np.array([c.score for c in categories]))
                translation, quaternion = matrix_to_pose(result.facial_transformation_matrixes[index])
                poses.append(np.concatenate([translation, quaternion]))
            if checker is not None and census.due(time_s - info.start_time_s):
                with ctrl_c_deferred():
                    if census.checks == 0:
                        with native_stderr_silenced():
                            check = checker.detect(image)
                    else:
                        check = checker.detect(image)
                census.record(check, time_s - info.start_time_s, followed_centre)
            bar.update(1)
    times_ms = np.asarray(times)
    blendshapes = np.asarray(scores, dtype=np.float32)
    pose = np.asarray(poses)
    if np.isnan(blendshapes).all():
        raise InputError(f"{video_path}: no face found in any of its {len(times)} frames; "
                         "stage 1.1 needs a visible, roughly frontal face")
    pose[:, 3:] = make_sign_continuous(pose[:, 3:])
    intervals = np.diff(times_ms)
    if detect_every_frame:
        faces = {"mode": f"detection in every frame, up to {max_faces} faces", "frames_with_several_faces":
                 frames_with_several, "followed": "the largest face at first sight, then the one nearest its last position"}
    else:
        faces = {"mode": "the followed face tracked (one face, VIDEO mode); others counted by a separate "
                         "detection every check_every_s", **census.to_dict(),
                 "followed": "the face MediaPipe's detector finds first, tracked until lost"}
    header = {
        "created_by": "1_data_cleaning/1_extract_blendshapes.py",
        "created_at": now_iso(),
        "source": {"path": str(video_path), "sha256": sha256_file(video_path),
                   "size_bytes": video_path.stat().st_size},
        "video": {"width": info.width, "height": info.height, "rotation_deg": info.rotation_deg,
                  "fps": round(1000.0 / float(np.median(intervals)), 4) if len(intervals) else info.average_fps,
                  "container_average_fps": round(info.average_fps, 4),
                  "variable_frame_rate": bool(len(intervals) and np.ptp(intervals) > 1.0),
                  "duration_s": round(float(times_ms[-1] - times_ms[0]) / 1000 + (
                      float(np.median(intervals)) / 1000 if len(intervals) else 0), 4),
                  "frame_count": len(times_ms),
                  "first_frame_time_ms": round(float(times_ms[0]), 3)},
        "timestamps": "presentation time of each frame from the container, in ms",
        "pose_units": {"x, y, z": "cm, camera frame (x right, y up, z towards the camera)",
                       "qw, qx, qy, qz": "unit quaternion, sign-continuous across frames"},
        "faces": faces,
        "face_model": {"path": str(model_path), "sha256": sha256_file(model_path),
                       "max_faces": max_faces, "detect_every_frame": detect_every_frame,
                       "min_detection_confidence": min_detection, "min_tracking_confidence": min_tracking},
        "libraries": library_versions(),
    }
    return header, times_ms, blendshapes, pose


def check_blendshape_names(result) -> None:
    """MediaPipe's category names must be ours, in our order (a model update could change them)."""
    names = tuple(c.category_name for c in result.face_blendshapes[0])
    if names != BLENDSHAPE_NAMES:
        raise InputError(f"face model outputs blendshapes {names[:3]}… unlike voiceface.constants; "
                         "use the official face_landmarker.task")
