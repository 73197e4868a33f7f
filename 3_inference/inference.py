"""Stage 3: animate a face from speech — audio or video in, blendshapes and head pose out.

    python 3_inference/inference.py speech.wav --checkpoint runs/default/last.pt --output out.json --csv
    python 3_inference/inference.py clips/ --output animations/                  # a folder: one set per file
    python 3_inference/inference.py speech.wav --stream                          # at real-time pace, frame by frame
    python 3_inference/inference.py --mic --seconds 10                           # from the default microphone
    python 3_inference/inference.py --mic --livelink 192.168.1.20                # drive Unreal live (Live Link Face)
    python 3_inference/inference.py speech.wav --preview                         # an MP4 of the face with the sound
    python 3_inference/inference.py speech.wav --strength mouth=2,pose=0.5       # a livelier mouth, a calmer head
    python 3_inference/inference.py speech.wav --rest me_talking.mp4             # resting as my face rests
    python 3_inference/inference.py speech.wav --smoothing mouth=40,pose=100     # a steadier mouth (the head's: default)
    python 3_inference/inference.py --checkpoint best.pt --export-onnx face.onnx      # for an engine: sound in

Writes, per input: <name>.json in stage 1.1's blendshapes_and_pose.json format (same reader, same
renderers; head pose relative to the neutral position), <name>.csv as a Live Link Face take with
--csv, <name>.png of the key tracks under the waveform, and with --preview <name>.preview.mp4: a
drawn face animated by the same frames, beside the source video (for a video input) and the
extracted animation (--reference, or a processed clip folder as input), with the input's sound. Features come from the same front-end
and normalisation as training (voiceface.audio, voiceface.dataset), read from the checkpoint.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.blinks import DEFAULT_BLINKS_PER_MINUTE
from voiceface.cli import configure, run_main
from voiceface.progress import say
from voiceface.strength import DEFAULT_SMOOTHING, with_blinks, with_smoothing

# --- settings (each can be given on the command line: CHECKPOINT as --checkpoint) -------------
INPUTS = []                     # audio or video files, or folders of them
CHECKPOINT = REPO_ROOT / "runs/default/last.pt"   # a last.pt or best.pt from train.py
OUTPUT = ""                     # a .json path for one input, or a folder; default: beside each input (--stream and
#                                 --mic write only with it: microphone.json in a folder)
FPS = 30.0                      # output frames per second
FACE_DELAY_MS = 0.0             # move the face this much later against the sound, in 10 ms steps (negative: earlier,
#                                 which waits as long again for the audio when streaming). For recordings whose
#                                 mouth the model puts early: a best lag of -L ms in evaluate.py's report is put
#                                 right by L (ARCHITECTURE.md, "Recordings the benchmarks never saw")
STRENGTH = ""                   # how far the face moves from the model's rest (its face in silence), as gains: a
#                                 number for every blendshape, mouth=G, upper=G, pose=G (the head) or NAME=G for one
#                                 blendshape, comma-separated, 0-4 (1: as the model made it; the more particular item
#                                 wins). On voices it never heard the model's jaw moves at 0.41-0.47 of the video's:
#                                 mouth=2.3 gives the video's range, at a larger error per frame (README, "Strength")
REST = ""                       # where the face rests: a video of the speaker with pauses in the speech (their face
#                                 in the pauses), a photo of them at rest, a processed clip folder (or its stage 1.1
#                                 blendshapes_and_pose.json), or NAME=V values
#                                 (jawOpen=0.05); each score moves from the model's rest onto it. The model rests where
#                                 its training clips rest; on new speakers the rest from another of their videos cuts
#                                 jawOpen's error by a third (README, "The speaker's own rest")
SMOOTHING = DEFAULT_SMOOTHING   # smooth the face over time, as time constants in ms: a number for every blendshape,
#                                 mouth=MS, upper=MS, pose=MS or NAME=MS, 0-500 (0: none). A still face is low-passed
#                                 at that time constant and a moving one less (a One Euro filter), so a syllable still
#                                 comes nearly on time; it calms the strictly causal model's flicker at a cost in r
#                                 (README, "Smoothing"). The default (strength.DEFAULT_SMOOTHING) calms the head only,
#                                 whose jitter is 2-5 times the video's; a value given replaces it (0: none at all)
BLINKS = DEFAULT_BLINKS_PER_MINUTE  # eye blinks a minute, drawn (blinks are not in the sound: the model's eyes never
#                                 close), 2-60, 0 for none; the default is the real clips' median (README, "Blinks")
FACE_MODEL = REPO_ROOT / "checkpoints/face_landmarker.task"   # MediaPipe's model, for --rest from a video or photo
CSV = False                     # also write a Live Link Face CSV
PLOT = True                     # also write a PNG of the key tracks
PREVIEW = False                 # also write <name>.preview.mp4: the animated face with the input's sound
REFERENCE = ""                  # with --preview: the clip's blendshapes_and_pose.json, drawn beside the prediction
STREAM = False                  # feed one file through the streaming engine at real-time pace
MIC = False                     # animate from the default microphone
SECONDS = 0.0                   # with --mic: stop after this long (0: at Ctrl-C)
CHUNK_MS = 10.0                 # with --stream / --mic: audio delivered per chunk
LIVELINK = ""                   # with --stream / --mic: HOST[:PORT] of Unreal's Live Link Face source (port 11111)
LIVELINK_SUBJECT = "voiceface"  # the subject name Unreal lists for these frames
EXPORT_ONNX = ""                # write the checkpoint as ONNX here (--onnx-input says which form) and check it
ONNX_INPUT = "audio"            # with --export-onnx: audio: 10 ms of 16 kHz sound and a state in, the face out, the
#                                 front-end inside (runs without Python: 3_inference/run_onnx.py shows how); mel: the
#                                 model alone, on a whole sequence of the model's inputs, which the caller makes (the
#                                 default --smoothing and --blinks are left to it, any other setting is refused)
ONNX_CHECK = []                 # with --export-onnx: also check the audio form on these recordings (files or folders)
FORCE = False                   # overwrite existing outputs (and export again an ONNX of this checkpoint)
# --- end of settings ---------------------------------------------------------------------------


def outputs_for(path: Path, several: bool) -> Path:
    """Where the JSON for `path` goes (CSV and PNG sit beside it with their own suffixes)."""
    if OUTPUT and not several and str(OUTPUT).endswith(".json"):
        return Path(OUTPUT)
    if OUTPUT:
        return Path(OUTPUT) / f"{path.stem}.json"
    return path.with_suffix(".animation.json")


def stream_output(path: Path) -> Path | None:
    """Where a stream's output goes (--output resolved as for a file; None without it), refusing an
    existing one unless --force: a stream cannot be skipped as a file run skips its input."""
    from voiceface.errors import InputError
    if not OUTPUT:
        return None
    target = outputs_for(path, several=False)
    if target.exists() and not FORCE:
        raise InputError(f"{target} exists; give --force to replace it, or another --output")
    return target


def write_outputs(target: Path, frames, header: dict, audio=None, source: Path | None = None,
                  reference: Path | None = None, audio_rate: float = 16000) -> list[Path]:
    from voiceface.livelink import write_live_link_csv
    from voiceface.formats import write_blendshapes_json
    from voiceface.plots import plot_animation
    write_blendshapes_json(target, header, frames.times * 1000, frames.blendshapes, frames.pose, frames.indices)
    written = [target]
    if PREVIEW and source is not None:
        written.append(write_preview_for(target, frames, source, reference))
    if CSV:
        write_live_link_csv(target.with_suffix(".csv"), frames, FPS)
        written.append(target.with_suffix(".csv"))
    if PLOT:
        plot_animation(target.with_suffix(".png"), frames, audio, title=header["source"]["path"], audio_rate=audio_rate)
        written.append(target.with_suffix(".png"))
    return written


def write_preview_for(target: Path, frames, source: Path, reference: Path | None) -> Path:
    """<name>.preview.mp4 beside the JSON: the source video (when the input has one), the extracted
    animation (when a reference JSON is known), the prediction, and the input's sound."""
    from voiceface.cli import VIDEO_EXTENSIONS
    from voiceface.formats import read_blendshapes_json
    from voiceface.preview import write_preview
    is_video = source.suffix.lower() in VIDEO_EXTENSIONS and has_video_stream(source)
    track = read_blendshapes_json(reference) if reference else None
    return write_preview(preview_path(target), frames, source, FPS, video_path=source if is_video else None,
                         reference=track)


