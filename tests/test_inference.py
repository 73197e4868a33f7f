"""Stage 3: offline and streaming inference, the exports, and bad inputs."""
import csv
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, by_default, run_script
from voiceface.audio import load_audio
from voiceface.engine import Animator, Frames, animate_file, load_model
from voiceface.livelink import LIVE_LINK_HEADER
from voiceface.errors import FormatError
from voiceface.formats import read_blendshapes_json

INFER = "3_inference/inference.py"


@pytest.fixture(scope="module")
def model(trained_run):
    return load_model(trained_run / "best.pt")


def assert_same_pose(a, b):
    """Equal up to float32 rounding in the model's units: translation is its output times
    TRANSLATION_SCALE_CM (10), so its rounding is ten times the rotation's (seen: 1.06e-5 cm, a
    clean-clone run whose chunked and whole passes summed in another order)."""
    from voiceface.dataset import TRANSLATION_SCALE_CM
    assert np.abs(a[:, :3] - b[:, :3]).max() <= 1e-5 * TRANSLATION_SCALE_CM
    assert np.abs(a[:, 3:] - b[:, 3:]).max() <= 1e-5


def stream(model_and_checkpoint, audio, chunk, fps=30.0):
    animator = Animator(*model_and_checkpoint, fps)
    parts = [animator.push(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
    return Frames.concatenate(parts + [animator.finish()])


@pytest.mark.parametrize("chunk", [1, 7, 160, 1601, 48000])
def test_streaming_equals_offline(model, learn_dataset, chunk):
    clip = learn_dataset / "raw" / "sample_24.mp4"
    offline, _ = animate_file(clip, *model)
    _, audio = load_audio(clip)
    if chunk == 1:
        audio = audio[:3 * 16000]                      # a 1-sample stream of 3 s is slow enough
        offline = Frames(*(getattr(offline, k)[:90] for k in ("indices", "times", "blendshapes", "pose")))
    streamed = stream(model, audio, chunk)
    n = len(offline.times) if chunk != 1 else 90
    assert np.array_equal(streamed.times[:n], offline.times[:n])
    assert np.abs(streamed.blendshapes[:n] - offline.blendshapes[:n]).max() <= 1e-5
    assert_same_pose(streamed.pose[:n], offline.pose[:n])


def test_a_long_file_in_blocks_equals_one_pass(model, tmp_path):
    from voiceface.synthetic import write_talking_face_clip
    clip = write_talking_face_clip(tmp_path / "long.mp4", duration=25.0, seed=30)    # three 10 s blocks
    blocks, _ = animate_file(clip.path, *model)
    _, audio = load_audio(clip.path)
    whole = stream(model, audio, len(audio))
    assert np.abs(blocks.blendshapes - whole.blendshapes).max() <= 1e-5
    assert_same_pose(blocks.pose, whole.pose)


def test_a_files_lone_last_frame_runs_through_the_model_not_the_streams_onnx_step(trained_run, tmp_path):
    """animate_file feeds 10 s blocks, and 20 s of 48 kHz AAC leave one 10 ms frame for the last
    push. A stream's one-frame push runs an ONNX step, exported on first use; for a file's lone
    frame that export (with the onnx package's import) took 2.0-3.1 s. In a fresh process, a file
    is animated importing neither onnx nor scipy.signal (1.3-1.5 s more, for one running mean); a stream of 10 ms chunks still builds the step, and both give one face."""
    from voiceface.audio import AudioFrontEnd, open_audio
    from voiceface.synthetic import speech_envelope, voiced_audio, write_audio_file
    path = write_audio_file(tmp_path / "twenty.m4a", voiced_audio(speech_envelope(20.0, 48000, 5), 48000, 5), 48000)
    front_end = AudioFrontEnd()
    assert [len(front_end.process(block)) for block in open_audio(path)[1]][-1] == 1
    script = ("import sys, json; from voiceface.engine import animate_file, load_model; "
              f"model, checkpoint = load_model({str(trained_run / 'best.pt')!r}); "
              f"frames, _ = animate_file({str(path)!r}, model, checkpoint); "
              "print(json.dumps([len(frames.times), hasattr(model, '_onnx_one_frame_session'), "
              "sorted(m for m in ('onnx', 'scipy.signal') if m in sys.modules)]))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    model_and_checkpoint = load_model(trained_run / "best.pt")
    offline, _ = animate_file(path, *model_and_checkpoint)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [len(offline.times), False, []]
    streamed = stream(model_and_checkpoint, load_audio(path)[1], 160)
    assert hasattr(model_and_checkpoint[0], "_onnx_one_frame_session")
    assert np.abs(streamed.blendshapes - offline.blendshapes).max() <= 1e-5


@pytest.mark.parametrize("fps", [30.0, 24.0, 60.0])
def test_frame_count_and_timestamps(model, learn_dataset, fps):
    clip = learn_dataset / "raw" / "sample_23.mp4"
    frames, source = animate_file(clip, *model, fps=fps)
    duration = source.samples / 16000
    assert len(frames.times) == math.ceil(duration * fps - 1e-9)
    assert np.allclose(frames.times, np.arange(len(frames.times)) / fps)


def test_json_csv_and_plot_outputs(model, trained_run, learn_dataset, tmp_path):
    clip = learn_dataset / "raw" / "sample_24.mp4"
    out = tmp_path / "out" / "take.json"
    result = run_script(INFER, clip, "--checkpoint", trained_run / "best.pt", "--output", out, "--csv")
    assert result.returncode == 0, result.stderr
    track = read_blendshapes_json(out)                    # stage 1.1's reader
    frames, _ = animate_file(clip, *model, strength=by_default())
    assert np.allclose(track.times_ms, frames.times * 1000, atol=1e-3)
    assert np.allclose(track.blendshapes, frames.blendshapes, atol=1e-4) and track.has_face.all()
    assert np.allclose(track.pose, frames.pose, atol=1e-3)
    # by default the head smoothed (its frame-to-frame steps smaller than raw's) and the eyes blinking at
    # the drawn moments, the rest of the face as the model made it
    from voiceface.blinks import BLINK_SHARE, EYES, PEAK, blink_table
    raw, _ = animate_file(clip, *model)
    others = [i for i in range(raw.blendshapes.shape[1]) if i not in EYES]
    assert np.array_equal(raw.blendshapes[:, others], frames.blendshapes[:, others])
    steps = [np.abs(np.diff(f.pose[:, :3], 2, axis=0)).mean() for f in (raw, frames)]
    assert steps[1] < 0.7 * steps[0], steps
    assert track.header["strength"]["smoothing"]["spec"] == "pose=100"
    assert track.header["strength"]["blinks"]["per_minute"] == 24
    envelope = blink_table(24)[np.floor(frames.times * 100 + 1e-9).astype(int) - 1]   # each frame's model frame
    closing = envelope > 0.9
    assert 1 <= (np.diff(closing.astype(int)) == 1).sum() <= 8            # 8 s at 24 a minute
    assert np.all(frames.blendshapes[closing][:, list(EYES)] > 0.9 * PEAK)
    open_eyes = np.maximum(raw.blendshapes[envelope == 0][:, list(EYES)] - BLINK_SHARE, 0)   # the average blink out
    assert np.abs(frames.blendshapes[envelope == 0][:, list(EYES)] - open_eyes).max() <= 1e-6
    assert track.header["checkpoint"]["sha256"] and track.header["source"]["sha256"]
    with open(out.with_suffix(".csv"), newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert tuple(header) == LIVE_LINK_HEADER and len(header) == 63
    assert header.index("JawRight") < header.index("JawLeft") and header.index("MouthRight") < header.index("MouthLeft")
    assert len(body) == len(frames.times) and all(row[1] == "61" for row in body)
    column = {name: i for i, name in enumerate(header)}
    jaw = np.array([float(row[column["JawOpen"]]) for row in body])
    assert np.allclose(jaw, frames.blendshapes[:, 25], atol=1e-5)
    assert all(float(row[column["TongueOut"]]) == 0 for row in body)
    # timecodes HH:MM:SS:FF.fff read back to k / fps
    for k in (0, 1, 29, 30, 31, len(body) - 1):
        h, m, s, rest = body[k][0].split(":")
        frame, fraction = rest.split(".")
        assert abs(int(h) * 3600 + int(m) * 60 + int(s) + (int(frame) + int(fraction) / 1000) / 30 - k / 30) < 1e-6
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_onnx_export_matches_pytorch(model, trained_run, tmp_path):
    import onnxruntime
    target = tmp_path / "model.onnx"
    result = run_script(INFER, "--checkpoint", trained_run / "best.pt", "--export-onnx", target, "--onnx-input", "mel")
    assert result.returncode == 0, result.stderr
    x = np.random.default_rng(1).uniform(-1, 1, (2, 333, 80)).astype(np.float32)
    with torch.inference_mode():
        expected = model[0](torch.from_numpy(x)).numpy()
    got = onnxruntime.InferenceSession(str(target)).run(None, {"mel": x})[0]
    assert np.abs(expected - got).max() <= 1e-4


def run_alone(*args):
    """3_inference/run_onnx.py with PyTorch and voiceface unimportable (what the file needs is in it):
    the finished subprocess.CompletedProcess."""
    import subprocess
    import sys
    from conftest import REPO_ROOT
    script = str(REPO_ROOT / "3_inference" / "run_onnx.py")
    code = ("import runpy, sys; sys.modules['torch'] = sys.modules['voiceface'] = None; "
            f"sys.argv = {[script, *map(str, args)]!r}; runpy.run_path(sys.argv[0], run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120)


def onnx_csv(path):
    with open(path) as file:
        rows = list(csv.reader(file))
    return rows[0], np.array(rows[1:], float)


def assert_csv_holds_frames(path, frames):
    """A CSV of run_onnx.py against inference's frames, to the rounding of the JSON they came from (or
    float32's, from animate_file)."""
    from voiceface.constants import BLENDSHAPE_NAMES, POSE_NAMES
    names, rows = onnx_csv(path)
    assert names == ["time_s", *BLENDSHAPE_NAMES, *POSE_NAMES, "voice"]
    assert len(rows) == len(frames.times) and np.abs(rows[:, 0] - frames.times).max() < 1e-6
    assert np.abs(rows[:, 1:53] - frames.blendshapes).max() <= 2e-4
    assert np.abs(rows[:, 53:56] - frames.pose[:, :3]).max() <= 2e-3           # cm
    assert np.abs(rows[:, 56:60] - frames.pose[:, 3:]).max() <= 2e-5
    assert set(np.unique(rows[:, 60])) <= {0.0, 1.0}


def test_the_stream_onnx_animates_alone_as_inference_does(trained_run, tmp_path):
    """--export-onnx (audio in, the front-end inside): the export checks itself against the Python
    engine (and on a recording --onnx-check names), the file says what made it, and run_onnx.py, with
    PyTorch and voiceface unimportable,
    gives inference.py's frames for the same sound (opening on digital silence, then speech over
    room noise); the mel-form file, a sound at 44.1 kHz and a file that is not a WAV are refused in
    one line each."""
    import onnxruntime
    from voiceface.audio import front_end_config
    from voiceface.constants import BLENDSHAPE_NAMES
    from voiceface.formats import sha256_file
    from voiceface.synthetic import room_noise, speech_envelope, voiced_audio
    speech = voiced_audio(speech_envelope(4.0, 16000, 3), 16000, 3)
    sound = np.concatenate([np.zeros(4000, np.float32), room_noise("pink", -55, 4.0, 16000, 3) + speech])
    wav = write_wav(tmp_path / "take.wav", sound)
    target = tmp_path / "face.onnx"
    result = run_script(INFER, "--checkpoint", trained_run / "best.pt", "--export-onnx", target, "--onnx-check", wav)
    assert result.returncode == 0, result.stderr
    assert "voice activity the same in 1200 of 1200 frames" in result.stdout
    assert "on 1 recordings (425 frames)" in result.stdout and "the same in 425 of 425 frames" in result.stdout
    meta = onnxruntime.InferenceSession(str(target)).get_modelmeta().custom_metadata_map
    assert meta["format"] == "voiceface/stream_onnx" and meta["lookahead_frames"] == "0"
    assert json.loads(meta["blendshape_names"]) == list(BLENDSHAPE_NAMES)
    assert json.loads(meta["front_end"]) == front_end_config()
    assert json.loads(meta["checkpoint"])["sha256"] == sha256_file(trained_run / "best.pt")
    # opset 15 (what Unity's Sentis lists up to), and a file of another opset is exported again, not skipped
    import onnx
    from voiceface.stream_onnx import exported_checkpoint
    proto = onnx.load(str(target))
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 15)]
    assert exported_checkpoint(target, by_default()) == sha256_file(trained_run / "best.pt")
    assert exported_checkpoint(target) is None                     # inference.py's default smoothing is inside
    proto.opset_import[0].version = 17
    onnx.save(proto, str(tmp_path / "opset17.onnx"))
    assert exported_checkpoint(tmp_path / "opset17.onnx") is None
    assert run_script(INFER, wav, "--checkpoint", trained_run / "best.pt", "--output", tmp_path / "take.json",
                      "--fps", 60).returncode == 0
    alone = run_alone(target, wav, "--fps", 60, "--output", tmp_path / "take.csv")
    assert alone.returncode == 0, alone.stderr
    track = read_blendshapes_json(tmp_path / "take.json")
    assert_csv_holds_frames(tmp_path / "take.csv", Frames(np.arange(len(track.times_ms)), track.times_ms / 1000,
                                                          track.blendshapes, track.pose))
    assert np.ptp(onnx_csv(tmp_path / "take.csv")[1][:, 1 + BLENDSHAPE_NAMES.index("jawOpen")]) > 0.05   # it moves
    # README's loop, as printed there, on the same sound: its last hop's face is run_stream_onnx's
    from conftest import REPO_ROOT
    from voiceface.stream_onnx import open_stream_onnx, run_stream_onnx
    readme = (REPO_ROOT / "README.md").read_text()
    loop = readme[readme.index("```python\nimport numpy as np, onnxruntime") + len("```python\n"):]
    namespace = {"sound_16khz": sound[:len(sound) // 160 * 160]}
    exec(loop[:loop.index("```")].replace('"face.onnx"', repr(str(target))), namespace)
    shapes = run_stream_onnx(*open_stream_onnx(target), sound)[0]
    assert namespace["blendshapes"].shape == (1, 52) and np.array_equal(namespace["blendshapes"][0], shapes[-1])
    mel_form = tmp_path / "mel.onnx"
    assert run_script(INFER, "--checkpoint", trained_run / "best.pt", "--export-onnx", mel_form,
                      "--onnx-input", "mel").returncode == 0
    assert [o.version for o in onnx.load(str(mel_form)).opset_import] == [15]
    missing = run_script(INFER, "--checkpoint", trained_run / "best.pt", "--export-onnx", target, "--onnx-check",
                         tmp_path / "gone.wav")
    assert missing.returncode == 1 and missing.stderr.splitlines() == [f"error: {tmp_path / 'gone.wav'}: no such "
                                                                        "file or folder; check the path"]
    high = write_wav(tmp_path / "high.wav", sound, rate=44100)
    for model_file, sound_file, said in ((mel_form, wav, "not a voiceface stream ONNX"), (target, high, "44100 Hz"),
                                         (target, tmp_path / "take.json", "not a WAV file")):
        refused = run_alone(model_file, sound_file)
        assert refused.returncode == 1 and said in refused.stderr and len(refused.stderr.splitlines()) == 1, refused.stderr


def write_wav(path, samples, rate=16000):
    import av
    with av.open(str(path), "w") as container:
        stream_ = container.add_stream("pcm_s16le", rate=rate)
        stream_.layout = "mono"
        frame = av.AudioFrame.from_ndarray((np.clip(samples, -1, 1) * 32767).astype(np.int16)[None], format="s16",
                                           layout="mono")
        frame.sample_rate = rate
        for packet in [*stream_.encode(frame), *stream_.encode()]:
            container.mux(packet)
    return path


def test_a_stream_sent_to_an_output_folder_lands_in_it_and_is_not_overwritten(trained_run, tmp_path):
    """--output is a .json path or a folder for --stream as for a file (a folder once crashed the
    rename at the end of the stream); an existing output is kept unless --force."""
    from voiceface.synthetic import speech_envelope, voiced_audio
    wav = write_wav(tmp_path / "talk.wav", voiced_audio(speech_envelope(1.5, 16000, 0), 16000, 0))
    out = tmp_path / "out"
    args = (INFER, wav, "--checkpoint", trained_run / "best.pt", "--stream", "--output", out, "--no-plot")
    result = run_script(*args)
    assert result.returncode == 0, result.stderr
    written = out / "talk.json"
    assert len(read_blendshapes_json(written).times_ms) == 45
    before = written.read_bytes()
    again = run_script(*args)
    errors = [line for line in again.stderr.splitlines() if line.strip()]
    assert again.returncode == 1 and len(errors) == 1 and "exists" in errors[0] and "--force" in errors[0], again.stderr
    assert written.read_bytes() == before
    assert run_script(*args, "--force").returncode == 0


def test_silence_digital_or_room_noise_gives_the_mouth_at_rest(model, trained_run, learn_dataset, tmp_path):
    from voiceface.synthetic import room_noise
    # the rest face the training data shows: jawOpen over frames with a face and no voice
    train = learn_dataset / "dataset" / "train"
    targets, mask, vad = (np.load(train / f"{k}.npy") for k in ("targets", "mask", "vad"))
    rest = float(np.median(targets[mask.astype(bool) & (vad == 0), 25]))
    speech, _ = animate_file(learn_dataset / "raw" / "sample_24.mp4", *model)
    for kind, level, zeros in (("digital", 0.0, 0), ("white", -60.0, 0), ("pink", -50.0, 0), ("brown", -45.0, 0),
                               ("brown", -45.0, 800)):          # after 50 ms of digital zeros, as many files open
        sound = np.concatenate([np.zeros(zeros, np.float32), room_noise(kind, level, 4.0 - zeros / 16000, 16000, 1)])
        quiet, _ = animate_file(write_wav(tmp_path / f"{kind}{zeros}.wav", sound), *model)
        jaw = quiet.blendshapes[90:, 25]                    # from 3 s on: the tiny model's 2.55 s of context all quiet
        assert len(quiet.times) == 120 and np.isfinite(quiet.blendshapes).all()
        assert abs(float(np.mean(jaw)) - rest) <= 0.02 and jaw.max() <= rest + 0.04, (kind, zeros, jaw.mean(), rest)
        assert np.mean(jaw) < np.percentile(speech.blendshapes[:, 25], 75)


def test_the_rest_check_reports_each_model_beside_its_training_rest(trained_run, learn_dataset, tmp_path):
    train = learn_dataset / "dataset" / "train"
    targets, mask, vad = (np.load(train / f"{k}.npy") for k in ("targets", "mask", "vad"))
    rest = float(np.median(targets[mask.astype(bool) & (vad == 0), 25]))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"no")
    result = run_script("3_inference/rest_check.py", trained_run / "best.pt", bad, "--seconds", 4, "--skip-seconds", 3,
                        "--noises", "digital:0", "pink:-50", "--json", tmp_path / "rest.json")
    assert result.returncode == 1 and result.stderr.count("error: ") == 1 and "bad.pt" in result.stderr
    report = json.loads((tmp_path / "rest.json").read_text())["models"]
    assert len(report) == 1 and abs(report[0]["training_rest"] - rest) <= 0.01      # the other model still ran
    assert set(report[0]["jaw_open"]) == {"digital:0", "pink:-50"}
    assert all(abs(value - rest) <= 0.02 for value in report[0]["jaw_open"].values()), (report, rest)
    assert "| digital:0 dBFS | pink:-50 dBFS |" in result.stdout
    # the same quiet after 4 s of a clip's speech: the mouth comes back to rest when the talking stops
    talk = next((learn_dataset / "raw").glob("sample_24.*"))
    after = run_script("3_inference/rest_check.py", trained_run / "best.pt", "--seconds", 4, "--skip-seconds", 1,
                       "--noises", "digital:0", "--after-speech", talk, "--speech-seconds", 4, "--json", tmp_path / "after.json")
    assert after.returncode == 0, after.stderr
    report = json.loads((tmp_path / "after.json").read_text())
    assert report["speech_seconds"] == 4 and f"after 4 s of {talk}" in after.stdout
    assert abs(report["models"][0]["jaw_open"]["digital:0"] - rest) <= 0.03, (report, rest)
    missing = run_script("3_inference/rest_check.py", trained_run / "best.pt", "--after-speech", tmp_path / "none.wav")
    assert missing.returncode == 1 and missing.stderr.count("error: ") == 1 and "none.wav" in missing.stderr


def test_jaw_open_in_the_pauses_of_speech_matches_the_video(trained_run, learn_dataset, tmp_path):
    out = tmp_path / "evaluation.json"
    result = run_script("3_inference/evaluate.py", "--checkpoint", trained_run / "best.pt", "--dataset-dir",
                        learn_dataset / "dataset", "--json", out)
    assert result.returncode == 0, result.stderr
    clip = json.loads(out.read_text())["clips"][0]
    assert clip["silent_fraction"] > 0.1
    assert abs(clip["model"]["silence_jaw_open"] - clip["extracted_silence_jaw_open"]) <= 0.02, clip


def test_a_lookahead_checkpoint_waits_for_its_audio_and_keeps_true_times(learn_dataset, tmp_path):
    from conftest import QUICK_TRAINING
    run = tmp_path / "lookahead"
    result = run_script("2_architecture_training/train.py", "--dataset-dir", learn_dataset / "dataset",
                        "--run-dir", run, "--epochs", 1, *QUICK_TRAINING, "--lookahead-ms", 100)
    assert result.returncode == 0, result.stderr
    model_and_checkpoint = load_model(run / "best.pt")
    assert model_and_checkpoint[1]["lookahead_frames"] == 10
    _, audio = load_audio(learn_dataset / "raw" / "sample_24.mp4")
    animator = Animator(*model_and_checkpoint, 30.0)
    for heard in (0.5, 1.0, 2.5):                          # seconds of audio delivered so far
        frames = animator.push(audio[animator.samples:int(heard * 16000)])
        if len(frames.times):
            # the newest frame shown is at most (heard - look-ahead) old, and no newer
            assert frames.times[-1] <= heard - 0.100 + 1e-9
            assert frames.times[-1] > heard - 0.100 - 1 / 30 - 0.010
    rest = Frames.concatenate([animator.push(audio[animator.samples:]), animator.finish()])
    assert np.allclose(rest.times, rest.indices / 30)
    # the stream ONNX says its look-ahead, and run_onnx.py takes each frame's output by it
    from voiceface.stream_onnx import export_stream_onnx
    export_stream_onnx(*model_and_checkpoint, run / "best.pt", tmp_path / "lookahead.onnx")
    wav = write_wav(tmp_path / "sample.wav", audio)
    alone = run_alone(tmp_path / "lookahead.onnx", wav, "--output", tmp_path / "sample.csv")
    assert alone.returncode == 0, alone.stderr
    assert_csv_holds_frames(tmp_path / "sample.csv", animate_file(wav, *model_and_checkpoint)[0])


@pytest.mark.parametrize("delay", [5, -3])
def test_a_face_delay_moves_the_face_against_the_sound_and_the_stream_waits_only_for_an_earlier_one(model, learn_dataset,
                                                                                                   delay):
    """At 100 fps each output frame is one model frame: a delay of D frames gives the same frames
    D later (the first D held at the first model frame; an earlier face ends held on the last), in a
    stream as offline; the stream shows a frame no sooner than its own time, and an earlier face
    (negative delay) waits for its audio as a look-ahead does."""
    clip = learn_dataset / "raw" / "sample_24.mp4"
    plain, _ = animate_file(clip, *model, fps=100.0)
    moved, _ = animate_file(clip, *model, fps=100.0, delay_frames=delay)
    assert np.array_equal(moved.times, plain.times)
    n = len(plain.times)
    if delay > 0:
        assert np.array_equal(moved.blendshapes[delay:], plain.blendshapes[:n - delay])
        assert np.allclose(moved.blendshapes[:delay], plain.blendshapes[0])
    else:
        assert np.array_equal(moved.blendshapes[:n + delay], plain.blendshapes[-delay:])
        assert np.array_equal(moved.blendshapes[-1], moved.blendshapes[-2])      # held on the last model frame
    _, audio = load_audio(clip)
    animator = Animator(*model, 100.0, delay_frames=delay)
    assert math.isclose(animator.latency_s, 0.025 + max(0, -delay) / 100)
    parts = []
    for heard in (0.5, 1.0, 2.5):                          # seconds of audio delivered so far
        parts.append(animator.push(audio[animator.samples:int(heard * 16000)]))
        newest = parts[-1].times[-1]
        assert newest <= heard + 1e-9 and newest > heard - animator.latency_s - 0.011, (heard, newest)
    streamed = Frames.concatenate(parts + [animator.push(audio[animator.samples:]), animator.finish()])
    assert np.abs(streamed.blendshapes - moved.blendshapes).max() <= 1e-5


def test_a_face_delay_is_given_in_whole_frames_and_recorded_in_the_output(trained_run, learn_dataset, tmp_path):
    clip = learn_dataset / "raw" / "sample_24.mp4"
    refused = run_script(INFER, clip, "--checkpoint", trained_run / "best.pt", "--output", tmp_path / "a.json",
                         "--face-delay-ms", 45)
    assert refused.returncode == 2 and refused.stderr.startswith("error: --face-delay-ms 45: give a multiple of 10 ms")
    assert not (tmp_path / "a.json").exists()
    result = run_script(INFER, clip, "--checkpoint", trained_run / "best.pt", "--output", tmp_path / "a.json",
                        "--face-delay-ms", 60, "--no-plot")
    assert result.returncode == 0, result.stderr
    track = read_blendshapes_json(tmp_path / "a.json")
    assert track.header["face_delay_ms"] == 60
    plain, _ = animate_file(clip, *load_model(trained_run / "best.pt"), fps=30.0, delay_frames=6, strength=by_default())
    assert np.abs(track.blendshapes - plain.blendshapes).max() < 1e-3


def test_bad_checkpoints_and_inputs_get_one_line_each(trained_run, learn_dataset, tmp_path):
    good = trained_run / "best.pt"
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:1000])
    result = run_script(INFER, learn_dataset / "raw" / "sample_24.mp4", "--checkpoint", corrupt, "--output", tmp_path)
    assert result.returncode == 1 and "not a readable checkpoint" in result.stderr
    assert len([l for l in result.stderr.splitlines() if l.startswith("error: ")]) == 1
    checkpoint = torch.load(good, weights_only=True)
    checkpoint["front_end"]["hop_length"] = 256
    other = tmp_path / "other.pt"
    torch.save(checkpoint, other)
    with pytest.raises(FormatError, match="other audio front-end constants.*hop_length"):
        load_model(other)
    unreadable = tmp_path / "in" / "broken.wav"
    unreadable.parent.mkdir()
    unreadable.write_text("not audio")
    shutil.copy(learn_dataset / "raw" / "sample_24.mp4", tmp_path / "in")
    (tmp_path / "in" / "sub").mkdir()      # the same name elsewhere: both would write out/sample_24.json
    shutil.copy(learn_dataset / "raw" / "sample_24.mp4", tmp_path / "in" / "sub" / "sample_24.mov")
    result = run_script(INFER, tmp_path / "in", "--checkpoint", good, "--output", tmp_path / "out")
    assert result.returncode == 1
    errors = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
    assert len(errors) == 2
    assert any("broken.wav" in line and "not a readable" in line for line in errors)
    assert any("sample_24.mov: has the same name as" in line and "out/sample_24.json" in line for line in errors)
    assert (tmp_path / "out" / "sample_24.json").exists()
    assert json.loads((tmp_path / "out" / "sample_24.json").read_text().split('"frameCount"')[0].rstrip(",\n") + "}")


def test_a_frame_rate_or_chunk_that_is_not_positive_is_refused_before_anything_is_written(trained_run, learn_dataset,
                                                                                           tmp_path):
    # --fps 0 used to fail each file with a ZeroDivisionError, and --fps -5 to write files of 0 frames
    for args, says in ((("--fps", 0), "--fps 0: give more than 0"), (("--fps", -5), "--fps -5: give more than 0"),
                       (("--stream", "--chunk-ms", 0), "--chunk-ms 0: give more than 0"),
                       (("--mic", "--seconds", -1), "--seconds -1: give 0")):
        result = run_script(INFER, learn_dataset / "raw" / "sample_24.mp4", "--checkpoint", trained_run / "best.pt",
                            "--output", tmp_path / "out", *args)
        assert result.returncode == 2 and result.stderr.startswith(f"error: {says}"), result.stderr
        assert not (tmp_path / "out").exists()
    # a setting that means something only beside another was silently ignored (voiceface/cli.py now
    # refuses any setting whose comment begins "with --other:" without the other); a --reference that is
    # not a track failed after the inference, as if stage 1.1's output were at fault
    reference = learn_dataset / "processed" / "sample_24" / "blendshapes_and_pose.json"
    for args, code, says in ((("--seconds", 5), 2, "--seconds works only with --mic"),
                             (("--chunk-ms", 20), 2, "--chunk-ms works only with --stream or --mic"),
                             (("--reference", reference), 2, "--reference works only with --preview"),
                             (("--preview", "--reference", learn_dataset / "raw" / "sample_24.mp4"), 1,
                              "--reference " + str(learn_dataset / "raw" / "sample_24.mp4") + ": cannot read")):
        result = run_script(INFER, learn_dataset / "raw" / "sample_24.mp4", "--checkpoint", trained_run / "best.pt",
                            "--output", tmp_path / "out", *args)
        assert result.returncode == code and result.stderr.startswith(f"error: {says}"), result.stderr
        assert not (tmp_path / "out").exists()


def test_samples_that_are_not_numbers_are_silence_and_said(trained_run, tmp_path):
    """A float WAV holding NaN and infinite samples (a bad export, a glitching recorder): inference and
    stage 1.2 take them as silence and say how many, and the face goes on after them, as for the same
    file with zeros there. Before, one NaN made every frame after it "no face", with exit code 0."""
    import av
    from voiceface.synthetic import room_noise, speech_envelope, voiced_audio

    def float_wav(path, samples):
        with av.open(str(path), "w") as container:
            stream_ = container.add_stream("pcm_f32le", rate=16000)
            stream_.layout = "mono"
            frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None], format="flt", layout="mono")
            frame.sample_rate = 16000
            for packet in [*stream_.encode(frame), *stream_.encode()]:
                container.mux(packet)
        return path

    sound = room_noise("pink", -55, 4.0, 16000, 5) + voiced_audio(speech_envelope(4.0, 16000, 5), 16000, 5)
    bad = sound.copy()
    bad[[16000, 16001, 30000, 50000]] = [np.nan, np.inf, -np.inf, np.nan]
    zeros = np.where(np.isfinite(bad), bad, 0.0)
    for name, samples in (("bad", bad), ("zeros", zeros)):
        float_wav(tmp_path / f"{name}.wav", samples)
        result = run_script(INFER, tmp_path / f"{name}.wav", "--checkpoint", trained_run / "best.pt", "--no-plot",
                            "--output", tmp_path / f"{name}.json")
        assert result.returncode == 0, result.stderr
        said = "4 samples were NaN or infinite, taken as silence; check how the file was exported"
        assert (said in result.stdout) == (name == "bad"), result.stdout
    bad_track, zero_track = (read_blendshapes_json(tmp_path / f"{name}.json") for name in ("bad", "zeros"))
    assert bad_track.has_face.all() and len(bad_track.times_ms) == 120          # a face in every frame
    assert np.isfinite(bad_track.blendshapes).all() and np.array_equal(bad_track.blendshapes, zero_track.blendshapes)
    stage = run_script("1_data_cleaning/2_extract_audio_features.py", tmp_path / "bad.wav", "--output-dir",
                       tmp_path / "processed")
    assert stage.returncode == 0 and "4 samples were NaN or infinite" in stage.stdout, stage.stdout + stage.stderr
    features = json.loads((tmp_path / "processed" / "bad" / "audio_features.json").read_text())
    assert features["source"]["samples_not_numbers"] == 4


