"""Stage 0: the built-in sample — short talking-face clips this project makes itself.

Each clip is scikit-image's public-domain astronaut portrait whose jaw and lips open and shut with
a speech-like loudness envelope, with that voiced audio as its sound track (H.264 + AAC in mp4).
Each clip gets its own envelope (seed). The ground truth (envelope per frame) is saved beside it
as <clip>.truth.npz, so what later stages measure can be checked against it.

    python 1_data_cleaning/0_generate_sample_clips.py --output-dir data/raw --clips 6 --duration 20
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

import numpy as np

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main
from voiceface.formats import atomic_path

# --- settings (each can be given on the command line: OUTPUT_DIR as --output-dir) -------------
OUTPUT_DIR = REPO_ROOT / "data/raw"    # where the clips go
CLIPS = 6                              # how many clips, each with its own envelope
DURATION = 20.0                        # seconds per clip: long enough for several phrases
FPS = 30.0                             # video frame rate
FIRST_SEED = 0                         # clip k uses seed FIRST_SEED + k
MOUTH_LEAD = 0.0                       # seconds the mouth moves before the sound (real: 0.05-0.15)
FORCE = False                          # rewrite clips that already exist
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv)
    from voiceface.cli import out_of_range
    if problem := out_of_range(("--clips", CLIPS, 1, False), ("--duration", DURATION, 1, False, "seconds"),
                               ("--fps", FPS, 0, True)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from voiceface.progress import progress_bar
    from voiceface.synthetic import write_talking_face_clip
    for k in progress_bar(range(CLIPS), desc="sample clips", unit="clip"):
        target = Path(OUTPUT_DIR) / f"sample_{FIRST_SEED + k:02d}.mp4"
        if target.exists() and not FORCE:
            continue
        with atomic_path(target) as tmp:
            clip = write_talking_face_clip(tmp, duration=DURATION, seed=FIRST_SEED + k, fps=FPS,
                                           mouth_lead=MOUTH_LEAD)
        with atomic_path(target.with_suffix(".truth.npz")) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, frame_times=clip.frame_times, openness=clip.openness)
    print(f"{CLIPS} sample clips in {OUTPUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