def preview_path(target: Path) -> Path:
    return target.with_name(target.name.removesuffix(".json") + ".preview.mp4")


def has_video_stream(path: Path) -> bool:
    import av
    with av.open(str(path)) as container:
        return bool(container.streams.video)


def resolve_input(path: Path) -> tuple[Path, Path | None]:
    """An input and the extracted track to show beside it: a processed clip folder (stage 1.1's JSON
    inside) stands for its source video, whose path the JSON's header names; --reference names one."""
    from voiceface.formats import BLENDSHAPES_FILENAME, read_blendshapes_json
    if path.is_dir() and (path / BLENDSHAPES_FILENAME).exists():
        source = Path(read_blendshapes_json(path / BLENDSHAPES_FILENAME).header["source"]["path"])
        return source, path / BLENDSHAPES_FILENAME
    return path, Path(REFERENCE) if REFERENCE else None


def header_for(source_path: Path, checkpoint_path: Path, checkpoint: dict, frames, duration_s: float) -> dict:
    from voiceface.formats import library_versions, now_iso, sha256_file
    return {
        "created_by": "3_inference/inference.py", "created_at": now_iso(),
        "source": {"path": str(source_path), "sha256": sha256_file(source_path) if source_path.is_file() else None},
        "video": {"fps": FPS, "duration_s": round(duration_s, 4), "frame_count": len(frames.times),
                  "first_frame_time_ms": 0.0, "variable_frame_rate": False},
        "timestamps": "k / fps in ms: the true time of each frame, whatever the look-ahead",
        "face_delay_ms": FACE_DELAY_MS,
        "strength": strength().describe(),
        "pose_units": {"x, y, z": "cm from the neutral (median) position", "qw, qx, qy, qz":
                       "unit quaternion relative to the neutral rotation"},
        "checkpoint": {"path": str(checkpoint_path), "sha256": sha256_file(checkpoint_path),
                       "preset": checkpoint.get("preset"), "epoch": checkpoint.get("epoch"),
                       "input_mode": checkpoint.get("input_mode"),
                       "formants": checkpoint.get("formants") is not None,
                       "lookahead_ms": 10 * checkpoint.get("lookahead_frames", 0),
                       "git_commit": checkpoint.get("git_commit")},
        "libraries": library_versions()}


