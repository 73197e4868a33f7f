"""The failures a new user meets, stage by stage: each gets one line naming the file and what to do,
a non-zero exit, the other inputs still processed, and nothing partial or damaged left behind.
(Bad inputs that earlier test files already cover: test_extract_blendshapes.py — text named .mp4,
empty, zero frames, no face, truncated, kill -9 and Ctrl-C of stage 1.1; test_audio_features.py —
no audio, corrupt, empty, 10 ms, 8-bit, digital silence; test_inference.py — damaged and foreign
checkpoints, a broken file among good ones; test_dataset.py — stage 1.3's bad clips.)"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import QUICK_TRAINING, REPO_ROOT, as_a_terminal_starts_it, run_script

STAGE_11, STAGE_12, STAGE_13 = ("1_data_cleaning/1_extract_blendshapes.py", "1_data_cleaning/2_extract_audio_features.py",
                                "1_data_cleaning/3_create_dataset.py")
TRAIN, INFER, EVALUATE = "2_architecture_training/train.py", "3_inference/inference.py", "3_inference/evaluate.py"
MEDIAPIPE_CHATTER = ("W0000", "I0000", "inference_feedback_manager", "xnnpack", "TensorFlow Lite", "InitGoogle",
                     "absl::InitializeLog")


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def leftovers(folder: Path) -> list[Path]:
    """Temporary or partial files a crash could leave."""
    return [p for p in Path(folder).rglob("*") if ".partial" in p.name or p.name.startswith((".write-check", ".tmp"))]


@contextmanager
def read_only_folder(tmp_path: Path):
    """A folder nobody may write into. Tests run as root on CI, and root ignores permission bits:
    then a read-only bind mount, or failing that a place in sysfs, which refuses new entries."""
    folder = tmp_path / "read only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True).returncode == 0:
        try:
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], capture_output=True)
        return
    yield Path("/sys/kernel/voiceface-test-read-only")


# --- stage 1.1 ---------------------------------------------------------------------------------
def test_stage_11_names_an_audio_file_and_processes_an_odd_path(clips, face_model, tmp_path):
    from voiceface.synthetic import AUDIO_SAMPLE_RATE, write_audio_file
    folder = tmp_path / "in put ü"
    folder.mkdir()
    shutil.copy(clips["plain"].path, folder / "clip with space ü.mp4")
    # sound only, named like a recording: one second of the clip's audio
    write_audio_file(folder / "speech.m4a", clips["plain"].audio[:AUDIO_SAMPLE_RATE], AUDIO_SAMPLE_RATE)
    out = tmp_path / "out"
    result = run_script(STAGE_11, folder / "clip with space ü.mp4", folder / "speech.m4a", "--output-dir", out)
    assert result.returncode == 1
    errors = error_lines(result)
    assert len(errors) == 1 and "speech.m4a" in errors[0] and "no video stream" in errors[0]
    assert (out / "clip with space ü" / "blendshapes_and_pose.json").exists() and not leftovers(out)


def test_stage_11_refuses_a_read_only_output_folder_in_one_line(clips, face_model, tmp_path):
    with read_only_folder(tmp_path) as folder:
        result = run_script(STAGE_11, clips["plain"].path, "--output-dir", folder / "processed")
        assert result.returncode == 1 and len(error_lines(result)) == 1, result.stderr
        assert "cannot write here" in result.stderr and "Traceback" not in result.stderr


def test_a_run_written_to_a_file_has_plain_lines_and_no_native_chatter(clips, face_model, tmp_path):
    # capture_output: standard output and error are pipes, as when redirected to a log file
    result = run_script(STAGE_11, clips["plain"].path, clips["vfr"].path, "--output-dir", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert "\r" not in log, "progress bars wrote carriage returns into a log"
    assert not [line for line in log.splitlines() if any(word in line for word in MEDIAPIPE_CHATTER)], log
    assert len([line for line in result.stdout.splitlines() if "frames" in line]) == 2       # one line per file


# --- stage 1.2 ---------------------------------------------------------------------------------
def test_stage_12_refuses_a_read_only_output_folder_in_one_line(clips, tmp_path):
    with read_only_folder(tmp_path) as folder:
        result = run_script(STAGE_12, clips["plain"].path, "--output-dir", folder / "processed")
        assert result.returncode == 1 and len(error_lines(result)) == 1 and "cannot write here" in result.stderr


# --- stage 1.3 ---------------------------------------------------------------------------------
def test_stage_13_names_each_clip_missing_an_input_and_builds_from_the_rest(learn_dataset, tmp_path):
    processed = tmp_path / "processed"
    shutil.copytree(learn_dataset / "processed", processed)
    (processed / "sample_20" / "audio_features.npz").unlink()
    (processed / "sample_21" / "blendshapes_and_pose.json").unlink()
    result = run_script(STAGE_13, "--processed-dir", processed, "--output-dir", tmp_path / "dataset")
    assert result.returncode == 1
    errors = error_lines(result)
    assert len(errors) == 2
    assert any("sample_20" in e and "audio_features.npz is missing; run stage 1.2" in e for e in errors)
    assert any("sample_21" in e and "blendshapes_and_pose.json is missing; run stage 1.1" in e for e in errors)
    manifest = json.loads((tmp_path / "dataset" / "dataset_manifest.json").read_text())
    assert sorted(c["clip"] for c in manifest["clips"]) == ["sample_22", "sample_23", "sample_24"]
    assert not leftovers(tmp_path) and not list(tmp_path.glob(".dataset*"))


def test_stage_13_refuses_a_read_only_output_folder_in_one_line(learn_dataset, tmp_path):
    with read_only_folder(tmp_path) as folder:
        result = run_script(STAGE_13, "--processed-dir", learn_dataset / "processed", "--output-dir", folder / "ds")
        assert result.returncode == 1 and len(error_lines(result)) == 1 and "cannot write here" in result.stderr


# --- training ----------------------------------------------------------------------------------
def dataset_with(learn_dataset: Path, tmp_path: Path, clips: list[str], seconds: float | None = None) -> Path:
    """A stage 1.3 dataset of some of the generated clips, optionally cut to `seconds` each."""
    processed = tmp_path / "processed"
    for clip in clips:
        shutil.copytree(learn_dataset / "processed" / clip, processed / clip)
        if seconds:
            from voiceface.audio import read_audio_features, write_audio_features, Features
            path = processed / clip / "audio_features.npz"
            audio = read_audio_features(path)
            keep = int(seconds * 100)
            meta = {k: v for k, v in audio.meta.items() if k not in ("format", "format_version", "front_end")}
            meta["duration_s"] = seconds
            write_audio_features(path, meta, Features(audio.mel[:keep], audio.rms_db[:keep], audio.vad[:keep]))
    result = run_script(STAGE_13, "--processed-dir", processed, "--output-dir", tmp_path / "dataset",
                        "--val-clips", clips[-1], "--max-duration-mismatch-s", 10)
    assert result.returncode == 0, result.stderr
    return tmp_path / "dataset"


def test_train_refuses_an_empty_training_split_in_one_line(learn_dataset, tmp_path):
    dataset = dataset_with(learn_dataset, tmp_path, ["sample_24"])            # one clip, held out: nothing to train on
    result = run_script(TRAIN, "--dataset-dir", dataset, "--run-dir", tmp_path / "run", "--epochs", 1, *QUICK_TRAINING)
    assert result.returncode == 1 and len(error_lines(result)) == 1 and "training split is empty" in result.stderr
    assert not (tmp_path / "run" / "last.pt").exists()


def test_train_refuses_a_split_too_short_for_one_window(learn_dataset, tmp_path):
    dataset = dataset_with(learn_dataset, tmp_path, ["sample_20", "sample_24"], seconds=0.5)
    result = run_script(TRAIN, "--dataset-dir", dataset, "--run-dir", tmp_path / "run", "--epochs", 1, *QUICK_TRAINING)
    assert result.returncode == 1 and len(error_lines(result)) == 1 and "less than one training window" in result.stderr
    assert not (tmp_path / "run" / "last.pt").exists()


def test_train_refuses_a_read_only_run_folder_in_one_line(learn_dataset, tmp_path):
    with read_only_folder(tmp_path) as folder:
        result = run_script(TRAIN, "--dataset-dir", learn_dataset / "dataset", "--run-dir", folder / "run",
                            "--epochs", 1, *QUICK_TRAINING)
        assert result.returncode == 1 and len(error_lines(result)) == 1 and "cannot write here" in result.stderr


def test_train_says_there_is_nothing_to_resume_in_a_new_run_folder(learn_dataset, tmp_path):
    result = run_script(TRAIN, "--dataset-dir", learn_dataset / "dataset", "--run-dir", tmp_path / "run", "--resume",
                        "--epochs", 1, *QUICK_TRAINING)       # (it said 'no such checkpoint; ... train one')
    assert result.returncode == 1 and error_lines(result) == [f"error: --resume: {tmp_path / 'run'} holds no last.pt "
                                                              "to resume; leave out --resume to start a run there"]


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_kill_9_mid_epoch_then_resume_gives_the_uninterrupted_result(learn_dataset, tmp_path):
    args = ["--dataset-dir", str(learn_dataset / "dataset"), "--epochs", "4", *map(str, QUICK_TRAINING)]
    assert run_script(TRAIN, "--run-dir", tmp_path / "whole", *args).returncode == 0
    broken = tmp_path / "broken"
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / TRAIN), "--run-dir", str(broken), *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not ((broken / "metrics.jsonl").exists() and len(metrics(broken)) >= 2):
        time.sleep(0.05)
    time.sleep(0.3)                                         # into the third epoch
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL and len(metrics(broken)) < 4
    resumed = run_script(TRAIN, "--run-dir", broken, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for a, b in zip(metrics(tmp_path / "whole"), metrics(broken)):
        assert a["epoch"] == b["epoch"] and a["train"]["loss"] == pytest.approx(b["train"]["loss"], rel=1e-6)
        assert a["val"]["loss"] == pytest.approx(b["val"]["loss"], rel=1e-6)
    assert len(metrics(broken)) == 4 and not leftovers(broken)


def test_a_finished_run_extends_with_a_second_cycle_and_refuses_changed_settings(learn_dataset, tmp_path):
    run = tmp_path / "run"
    args = ["--dataset-dir", learn_dataset / "dataset", "--run-dir", run, *QUICK_TRAINING]
    assert run_script(TRAIN, *args, "--epochs", 2).returncode == 0
    extended = run_script(TRAIN, *args, "--epochs", 4, "--resume")
    assert extended.returncode == 0, extended.stderr
    assert "extending" in extended.stdout
    history = metrics(run)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and all(np.isfinite(h["train"]["loss"]) for h in history)
    checkpoint = torch.load(run / "last.pt", weights_only=True)
    assert checkpoint["schedule"] == [{"epochs": 2, "peak": 3e-3}, {"epochs": 2, "peak": pytest.approx(9e-4)}]
    # the second cycle rises again from its own start and ends low
    rates = [h["learning_rate"] for h in history]
    assert rates[1] < 1e-5 and rates[3] < 1e-5
    again = run_script(TRAIN, *args, "--epochs", 4, "--resume")
    assert again.returncode == 0 and "all 4 epochs are done" in again.stdout
    for change, named in ((["--epochs", 5, "--lookahead-ms", 40], "--lookahead-ms"), (["--epochs", 5, "--preset", "small"], "--preset"),
                          (["--epochs", 3], "must be 4, or more")):
        refused = run_script(TRAIN, *args, "--resume", *change)
        assert refused.returncode == 1 and len(error_lines(refused)) == 1 and named in refused.stderr, refused.stderr
    assert metrics(run) == history                            # a refused resume changes nothing
    # the command run again without --resume replaced the run (hours of training, on real data) without a word
    kept = (run / "last.pt").read_bytes()
    for given, code, said in (([], 1, "holds a run already (last.pt); give --resume"),
                              (["--resume", "--force"], 2, "give one of them")):
        refused = run_script(TRAIN, *args, "--epochs", 1, *given)
        assert refused.returncode == code and len(error_lines(refused)) == 1 and said in refused.stderr, refused.stderr
    assert metrics(run) == history and (run / "last.pt").read_bytes() == kept
    replaced = run_script(TRAIN, *args, "--epochs", 1, "--force")
    assert replaced.returncode == 0 and [h["epoch"] for h in metrics(run)] == [1], replaced.stderr


# --- inference and evaluation ------------------------------------------------------------------
def test_inference_refuses_checkpoints_of_another_model_size_or_version_in_one_line(trained_run, learn_dataset, tmp_path):
    checkpoint = torch.load(trained_run / "best.pt", weights_only=True)
    other_size = dict(checkpoint, model_config=dict(checkpoint["model_config"], channels=48))
    torch.save(other_size, tmp_path / "other_size.pt")
    torch.save(dict(checkpoint, format_version=1), tmp_path / "old.pt")
    old_floor = dict(checkpoint["normalisation"], mel_level={"scale_db": 45.0})   # before the floor followed the level
    torch.save(dict(checkpoint, normalisation=old_floor), tmp_path / "old_floor.pt")
    for path, message in ((tmp_path / "other_size.pt", "do not fit this model code"),
                          (tmp_path / "old.pt", "checkpoint format version 1"),
                          (tmp_path / "old_floor.pt", "another normalisation of its inputs or targets (mel_level)")):
        result = run_script(INFER, learn_dataset / "raw" / "sample_24.mp4", "--checkpoint", path, "--output",
                            tmp_path / "out.json")
        assert result.returncode == 1 and len(error_lines(result)) == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "out.json").exists() and not leftovers(tmp_path)


def test_inference_and_evaluation_refuse_a_read_only_output_in_one_line(trained_run, learn_dataset, tmp_path):
    with read_only_folder(tmp_path) as folder:
        result = run_script(INFER, learn_dataset / "raw" / "sample_24.mp4", "--checkpoint", trained_run / "best.pt",
                            "--output", folder / "take.json")
        assert result.returncode == 1 and len(error_lines(result)) == 1 and "cannot write here" in result.stderr
        result = run_script(EVALUATE, "--checkpoint", trained_run / "best.pt", "--dataset-dir",
                            learn_dataset / "dataset", "--json", folder / "eval.json")
        assert result.returncode == 1 and len(error_lines(result)) == 1 and "cannot write here" in result.stderr


PEAK_MEMORY_MB = 800            # stated in README: inference over 2 hours of audio (measured 410 MB)


def write_long_wav(path: Path, seconds: float) -> None:
    """A 16 kHz mono 16-bit wav of generated speech, written in pieces (never held whole)."""
    import wave
    from voiceface.synthetic import speech_envelope, voiced_audio
    piece = (np.clip(voiced_audio(speech_envelope(30.0, 16000, 5), 16000, 5) * 1.6, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        for _ in range(int(seconds / 30)):
            out.writeframes(piece.tobytes())


def test_two_hours_of_audio_run_in_bounded_memory(trained_run, tmp_path):
    audio = tmp_path / "two_hours.wav"
    write_long_wav(audio, 7200.0)
    out = tmp_path / "two_hours.json"
    # run the script in a fresh interpreter and read that interpreter's own peak resident memory. Not
    # getrusage's ru_maxrss: Linux carries the forking process's high-water mark across exec, so under
    # pytest it reported pytest's own peak (843 MB in CI). VmHWM belongs to the exec'd address space.
    code = ("import re, runpy, sys; sys.argv = sys.argv[1:]\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
            "hwm = int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))\n"
            "print('peak_mb', hwm / 1024, 'exit', code)")
    result = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT / INFER), str(audio), "--checkpoint",
                             str(trained_run / "best.pt"), "--output", str(out)], capture_output=True, text=True,
                            timeout=900, cwd="/")
    assert result.returncode == 0 and "exit 0" in result.stdout, result.stderr[-2000:]
    peak_mb = float(result.stdout.split("peak_mb")[1].split()[0])
    print(f"peak memory over 2 hours of audio: {peak_mb:.0f} MB")
    assert peak_mb < PEAK_MEMORY_MB
    with open(out) as f:                        # the JSON is whole: 216,000 frames, the last one closing it
        head = f.read(4000)
        f.seek(max(0, out.stat().st_size - 200))
        tail = f.read()
    assert '"frameCount": 216000' in head and tail.rstrip().endswith("]\n}".strip())
    assert (out.with_suffix(".png")).exists()


@pytest.mark.parametrize("script, args, code, said", [
    ("2_architecture_training/linear_probe.py", ("--dataset-dir", "{tmp}"), 1, "no dataset here"),
    ("2_architecture_training/study.py", ("--dataset-dir", "{tmp}"), 1, "no dataset here"),
    ("2_architecture_training/extra_channels.py", ("--dataset-dir", "{tmp}/gone"), 1, "no dataset here"),
    ("2_architecture_training/train.py", ("--dataset-dir", "{tmp}/bad_manifest", "--run-dir", "{tmp}/run"), 1,
     "not a readable dataset manifest"),
    ("1_data_cleaning/sync_study.py", ("--processed-dir", "{tmp}/gone"), 1, "0 clip folders"),
    ("1_data_cleaning/recordings_study.py", ("--raw-dir", "{tmp}/gone", "--output", "{tmp}/s.md"), 1, "gone: no such folder"),
    ("1_data_cleaning/label_noise.py", ("--raw-dir", "{tmp}/gone"), 1, "no videos"),
    ("1_data_cleaning/label_noise.py", ("--scale", 0), 2, "--scale 0: give more than 0"),
    ("3_inference/benchmark_inference.py", ("--hops", 0), 2, "--hops 0: give 200 or more"),
    ("3_inference/benchmark_inference.py", ("--preset", "huge"), 2, "no preset 'huge'"),
    ("3_inference/benchmark_inference.py", ("--checkpoint", "{tmp}/gone.pt"), 1, "no such checkpoint; check the path"),
    ("3_inference/livelink_listen.py", ("--port", 99999), 2, "--port 99999: give a port in 1-65535"),
    ("1_data_cleaning/benchmark_audio_features.py", ("--clip", "{tmp}/gone.wav"), 1, "gone.wav: no such file"),
    ("1_data_cleaning/benchmark_audio_features.py", ("--repeats", 0), 2, "--repeats 0: give 1 or more"),
    ("1_data_cleaning/benchmark_extract_blendshapes.py", ("--clips", "{tmp}/gone.mp4"), 1, "gone.mp4: no such file"),
    ("3_inference/rest_check.py", ("{tmp}/gone.pt", "--skip-seconds", -1), 2, "--skip-seconds -1: give 0 or more"),
    ("3_inference/jaw_tracks.py", ("{tmp}/gone.json", "--start", -5), 2, "--start -5: give 0 or more"),
    ("3_inference/jaw_tracks.py", ("{tmp}/gone.json", "--strength", "mouth=5"), 2, "a gain is between 0"),
    ("3_inference/strength_check.py", ("{tmp}/gone.json",), 1, "gone.json"),
    ("3_inference/strength_check.py", ("{tmp}/gone.json", "--gains", 1, 9), 2, "a gain is between 0"),
    ("3_inference/strength_check.py", ("{tmp}/gone.json", "--rest", "mine"), 2, "--rest mine: give speaker"),
    ("3_inference/strength_check.py", ("{tmp}/gone.json", "--smoothing", "mouth=0"), 2, "smooths nothing"),
    ("3_inference/strength_check.py", ("{tmp}/gone.json", "--smoothing", "mouth=9000"), 2, "a time constant is between"),
    ("3_inference/inference.py", ("{tmp}/gone.wav", "--smoothing", "lips=20"), 2, "'lips' is not a blendshape or region"),
    ("3_inference/jaw_tracks.py", ("{tmp}/gone.json", "--rest", "mine"), 2, "--rest mine: give speaker"),
    ("3_inference/jaw_tracks.py", ("{tmp}/gone.json", "--smoothing", "mouth=x"), 2, "'mouth=x' is not a time constant"),
    ("3_inference/inference.py", ("{tmp}/gone.wav", "--rest", "jawOpen=5"), 2, "--rest jawOpen=5: 'jawOpen=5': give"),
    ("3_inference/evaluate.py", ("--json", "{tmp}/e.json", "--dataset-dir", "{tmp}/gone"), 1, "no dataset here"),
    ("1_data_cleaning/plot_synchronisation.py", ("--clip", "c", "--processed-dir", "{tmp}/c", "--dataset-dir", "{tmp}"),
     1, "no dataset here"),
    ("3_inference/evaluate.py", ("--json", "{tmp}/e.json", "--benchmark", "both", "--checkpoint", "{tmp}/gone.pt"), 2,
     "--checkpoint is for scoring one model"),
])
def test_the_studies_and_benchmarks_refuse_a_missing_folder_or_a_setting_out_of_range_in_one_line(script, args, code,
                                                                                                   said, tmp_path):
    (tmp_path / "bad_manifest").mkdir()                   # a dataset manifest cut short (a copy stopped half-way)
    (tmp_path / "bad_manifest" / "dataset_manifest.json").write_text('{"format": "voiceface/dat')
    result = run_script(script, *(str(a).replace("{tmp}", str(tmp_path)) for a in args))
    assert result.returncode == code and said in result.stderr, result.stderr[-2000:]
    assert error_lines(result) == [line for line in result.stderr.splitlines() if line.strip()], result.stderr[-2000:]


def test_a_long_name_is_written_and_one_too_long_for_its_outputs_is_refused_in_one_line(trained_run, tmp_path):
    """A download keeps its title: 76 CJK characters are 228 of a file name's 255 bytes, which left
    no room for the temporary file's marks (refused as "cannot write here"); a title so long that an
    output's name passes 255 bytes is refused in one line that says so, and the other inputs run."""
    from voiceface.synthetic import AUDIO_SAMPLE_RATE, speech_envelope, voiced_audio, write_audio_file
    speech = voiced_audio(speech_envelope(2.0, AUDIO_SAMPLE_RATE, 3), AUDIO_SAMPLE_RATE, 3)
    long_name, too_long = "演" * 76 + ".m4a", "演" * 82 + ".m4a"      # 232 and 250 bytes; its preview's 258
    for name in (long_name, too_long):
        write_audio_file(tmp_path / name, speech, AUDIO_SAMPLE_RATE)
    result = run_script(INFER, tmp_path / long_name, tmp_path / too_long, "--checkpoint", trained_run / "last.pt",
                        "--output", tmp_path / "takes", "--csv", "--preview")
    assert result.returncode == 1
    stem = long_name.removesuffix(".m4a")
    assert sorted(p.name for p in (tmp_path / "takes").iterdir()) == sorted(
        f"{stem}.{ending}" for ending in ("json", "csv", "png", "preview.mp4"))
    errors = error_lines(result)
    assert len(errors) == 1 and "bytes, more than the 255 a file system allows" in errors[0], result.stderr