def test_a_strength_is_read_from_its_text_the_particular_item_winning_and_a_bad_one_refused_in_one_line(
        trained_run, learn_dataset, tmp_path):
    from voiceface.constants import BLENDSHAPE_NAMES
    from voiceface.strength import parse_strength
    index = BLENDSHAPE_NAMES.index
    for spec in ("1.5,mouth=2,jawOpen=3,pose=0.5", "jawopen=3, pose=0.5, mouth=2, 1.5"):    # order and case aside
        strength = parse_strength(spec)
        assert strength.gains[index("jawOpen")] == 3 and strength.gains[index("mouthFunnel")] == 2
        assert strength.gains[index("cheekPuff")] == 2 and strength.gains[index("browInnerUp")] == 1.5
        assert strength.gains[index("_neutral")] == 1 and strength.pose == 0.5 and not strength.identity
    assert parse_strength("upper=0").gains[index("eyeBlinkLeft")] == 0 and parse_strength("upper=0").gains[index(
        "jawOpen")] == 1
    assert parse_strength("").identity and parse_strength("1").identity
    assert parse_strength("mouth=2,").gains == parse_strength("mouth=2").gains          # a stray comma
    assert_each_refused("--strength", (
        ("jawOpn=2", "'jawOpn' is not a blendshape or region"), ("mouth=9", "between 0"), ("mouth=-1", "between 0"),
        ("mouth", "'mouth' is not a gain"), ("mouth=nan", "between 0"), ("mouth=2,mouth=3", "mouth is given twice")),
        learn_dataset / "raw" / "sample_24.mp4", trained_run / "best.pt", tmp_path)