_ADJUSTMENTS = {}


def strength():
    """--strength, --rest, --smoothing and --blinks as one strength.Strength, read once per setting (a rest from
    a video runs MediaPipe over it); main() has refused settings that do not give one."""
    from voiceface.strength import parse_strength, rest_from_spec, with_rest, with_smoothing
    key = (STRENGTH, REST, str(FACE_MODEL), SMOOTHING, BLINKS)
    if key not in _ADJUSTMENTS:
        _ADJUSTMENTS[key] = with_blinks(with_smoothing(
            with_rest(parse_strength(STRENGTH), *rest_from_spec(REST, FACE_MODEL)), SMOOTHING), BLINKS)
    return _ADJUSTMENTS[key]


def delay_frames() -> int:
    """--face-delay-ms in the model's 10 ms frames (main() has refused one that is not a multiple)."""
    return int(round(FACE_DELAY_MS / 10))


def animate_one(path: Path, model, checkpoint: dict, several: bool, reference: Path | None = None) -> str:
    from voiceface.audio import not_numbers_note, waveform_overview
    from voiceface.engine import animate_file
    from voiceface.formats import check_name_fits
    target = outputs_for(path, several)
    check_name_fits(preview_path(target) if PREVIEW else target)    # the longest name it writes: all or none
    if target.exists() and not FORCE:
        return f"skipped {path.name}: {target} exists"
    frames, source = animate_file(path, model, checkpoint, FPS, delay_frames=delay_frames(), strength=strength())
    audio, rate = waveform_overview(path) if PLOT else (None, 16000)
    header = header_for(path, Path(CHECKPOINT), checkpoint, frames, source.samples / 16000)
    written = write_outputs(target, frames, header, audio, source=path, reference=reference, audio_rate=rate)
    note = f" ({not_numbers_note(source.not_numbers)})" if source.not_numbers else ""
    return f"{path.name}: {len(frames.times)} frames at {FPS:g} fps{note} -> {', '.join(map(str, written))}"