def test_a_file_name_that_is_not_utf8_is_read_printed_and_drawn(trained_run, tmp_path):
    """An old archive's Latin-1 name (b"caf\\xe9") under a UTF-8 locale whose output is strict, as a
    desktop's en_US.UTF-8 is: printing the name raised UnicodeEncodeError and ended the run, and the
    plot's title could not be drawn."""
    from voiceface.synthetic import AUDIO_SAMPLE_RATE, speech_envelope, voiced_audio, write_audio_file
    name = os.fsdecode(b"caf\xe9 interview.m4a")
    write_audio_file(tmp_path / name, voiced_audio(speech_envelope(2.0, AUDIO_SAMPLE_RATE, 3), AUDIO_SAMPLE_RATE, 3),
                     AUDIO_SAMPLE_RATE)
    strict = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8:strict")
    for script, *args in ((STAGE_12, "--output-dir", tmp_path / "processed"),
                          (INFER, "--checkpoint", trained_run / "last.pt", "--output", tmp_path / "takes", "--csv",
                           "--preview")):
        result = subprocess.run([sys.executable, str(REPO_ROOT / script), str(tmp_path / name), *map(str, args)],
                                capture_output=True, timeout=300, env=strict)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert b"caf\xe9 interview" in result.stdout          # the name's own bytes
    assert (tmp_path / "processed" / os.fsdecode(b"caf\xe9 interview") / "audio_features.npz").exists()
    assert sorted(os.fsencode(p.name) for p in (tmp_path / "takes").iterdir()) == sorted(
        b"caf\xe9 interview." + ending for ending in (b"json", b"csv", b"png", b"preview.mp4"))


