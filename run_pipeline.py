"""The whole pipeline, stage by stage, like a recipe: each stage is one of the numbered scripts,
run as you would run it by hand. This file adds no logic of its own; every stage skips outputs
that already exist, so running it twice redoes nothing.

    python run_pipeline.py                          # the built-in sample, in data/sample/
    python run_pipeline.py --raw-dir ~/my_videos    # your own talking-face videos, in data/
    python run_pipeline.py --stage 1 --stop-stage 1 # only stage 1 (blendshapes)

Stages: 0 generate the sample clips (sample only) · 1 blendshapes and head pose (stage 1.1) ·
2 audio features (stage 1.2) · 3 the synchronised dataset (stage 1.3)
"""
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure

# --- settings (each can be given on the command line: RAW_DIR as --raw-dir) ------------------
RAW_DIR = None                  # a folder of your videos; none: the built-in sample
STAGE = 0                       # first stage to run
STOP_STAGE = 99                 # last stage to run
WORKERS = 2                     # processes for the extraction stages
SAMPLE_CLIPS = 6                # sample only: how many clips to generate
SAMPLE_DURATION = 20.0          # sample only: seconds per clip
FORCE = False                   # redo every stage's outputs
# --- end of settings ---------------------------------------------------------------------------


def stages(raw: Path, work: Path, sample: bool) -> list[tuple[int, str, list]]:
    """(number, description, command) of each stage, in order."""
    force = ["--force"] if FORCE else []
    processed = work / "processed"
    steps = []
    if sample:
        steps.append((0, "generate the sample clips",
                      ["1_data_cleaning/0_generate_sample_clips.py", "--output-dir", raw,
                       "--clips", SAMPLE_CLIPS, "--duration", SAMPLE_DURATION, *force]))
    steps.append((1, "stage 1.1: blendshapes and head pose",
                  ["1_data_cleaning/1_extract_blendshapes.py", raw, "--output-dir", processed,
                   "--workers", WORKERS, *force]))
    steps.append((2, "stage 1.2: audio features",
                  ["1_data_cleaning/2_extract_audio_features.py", raw, "--output-dir", processed,
                   "--workers", WORKERS, *force]))
    steps.append((3, "stage 1.3: the synchronised dataset",
                  ["1_data_cleaning/3_create_dataset.py", "--processed-dir", processed,
                   "--output-dir", work / "dataset", *force]))
    return steps


def main(argv=None) -> int:
    configure(globals(), argv)
    sample = RAW_DIR is None
    work = REPO_ROOT / "data" / "sample" if sample else REPO_ROOT / "data"
    raw = work / "raw" if sample else Path(RAW_DIR).resolve()
    for number, description, command in stages(raw, work, sample):
        if not STAGE <= number <= STOP_STAGE:
            continue
        print(f"=== stage {number}: {description}", flush=True)
        result = subprocess.run([sys.executable, str(REPO_ROOT / command[0]), *map(str, command[1:])])
        if result.returncode != 0:
            print(f"stage {number} failed (exit {result.returncode}); fix what it names and run again: "
                  f"finished outputs are kept", file=sys.stderr)
            return result.returncode
    print(f"outputs: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
