"""Stage 3's preview video and its Live Link Face output over a real UDP socket (loopback only)."""
import json
import socket
import subprocess
import sys

import av
import numpy as np
import pytest

from conftest import REPO_ROOT, by_default, run_script
from voiceface.formats import read_blendshapes_json
from voiceface.livelink import (DEFAULT_PORT, LIVE_LINK_NAMES, Packet, decode_packet, encode_packet, live_link_values,
                                parse_address)
from voiceface.preview import MOUTH, FaceDrawing, INDEX

INFER = "3_inference/inference.py"


def mouth_pixels(image: np.ndarray) -> int:
    """Pixels of the dark inside of an open mouth (within compression's tolerance of its colour), in
    the lower half of a face panel (the pupils above are as dark)."""
    lower = image[image.shape[0] // 2:]
    return int((np.abs(lower.astype(int) - MOUTH).sum(axis=2) < 60).sum())


def test_the_drawn_mouth_opens_with_jaw_open_and_closes_with_mouth_close():
    drawing = FaceDrawing(240)
    shapes = np.zeros(52)
    opened = []
    for jaw in (0.0, 0.25, 0.5, 0.75):
        shapes[INDEX["jawOpen"]] = jaw
        opened.append(mouth_pixels(drawing.draw(shapes, np.array([1.0, 0, 0, 0]))))
    assert opened[0] == 0 and all(b > a for a, b in zip(opened, opened[1:])), opened
    shapes[INDEX["mouthClose"]] = 1.0                      # jaw open, lips held together
    assert mouth_pixels(drawing.draw(shapes, np.array([1.0, 0, 0, 0]))) < opened[-1] / 4


def test_a_packet_survives_encoding_and_foreign_bytes_are_refused():
    values = np.linspace(-1, 1, 61).astype(np.float32)
    packet = Packet("0f4c5c84-3a4e-4a5e-9a55-1f5c8c1d2e3f", "voiceface", 1_234_567, 0.25, 30, 1, values)
    data = encode_packet(packet)
    # version, two strings with their lengths, frame time (16 bytes), count, 61 floats
    assert data[0] == 6 and len(data) == 1 + 4 + 36 + 4 + 9 + 16 + 1 + 61 * 4
    back = decode_packet(data)
    assert (back.device_id, back.subject, back.frame_number, back.fps) == (packet.device_id, "voiceface", 1_234_567, 30)
    assert back.sub_frame == pytest.approx(0.25) and np.array_equal(back.values, values)
    with pytest.raises(ValueError, match="not a Live Link Face packet"):
        decode_packet(b"hello")
    assert parse_address("10.0.0.5") == ("10.0.0.5", DEFAULT_PORT)
    for bad in ("host:port", "host:70000", ":11111"):
        with pytest.raises(ValueError):
            parse_address(bad)


@pytest.fixture(scope="module")
def checkpoint(trained_run):
    return trained_run / "best.pt"


def test_preview_of_a_video_has_the_json_frames_and_the_input_sound(checkpoint, learn_dataset, tmp_path):
    clip = learn_dataset / "raw" / "sample_24.mp4"
    out = tmp_path / "take.json"
    result = run_script(INFER, clip, "--checkpoint", checkpoint, "--output", out, "--preview",
                        "--reference", learn_dataset / "processed" / "sample_24" / "blendshapes_and_pose.json")
    assert result.returncode == 0, result.stderr
    track = read_blendshapes_json(out)
    preview = tmp_path / "take.preview.mp4"
    with av.open(str(preview)) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        assert float(video.average_rate) == pytest.approx(30.0)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert sound.duration * sound.time_base == pytest.approx(8.0, abs=0.07)      # the 8 s input, whole
    assert len(frames) == len(track.times_ms)
    # three panels: the source video (256 x 256 -> 360 x 360), the extracted face, the predicted face
    assert frames[0].shape == (360, 3 * 360, 3)
    jaw = track.blendshapes[:, INDEX["jawOpen"]]
    high, low = int(np.argmax(jaw)), int(np.argmin(jaw))
    assert jaw[high] - jaw[low] > 0.15
    predicted = slice(2 * 360, 3 * 360)
    assert mouth_pixels(frames[high][:, predicted]) > mouth_pixels(frames[low][:, predicted]) + 100


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_streamed_file_reaches_a_live_link_listener_frame_by_frame(checkpoint, learn_dataset, tmp_path):
    port = free_port()
    received = tmp_path / "received.json"
    listener = subprocess.Popen([sys.executable, str(REPO_ROOT / "3_inference/livelink_listen.py"), "--host", "127.0.0.1",
                                 "--port", str(port), "--idle-seconds", "2", "--seconds", "60", "--json", str(received),
                                 "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = listener.stdout.readline()                          # printed once bound, however slow the start
    assert said.startswith("listening for Live Link Face packets"), said + listener.stderr.read()
    out = tmp_path / "streamed.json"
    clip = learn_dataset / "raw" / "sample_23.mp4"              # 8 s, sent at real-time pace
    result = run_script(INFER, clip, "--checkpoint", checkpoint, "--stream", "--livelink", f"127.0.0.1:{port}",
                        "--output", out, "--no-plot", "--strength", "mouth=2")
    assert result.returncode == 0, result.stderr
    assert "Live Link: 240 packets" in result.stdout
    stdout, stderr = listener.communicate(timeout=30)
    assert listener.returncode == 0, stderr
    packets = json.loads(received.read_text())["packets"]
    track = read_blendshapes_json(out)
    assert len(packets) == len(track.times_ms) == 240
    # in order, one frame at a time, each the same values the JSON holds; a frame's time is a timecode,
    # seconds since midnight, so a stream sent across midnight steps from 86399.97 to 0.00 (a run that
    # began at 23:59:59 failed here on 2026-12-08): steps are taken modulo a day
    times = np.array([(p["frame_number"] + p["sub_frame"]) / p["fps"] for p in packets])
    steps = np.diff(times) % 86400.0
    assert np.all(steps > 0) and np.allclose(steps, 1 / 30, atol=1e-3)
    expected = live_link_values(track.blendshapes, track.pose)
    values = np.array([p["values"] for p in packets])
    assert np.abs(values[:, :52] - expected[:, :52]).max() <= 1e-4                 # JSON rounds to 1e-4
    assert np.abs(values[:, 52:55] - expected[:, 52:55]).max() <= 1e-4
    assert {p["subject"] for p in packets} == {"voiceface"}
    # the packets carry the face at the strength asked for: the file's frames at mouth=2
    from voiceface.engine import animate_file, load_model
    from voiceface.strength import parse_strength
    strong, _ = animate_file(clip, *load_model(checkpoint), strength=by_default(parse_strength("mouth=2")))
    assert np.abs(track.blendshapes - strong.blendshapes).max() <= 1e-4
    assert track.header["strength"]["spec"] == "mouth=2"
    # at the output frame rate: 8 s of audio streamed in real time arrive over about 8 s
    arrivals = np.array([p["arrival_s"] for p in packets])
    assert 7.0 < arrivals[-1] - arrivals[0] < 9.5
    assert np.median(np.diff(arrivals)) == pytest.approx(1 / 30, abs=0.012)
    assert np.median([p["latency_ms"] for p in packets]) < 100
    names = json.loads(received.read_text())["names"]
    assert names == list(LIVE_LINK_NAMES)


@pytest.mark.parametrize("address, message", [("no-such-host.invalid:11111", "cannot find host"),
                                              ("127.0.0.1:99999", "outside 1-65535"),
                                              ("127.0.0.1:port", "not a number")])
def test_a_wrong_live_link_address_gets_one_line(checkpoint, learn_dataset, address, message):
    result = run_script(INFER, learn_dataset / "raw" / "sample_23.mp4", "--checkpoint", checkpoint, "--stream",
                        "--livelink", address)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(errors) == 1 and message in errors[0], result.stderr