class LiveLinkOut:
    """Each frame to Unreal as it comes (--livelink), and how late it left: the time from the moment
    the frame's audio arrived (the stream's start + the frame's time) to its packet going out."""

    def __init__(self, start_wall_clock: float):
        from voiceface.livelink import Sender
        self.sender = Sender(LIVELINK, LIVELINK_SUBJECT, FPS) if LIVELINK else None
        self.start, self.latencies = start_wall_clock, []

    def send(self, frames) -> None:
        import time
        from voiceface.livelink import live_link_values, time_of_day
        if self.sender is None or not len(frames.times):
            return
        for t, values in zip(frames.times, live_link_values(frames.blendshapes, frames.pose)):
            self.sender.send(values, time_of_day(self.start + t))
            self.latencies.append(time.time() - (self.start + t))

    def summary(self) -> str:
        import numpy as np
        if self.sender is None:
            return ""
        self.sender.close()
        ms = 1000 * np.array(self.latencies or [0.0])
        refused = f"; {self.sender.refused} refused (nothing listening yet)" if self.sender.refused else ""
        return (f"Live Link: {self.sender.sent} packets to {self.sender.address[0]}:{self.sender.address[1]} as subject "
                f"{LIVELINK_SUBJECT!r}; audio in -> packet out p50 {np.percentile(ms, 50):.1f} ms, "
                f"p99 {np.percentile(ms, 99):.1f} ms{refused}")


def stream_file(path: Path, model, checkpoint: dict) -> int:
    """Deliver a file's audio in CHUNK_MS chunks at real-time pace, print frames as they come (and
    send them to Live Link with --livelink)."""
    import time

    import numpy as np
    from voiceface.audio import load_audio
    from voiceface.engine import Animator, Frames
    target = stream_output(path)
    source, audio = load_audio(path)
    animator = Animator(model, checkpoint, FPS, delay_frames=delay_frames(), strength=strength())
    animator.warm_up()
    chunk = max(1, int(round(CHUNK_MS * 16)))
    ahead = (f"{10 * animator.lookahead} ms look-ahead" if not FACE_DELAY_MS else
             f"{1000 * animator.latency_s - 25:.0f} ms ahead: {10 * animator.lookahead} ms look-ahead, face delay "
             f"{FACE_DELAY_MS:g} ms")
    print(f"streaming {path.name}: chunks of {CHUNK_MS:g} ms; algorithmic latency {1000 * animator.latency_s:.0f} ms "
          f"(25 ms window + {ahead}) + the chunk")
    compute, parts = [], []
    out = LiveLinkOut(time.time())
    start = time.perf_counter()
    for index in range(0, len(audio), chunk):
        due = start + (index + chunk) / 16000            # when this chunk's last sample would have arrived live
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        begin = time.perf_counter()
        frames = animator.push(audio[index:index + chunk])
        out.send(frames)
        compute.append(time.perf_counter() - begin)
        parts.append(frames)
        for t, shapes in zip(frames.times, frames.blendshapes):
            say(f"  {t:7.3f} s  jawOpen {shapes[25]:.3f}  mouthClose {shapes[27]:.3f}")
    final = animator.finish()
    out.send(final)
    frames = Frames.concatenate(parts + [final])
    ms = 1000 * np.array(compute)
    print(f"per-chunk compute: p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms over "
          f"{len(ms)} chunks; {len(frames.times)} frames")
    if out.summary():
        print(out.summary())
    if target is not None:
        write_outputs(target, frames, header_for(path, Path(CHECKPOINT), checkpoint, frames, len(audio) / 16000),
                      audio, source=path, reference=Path(REFERENCE) if REFERENCE else None)
        print(f"wrote {target}")
    return 0


