"""The constants every stage shares: rates, the audio front-end's framing, and the names of the
52 blendshapes and 7 pose values. Derived values are computed, with the figure in a comment."""


def exact_div(a: int, b: int) -> int:
    assert a % b == 0, f"{a} is not a multiple of {b}"
    return a // b


# --- audio front-end -------------------------------------------------------------------------
SAMPLE_RATE = 16000                                     # Hz: speech models' standard rate
HOP_LENGTH = exact_div(SAMPLE_RATE * 10, 1000)          # 160 samples = 10 ms
WIN_LENGTH = exact_div(SAMPLE_RATE * 25, 1000)          # 400 samples = 25 ms
N_FFT = 512                                             # next power of two above WIN_LENGTH
N_MELS = 80
FRAME_RATE = exact_div(SAMPLE_RATE, HOP_LENGTH)         # 100 feature frames per second

# --- animation output ------------------------------------------------------------------------
OUTPUT_FPS = 30                                         # frames per second of the JSON we write

# --- names -----------------------------------------------------------------------------------
# MediaPipe Face Landmarker v2's 52 scores in its own order: `_neutral` first, then the ARKit
# names alphabetically; ARKit's `tongueOut` is not among them.
BLENDSHAPE_NAMES = (
    "_neutral",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft",
    "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)
N_BLENDSHAPES = len(BLENDSHAPE_NAMES)                   # 52
assert N_BLENDSHAPES == 52

# Head pose: translation in MediaPipe's canonical-face units (centimetres) in the camera frame,
# then the rotation as a unit quaternion (w first).
POSE_NAMES = ("x", "y", "z", "qw", "qx", "qy", "qz")
N_POSE = len(POSE_NAMES)                                # 7
N_TARGETS = N_BLENDSHAPES + N_POSE                      # 59 values a frame

# The mouth shapes the metrics single out: every jaw* and mouth* name.
MOUTH_INDICES = tuple(i for i, n in enumerate(BLENDSHAPE_NAMES) if n.startswith(("jaw", "mouth")))
