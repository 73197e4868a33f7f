"""Benchmark inference (not a test), on this machine's CPU cores:

1. offline speed: the front-end + the model over a minute of audio, as a multiple of real time;
2. the model's achieved FLOP rate beside a plain matrix multiply of the same width (the
   pointwise layers' shape), measured in the same run, and the ratio;
3. streaming: per-hop compute time p50 / p99 of the engine fed 10 ms chunks, and of the same step
   as one ONNX file (inference.py --export-onnx: front-end, model and state in the graph) in ONNX
   Runtime, with the ratio of the two;
4. a file as a user animates it: inference.py on 20 s of speech (48 kHz AAC) in a fresh process,
   beside a fresh process that only imports PyTorch (the least any command of ours can take).

    python 3_inference/benchmark_inference.py                        # the default preset, untrained
    python 3_inference/benchmark_inference.py --checkpoint runs/default/last.pt

Aims (default model, two cores): offline >= 300x real time; FLOP rate >= 70 % of the matmul;
streaming p99 <= 2 ms; the 20 s file within 2x the time PyTorch's import takes.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface.benchmarks import best_seconds
from voiceface.cli import configure, out_of_range, run_main

# --- settings (each can be given on the command line: PRESET as --preset) --------------------
CHECKPOINT = ""                 # a trained checkpoint; none: an untrained model of PRESET (same speed)
PRESET = "default"              # the model to time when no checkpoint is given
SECONDS = 60.0                  # audio length for the offline figure
HOPS = 3000                     # 10 ms chunks timed for the streaming figure
THREADS = 2                     # torch threads (this machine has two cores)
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv)
    import time

    import numpy as np
    import torch
    from voiceface.audio import compute_features, front_end_config
    from voiceface.constants import BLENDSHAPE_NAMES, POSE_NAMES
    from voiceface.dataset import normalisation_config
    from voiceface.engine import Animator, load_model, models_package
    from voiceface.errors import FormatError, InputError
    from voiceface.synthetic import speech_envelope, voiced_audio
    refusal = out_of_range(("--seconds", SECONDS, 2, False, "the streaming figure replays its audio"),
                           ("--hops", HOPS, 200, False, "the first 100 are warm-up"), ("--threads", THREADS, 1, False))
    models = models_package()
    if not refusal and not CHECKPOINT and PRESET not in models.PRESETS:
        refusal = f"no preset {PRESET!r}; choose one of {', '.join(models.PRESETS)}"
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    torch.set_num_threads(THREADS)
    if CHECKPOINT:
        try:
            model, checkpoint = load_model(CHECKPOINT)
        except (FormatError, InputError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    else:
        model = models.VoiceToFaceTCN(models.PRESETS[PRESET]).eval()
        checkpoint = {"input_mode": "fixed", "lookahead_frames": 0, "front_end": front_end_config(),
                      "normalisation": normalisation_config(), "blendshape_names": BLENDSHAPE_NAMES,
                      "pose_names": POSE_NAMES}
    audio = voiced_audio(speech_envelope(SECONDS, 16000, 0), 16000, 0)

    def offline():
        animator = Animator(model, checkpoint, stream=False)
        for i in range(0, len(audio), 160000):          # 10 s blocks, as animate_file feeds them
            animator.push(audio[i:i + 160000])
        animator.finish()

    offline_s = best_seconds(offline)
    formants = checkpoint.get("formants") is not None          # a model that reads them: they are computed too
    front_end_s = best_seconds(lambda: compute_features(audio, formants))
    frames = int(SECONDS * 100)
    x = torch.randn(1, frames, model.config.n_inputs)
    with torch.inference_mode():
        model_s = best_seconds(lambda: model(x))
    achieved = model.flops_per_frame() * frames / model_s
    width = model.config.channels
    a, b = torch.randn(frames, width), torch.randn(width, model.config.expansion * width)
    matmul_s = best_seconds(lambda: a @ b, repeats=10)
    peak = 2 * frames * width * model.config.expansion * width / matmul_s

    animator = Animator(model, checkpoint)
    hops = []
    for i in range(HOPS):
        chunk = audio[(i * 160) % (len(audio) - 160):][:160]
        start = time.perf_counter()
        animator.push(chunk)
        hops.append(time.perf_counter() - start)
    hops_ms = 1000 * np.array(hops[100:])                # after warm-up
    import tempfile
    from voiceface.stream_onnx import export_stream_onnx, open_stream_onnx, run_stream_onnx
    with tempfile.TemporaryDirectory() as folder:
        export_stream_onnx(model, checkpoint, Path(CHECKPOINT) if CHECKPOINT else None, Path(folder) / "step.onnx")
        session, meta = open_stream_onnx(Path(folder) / "step.onnx")
        onnx_ms = 1000 * run_stream_onnx(session, meta, audio[:HOPS * 160])[3][100:]
    file_s, torch_s = fresh_process_seconds(model, checkpoint)
    print(f"model {model.config.channels} channels, {model.parameter_count():,} parameters, "
          f"{model.flops_per_frame() / 1e6:.2f} MFLOP/frame, {THREADS} threads")
    print(f"  offline (front-end + model + frame selection): {SECONDS / offline_s:7.0f}x real time   (aim >= 300x)")
    print(f"    of which the front-end alone:                {SECONDS / front_end_s:7.0f}x real time"
          + ("   (with the formants)" if formants else ""))
    print(f"  model FLOP rate:     {achieved / 1e9:6.1f} GFLOP/s")
    print(f"  plain matmul ({frames}x{width} @ {width}x{model.config.expansion * width}): {peak / 1e9:6.1f} GFLOP/s")
    print(f"  ratio:               {achieved / peak:6.2f}   (aim >= 0.70)")
    print(f"  streaming, 10 ms chunks: p50 {np.percentile(hops_ms, 50):.2f} ms, p99 {np.percentile(hops_ms, 99):.2f} ms "
          f"per hop   (aim p99 <= 2 ms)")
    print(f"  the same step as one ONNX file:  p50 {np.percentile(onnx_ms, 50):.2f} ms, p99 "
          f"{np.percentile(onnx_ms, 99):.2f} ms per hop   (p50 {np.median(onnx_ms) / np.median(hops_ms):.2f}x "
          "the engine's)")
    print(f"  a 20 s file through inference.py, a fresh process: {file_s:.2f} s; a process importing PyTorch "
          f"alone: {torch_s:.2f} s; ratio {file_s / torch_s:.2f}   (aim <= 2)")
    return 0


def fresh_process_seconds(model, checkpoint: dict, repeats: int = 3) -> tuple[float, float]:
    """Best of `repeats` wall-clock seconds of inference.py animating 20 s of generated speech
    (a 48 kHz AAC file, so its last 10 s block holds one frame, as the sample's clips do) in a
    fresh process, and of a fresh process that only imports torch."""
    import subprocess
    import tempfile
    import time

    from voiceface.engine import models_package
    from voiceface.synthetic import speech_envelope, voiced_audio, write_audio_file
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        sound = write_audio_file(folder / "speech.m4a", voiced_audio(speech_envelope(20.0, 48000, 0), 48000, 0), 48000)
        path = Path(CHECKPOINT) if CHECKPOINT else folder / "untrained.pt"
        if not CHECKPOINT:
            models_package().checkpoint.save_checkpoint(path, model, **checkpoint)

        def seconds(command: list) -> float:
            times = []
            for i in range(repeats):
                start = time.perf_counter()
                result = subprocess.run([sys.executable, *map(str, command(i))], capture_output=True, text=True)
                times.append(time.perf_counter() - start)
                if result.returncode != 0:
                    raise SystemExit(f"error: {' '.join(map(str, command(i)))} failed: {result.stderr[-500:]}")
            return min(times)
        infer = Path(__file__).resolve().parent / "inference.py"
        file_s = seconds(lambda i: [infer, sound, "--checkpoint", path, "--output", folder / f"out{i}", "--no-plot"])
        torch_s = seconds(lambda i: ["-c", "import torch"])
    return file_s, torch_s


if __name__ == "__main__":
    sys.exit(run_main(main))