def assert_each_refused(option, cases, clip, checkpoint, tmp_path):
    """inference.py with each bad value of `option` (cases: (value, what the line says)): exit 2,
    one line "error: OPTION VALUE: …", and nothing written."""
    for value, said in cases:
        refused = run_script(INFER, clip, "--checkpoint", checkpoint, "--output", tmp_path / "a.json", option, value)
        assert refused.returncode == 2 and refused.stderr.splitlines() == [refused.stderr.strip()], refused.stderr
        assert refused.stderr.startswith(f"error: {option} {value}: ") and said in refused.stderr, refused.stderr
        assert not (tmp_path / "a.json").exists()


def rotation_from(rest, q):
    """Degrees each of the (N, 4) rotations q turns away from the (4,) rotation rest."""
    from voiceface.pose import quaternion_conjugate, quaternion_multiply
    relative = quaternion_multiply(quaternion_conjugate(rest)[None], q)
    return np.degrees(2 * np.arccos(np.clip(np.abs(relative[:, 0]), 0, 1)))


def streamed_in_hops(model, clip, strength):
    """The clip's sound through a stream with `strength`, pushed 10 ms at a time, then finished."""
    _, audio = load_audio(clip)
    animator = Animator(*model, 30.0, strength=strength)
    return Frames.concatenate([animator.push(audio[i:i + 160]) for i in range(0, len(audio), 160)]
                              + [animator.finish()])


