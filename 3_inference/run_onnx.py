"""Animate a WAV file with the stream ONNX alone: NumPy and ONNX Runtime, nothing else of this project.

    python 3_inference/inference.py --checkpoint runs/default/last.pt --export-onnx face.onnx
    python 3_inference/run_onnx.py face.onnx speech.wav --fps 30 --output speech.csv

What a C, C++, C# or browser caller of the file writes, in a page of Python: read the file's
metadata, start the state at zeros, feed each 10 ms of 16 kHz mono audio with the state the last
call returned, and give animation frame k the output floor(k * 100 / fps) - 1 + look-ahead (the
file says its look-ahead; a stream's last frames take its last output). The CSV has a row per
animation frame: its time, the 52 blendshapes, the head pose (x, y, z in cm, qw, qx, qy, qz) and
voice activity; for the same sound it holds inference.py's values (tests/test_inference.py).

The sound must be a PCM WAV at 16 kHz (channels are averaged): resampling is the caller's, as it is
in an engine, whose audio arrives at the device's rate (`ffmpeg -i in.mp4 -ar 16000 out.wav`;
voiceface resamples with soxr's windowed sinc). Its settings are read by argparse here rather than by
voiceface.cli, so that it imports nothing of voiceface and can be copied on its own.
"""
import argparse
import csv
import json
import math
import os
import sys

import numpy as np
import onnxruntime

# --- settings (each can be given on the command line: FPS as --fps; MODEL and WAV first, by position) ---
MODEL = ""                      # the .onnx that inference.py --export-onnx wrote
WAV = ""                        # the sound: a WAV at 16 kHz
FPS = 30.0                      # animation frames per second
OUTPUT = ""                     # the CSV to write; default: beside the WAV, <name>.onnx.csv
# --- end of settings ---------------------------------------------------------------------------

FORMAT, FORMAT_VERSION = "voiceface/stream_onnx", "1"      # what voiceface/stream_onnx.py writes