def stream_microphone(model, checkpoint: dict) -> int:
    import queue
    import time

    from voiceface.engine import Animator, Frames
    try:
        import sounddevice
        device = sounddevice.query_devices(kind="input")
    except Exception as error:                 # no PortAudio library, or no input device
        print(f"error: no microphone available ({type(error).__name__}: {str(error).splitlines()[0]}); "
              "connect one, or animate a recording with --stream FILE", file=sys.stderr)
        return 1
    from voiceface.errors import InputError
    try:
        target = stream_output(Path("microphone"))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    import soxr
    from voiceface.audio import finite
    rate = int(device["default_samplerate"])
    resampler = soxr.ResampleStream(rate, 16000, 1, dtype="float32")
    chunks: queue.Queue = queue.Queue()
    animator = Animator(model, checkpoint, FPS, delay_frames=delay_frames(), strength=strength())
    animator.warm_up()
    parts = []
    print(f"listening on {device['name']} at {rate} Hz; Ctrl-C stops")
    with sounddevice.InputStream(samplerate=rate, channels=1, dtype="float32",
                                 blocksize=int(rate * CHUNK_MS / 1000), callback=lambda d, *_: chunks.put(d.copy())):
        start = time.perf_counter()
        out = LiveLinkOut(time.time())
        try:
            while not SECONDS or time.perf_counter() - start < SECONDS:
                frames = animator.push(resampler.resample_chunk(finite(chunks.get()[:, 0])[0]))
                out.send(frames)
                parts.append(frames)
                for t, shapes in zip(frames.times, frames.blendshapes):
                    say(f"  {t:7.3f} s  jawOpen {shapes[25]:.3f}")
        except KeyboardInterrupt:
            pass
    parts.append(animator.finish())
    frames = Frames.concatenate(parts)
    if out.summary():
        print(out.summary())
    if target is not None:
        write_outputs(target, frames, header_for(Path("microphone"), Path(CHECKPOINT), checkpoint, frames,
                                                 animator.samples / 16000), None)
        print(f"wrote {target}")
    return 0


def export(model, checkpoint) -> int:
    if ONNX_INPUT == "audio":
        return export_stream(model, checkpoint)
    import numpy as np
    import onnxruntime
    import torch
    from voiceface.engine import export_onnx
    target = Path(EXPORT_ONNX)
    export_onnx(model, target)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 1500, model.config.n_inputs)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    got = onnxruntime.InferenceSession(str(target)).run(None, {"mel": x})[0]
    difference = float(np.abs(expected - got).max())
    inputs = "" if checkpoint.get("formants") is None else (" (input `mel`: the 80 mel inputs, then the 16 formant "
                                                            "channels of voiceface/lpc.py FormantInputs)")
    print(f"wrote {target}{inputs}; ONNX Runtime vs PyTorch on 15 s of features: max |difference| {difference:.2e}")
    return 0 if difference <= 1e-4 else 1