def test_a_strength_scales_the_face_from_the_models_rest_in_a_file_a_stream_and_the_output(model, trained_run,
                                                                                             learn_dataset, tmp_path):
    """Each score moves gain times as far from the model's face in digital silence (clipped to
    [0, 1]), the head turns and moves gain times as far; long digital silence stays where it was at
    any strength; a stream equals the file; inference.py records the strength it applied."""
    from voiceface.constants import BLENDSHAPE_NAMES, N_BLENDSHAPES
    from voiceface.strength import parse_strength, rest_of
    clip = learn_dataset / "raw" / "sample_24.mp4"
    strength = parse_strength("mouth=2.5,browInnerUp=0,pose=2")
    rest = rest_of(*model)
    plain, _ = animate_file(clip, *model)
    strong, _ = animate_file(clip, *model, strength=strength)
    gains = np.array(strength.gains)
    expected = np.clip(rest[:N_BLENDSHAPES] + gains * (plain.blendshapes - rest[:N_BLENDSHAPES]), 0, 1)
    assert np.abs(strong.blendshapes - expected).max() <= 1e-5
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    assert strong.blendshapes[:, jaw].std() > 1.8 * plain.blendshapes[:, jaw].std()        # clipped a little at 0
    assert np.allclose(strong.blendshapes[:, BLENDSHAPE_NAMES.index("browInnerUp")], rest[BLENDSHAPE_NAMES.index(
        "browInnerUp")], atol=1e-6)
    eyes = [i for i, n in enumerate(BLENDSHAPE_NAMES) if n.startswith("eye")]
    assert np.array_equal(strong.blendshapes[:, eyes], plain.blendshapes[:, eyes])
    translation = rest[N_BLENDSHAPES:N_BLENDSHAPES + 3]
    assert np.abs(strong.pose[:, :3] - (translation + 2 * (plain.pose[:, :3] - translation))).max() <= 1e-4
    turned, moved = rotation_from(rest[N_BLENDSHAPES + 3:], plain.pose[:, 3:]), rotation_from(
        rest[N_BLENDSHAPES + 3:], strong.pose[:, 3:])
    assert turned.max() > 0.5 and np.abs(moved - 2 * turned).max() <= 0.01, (turned.max(), np.abs(moved - 2 * turned).max())
    streamed = streamed_in_hops(model, clip, strength)
    assert np.abs(streamed.blendshapes - strong.blendshapes).max() <= 1e-5
    assert_same_pose(streamed.pose, strong.pose)
    silence = write_wav(tmp_path / "silence.wav", np.zeros(14 * 16000, np.float32))
    quiet, _ = animate_file(silence, *model)
    quiet_strong, _ = animate_file(silence, *model, strength=parse_strength("4,pose=4"))
    assert np.abs(quiet_strong.blendshapes[-30:] - quiet.blendshapes[-30:]).max() <= 1e-5      # the last second
    assert_same_pose(quiet_strong.pose[-30:], quiet.pose[-30:])
    result = run_script(INFER, clip, "--checkpoint", trained_run / "best.pt", "--output", tmp_path / "s.json",
                        "--strength", "mouth=2.5,browInnerUp=0,pose=2", "--csv", "--no-plot")
    assert result.returncode == 0, result.stderr
    track = read_blendshapes_json(tmp_path / "s.json")
    assert track.header["strength"]["spec"] == "mouth=2.5,browInnerUp=0,pose=2"
    assert track.header["strength"]["blendshapes"]["jawOpen"] == 2.5 and track.header["strength"]["pose"] == 2
    strong = animate_file(clip, *model, strength=by_default(strength))[0]       # and blinking, as by default
    assert np.abs(track.blendshapes - strong.blendshapes).max() <= 1e-4          # the JSON keeps 4 decimals
    with open(tmp_path / "s.csv", newline="") as f:
        header, *body = list(csv.reader(f))
    jaw_column = np.array([float(row[header.index("JawOpen")]) for row in body])
    assert np.allclose(jaw_column, strong.blendshapes[:, jaw], atol=1e-5)           # the Live Link take: strengthened