def read_wav(path: str) -> np.ndarray:
    """A WAV at 16 kHz (PCM of 8, 16, 24 or 32 bits, or 32- or 64-bit float; the extensible header
    too) as float32 mono in [-1, 1], channels averaged; ValueError saying what to do otherwise."""
    convert = f"convert it: ffmpeg -i {path} -ar 16000 OUT.wav"
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror})") from None
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file; {convert}")
    chunks, at = {}, 12
    while at + 8 <= len(data):                       # RIFF chunks: id, little-endian size, body padded to even
        size = int.from_bytes(data[at + 4:at + 8], "little")
        chunks.setdefault(data[at:at + 4], data[at + 8:at + 8 + size])
        at += 8 + size + size % 2
    if b"fmt " not in chunks or b"data" not in chunks or len(chunks[b"fmt "]) < 16:
        raise ValueError(f"{path}: a WAV without its format or data chunk; {convert}")
    fmt = chunks[b"fmt "]
    tag, channels, rate = (int.from_bytes(fmt[a:b], "little") for a, b in ((0, 2), (2, 4), (4, 8)))
    bits = int.from_bytes(fmt[14:16], "little")
    if tag == 0xFFFE and len(fmt) >= 26:             # WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format
        tag = int.from_bytes(fmt[24:26], "little")
    if rate != 16000:
        raise ValueError(f"{path}: {rate} Hz; the model hears 16000 Hz: {convert}")
    body = chunks[b"data"]
    if tag == 3 and bits in (32, 64):
        samples = np.frombuffer(body[:len(body) // (bits // 8) * (bits // 8)], f"<f{bits // 8}").astype(np.float64)
    elif tag == 1 and bits == 8:
        samples = (np.frombuffer(body, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif tag == 1 and bits == 24:                    # three little-endian bytes, the sign from the top one
        raw = np.frombuffer(body[:len(body) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
        samples = ((raw[:, 0] | raw[:, 1] << 8 | raw[:, 2] << 16) << 8 >> 8) / 8388608.0
    elif tag == 1 and bits in (16, 32):
        samples = np.frombuffer(body[:len(body) // (bits // 8) * (bits // 8)], f"<i{bits // 8}") / 2.0 ** (bits - 1)
    else:
        raise ValueError(f"{path}: WAV of format {tag}, {bits} bits, which this reader does not take; {convert}")
    if channels < 1:
        raise ValueError(f"{path}: a WAV of no channels; {convert}")
    return samples[:len(samples) // channels * channels].reshape(-1, channels).mean(axis=1).astype(np.float32)


def open_model(path: str):
    """(session, metadata), or ValueError when the file is not a voiceface stream ONNX."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1      # one 10 ms frame: no thread pool
    try:
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:                                       # ONNX Runtime raises its own kinds
        raise ValueError(f"{path}: ONNX Runtime cannot load it ({str(error).splitlines()[0]})") from None
    meta = session.get_modelmeta().custom_metadata_map
    if (meta.get("format"), meta.get("format_version")) != (FORMAT, FORMAT_VERSION):
        raise ValueError(f"{path}: not a voiceface stream ONNX of version {FORMAT_VERSION}; export one with "
                         "inference.py --export-onnx (the default --onnx-input audio)")
    return session, meta


def animate(session, meta: dict, samples: np.ndarray, fps: float) -> tuple[list[str], np.ndarray]:
    """(column names, rows (frames, 61)): time, 52 blendshapes, 7 pose values, voice."""
    hop, lookahead = int(meta["hop_samples"]), int(meta["lookahead_frames"])
    state = np.zeros((1, int(meta["state_size"])), np.float32)        # a stream starts from zeros
    outputs = []
    for start in range(0, len(samples) - hop + 1, hop):               # a partial last hop waits for more sound
        face, pose, voice, state = session.run(None, {"audio": samples[None, start:start + hop], "state": state})
        outputs.append(np.concatenate([face[0], pose[0], voice[0]]))
    if not outputs:
        raise ValueError("shorter than one 10 ms hop of sound")
    outputs = np.array(outputs)
    model_rate = int(meta["frame_rate"])
    n_frames = math.ceil(len(samples) / int(meta["sample_rate"]) * fps - 1e-9)
    k = np.arange(n_frames)
    chosen = np.clip(np.floor(k * model_rate / fps + 1e-9).astype(int) - 1 + lookahead, 0, len(outputs) - 1)
    names = ["time_s", *json.loads(meta["blendshape_names"]), *json.loads(meta["pose_names"]), "voice"]
    return names, np.column_stack([k / fps, outputs[chosen]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default=MODEL, help="the .onnx that inference.py --export-onnx wrote")
    parser.add_argument("wav", nargs="?", default=WAV, help="the sound: a WAV at 16 kHz")
    parser.add_argument("--fps", type=float, default=FPS, help="animation frames per second")
    parser.add_argument("--output", default=OUTPUT, help="the CSV to write; default: beside the WAV, <name>.onnx.csv")
    args = parser.parse_args()
    if not args.model or not args.wav:
        parser.error("give the .onnx and the WAV: run_onnx.py face.onnx speech.wav")
    if not args.fps > 0:
        print(f"error: --fps {args.fps:g}: give a positive rate, e.g. 30", file=sys.stderr)
        return 2
    try:
        session, meta = open_model(args.model)
        samples = read_wav(args.wav)
        names, rows = animate(session, meta, samples, args.fps)
    except ValueError as error:
        print(f"error: {error}" if str(error).startswith(args.model) or str(error).startswith(args.wav)
              else f"error: {args.wav}: {error}", file=sys.stderr)
        return 1
    target = args.output or args.wav.rsplit(".", 1)[0] + ".onnx.csv"
    partial = f"{target}.partial"                      # written whole, then renamed: never a half CSV
    try:
        with open(partial, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(names)
            writer.writerows([[f"{row[0]:.6f}", *(f"{value:.6g}" for value in row[1:])] for row in rows])
        os.replace(partial, target)
    except OSError as error:
        print(f"error: {target}: cannot write it ({error.strerror}); give another --output", file=sys.stderr)
        return 1
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    print(f"wrote {target}: {len(rows)} frames at {args.fps:g} fps")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("stopped (Ctrl-C); nothing is left half-written", file=sys.stderr)
        sys.exit(130)
