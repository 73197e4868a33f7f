"""Shared fixtures: talking-face clips this project generates, and a runner for stage scripts.

No test reads ../shared except for the face model, which .ci/run copies into checkpoints/."""
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from voiceface.cli import usable_cores  # noqa: E402  (imports neither PyTorch nor NumPy)

# Each test worker's share of the cores, for the thread pools of PyTorch (OpenMP) and NumPy (OpenBLAS)
# in the worker and in every script it starts. Left at their defaults, each pool is as wide as the
# machine, so two workers (-n 2) on two cores run four threads that spin while they wait for each
# other: two 4-epoch tiny trainings side by side took 47-56 s so, 7.4-8.2 s with one thread each
# (three tries each; ARCHITECTURE.md, "Test media the project makes itself"). Set in the workers
# only (the process that starts them would pass its own to them), before anything imports PyTorch;
# a value already in the environment is kept (the tests of threads set their own). Not
# MKL_NUM_THREADS: PyTorch would take it over the OMP_NUM_THREADS those tests set.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _cores_each = max(1, usable_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    for _pool in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_pool, str(_cores_each))

from voiceface.face_model import DEFAULT_FACE_MODEL  # noqa: E402

ROLL_DEGREES = 20.0


def run_script(script: str, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a stage script as a user would, from a folder other than the repository root."""
    return subprocess.run([sys.executable, str(REPO_ROOT / script), *map(str, args)], cwd="/",
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))


def by_default(strength=None):
    """`strength` (a voiceface.strength.Strength; None: none) with inference.py's default smoothing
    and blinks, which it applies unless told otherwise."""
    from voiceface.blinks import DEFAULT_BLINKS_PER_MINUTE
    from voiceface.strength import DEFAULT_SMOOTHING, NONE, with_blinks, with_smoothing
    return with_blinks(with_smoothing(strength or NONE, DEFAULT_SMOOTHING), DEFAULT_BLINKS_PER_MINUTE)


def as_a_terminal_starts_it() -> None:
    """Popen's preexec_fn for a test of Ctrl-C: the command starts with Ctrl-C's default action, as
    a shell's foreground command does, whatever the test runner was started with (a runner started
    in the background ignores SIGINT, and its children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def built_once(tmp_path_factory, name: str, build):
    """A folder of generated media made once for the whole test run, and what build(folder) returned.

    With pytest-xdist each worker would make its own: a session fixture runs once per worker, a
    module fixture once per worker its tests land on. The first worker to ask builds under a file
    lock in the run's folder, which the workers share; the others wait for it and read the same
    folder. Tests only read these folders (they copy what they change). A name belongs to one
    builder: a second fixture asking for it is refused rather than handed the first one's folder."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent                                   # the run's folder, above each worker's
    folder, done = base / name, base / f"{name}.built"
    builder = f"{build.__module__}.{build.__qualname__}"
    with FileLock(f"{folder}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)        # what a build that failed left
            folder.mkdir(parents=True)
            done.write_bytes(pickle.dumps((builder, build(folder))))
    made_by, value = pickle.loads(done.read_bytes())
    assert made_by == builder, f"built_once({name!r}) is {made_by}'s folder, not {builder}'s: give it another name"
    return value


@pytest.fixture(scope="session")
def face_model() -> Path:
    if not DEFAULT_FACE_MODEL.exists():
        pytest.fail(f"{DEFAULT_FACE_MODEL} is missing: copy ../shared/models/face_landmarker.task there")
    return DEFAULT_FACE_MODEL


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Generated clips and their ground truth, keyed by name."""
    from voiceface.synthetic import write_talking_face_clip
    return built_once(tmp_path_factory, "raw", lambda folder: {
        "plain": write_talking_face_clip(folder / "plain.mp4", duration=4.0, seed=0),
        "rotated": write_talking_face_clip(folder / "rotated.mp4", duration=4.0, seed=0, roll_degrees=ROLL_DEGREES),
        "vfr": write_talking_face_clip(folder / "vfr.mp4", duration=4.0, seed=1, variable_frame_rate=True,
                                       extra_width=14),    # 270 px wide: FFmpeg pads its rows
        "two_faces": write_talking_face_clip(folder / "two_faces.mp4", duration=3.0, seed=2, second_face=True),
    })


@pytest.fixture(scope="session")
def extracted(clips, face_model, tmp_path_factory):
    """Stage 1.1 run once over all generated clips: {name: BlendshapeTrack}."""
    from voiceface.formats import read_blendshapes_json

    def build(output):
        result = run_script("1_data_cleaning/1_extract_blendshapes.py", clips["plain"].path.parent, "--output-dir", output)
        assert result.returncode == 0, result.stderr
        return {name: read_blendshapes_json(output / name / "blendshapes_and_pose.json") for name in clips}
    return built_once(tmp_path_factory, "processed", build)


@pytest.fixture(scope="session")
def learn_dataset(tmp_path_factory, face_model):
    """Five generated 8 s clips through stages 1.1, 1.2 and 1.3; sample_24 held out for validation."""
    def build(root):
        for script, *args in (
                ("1_data_cleaning/0_generate_sample_clips.py", "--output-dir", root / "raw", "--clips", 5,
                 "--duration", 8, "--first-seed", 20),
                ("1_data_cleaning/1_extract_blendshapes.py", root / "raw", "--output-dir", root / "processed",
                 "--workers", 2),
                ("1_data_cleaning/2_extract_audio_features.py", root / "raw", "--output-dir", root / "processed"),
                ("1_data_cleaning/3_create_dataset.py", "--processed-dir", root / "processed", "--output-dir",
                 root / "dataset", "--val-clips", "sample_24")):
            result = run_script(script, *args)
            assert result.returncode == 0, result.stderr
        return root
    return built_once(tmp_path_factory, "learn", build)


# the generated clips have one voice: frequency warping (for other speakers) only slows learning there
QUICK_TRAINING = ["--preset", "tiny", "--window-seconds", "2", "--stride-seconds", "0.5", "--warmup-seconds", "0.5",
                  "--batch-size", "8", "--learning-rate", "3e-3", "--freq-warp", "0"]


@pytest.fixture(scope="session")
def trained_run(learn_dataset, tmp_path_factory):
    """The tiny model trained for 25 epochs on the generated clips (about 20 s on two cores)."""
    def build(folder):
        result = run_script("2_architecture_training/train.py", "--dataset-dir", learn_dataset / "dataset",
                            "--run-dir", folder / "run", "--epochs", 25, *QUICK_TRAINING)
        assert result.returncode == 0, result.stderr
        return folder / "run"
    return built_once(tmp_path_factory, "trained", build)