def test_the_stream_onnx_carries_its_strength_and_is_exported_again_for_another(trained_run, tmp_path):
    """--export-onnx --strength: the file scales the face inside (its check against the engine, which
    applies the same strength, passes, and it differs from the plain file's), says so in its
    metadata, and is not skipped as done when asked for another strength; the mel form refuses one."""
    from voiceface.formats import sha256_file
    from voiceface.stream_onnx import check_audio, exported_checkpoint, open_stream_onnx, run_stream_onnx
    from voiceface.strength import parse_strength
    checkpoint = trained_run / "best.pt"
    target = tmp_path / "strong.onnx"
    result = run_script(INFER, "--checkpoint", checkpoint, "--export-onnx", target, "--strength", "mouth=2,pose=0.5")
    assert result.returncode == 0, result.stderr
    assert "strength mouth=2,pose=0.5 inside" in result.stdout and "the same in 1200 of 1200 frames" in result.stdout
    session, meta = open_stream_onnx(target)
    record = json.loads(meta["strength"])
    assert record["spec"] == "mouth=2,pose=0.5" and record["blendshapes"]["jawOpen"] == 2 and len(record["rest"]) == 59
    assert exported_checkpoint(target, by_default(parse_strength("mouth=2,pose=0.5"))) == sha256_file(checkpoint)
    assert exported_checkpoint(target, by_default(parse_strength("pose=0.5,mouth=2"))) == sha256_file(checkpoint)
    assert exported_checkpoint(target, by_default()) is None
    assert exported_checkpoint(target, by_default(parse_strength("mouth=2"))) is None
    again = run_script(INFER, "--checkpoint", checkpoint, "--export-onnx", target)      # no strength: export again
    assert again.returncode == 0 and "skipped" not in again.stdout, again.stdout
    plain = json.loads(open_stream_onnx(target)[1]["strength"])    # only the default smoothing of the head inside
    assert plain["blendshapes"] == {} and plain["pose"] == 1.0 and plain["smoothing"]["spec"] == "pose=100"
    sound = check_audio()
    strong_jaw = run_stream_onnx(session, meta, sound)[0][:, 25]
    plain_jaw = run_stream_onnx(*open_stream_onnx(target), sound)[0][:, 25]
    assert strong_jaw.std() > 1.5 * plain_jaw.std()
    mel = run_script(INFER, "--checkpoint", checkpoint, "--export-onnx", tmp_path / "mel.onnx", "--onnx-input", "mel",
                     "--strength", "2")
    assert mel.returncode == 2 and mel.stderr.startswith("error: --strength, --rest, --smoothing or --blinks with --onnx-input mel")
    assert not (tmp_path / "mel.onnx").exists()


