"""The preview video, defined once: a face drawn from the 52 blendshapes and the head rotation,
frame by frame, beside the source video and the extracted animation when there are any, with the
input's sound muxed in — so a person can judge lip sync by eye before importing anything.

The face is drawn, not rendered from a mesh: no rigged head with ARKit morph targets is published
on a package registry under a permissive licence (three.js's ARKit-rigged example head is in its
repository, not in its npm package), and a 3D renderer would need an OpenGL stack. So it is a
clear 2D face of anti-aliased vector shapes (OpenCV, which MediaPipe brings), whose features sit
at 3D points on the head and turn with the head's rotation. What each shape moves:

    jawOpen, jawLeft/Right      the chin and the lower lip; mouthClose holds the lips together
    mouthFunnel, mouthPucker    a rounder, narrower, pushed-out mouth
    mouthSmile, mouthFrown      the corners up or down; mouthStretch, mouthDimple wider
    mouthRoll, mouthPress       thinner lips; mouthShrug the lower lip up; mouthUpperUp/LowerDown
    mouthLeft/Right             the mouth sideways
    eyeBlink, eyeWide, eyeSquint the lids; eyeLook* the irises
    brow*                       inner and outer brows up, brows down
    cheekPuff, noseSneer        wider cheeks, nostrils up
    head rotation               yaw, pitch and roll of every feature around the head's centre
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .constants import BLENDSHAPE_NAMES, OUTPUT_FPS

PANEL = 360                     # pixels: the height of the video and each face panel
SKIN, SKIN_DARK = (233, 196, 170), (196, 150, 124)
LIP, LIP_DARK = (196, 96, 96), (150, 62, 66)
MOUTH, TEETH = (60, 20, 28), (245, 242, 232)
EYE_WHITE, IRIS, PUPIL = (250, 250, 250), (84, 120, 160), (20, 20, 24)
BROW, LINE, BACKGROUND = (96, 64, 48), (120, 80, 64), (40, 44, 52)
SHIFT = 4                       # OpenCV's sub-pixel bits: coordinates carry 1/16 px
FEATURE_DEPTH = 0.5             # depth scale of the features: at 25 degrees of yaw they stay inside the outline
INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}


def _quaternion_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(q, np.float64) / max(np.linalg.norm(q), 1e-12)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


@dataclass
class FaceDrawing:
    """Draws one face in a square image of `size` pixels. Face units: the head is 2 wide, x to the
    image's right, y up, z towards the viewer; the subject's left (eyeBlinkLeft) is drawn on the
    image's right, as a camera sees a person."""
    size: int = PANEL

    def project(self, points: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """(N, 3) face points -> (N, 2) pixels, after the head rotation, with a mild perspective."""
        points = np.asarray(points, np.float64) * [1, 1, FEATURE_DEPTH]    # a flat-ish face: features stay inside
        p = points @ rotation.T
        scale = self.size * 0.33 * (1 + 0.12 * p[:, 2])
        return np.stack([self.size / 2 + scale * p[:, 0], self.size * 0.52 - scale * p[:, 1]], 1)

    def polygon(self, image, points, colour, closed=True, thickness=0) -> None:
        import cv2
        pts = np.round(np.asarray(points) * (1 << SHIFT)).astype(np.int32)[None]
        if thickness:
            cv2.polylines(image, pts, closed, colour, thickness, cv2.LINE_AA, SHIFT)
        else:
            cv2.fillPoly(image, pts, colour, cv2.LINE_AA, SHIFT)

    def draw(self, blendshapes: np.ndarray, quaternion: np.ndarray) -> np.ndarray:
        """(52,) scores in [0, 1] and a unit quaternion (w, x, y, z) relative to the neutral head
        -> (size, size, 3) uint8 RGB."""
        s = {name: float(np.clip(blendshapes[i], 0, 1)) for name, i in INDEX.items()}
        rotation = _quaternion_matrix(quaternion)
        image = np.empty((self.size, self.size, 3), np.uint8)
        image[:] = BACKGROUND
        t = np.linspace(0, 1, 24)
        # --- head and jaw: the chin drops with jawOpen and moves with jawLeft/Right ----------------
        jaw_drop = 0.32 * s["jawOpen"]
        jaw_side = 0.12 * (s["jawLeft"] - s["jawRight"])
        puff = 0.18 * s["cheekPuff"]
        angle = np.linspace(0, np.pi, 40)
        upper = np.stack([np.cos(angle), 0.05 + 1.2 * np.sin(angle), np.zeros_like(angle)], 1)
        lower_x = np.cos(np.linspace(np.pi, 2 * np.pi, 40))
        drop = (1 - np.abs(lower_x)) ** 1.5
        cheeks = np.sin(np.linspace(0, np.pi, 40)) ** 0.5                       # widest at the cheeks
        lower = np.stack([lower_x * (1 + puff * cheeks) + jaw_side * drop,
                          0.05 - (1.05 + jaw_drop) * np.sin(np.linspace(0, np.pi, 40)) * (0.75 + 0.25 * drop),
                          np.zeros_like(lower_x)], 1)
        outline = self.project(np.concatenate([upper, lower]) * [1, 1, 0] + [0, 0, 0.2], rotation)
        self.polygon(image, outline, SKIN)
        self.polygon(image, outline, SKIN_DARK, thickness=2)
        # --- eyes ----------------------------------------------------------------------------------
        for side, sign in (("Left", 1), ("Right", -1)):      # the subject's left on the image's right
            cx, cy = 0.38 * sign, 0.2
            opening = np.clip(1 - s[f"eyeBlink{side}"] + 0.5 * s[f"eyeWide{side}"], 0, 1.5)
            squint = 0.5 * s[f"eyeSquint{side}"]
            half = 0.2
            x = cx + half * (2 * t - 1)
            bulge = np.sin(np.pi * t)
            top = cy + 0.02 + 0.11 * bulge * opening
            bottom = cy + 0.02 - 0.08 * bulge * (1 - squint) * min(opening + 0.3, 1)
            eye = np.concatenate([np.stack([x, top], 1), np.stack([x[::-1], bottom[::-1]], 1)])
            z = np.full((len(eye), 1), 0.78)
            if opening > 0.08:
                self.polygon(image, self.project(np.c_[eye, z], rotation), EYE_WHITE)
                look_x = 0.07 * ((s[f"eyeLookIn{side}"] - s[f"eyeLookOut{side}"]) * -sign)
                look_y = 0.05 * (s[f"eyeLookUp{side}"] - s[f"eyeLookDown{side}"])
                ring = np.linspace(0, 2 * np.pi, 24)
                radius = 0.065
                iris_y = np.clip(cy + 0.02 + look_y + radius * np.sin(ring), bottom.min(), top.max())
                iris = np.c_[cx + look_x + radius * np.cos(ring), iris_y, np.full(24, 0.8)]
                self.polygon(image, self.project(iris, rotation), IRIS)
                pupil = np.c_[cx + look_x + 0.028 * np.cos(ring),
                              np.clip(cy + 0.02 + look_y + 0.028 * np.sin(ring), bottom.min(), top.max()),
                              np.full(24, 0.81)]
                self.polygon(image, self.project(pupil, rotation), PUPIL)
            self.polygon(image, self.project(np.c_[x, top, np.full(24, 0.8)], rotation), LINE, closed=False, thickness=2)
            # brows: inner end up with browInnerUp, outer with browOuterUp, all down with browDown
            inner_up, outer_up = 0.12 * s["browInnerUp"], 0.12 * s[f"browOuterUp{side}"]
            down = 0.09 * s[f"browDown{side}"]
            brow_x = cx + 0.24 * (2 * t - 1) * sign                        # from inner to outer
            brow_y = cy + 0.24 + 0.03 * np.sin(np.pi * t) + inner_up * (1 - t) + outer_up * t - down * (1 - 0.5 * t)
            self.polygon(image, self.project(np.c_[brow_x, brow_y, np.full(24, 0.8)], rotation), BROW,
                         closed=False, thickness=max(2, self.size // 60))
            # cheek squint: a crease under the eye
            if s[f"cheekSquint{side}"] > 0.1:
                crease = np.c_[cx + 0.12 * (2 * t - 1), cy - 0.16 - 0.02 * np.sin(np.pi * t), np.full(24, 0.8)]
                self.polygon(image, self.project(crease, rotation), SKIN_DARK, closed=False, thickness=1)
        # --- nose ----------------------------------------------------------------------------------
        sneer = 0.05 * (s["noseSneerLeft"] + s["noseSneerRight"]) / 2
        nose = np.array([[0.0, 0.12, 0.92], [-0.05, -0.12, 1.0], [-0.12, -0.16 + sneer, 0.9], [0.0, -0.2, 0.95],
                         [0.12, -0.16 + sneer, 0.9], [0.05, -0.12, 1.0]])
        self.polygon(image, self.project(nose, rotation), SKIN_DARK, closed=False, thickness=2)
        # --- mouth ---------------------------------------------------------------------------------
        smile = (s["mouthSmileLeft"] + s["mouthSmileRight"]) / 2
        stretch = (s["mouthStretchLeft"] + s["mouthStretchRight"] + s["mouthDimpleLeft"] + s["mouthDimpleRight"]) / 2
        round_ = max(s["mouthFunnel"], 0.0)
        pucker = s["mouthPucker"]
        half_width = 0.27 * (1 + 0.3 * stretch + 0.25 * smile - 0.4 * pucker - 0.3 * round_)
        centre_x = 0.1 * (s["mouthLeft"] - s["mouthRight"]) + 0.6 * jaw_side
        centre_y = -0.45
        corner_left = centre_y + 0.13 * s["mouthSmileLeft"] - 0.08 * s["mouthFrownLeft"]     # image right
        corner_right = centre_y + 0.13 * s["mouthSmileRight"] - 0.08 * s["mouthFrownRight"]
        # the lips part by the jaw's opening, less what mouthClose holds shut, plus the lips' own lifts
        parting = max(0.0, 0.55 * s["jawOpen"] * (1 - 0.9 * s["mouthClose"])
                      + 0.12 * (s["mouthUpperUpLeft"] + s["mouthUpperUpRight"]) / 2
                      + 0.12 * (s["mouthLowerDownLeft"] + s["mouthLowerDownRight"]) / 2 + 0.18 * round_)
        upper_thick = 0.06 * (1 - 0.6 * s["mouthRollUpper"] - 0.3 * (s["mouthPressLeft"] + s["mouthPressRight"]) / 2
                              + 0.4 * pucker) + 0.004
        lower_thick = 0.075 * (1 - 0.6 * s["mouthRollLower"] - 0.3 * (s["mouthPressLeft"] + s["mouthPressRight"]) / 2
                               + 0.4 * pucker) + 0.004
        shrug = 0.04 * s["mouthShrugLower"]
        x = centre_x + half_width * (2 * t - 1)
        corners = corner_right + (corner_left - corner_right) * t                # right corner at x < 0
        bow = np.sin(np.pi * t) ** (0.6 if round_ > 0.3 else 1.0)                # rounder when funnelled
        gap_top = corners + (0.35 * parting + 0.02 * smile) * bow - 0.05 * smile * bow    # a smile curves the lips
        gap_bottom = corners - (0.65 * parting - shrug) * bow
        z = 0.82 + 0.12 * (pucker + round_) * bow                                 # lips push out
        lip_top = gap_top + upper_thick * (0.4 + bow)
        lip_bottom = gap_bottom - lower_thick * (0.4 + bow)
        mouth_outline = np.concatenate([np.c_[x, lip_top, z], np.c_[x[::-1], lip_bottom[::-1], z[::-1]]])
        self.polygon(image, self.project(mouth_outline, rotation), LIP)
        if parting > 0.01:
            inside = np.concatenate([np.c_[x, gap_top, z], np.c_[x[::-1], gap_bottom[::-1], z[::-1]]])
            self.polygon(image, self.project(inside, rotation), MOUTH)
            teeth_bottom = gap_top - np.minimum(0.05, 0.5 * (gap_top - gap_bottom))
            teeth = np.concatenate([np.c_[x[3:-3], gap_top[3:-3], z[3:-3]],
                                    np.c_[x[3:-3][::-1], teeth_bottom[3:-3][::-1], z[3:-3][::-1]]])
            self.polygon(image, self.project(teeth, rotation), TEETH)
        else:
            self.polygon(image, self.project(np.c_[x, (gap_top + gap_bottom) / 2, z], rotation), LIP_DARK,
                         closed=False, thickness=2)
        self.polygon(image, self.project(mouth_outline, rotation), LIP_DARK, thickness=1)
        return image


def label(image: np.ndarray, text: str) -> None:
    import cv2
    cv2.putText(image, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)


def relative_rotations(pose: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(N, 7) poses -> (N, 4) rotations relative to `reference` (default: their mean), w >= 0."""
    from .pose import mean_quaternion, quaternion_conjugate, quaternion_multiply
    q = np.asarray(pose, np.float64)[:, 3:]
    known = np.isfinite(q).all(axis=1)
    if not known.any():
        return np.tile([1.0, 0, 0, 0], (len(q), 1))
    reference = mean_quaternion(q[known]) if reference is None else reference
    out = np.tile([1.0, 0, 0, 0], (len(q), 1))
    out[known] = quaternion_multiply(quaternion_conjugate(reference), q[known])
    return out * np.where(out[:, :1] < 0, -1.0, 1.0)


def _latest_before(times: np.ndarray, t: float) -> int:
    return int(np.clip(np.searchsorted(times, t + 1e-6, side="right") - 1, 0, len(times) - 1))


def write_preview(path: str | Path, frames, audio_path: str | Path, fps: float = OUTPUT_FPS,
                  video_path: str | Path | None = None, reference=None, title: str = "predicted") -> Path:
    """An H.264 + AAC mp4: for each output frame k (at k / fps, the frames of the JSON), the source
    video's frame shown at that time (if video_path), the extracted face (if `reference`, a
    BlendshapeTrack of the same clip) and the predicted face; the input's sound (16 kHz mono, as
    the model heard it) under it. Written frame by frame and block by block (bounded memory),
    to a temporary file renamed at the end."""
    import av

    from .audio import SAMPLE_RATE, open_audio
    from .formats import atomic_path
    from .video import iter_video_frames
    drawing = FaceDrawing(PANEL)
    source, blocks = open_audio(audio_path)
    start_s = source.start_s                         # frame k's video time: the audio's start + k / fps
    video = iter_video_frames(video_path) if video_path else None
    current_video, next_video = None, next(video) if video else None
    ref_rotations = ref_times = None
    if reference is not None:
        ref_times = reference.times_ms / 1000
        ref_rotations = relative_rotations(reference.pose)
    predicted_rotations = relative_rotations(frames.pose, np.array([1.0, 0, 0, 0]))
    video_width = 0
    if video_path:
        from .video import probe_video
        info = probe_video(video_path)
        video_width = int(round(PANEL * info.width / max(info.height, 1) / 2)) * 2
    width = video_width + PANEL * (2 if reference is not None else 1)
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), "w", format="mp4")
        from fractions import Fraction
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, PANEL, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        pending, sent = np.zeros(0, np.float32), 0
        blocks = iter(blocks)

        def mux_audio(until_sample: int | None) -> None:
            """Encode audio up to `until_sample` (None: all of it), 1024 samples a frame."""
            nonlocal pending, sent
            while until_sample is None or sent + len(pending) < until_sample + 1024:
                block = next(blocks, None)
                if block is None:
                    break
                pending = np.concatenate([pending, block])
            while len(pending) >= 1024 or (until_sample is None and len(pending)):
                piece, pending = pending[:1024], pending[1024:]
                frame = av.AudioFrame.from_ndarray(piece[None].astype(np.float32), format="flt", layout="mono")
                frame.sample_rate, frame.pts = SAMPLE_RATE, sent
                sent += len(piece)
                for packet in sound.encode(frame):
                    container.mux(packet)
                if until_sample is not None and sent >= until_sample:
                    break

        for k, t in enumerate(frames.times):
            panels = []
            if video is not None:
                while next_video is not None and next_video[0] <= start_s + t + 1e-6:
                    current_video, next_video = next_video, next(video, None)
                import cv2
                picture = current_video[1] if current_video is not None else np.zeros((PANEL, video_width, 3), np.uint8)
                panel = cv2.resize(picture, (video_width, PANEL), interpolation=cv2.INTER_AREA)
                label(panel, "video")
                panels.append(panel)
            if reference is not None:
                i = _latest_before(ref_times, start_s + t)
                if reference.has_face[i]:
                    panel = drawing.draw(reference.blendshapes[i], ref_rotations[i])
                else:
                    panel = np.full((PANEL, PANEL, 3), BACKGROUND, np.uint8)
                label(panel, "extracted (MediaPipe)")
                panels.append(panel)
            panel = drawing.draw(frames.blendshapes[k], predicted_rotations[k])
            label(panel, title)
            panels.append(panel)
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.concatenate(panels, axis=1)), format="rgb24")
            picture.pts = k
            for packet in stream.encode(picture):
                container.mux(packet)
            mux_audio(int(round((t + 1 / fps) * SAMPLE_RATE)))
        for packet in stream.encode():
            container.mux(packet)
        mux_audio(None)
        for packet in sound.encode():
            container.mux(packet)
        container.close()
        if video is not None:
            video.close()
    return Path(path)