def test_batch_workers_take_ctrl_c_as_the_command_does(tmp_path):
    """Workers are started ignoring Ctrl-C (so one arriving while they import their modules neither
    prints a traceback nor kills them) and then take it as the command does: stoppable when it is,
    ignoring it when it was started so (`cmd &` in a script)."""
    (tmp_path / "task.py").write_text(
        "import signal\nfrom voiceface import cli\n"
        "def task(path):\n"
        "    handler = signal.getsignal(signal.SIGINT)\n"
        "    return f'{path.name}: ' + {cli._on_ctrl_c: 'stoppable', signal.SIG_IGN: 'ignores'}.get(handler, repr(handler))\n")
    files = [tmp_path / f"clip{k}.mp4" for k in range(3)]
    for path in files:
        path.write_bytes(b"")
    program = ("import signal, sys\n"
               f"sys.path[:0] = [{str(REPO_ROOT)!r}, {str(tmp_path)!r}]\n"
               "from voiceface import cli\nimport task\n"
               "if sys.argv[1] == 'ignored':\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
               "from pathlib import Path\n"
               f"sys.exit(cli.run_batch(task.task, [Path(sys.argv[k]) for k in range(2, 5)], [], 2, 'files'))\n")
    said = {}
    for mode in ("terminal", "ignored"):
        result = subprocess.run([sys.executable, "-c", program, mode, *map(str, files)], capture_output=True, text=True,
                                timeout=120, preexec_fn=as_a_terminal_starts_it)     # whatever started pytest
        assert result.returncode == 0, result.stderr[-2000:]
        said[mode] = sorted(line for line in result.stdout.splitlines() if line.startswith("clip"))
    assert said["terminal"] == [f"clip{k}.mp4: stoppable" for k in range(3)]
    assert said["ignored"] == [f"clip{k}.mp4: ignores" for k in range(3)]