def test_a_smoothing_is_read_like_a_strength_and_its_filter_is_one_euros_in_numpy_and_torch_alike(
        trained_run, learn_dataset, tmp_path):
    """--smoothing's text gives each output a time constant (the particular item winning, 0 none, the
    pose its own); its filter holds a still face, low-passes a jittering one at its time constant,
    lets a fast opening through within a few frames, leaves unsmoothed outputs exactly as they were,
    and computes the same in NumPy and torch (the engine's and the stream ONNX's arithmetic); bad
    text: one line, nothing written."""
    import torch
    from voiceface.constants import BLENDSHAPE_NAMES, N_TARGETS
    from voiceface.strength import NONE, one_euro_step, parse_smoothing, smooth_frames, smoothing_constants, with_smoothing
    index = BLENDSHAPE_NAMES.index
    taus = parse_smoothing("20,mouth=40,jawOpen=60,pose=100")
    assert taus[index("jawOpen")] == 60 and taus[index("mouthFunnel")] == 40 and taus[index("browInnerUp")] == 20
    assert taus[index("_neutral")] == 0 and taus[N_TARGETS - 1] == 100 and len(taus) == N_TARGETS
    assert parse_smoothing("") is None and parse_smoothing("0") is None and parse_smoothing("mouth=0") is None
    smoothing = with_smoothing(NONE, "mouth=40")
    assert not smoothing.identity and smoothing.describe()["smoothing"]["blendshapes_ms"]["jawOpen"] == 40
    jaw, brow = index("jawOpen"), index("browInnerUp")
    rng = np.random.default_rng(0)
    still = np.full((200, N_TARGETS), 0.3)
    assert np.abs(smooth_frames(still, smoothing)[0] - 0.3).max() < 1e-12
    noisy = 0.3 + 0.01 * rng.standard_normal((400, N_TARGETS))                    # a still face, read noisily
    calm = smooth_frames(noisy, smoothing)[0]
    assert np.abs(np.diff(calm[:, jaw], 2)).mean() < 0.25 * np.abs(np.diff(noisy[:, jaw], 2)).mean()
    assert np.array_equal(calm[:, brow], noisy[:, brow])                           # upper: not smoothed
    opening = np.zeros((60, N_TARGETS))
    opening[20:] = 0.5                                                             # the jaw opens at once
    opened = smooth_frames(opening, smoothing)[0][:, jaw]
    assert opened[19] == 0 and 0.4 < opened[22] <= 0.5 and np.all(np.diff(opened) >= 0)
    plain = smooth_frames(opening, with_smoothing(NONE, "jawOpen=40"))[0]          # state carried across calls
    first, state = smooth_frames(opening[:25], with_smoothing(NONE, "jawOpen=40"))
    assert np.array_equal(np.concatenate([first, smooth_frames(opening[25:], with_smoothing(NONE, "jawOpen=40"),
                                                              state)[0]]), plain)
    cutoff, on = smoothing_constants(smoothing)
    assert abs(cutoff[jaw] - 1000 / (2 * np.pi * 40)) < 1e-9 and on[jaw] == 1 and on[brow] == 0
    x, value, speed = rng.random(N_TARGETS), rng.random(N_TARGETS), rng.standard_normal(N_TARGETS)
    in_numpy = one_euro_step(x, value, speed, cutoff, on)
    in_torch = one_euro_step(*(torch.tensor(a) for a in (x, value, speed, cutoff, on)))
    assert all(np.allclose(a, b.numpy(), atol=1e-12) for a, b in zip(in_numpy, in_torch))
    assert_each_refused("--smoothing", (
        ("jawOpn=20", "'jawOpn' is not a blendshape or region"), ("mouth=900", "between 0"), ("mouth=-5", "between 0"),
        ("mouth", "'mouth' is not a time constant"), ("pose=20,pose=30", "pose is given twice")),
        learn_dataset / "raw" / "sample_24.mp4", trained_run / "best.pt", tmp_path)