def export_stream(model, checkpoint) -> int:
    """The stream ONNX (voiceface/stream_onnx.py), checked against the Python engine on 12 s of
    generated silence, noise and speech, and on the recordings of --onnx-check."""
    from voiceface.errors import InputError
    from voiceface.formats import sha256_file
    from voiceface.stream_onnx import compare_with_engine, export_stream_onnx, exported_checkpoint
    target = Path(EXPORT_ONNX)
    if not FORCE and not ONNX_CHECK and exported_checkpoint(target, strength()) == sha256_file(CHECKPOINT):
        print(f"{target} holds this checkpoint's export already: skipped (--force redoes it)")
        return 0
    state_size = export_stream_onnx(model, checkpoint, Path(CHECKPOINT), target, strength())
    check = compare_with_engine(target, model, checkpoint, strength=strength())
    print(f"wrote {target}: 10 ms of 16 kHz audio (input `audio`, 1 x 160) and the state (`state`, 1 x "
          f"{state_size}, zeros at the start) in; `blendshapes`, `head_pose`, `voice` and `next_state` out; "
          f"look-ahead {10 * checkpoint.get('lookahead_frames', 0)} ms"
          + "".join(f"; {name} {value} inside" for name, value in
                    (("strength", STRENGTH), ("rest", REST), ("smoothing", SMOOTHING),
                     ("blinks", f"{BLINKS:g} a minute" if BLINKS else "")) if value))
    print(f"ONNX Runtime vs the Python engine on 12 s of generated silence, noise and speech: {agreement(check)}; "
          f"a 10 ms step p50 {check['step_ms_p50']:.2f} ms, p99 {check['step_ms_p99']:.2f} ms")
    checks, failed = [check], False
    if ONNX_CHECK:
        from voiceface.audio import load_audio
        from voiceface.cli import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, expand_inputs
        files, errors = expand_inputs(ONNX_CHECK, VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)
        for line in errors:
            print(f"error: {line}", file=sys.stderr)
        failed = bool(errors)
        for path in files:
            try:
                checks.append(compare_with_engine(target, model, checkpoint, load_audio(path)[1], strength()))
            except InputError as error:
                print(f"error: {error}", file=sys.stderr)
                failed = True
                continue
            say(f"  {path.name}: {agreement(checks[-1])}")
        if len(checks) > 1:
            on = checks[1:]
            frames = sum(c["frames"] for c in on)
            print(f"on {len(on)} recordings ({frames} frames): " + agreement(
                {"frames": frames, "voice_agrees": sum(c["voice_agrees"] for c in on),
                 **{k: max(c[k] for c in on) for k in ("blendshapes", "translation_cm", "rotation")}}))
    agrees = all(c["agrees"] for c in checks)
    if not agrees:
        # moved aside, so that a run after it exports again rather than skipping a file that failed as done
        failed_copy = target.with_name(target.stem + ".failed.onnx")
        target.replace(failed_copy)
        print(f"error: {target} does not reproduce the Python engine (above); moved to {failed_copy.name}: report "
              "it with the checkpoint", file=sys.stderr)
    return 0 if agrees and not failed else 1


def agreement(check: dict) -> str:
    return (f"max |difference| {check['blendshapes']:.1e} in the scores, {check['translation_cm']:.1e} cm, "
            f"{check['rotation']:.1e} in the quaternion; voice activity the same in {check['voice_agrees']} of "
            f"{check['frames']} frames")