def test_a_ctrl_c_inside_a_deferred_block_is_only_recorded_and_outside_it_stops_the_run():
    """Inside calls into MediaPipe (cli.ctrl_c_deferred) a Ctrl-C only sets STOP_ASKED, which the
    frame loop checks after them; anywhere else it stops the run at once, with the one line."""
    program = ("import os, signal, sys\n"
               f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
               "from voiceface import cli\n"
               "def main():\n"
               "    with cli.ctrl_c_deferred():\n"
               "        os.kill(os.getpid(), signal.SIGINT)\n"
               "        for _ in range(1000): pass          # the handler runs between these bytecodes\n"
               "        print('inside: went on, stop asked', cli.STOP_ASKED.is_set(), flush=True)\n"
               "    os.kill(os.getpid(), signal.SIGINT)\n"
               "    for _ in range(1000): pass\n"
               "    print('outside: went on', flush=True)\n"
               "    return 0\n"
               "sys.exit(cli.run_main(main))\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                            preexec_fn=as_a_terminal_starts_it)
    assert result.stdout.splitlines() == ["inside: went on, stop asked True"], result.stdout + result.stderr
    assert result.returncode == 130 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "stopped (Ctrl-C); what it finished is kept, nothing is left half-written"


def test_ctrl_c_arriving_while_the_handler_runs_does_not_hang_it():
    """A stage 1.1 worker hung after Ctrl-C (twice in about 210 stopped runs; caught with py-spy on
    the third): the terminal's Ctrl-C and the one the main process passes on arrived together, the
    second handler ran inside the first while that held threading.Event's lock, and waited for it
    forever. Here a second process sends 200,000 Ctrl-Cs at one inside a deferred block, so the
    handler is interrupted by itself many times: with the Event it hung 3 runs of 3; it must finish."""
    program = ("import os, signal, subprocess, sys\n"
               f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
               "from voiceface import cli\n"
               "signal.signal(signal.SIGINT, cli._on_ctrl_c)\n"
               "with cli.ctrl_c_deferred():\n"
               "    sender = subprocess.Popen([sys.executable, '-c', 'import os, signal\\n'\n"
               "                               f'for _ in range(200000): os.kill({os.getpid()}, signal.SIGINT)'])\n"
               "    while sender.poll() is None:\n"
               "        cli.STOP_ASKED.is_set()\n"
               "print('finished, stop asked', cli.STOP_ASKED.is_set(), flush=True)\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "finished, stop asked True", result.stdout + result.stderr


def test_children_side_by_side_say_whose_each_line_is_and_a_failure_stops_the_others(capsys):
    """cli.run_children, as evaluate.py --jobs runs fold trainings: every line after its child's label
    (a line written in two pieces stays one), the environment given to each, at most `at_once` at a
    time; a failure stops the running ones as Ctrl-C would and starts nothing more."""
    from voiceface.cli import Child, run_children

    def python(code: str) -> list[str]:
        return [sys.executable, "-c", code]

    said = ("import os, sys, time\nsys.stdout.write('half'); sys.stdout.flush(); time.sleep(0.3)\n"
            "print(' whole', os.environ['OMP_NUM_THREADS'], flush=True)\nprint('to stderr', file=sys.stderr)\n")
    children = [Child(name, f"=== {name}", python(said)) for name in ("a", "b", "c")]
    assert run_children(children, 2, {"OMP_NUM_THREADS": "7"}) == [0, 0, 0]
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["=== a", "=== b"] and lines.index("=== c") > 2     # the third waits for a place
    for name in "abc":
        assert f"[{name}] half whole 7" in lines and f"[{name}] to stderr" in lines
    # a failure stops the one running beside it and starts nothing more, whether this was started as a
    # terminal starts a command (SIGINT stops the other) or ignoring Ctrl-C, as its children then are
    # (`cmd &` in a script: SIGTERM stops the other); the one stopped is not finished, not failed
    program = ("import signal, sys\n"
               f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
               "from voiceface.cli import Child, run_children\n"
               "if sys.argv[1] == 'ignored':\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
               "def python(code):\n    return [sys.executable, '-c', code]\n"
               "children = [Child('slow', '=== slow', python('import time\\nprint(1, flush=True)\\ntime.sleep(60)')),\n"
               "            Child('bad', '=== bad', python('import sys\\nprint(\"giving up\", flush=True)\\nsys.exit(3)')),\n"
               "            Child('never', '=== never', python('print(2)'))]\n"
               "print('codes', run_children(children, 2), flush=True)\n")
    for mode in ("terminal", "ignored"):
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-c", program, mode], capture_output=True, text=True, timeout=120,
                                preexec_fn=as_a_terminal_starts_it)
        assert result.returncode == 0 and time.monotonic() - started < 30, (mode, result.stdout, result.stderr)
        lines = result.stdout.splitlines()
        assert lines[-1] == "codes [None, 3, None]" and "[bad] giving up" in lines and "=== never" not in lines, \
            (mode, result.stdout)
    # one at a time: each child's output goes straight through, as run_child's does
    assert run_children([Child("x", "=== x", python("print('plain')"))], 1) == [0]