def test_a_smoothing_calms_the_face_in_a_file_a_stream_the_onnx_and_the_output(model, trained_run, learn_dataset,
                                                                              tmp_path):
    """A file with --smoothing: in room noise the mouth's frame-to-frame jitter falls to under half, in
    speech a little (the filter opens for a moving mouth) with the track kept; the upper face is
    untouched, long digital silence rests where it did; a stream in 10 ms pushes equals the file;
    inference.py records it; the stream ONNX carries it (its check against the engine passes) and is
    exported again without it."""
    from voiceface.constants import BLENDSHAPE_NAMES
    from voiceface.formats import sha256_file
    from voiceface.stream_onnx import exported_checkpoint, open_stream_onnx
    from voiceface.strength import NONE, with_smoothing
    from voiceface.synthetic import room_noise
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    smoothing = with_smoothing(NONE, "mouth=60,pose=100")

    def jitter(frames):
        return np.abs(np.diff(frames.blendshapes[:, jaw], 2)).mean()

    noise = write_wav(tmp_path / "noise.wav", room_noise("pink", -40.0, 8.0, 16000, 3))
    assert jitter(animate_file(noise, *model, strength=smoothing)[0]) < 0.5 * jitter(animate_file(noise, *model)[0])
    clip = learn_dataset / "raw" / "sample_24.mp4"
    plain, _ = animate_file(clip, *model)
    calm, _ = animate_file(clip, *model, strength=smoothing)
    assert jitter(calm) < jitter(plain)
    assert np.corrcoef(plain.blendshapes[:, jaw], calm.blendshapes[:, jaw])[0, 1] > 0.9
    eyes = [i for i, n in enumerate(BLENDSHAPE_NAMES) if n.startswith("eye")]
    assert np.array_equal(calm.blendshapes[:, eyes], plain.blendshapes[:, eyes])
    streamed = streamed_in_hops(model, clip, smoothing)
    assert np.abs(streamed.blendshapes - calm.blendshapes).max() <= 1e-5
    assert_same_pose(streamed.pose, calm.pose)
    silence = write_wav(tmp_path / "silence.wav", np.zeros(14 * 16000, np.float32))
    quiet, _ = animate_file(silence, *model)
    quiet_calm, _ = animate_file(silence, *model, strength=smoothing)
    assert np.abs(quiet_calm.blendshapes[-30:] - quiet.blendshapes[-30:]).max() <= 1e-4
    result = run_script(INFER, clip, "--checkpoint", trained_run / "best.pt", "--output", tmp_path / "s.json",
                        "--smoothing", "mouth=60,pose=100", "--no-plot", "--blinks", 0)     # no blinks drawn
    assert result.returncode == 0, result.stderr
    track = read_blendshapes_json(tmp_path / "s.json")
    assert "blinks" not in track.header["strength"]
    record = track.header["strength"]["smoothing"]
    assert record["spec"] == "mouth=60,pose=100" and record["blendshapes_ms"]["jawOpen"] == 60
    assert record["pose_ms"] == 100 and "One Euro" in record["filter"]
    assert np.abs(track.blendshapes - calm.blendshapes).max() <= 1e-4
    checkpoint, target = trained_run / "best.pt", tmp_path / "calm.onnx"
    exported = run_script(INFER, "--checkpoint", checkpoint, "--export-onnx", target, "--smoothing", "mouth=60,pose=100",
                          "--blinks", 0)
    assert exported.returncode == 0, exported.stderr
    assert "smoothing mouth=60,pose=100 inside" in exported.stdout and "the same in 1200 of 1200 frames" in exported.stdout
    assert json.loads(open_stream_onnx(target)[1]["strength"])["smoothing"]["pose_ms"] == 100
    assert exported_checkpoint(target, smoothing) == sha256_file(checkpoint)
    assert exported_checkpoint(target) is None and exported_checkpoint(target, with_smoothing(NONE, "mouth=60")) is None


def test_a_rest_is_read_from_values_a_video_in_sync_or_not_a_silent_one_or_a_processed_clip(face_model, learn_dataset,
                                                                                            tmp_path):
    """--rest: NAME=V values; a video's face in its pauses, read on the picture's clock put in sync
    with the sound (a clip whose mouth leads its sound by 300 ms rests as the one in sync does, and
    says it moved the sound); a silent video's or a photo's median face; a processed clip folder as
    its video; bad text or a file without pauses refused in one line."""
    import av
    from voiceface.constants import BLENDSHAPE_NAMES
    from voiceface.errors import InputError
    from voiceface.strength import face_at_rest, parse_rest_values, rest_from_spec
    from voiceface.synthetic import write_talking_face_clip
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    values = parse_rest_values("jawOpen=0.05, MouthClose=0.1,")
    assert values[jaw] == 0.05 and values[BLENDSHAPE_NAMES.index("mouthClose")] == 0.1 and np.isnan(values).sum() == 50
    for spec, said in (("jawOpen=2", "between 0 and 1"), ("jaw=0.1", "neither a file nor a blendshape"),
                       ("jawOpen=0.1,jawopen=0.2", "jawOpen is given twice"), ("jawOpen=x", "between 0 and 1"),
                       (str(tmp_path / "missing.mp4"), "no such file")):
        with pytest.raises(ValueError, match=said):
            rest_from_spec(spec, face_model)
    rests = {}
    for lead in (0.0, 0.3):
        clip = write_talking_face_clip(tmp_path / f"lead_{lead:g}.mp4", duration=6.0, seed=3, mouth_lead=lead)
        rests[lead], how = face_at_rest(clip.path, face_model)
        assert "s of pauses" in how, how
    assert rests[0.0][jaw] < 0.05 and abs(rests[0.3][jaw] - rests[0.0][jaw]) < 0.01, (rests[0.0][jaw], rests[0.3][jaw])
    moved = float(how.split("moved ")[1].split(" ms")[0])
    assert abs(moved + 300) <= 34, how                       # within a video frame of the mouth's lead
    from voiceface.landmarks import extract_blendshapes_and_pose
    _, times_ms, _, _ = extract_blendshapes_and_pose(tmp_path / "lead_0.mp4", face_model, max_faces=1, max_seconds=2.0)
    assert len(times_ms) == 60 and times_ms[-1] < 2000                 # a long video's rest reads its start only
    silent = write_talking_face_clip(tmp_path / "silent.mp4", duration=2.0, seed=3, with_audio=False)
    face, how = face_at_rest(silent.path, face_model)
    assert how == "no sound: the median face of 60 frame(s)" and 0 <= face.min() and face.max() <= 1
    photo = tmp_path / "photo.png"
    with av.open(str(tmp_path / "lead_0.mp4")) as container:
        next(container.decode(video=0)).to_image().save(photo)
    assert face_at_rest(photo, face_model)[1].startswith("no sound: the median face of 1 frame(s); one frame is a less")
    with pytest.raises(InputError, match="not a processed clip"):
        face_at_rest(tmp_path, face_model)
    talking = tmp_path / "talking"                     # a processed clip whose voice never stops: no pause to read
    shutil.copytree(learn_dataset / "processed" / "sample_20", talking)
    folder_rest, how = face_at_rest(talking)
    assert "s of pauses" in how and folder_rest[jaw] < 0.05, how
    track = talking / "blendshapes_and_pose.json"         # its stage 1.1 track: read with its sound, or alone
    assert np.array_equal(face_at_rest(track)[0], folder_rest)
    alone = tmp_path / "alone.json"
    shutil.copy(track, alone)
    face, how = face_at_rest(alone)
    assert how.startswith("no sound: the median face of ") and face[jaw] > folder_rest[jaw]     # speech in it too
    with np.load(talking / "audio_features.npz") as npz:
        arrays = dict(npz)
    np.savez(talking / "audio_features.npz", **(arrays | {"vad": np.ones_like(arrays["vad"])}))
    with pytest.raises(InputError, match="talking: under 0.3 s of the face at least 100 ms from any voice"):
        face_at_rest(talking)