def main(argv=None) -> int:
    configure(globals(), argv, positional="INPUTS")
    from voiceface.cli import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, check_unique_outputs, expand_inputs, out_of_range, \
        run_batch
    if problem := out_of_range(("--fps", FPS, 0, True, "30 or 60 for an engine"),
                               ("--chunk-ms", CHUNK_MS, 0, True, "10: the front-end's hop"),
                               ("--seconds", SECONDS, 0, False, "0: until Ctrl-C")):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if ONNX_INPUT not in ("audio", "mel"):
        print(f"error: --onnx-input {ONNX_INPUT}: give audio (the front-end inside, for engines) or mel (the model "
              "alone)", file=sys.stderr)
        return 2
    from voiceface.errors import InputError
    try:
        strength()
    except (ValueError, InputError) as error:
        print(f"error: {'--rest ' if isinstance(error, InputError) else ''}{error}", file=sys.stderr)
        return 2
    if REST:
        from voiceface.constants import BLENDSHAPE_NAMES
        print(f"--rest {strength().rest_spec}: jawOpen {strength().towards[BLENDSHAPE_NAMES.index('jawOpen')]:.3f} at "
              "rest" if strength().rest_spec != REST else f"--rest {REST}", flush=True)
    if EXPORT_ONNX and ONNX_INPUT == "mel" and not with_blinks(with_smoothing(   # the defaults are the caller's
            strength(), "" if SMOOTHING == DEFAULT_SMOOTHING else SMOOTHING),
            0 if BLINKS == DEFAULT_BLINKS_PER_MINUTE else BLINKS).identity:
        print("error: --strength, --rest, --smoothing or --blinks with --onnx-input mel: the mel form is the model "
              "alone, before its output is put in real units; export the audio form (the default), which applies "
              "them inside", file=sys.stderr)
        return 2
    if abs(FACE_DELAY_MS / 10 - round(FACE_DELAY_MS / 10)) > 1e-9:
        print(f"error: --face-delay-ms {FACE_DELAY_MS:g}: give a multiple of 10 ms (the model's frame), "
              f"e.g. {10 * round(FACE_DELAY_MS / 10):g}", file=sys.stderr)
        return 2
    from voiceface.engine import load_model
    if REFERENCE:
        from voiceface.formats import read_blendshapes_json
        try:
            read_blendshapes_json(REFERENCE)
        except InputError as error:
            print(f"error: --reference {error}".replace("re-run stage 1.1 with --force", "give the "
                  "blendshapes_and_pose.json stage 1.1 wrote for the clip"), file=sys.stderr)
            return 1
    try:
        model, checkpoint = load_model(CHECKPOINT)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from voiceface.formats import ensure_writable_folder
    try:
        if EXPORT_ONNX:
            ensure_writable_folder(Path(EXPORT_ONNX).parent, "--export-onnx path")
        elif OUTPUT:
            ensure_writable_folder(Path(OUTPUT).parent if str(OUTPUT).endswith(".json") else Path(OUTPUT), "--output")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if EXPORT_ONNX:
        return export(model, checkpoint)
    if LIVELINK:
        from voiceface.livelink import Sender
        try:
            Sender(LIVELINK, LIVELINK_SUBJECT, FPS).close()       # a wrong host or port: say so before starting
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    if MIC:
        return stream_microphone(model, checkpoint)
    references = {}
    inputs = []
    for item in INPUTS:
        source, reference = resolve_input(Path(str(item)))
        inputs.append(source)
        references[source.resolve()] = reference
    files, errors = expand_inputs(inputs, VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)
    if not files and not errors:
        print("error: give an audio or video file (or --mic, or --export-onnx PATH)", file=sys.stderr)
        return 2
    if STREAM:
        if errors or len(files) != 1:
            print("error: --stream takes exactly one existing file", file=sys.stderr)
            return 1
        try:
            return stream_file(files[0], model, checkpoint)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    several = len(files) + len(errors) > 1 or any(p.is_dir() for p in inputs)
    # speech.wav and speech.mp4 (in one folder, or sent to one --output folder) would write one speech.json
    files, duplicates = check_unique_outputs(files, lambda path: outputs_for(path, several).resolve(),
                                             "both would be written to {target}")
    errors += duplicates
    return run_batch(lambda path: animate_one(path, model, checkpoint, several, references.get(path.resolve())),
                     files, errors, 1, "stage 3 inference")


if __name__ == "__main__":
    sys.exit(run_main(main))