def test_a_rest_moves_the_face_onto_it_in_a_file_a_stream_the_onnx_and_the_output(model, trained_run, learn_dataset,
                                                                                  tmp_path):
    """Each score moves from the model's rest onto the rest given, the strength's gain applied
    around it: long digital silence then rests there; a stream equals the file; inference.py records
    the rest and where it came from (a processed clip folder); the stream ONNX carries it, checks
    against the engine, and is exported again for another rest."""
    from voiceface.constants import BLENDSHAPE_NAMES, N_BLENDSHAPES
    from voiceface.formats import sha256_file
    from voiceface.stream_onnx import exported_checkpoint, open_stream_onnx
    from voiceface.strength import face_at_rest, parse_rest_values, parse_strength, rest_of, with_rest
    jaw, smile = BLENDSHAPE_NAMES.index("jawOpen"), BLENDSHAPE_NAMES.index("mouthSmileLeft")
    clip = learn_dataset / "raw" / "sample_24.mp4"
    rest = rest_of(*model)
    given = with_rest(parse_strength("mouth=2"), parse_rest_values("jawOpen=0.02,mouthSmileLeft=0.3"), "values")
    plain, _ = animate_file(clip, *model)
    rested, _ = animate_file(clip, *model, strength=given)
    gains, towards = np.array(given.gains), rest[:N_BLENDSHAPES].copy()
    towards[[jaw, smile]] = 0.02, 0.3
    expected = np.clip(towards + gains * (plain.blendshapes - rest[:N_BLENDSHAPES]), 0, 1)
    assert np.abs(rested.blendshapes - expected).max() <= 1e-5
    assert_same_pose(rested.pose, plain.pose)                                         # the head as it was
    streamed = streamed_in_hops(model, clip, given)
    assert np.abs(streamed.blendshapes - rested.blendshapes).max() <= 1e-5
    silence = write_wav(tmp_path / "silence.wav", np.zeros(14 * 16000, np.float32))
    quiet, _ = animate_file(silence, *model, strength=given)
    assert np.abs(quiet.blendshapes[-30:, [jaw, smile]] - [0.02, 0.3]).max() <= 1e-4     # resting where it was told
    folder = learn_dataset / "processed" / "sample_20"
    result = run_script(INFER, clip, "--checkpoint", trained_run / "best.pt", "--output", tmp_path / "r.json",
                        "--rest", folder, "--no-plot")
    assert result.returncode == 0, result.stderr
    record = read_blendshapes_json(tmp_path / "r.json").header["strength"]["rest_to"]
    face, how = face_at_rest(folder)
    assert record["spec"] == f"{folder}: {how}" and "_neutral" not in record["blendshapes"]
    assert record["blendshapes"]["jawOpen"] == pytest.approx(face[jaw], abs=1e-6)
    refused = run_script(INFER, clip, "--checkpoint", trained_run / "best.pt", "--output", tmp_path / "bad.json",
                         "--rest", learn_dataset)
    assert refused.returncode == 2 and refused.stderr.startswith(f"error: --rest {learn_dataset}: a folder, but not")
    assert not (tmp_path / "bad.json").exists() and len(refused.stderr.strip().splitlines()) == 1
    target = tmp_path / "rested.onnx"
    result = run_script(INFER, "--checkpoint", trained_run / "best.pt", "--export-onnx", target, "--rest", "jawOpen=0.02")
    assert result.returncode == 0, result.stderr
    assert "rest jawOpen=0.02 inside" in result.stdout and "the same in 1200 of 1200 frames" in result.stdout
    record = json.loads(open_stream_onnx(target)[1]["strength"])
    assert record["rest_to"] == {"spec": "jawOpen=0.02", "blendshapes": {"jawOpen": 0.02}}
    checkpoint_sha = sha256_file(trained_run / "best.pt")
    rest_only = with_rest(parse_strength(""), parse_rest_values("jawOpen=0.02"), "jawOpen=0.02")
    assert exported_checkpoint(target, by_default(rest_only)) == checkpoint_sha
    assert exported_checkpoint(target, by_default()) is None
    assert exported_checkpoint(target, by_default(with_rest(parse_strength(""), parse_rest_values("jawOpen=0.03"),
                                                            ""))) is None


def test_drawn_blinks_come_at_their_rate_in_a_file_a_stream_and_the_onnx_alike(model, trained_run, learn_dataset,
                                                                               tmp_path):
    """--blinks: the cycle blinks exactly its rate, never sooner than MIN_GAP_S after the last, eyes
    open at the start; a stream pushed 10 ms at a time blinks where the file does; a strength deepens
    them; the stream ONNX carries them (its check passes) and is exported again for another rate;
    a bad rate is refused in one line."""
    from voiceface.blinks import BLINK_SHARE, EYES, MIN_GAP_S, PEAK, blink_shape, blink_table
    from voiceface.formats import sha256_file
    from voiceface.stream_onnx import exported_checkpoint, open_stream_onnx
    from voiceface.strength import NONE, parse_rest_values, parse_strength, with_blinks, with_rest
    for rate in (2, 24, 60):
        table = blink_table(rate)
        starts = np.flatnonzero(np.diff((table > 0).astype(int)) == 1) + 1
        assert len(starts) == 64 and abs(64 * 6000 / len(table) - rate) < 0.02 * rate
        assert np.diff(starts).min() >= MIN_GAP_S * 100 and starts[0] >= MIN_GAP_S * 100 and table.max() == 1
    assert abs((blink_shape() >= 0.5).sum() * 10 - 167) <= 20            # the videos' median half-height width
    clip = learn_dataset / "raw" / "sample_24.mp4"
    blinking = with_blinks(NONE, 60)
    plain, _ = animate_file(clip, *model)
    blinked, _ = animate_file(clip, *model, strength=blinking)
    envelope = blink_table(60)[np.floor(blinked.times * 100 + 1e-9).astype(int) - 1]
    eyes = np.maximum(plain.blendshapes[:, list(EYES)] - BLINK_SHARE, 0)
    expected = eyes + envelope[:, None] * (PEAK - eyes)
    assert np.abs(blinked.blendshapes[:, list(EYES)] - expected).max() <= 1e-5 and (envelope == 1).any()
    assert np.abs(streamed_in_hops(model, clip, blinking).blendshapes - blinked.blendshapes).max() <= 1e-5
    deeper, _ = animate_file(clip, *model, strength=with_blinks(parse_strength("eyeBlinkLeft=1.5"), 60))
    left = EYES[0]
    assert deeper.blendshapes[envelope == 1, left].min() > blinked.blendshapes[envelope == 1, left].max() - 1e-6
    # a rest given for the eyes (an open eye, as a video's pauses give it) is reached between blinks:
    # the blinks' share comes off the model's rest too, not twice
    silence = write_wav(tmp_path / "silence.wav", np.zeros(14 * 16000, np.float32))
    rested = with_blinks(with_rest(parse_strength(""), parse_rest_values("eyeBlinkLeft=0.1"), "values"), 60)
    quiet, _ = animate_file(silence, *model, strength=rested)
    calm = blink_table(60)[np.floor(quiet.times * 100 + 1e-9).astype(int) - 1][-60:] == 0
    assert calm.any() and np.abs(quiet.blendshapes[-60:][calm, left] - 0.1).max() <= 1e-4
    checkpoint, target = trained_run / "best.pt", tmp_path / "blinks.onnx"
    exported = run_script(INFER, "--checkpoint", checkpoint, "--export-onnx", target, "--blinks", 60, "--smoothing", 0)
    assert exported.returncode == 0, exported.stderr
    assert "blinks 60 a minute inside" in exported.stdout and "the same in 1200 of 1200 frames" in exported.stdout
    assert json.loads(open_stream_onnx(target)[1]["strength"])["blinks"]["per_minute"] == 60
    assert exported_checkpoint(target, blinking) == sha256_file(checkpoint)
    assert exported_checkpoint(target, with_blinks(NONE, 24)) is None and exported_checkpoint(target) is None
    assert_each_refused("--blinks", (("90", "give 2-60 blinks a minute"), ("1", "give 2-60 blinks a minute")),
                        clip, checkpoint, tmp_path)
