"""Stage 2: train the causal TCN on the dataset of stage 1.3.

    python 2_architecture_training/train.py --dataset-dir data/dataset --run-dir runs/my_run --preset default
    python 2_architecture_training/train.py --run-dir runs/my_run --resume          # continue after a stop
    python 2_architecture_training/train.py --run-dir runs/my_run --resume --epochs 60   # train a finished run longer
    torchrun --nproc_per_node 4 2_architecture_training/train.py --dataset-dir ... # several GPUs/processes

Reads the dataset's memory-mapped arrays and windows; minimises AudioBlendshapeLoss (models/loss.py)
with AdamW (models/optimizer.py) and a one-cycle learning rate (models/schedule.py: a finished run
resumed with more epochs gets a second, gentler cycle over the extra ones); after each epoch runs
the model over every validation clip *from its start* (as inference will) and writes
metrics.jsonl, curves.png, last.pt and, when the validation loss improves, best.pt (atomically,
with everything inference needs). Runs on CUDA (bf16 autocast), Apple MPS or the CPU, chosen
automatically; under torchrun it trains with DistributedDataParallel (NCCL on GPUs, gloo on CPUs).

LOOKAHEAD_MS > 0 trains the (still causal) model to output the face of LOOKAHEAD_MS ago: its output
is then that much late, and in exchange it has heard the sound that follows each mouth movement.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`
sys.path.insert(0, str(Path(__file__).resolve().parent))      # this folder, for `import models`

from voiceface import REPO_ROOT
from voiceface.cli import bad_lookahead, configure, out_of_range, over_limit, run_main, say_stopped

# --- settings (each can be given on the command line: RUN_DIR as --run-dir) ------------------
DATASET_DIR = REPO_ROOT / "data/dataset"   # the output of stage 1.3
RUN_DIR = REPO_ROOT / "runs/default"       # checkpoints, metrics.jsonl, curves.png
PRESET = "small"                # model size: default, small or tiny (models/tcn_10s_model.py); small is what the benchmarks
#                                 measured; gru: a recurrent network in the blocks' place, to measure the design note's choice
EPOCHS = 10                     # passes over the training windows (more overfits 5 minutes of video: ARCHITECTURE.md)
MIN_STEPS = 0                   # at least this many optimiser steps: a small dataset gets more epochs; 0: EPOCHS alone
BATCH_SIZE = 16                 # windows per optimiser step (over all processes together)
LEARNING_RATE = 3e-3            # the one-cycle schedule's peak
WEIGHT_DECAY = 0.01             # AdamW's decoupled weight decay
GRAD_CLIP = 1.0                 # largest gradient norm
DROPOUT = -1.0                  # dropout in the blocks; negative: the preset's
SKIP_TAPS = -1                  # taps of the linear skip from the input frames to the outputs; negative: the preset's
SKIP_WEIGHT_DECAY = -1.0        # AdamW weight decay of the linear skip (a ridge-like shrinkage); negative: WEIGHT_DECAY
SKIP_LR_SCALE = 1.0             # the linear skip's learning rate as a multiple of the rest's
SKIP_INIT = "zero"              # the linear skip's start: zero, or ridge (the ridge baseline fitted on the training
#                                 clips over the skip's taps: on scores, or for the sigmoid on their logits)
INIT_FROM = ""                  # start from this checkpoint's weights (a model trained on other speakers: fine-tuning);
#                                 the model settings must be its own; the optimiser and schedule start afresh
BLENDSHAPE_OUTPUT = "sigmoid"   # sigmoid, or clamp (the logit itself in training, clamped to [0, 1] outside it)
SEED = 0                        # every random choice (initialisation, order, augmentation, dropout)
INPUT_MODE = "level"            # the mel as the model sees it: level (running mean removed) or fixed (dB scale)
GAIN_AUGMENT_DB = 6.0           # fixed input: each window's level moved by a random gain within +-this many dB
FREQ_WARP = 0.15                # each window's spectrum stretched by a random factor in 1 +- this (other voices)
FREQ_WARP_AXIS = "mel"          # what the factor stretches: mel (the mel-bin index) or hz (the frequency itself:
#                                 every formant moves by the factor); ARCHITECTURE.md, "Frequency warp"
INPUT_STANDARDISATION = False   # standardise each mel bin by its mean and spread over the training frames
FORMANTS = False                # the model also reads each frame's 16 formant channels (line spectral frequencies
#                                 less their running voiced mean: voiceface/lpc.py) after the mel; ARCHITECTURE.md
SILENCE_AUGMENT = 0.25          # share of windows given a stretch of digital silence or room noise, the mouth at rest there
SILENCE_MAX_SECONDS = 1.5       # with --silence-augment: its stretches last 0.3 s to this long (a window's length or
#                                 more: up to all of it)
OPENING_SILENCE = 0.5           # level input: share of them that open the window, measured against the level a stream
#                                 has before it hears any speech (a microphone opened in silence), not the clip's
SPEC_MASKS = 0                  # SpecAugment: this many bands of up to 8 mel bins and spans of up to 0.2 s masked per window
SPEAKER_BALANCE = 0.0           # windows drawn with each speaker's share of the training windows raised to 1 - this (with
#                                 replacement): 0 as they come, 1 every speaker alike. 0.5 lifted new speakers' median
#                                 0.289-0.316 -> 0.317-0.354 (five seeds), but on unseen recordings the jaw moved a third
#                                 less and GRID's read worse under every seed: off (ARCHITECTURE.md, "Speaker balance")
SPEED_AUGMENT = 0.1             # each window played faster or slower by up to this fraction (sound and face together)
NOISE_AUGMENT = 0.0             # share of windows with room noise mixed in at 5-30 dB below the speech (either input mode)
REVERB_AUGMENT = 0.0            # share of windows heard in a room: a late reverberant tail added to the mel (either input mode)
REVERB_RT60_S = (0.2, 0.8)      # with --reverb-augment: the room's RT60 drawn from this range (seconds)
REVERB_DRR_DB = (-3.0, 12.0)    # with --reverb-augment: the direct sound this many dB over the echo (a metre away to
#                                 several)
WINDOW_SECONDS = 2.0            # re-cut training windows to this length; 0: the dataset's
STRIDE_SECONDS = 0.5            # with --window-seconds: the step between windows
WARMUP_SECONDS = 0.5            # with --window-seconds: leading part of mid-clip windows out of the loss
LOOKAHEAD_MS = 0.0              # output delay that lets the model hear what follows; 0: strictly causal
BASE_WEIGHT = 1.0               # loss: Smooth L1 on the blendshapes
VELOCITY_WEIGHT = 0.0           # loss: their first differences (0: the mouth then anticipates its sound: ARCHITECTURE.md)
ACCELERATION_WEIGHT = 0.0       # loss: their second differences
SILENCE_WEIGHT = 0.25           # loss: mouth-closure shapes where voice activity is 0
POSE_WEIGHT = 0.1               # loss: squared error of the normalised pose
POSE_BOUND_WEIGHT = 1.0         # loss: predicted translation beyond +-10 cm
MOUTH_WEIGHT = 4.0              # loss: weight of the jaw* and mouth* shapes against the other blendshapes
CORRELATION_WEIGHT = 0.01       # loss: 1 - Pearson r of each mouth shape over each window (0: off; ARCHITECTURE.md)
SMOOTH_L1_BETA = 0.1            # loss: blendshape errors below this are squared, above it absolute
SHAPE_SPREAD = False            # loss: each blendshape's error in units of its spread over the training frames
EMA_DECAY = 0.99                # keep an exponential moving average of the weights (validated, saved); 0: off
EXTENSION_PEAK = 0.3            # resuming a finished run with more epochs: their cycle peaks at this x the rate
DEVICE = "auto"                 # auto (CUDA, then MPS, then CPU), or a torch device name
STOP_AFTER_EPOCHS = 0           # stop (as if interrupted) after this many epochs of this run; 0: never
RESUME = False                  # continue from RUN_DIR/last.pt
FORCE = False                   # train a new run over the one RUN_DIR holds (its checkpoints and metrics replaced)
# --- end of settings ---------------------------------------------------------------------------

MIN_TRAINING_SECONDS = 1.0       # less usable training audio than this (or than one window) is refused
CURVES_EVERY_SECONDS = 30.0      # curves.png redrawn at most this often, and when the run stops: a drawing
#                                  takes 0.5-1.3 s, a tenth of a benchmark fold's training when drawn every epoch
# settings that define the model or its data: a resumed run must keep them
FIXED_ON_RESUME = ("preset", "dropout", "skip_taps", "blendshape_output", "input_mode", "lookahead_ms", "batch_size",
                   "window_seconds", "stride_seconds", "warmup_seconds", "seed", "input_standardisation", "formants")
SETTINGS_ADDED_SINCE = {"blendshape_output": "sigmoid", "formants": False}   # ... and what runs saved before they existed used


def setting_problem() -> str | None:
    """What is wrong with the settings themselves, if anything, found before torch and the dataset are
    loaded: a mistyped setting is refused at once rather than after seconds of loading."""
    from voiceface.dataset import INPUT_MODES, WARP_AXES
    if INPUT_MODE not in INPUT_MODES:
        return f"no input mode {INPUT_MODE!r}; choose one of {', '.join(INPUT_MODES)}"
    if FREQ_WARP_AXIS not in WARP_AXES:
        return f"no frequency warp axis {FREQ_WARP_AXIS!r}; choose one of {', '.join(WARP_AXES)}"
    if SKIP_INIT not in ("zero", "ridge"):
        return f"no skip start {SKIP_INIT!r}; choose zero or ridge"
    if problem := bad_lookahead([LOOKAHEAD_MS]):
        return problem
    # --batch-size 0 ended in a ZeroDivisionError, --epochs 0 saved an untrained model
    shares = ("--silence-augment", "--opening-silence", "--noise-augment", "--reverb-augment")
    weights = {"--weight-decay": WEIGHT_DECAY, "--base-weight": BASE_WEIGHT, "--velocity-weight": VELOCITY_WEIGHT,
               "--acceleration-weight": ACCELERATION_WEIGHT, "--silence-weight": SILENCE_WEIGHT,
               "--pose-weight": POSE_WEIGHT, "--pose-bound-weight": POSE_BOUND_WEIGHT, "--mouth-weight": MOUTH_WEIGHT,
               "--correlation-weight": CORRELATION_WEIGHT, "--smooth-l1-beta": SMOOTH_L1_BETA,
               "--gain-augment-db": GAIN_AUGMENT_DB, "--spec-masks": SPEC_MASKS, "--min-steps": MIN_STEPS,
               "--freq-warp": FREQ_WARP, "--speed-augment": SPEED_AUGMENT, "--speaker-balance": SPEAKER_BALANCE,
               "--ema-decay": EMA_DECAY,
               **dict(zip(shares, (SILENCE_AUGMENT, OPENING_SILENCE, NOISE_AUGMENT, REVERB_AUGMENT)))}
    return (out_of_range(("--epochs", EPOCHS, 1, False), ("--batch-size", BATCH_SIZE, 1, False),
                        ("--learning-rate", LEARNING_RATE, 0, True), ("--grad-clip", GRAD_CLIP, 0, True),
                        ("--skip-lr-scale", SKIP_LR_SCALE, 0, False),
                        ("--silence-max-seconds", SILENCE_MAX_SECONDS, 0.3, False, "the shortest stretch"),
                        ("--window-seconds", WINDOW_SECONDS, 0, False, "0: the dataset's windows"),
                        ("--stride-seconds", STRIDE_SECONDS, 0, False),
                        ("--warmup-seconds", WARMUP_SECONDS, 0, False),
                        *((option, value, 0, False) for option, value in weights.items()))
           or over_limit(("--dropout", DROPOUT, 1, True, "a share; negative: the preset's"),
                         ("--freq-warp", FREQ_WARP, 1, True, "a spectrum stretched by 1 +- this"),
                         ("--speed-augment", SPEED_AUGMENT, 1, True, "a speed of 1 +- this"),
                         ("--speaker-balance", SPEAKER_BALANCE, 1, False, "1: every speaker alike"),
                         ("--ema-decay", EMA_DECAY, 1, True),
                         *((option, weights[option], 1, False, "a share of the windows") for option in shares)))


def rest_faces_of(split: dict):
    """{clip start frame: (52,) the clip's face at rest} (voiceface.dataset.rest_face; the split's for
    a clip with too few quiet frames, and the median face where the split has none either)."""
    import numpy as np
    from voiceface.dataset import clip_rest_faces, rest_face
    mask, vad, targets = (np.asarray(split[k]) for k in ("mask", "vad", "targets"))
    overall = rest_face(targets, mask, vad)
    if overall is None:
        overall = np.median(targets[mask.astype(bool)][:, :52], axis=0)
    return {start: overall if face is None else face
            for start, face in clip_rest_faces(targets, mask, vad, split["clips"]).items()}


def quiet_input_bank(seed: int, in_db: bool = False, formants: bool = False) -> list:
    """Model inputs (fixed mode) of 4 s each of digital silence and of white, pink and brown noise at
    -75, -65, -55 and -45 dBFS, through the real front-end: what a microphone gives between words.
    in_db: their mel in dB instead (the level mode measures them against the window's running level).
    formants: each frame's 16 line spectral frequencies (radians) after its 80 values."""
    from voiceface.audio import compute_features
    from voiceface.constants import SAMPLE_RATE
    from voiceface.dataset import model_inputs
    from voiceface.synthetic import ROOM_NOISES, room_noise
    import numpy as np
    bank = []
    for k, kind in enumerate(ROOM_NOISES):
        for level in ((None,) if kind == "digital" else (-75, -65, -55, -45)):
            features = compute_features(room_noise(kind, level or 0.0, 4.0, SAMPLE_RATE, seed + k), formants)
            mel = np.asarray(features.mel, np.float32) if in_db else model_inputs(features.mel, features.vad, "fixed")
            if formants:
                mel = np.concatenate([mel, features.lsf], axis=1)
            bank.append(mel[5:])                                               # past the first window
    return bank


def main(argv=None) -> int:
    settings = configure(globals(), argv)
    if problem := setting_problem():
        print(f"error: {problem}", file=sys.stderr)
        return 1
    import json
    import os
    import time

    import numpy as np
    import torch
    import torch.distributed as dist
    from voiceface.progress import progress_bar, say as write_line

    from models import BLENDSHAPE_OUTPUTS, PRESETS, VoiceToFaceTCN
    from models.checkpoint import file_sha256, git_commit, load_checkpoint, save_checkpoint
    from models.loss import TERMS, AudioBlendshapeLoss
    from models.optimizer import AdamW
    from models.schedule import Phase, learning_rate, planned_epochs
    from voiceface.audio import LEVEL_NORM_START_DB, front_end_config, front_end_differences
    from voiceface.cli import settings_for_header
    from voiceface.constants import BLENDSHAPE_NAMES, FRAME_RATE, N_BLENDSHAPES, N_MELS, N_TARGETS, POSE_NAMES
    from voiceface.dataset import (DATASET_FORMAT, DATASET_FORMAT_VERSION, FORMANT_FILES, INPUT_FILES, LEVEL_FILE,
                                   MANIFEST_FILENAME, MEL_SCALE_DB, SideBySide, add_noise_to_inputs,
                                   add_reverb_to_inputs, create_sequences, inputs_in_db, level_inputs_against,
                                   normalisation_config, read_dataset_manifest, speaker_window_chances, warp_mel)
    from voiceface.formats import atomic_path, library_versions, write_text_atomic
    from voiceface.lpc import LPC_ORDER, TYPICAL_LSF, FormantInputs, formant_config, formant_differences
    from voiceface.metrics import clip_metrics, combine_clip_metrics

    # --- processes and device -------------------------------------------------------------------
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if DEVICE == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else
                              "mps" if torch.backends.mps.is_available() else "cpu")
    else:
        try:
            device = torch.device(DEVICE)
            torch.empty(1, device=device)          # a device this machine lacks fails here, in one line
        except (RuntimeError, AssertionError) as error:
            print(f"error: --device {DEVICE}: not usable here ({str(error).splitlines()[0]}); give auto or cpu",
                  file=sys.stderr)
            return 1
    if distributed:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    main_process = rank == 0
    say = print if main_process else (lambda *a, **k: None)

    # --- the dataset ----------------------------------------------------------------------------
    dataset_dir, run_dir = Path(DATASET_DIR), Path(RUN_DIR)
    from voiceface.errors import InputError
    from voiceface.formats import ensure_writable_folder
    try:
        ensure_writable_folder(run_dir, "--run-dir")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    manifest_path = dataset_dir / MANIFEST_FILENAME
    try:
        manifest = read_dataset_manifest(dataset_dir)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if RESUME and not (run_dir / "last.pt").exists():       # (said after the data was loaded, as a missing file)
        print(f"error: --resume: {run_dir} holds no last.pt to resume; leave out --resume to start a run there",
              file=sys.stderr)
        return 1
    if RESUME and FORCE:
        print("error: --resume continues the run, --force trains a new one over it: give one of them", file=sys.stderr)
        return 2
    if (run_dir / "last.pt").exists() and not (RESUME or FORCE):     # (a command run again replaced hours of training)
        print(f"error: {run_dir} holds a run already (last.pt); give --resume to continue or extend it, --force to "
              "train a new one over it, or another --run-dir", file=sys.stderr)
        return 1
    problems = []
    if manifest.get("format") != DATASET_FORMAT or manifest.get("format_version") != DATASET_FORMAT_VERSION:
        problems.append(f"format {manifest.get('format')} v{manifest.get('format_version')}")
    if tuple(manifest.get("blendshape_names", ())) != BLENDSHAPE_NAMES or tuple(manifest.get("pose_names", ())) != POSE_NAMES:
        problems.append("blendshape or pose names")
    if front_end_differences(manifest.get("front_end")):
        problems.append("audio front-end constants")
    if manifest.get("normalisation") != normalisation_config():
        problems.append("normalisation")
    if problems:
        print(f"error: {manifest_path}: dataset made with other {', '.join(problems)}; re-run stage 1.3 "
              "with --force", file=sys.stderr)
        return 1
    if PRESET not in PRESETS:
        print(f"error: no preset {PRESET!r}; choose one of {', '.join(PRESETS)}", file=sys.stderr)
        return 1
    if BLENDSHAPE_OUTPUT not in BLENDSHAPE_OUTPUTS:
        print(f"error: no blendshape output {BLENDSHAPE_OUTPUT!r}; choose one of {', '.join(BLENDSHAPE_OUTPUTS)}",
              file=sys.stderr)
        return 1
    input_file = INPUT_FILES[INPUT_MODE]
    lookahead = int(round(LOOKAHEAD_MS * FRAME_RATE / 1000))

    def load_split(split: str) -> dict:
        folder = dataset_dir / split
        arrays = {key: np.load(folder / f"{key}.npy", mmap_mode="r") for key in ("targets", "mask", "vad", "windows")}
        arrays["inputs"] = np.load(folder / input_file, mmap_mode="r")
        if FORMANTS:                    # the formant channels after the mel, and the frequencies they come from
            if len(arrays["mask"]):     # (datasets before 2026-12-04 wrote an empty split without its channel axis)
                arrays["inputs"] = SideBySide(arrays["inputs"], np.load(folder / FORMANT_FILES["inputs"], mmap_mode="r"))
            arrays["lsf"] = np.load(folder / FORMANT_FILES["lsf"], mmap_mode="r")
        if INPUT_MODE == "level":       # the running level each frame was measured against
            arrays["level_db"] = np.load(folder / LEVEL_FILE, mmap_mode="r")
        clips = [c for c in manifest["clips"] if c["split"] == split]
        first = np.zeros(len(arrays["mask"]), np.int64)          # each frame's clip start
        for clip in clips:
            first[clip["start"]:clip["start"] + clip["frames"]] = clip["start"]
        arrays["clip_first"], arrays["clips"] = first, clips
        if WINDOW_SECONDS > 0:
            window, stride, warmup = (int(round(s * FRAME_RATE)) for s in (WINDOW_SECONDS, STRIDE_SECONDS or
                                                                         WINDOW_SECONDS / 2, WARMUP_SECONDS))
            cut = [create_sequences(c["frames"], window, stride, warmup) + [c["start"], 0, 0] for c in clips]
            arrays["windows"] = np.concatenate(cut) if cut else np.zeros((0, 3), np.int64)
        return arrays

    if FORMANTS and manifest.get("formants") != {**formant_config(), "files": FORMANT_FILES}:
        stored = manifest.get("formants")
        different = ", ".join(formant_differences(stored) or ["files"]) if stored else ""
        print(f"error: {dataset_dir}: " + ("holds no formant channels (its stage 1.2 features were written before "
              "they were stored: re-run stage 1.2 with --force, then stage 1.3)" if not stored else
              f"its formant channels were made with other constants ({different}): re-run stages 1.2 and 1.3, "
              "which redo what changed") + "; or train without --formants", file=sys.stderr)
        return 1
    train, val = load_split("train"), load_split("val")
    if len(train["windows"]) == 0:
        print(f"error: {dataset_dir}: the training split is empty; give stage 1.3 more clips", file=sys.stderr)
        return 1
    usable_s = float(np.asarray(train["mask"]).sum()) / FRAME_RATE
    window_s = float(train["windows"][:, 1].max()) / FRAME_RATE if WINDOW_SECONDS <= 0 else WINDOW_SECONDS
    if usable_s < min(window_s, MIN_TRAINING_SECONDS):
        print(f"error: {dataset_dir}: the training split holds {usable_s:.2f} s with a face and sound, less than one "
              f"training window ({min(window_s, MIN_TRAINING_SECONDS):g} s); give stage 1.3 more or longer clips",
              file=sys.stderr)
        return 1

    n_inputs = int(train["inputs"].shape[1])       # the mel's bins, the formants, any channels extra_channels.py appended
    if FORMANTS and NOISE_AUGMENT > 0:
        print("error: --noise-augment adds noise to the mel alone, not to the formant channels: give one of "
              "--formants and --noise-augment", file=sys.stderr)
        return 1
    if FORMANTS and REVERB_AUGMENT > 0:
        print("error: --reverb-augment adds a room's echo to the mel alone, not to the formant channels: give one "
              "of --formants and --reverb-augment", file=sys.stderr)
        return 1
    if n_inputs != N_MELS + FORMANTS * LPC_ORDER and (SILENCE_AUGMENT > 0 or NOISE_AUGMENT > 0 or REVERB_AUGMENT > 0):
        print(f"error: {dataset_dir}: its inputs hold {n_inputs - N_MELS} channels beside the {N_MELS} mel bins "
              "(extra_channels.py); silence, noise and echo augmentation change the mel alone: add --silence-augment 0 "
              "--noise-augment 0 --reverb-augment 0", file=sys.stderr)
        return 1
    rest_faces = quiet_inputs = None
    silence_augment = SILENCE_AUGMENT
    if silence_augment > 0:
        rest_faces, quiet_inputs = rest_faces_of(train), quiet_input_bank(SEED, INPUT_MODE == "level", FORMANTS)
    if NOISE_AUGMENT > 0:
        quiet_inputs = quiet_inputs or quiet_input_bank(SEED, INPUT_MODE == "level")

    def insert_quiet(inputs, targets, vad, size, rng, clip_start, level_db=None, formant_mean=None) -> None:
        """A stretch of digital silence or room noise in a window's inputs; from `lookahead` frames
        into it the face is the clip's rest face, and voice activity is 0 (the silence term applies).
        In level mode the noise (in dB) is measured against the running level in force where it
        starts, `level_db` (size, 80): the normaliser holds its mean through unvoiced frames, so that is
        what a recorded pause would meet (the frames after it keep their values, which the speech
        the pause replaces would have moved a little). The formant channels likewise, against the
        running mean `formant_mean` (size, 16) in force where the stretch starts."""
        longest = max(30, int(round(SILENCE_MAX_SECONDS * FRAME_RATE)))
        length = int(min(size, rng.integers(30, longest + 1)))              # 0.3 s to SILENCE_MAX_SECONDS
        begin = int(rng.integers(0, size - length + 1))
        if level_db is not None and OPENING_SILENCE > 0 and rng.random() < OPENING_SILENCE:
            begin, level_db = 0, np.full_like(level_db, LEVEL_NORM_START_DB)
            if FORMANTS:
                formant_mean = np.broadcast_to(TYPICAL_LSF, formant_mean.shape)
        noise = quiet_inputs[int(rng.integers(len(quiet_inputs)))]
        if len(noise) < length:                                             # longer than the bank's 4 s: looped
            noise = np.concatenate([noise] * (length // len(noise) + 1))
        offset = int(rng.integers(0, len(noise) - length + 1))
        noise = noise[offset:offset + length]
        if level_db is None:
            inputs[begin:begin + length, :N_MELS] = np.clip(noise[:, :N_MELS], -1.0, 1.0)
        else:
            inputs[begin:begin + length, :N_MELS] = level_inputs_against(noise[:, :N_MELS], level_db[begin])
        if FORMANTS:
            inputs[begin:begin + length, N_MELS:] = FormantInputs.against(noise[:, N_MELS:], formant_mean[begin])
        targets[begin + lookahead:begin + length, :N_BLENDSHAPES] = rest_faces[clip_start]
        vad[begin:begin + length] = 0.0

    def read_window(start: int, size: int, rng) -> tuple:
        """A window's inputs (size, 80), targets (size, 59; shifted by the look-ahead), known mask and
        voice activity, read at a random speed within 1 +- SPEED_AUGMENT: frame k of the window is
        the clip's frame start + k * speed, interpolated, so the face keeps time with the sound."""
        first = int(train["clip_first"][start])
        speed = rng.uniform(1 - SPEED_AUGMENT, 1 + SPEED_AUGMENT) if SPEED_AUGMENT > 0 else 1.0
        clip_end = first + next(c["frames"] for c in train["clips"] if c["start"] == first)
        position = start + np.arange(size) * speed                           # fractional frames
        position = np.minimum(position, clip_end - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, clip_end - 1)
        weight = (position - low)[:, None].astype(np.float32)
        inputs = train["inputs"][low] * (1 - weight) + train["inputs"][high] * weight
        level_db = None
        if INPUT_MODE == "level":
            level_db = train["level_db"][low] * (1 - weight) + train["level_db"][high] * weight
        formant_mean = None
        if FORMANTS:
            lsf = train["lsf"][low] * (1 - weight) + train["lsf"][high] * weight
            formant_mean = FormantInputs.mean_of(lsf, inputs[:, N_MELS:])
        source = np.round(position).astype(int) - lookahead                    # target frame of each output
        valid = source >= first
        safe = np.where(valid, source, first)
        if speed == 1.0:
            targets = np.asarray(train["targets"][safe])
        else:
            shifted = position - lookahead
            lo = np.clip(np.floor(shifted).astype(int), first, clip_end - 1)
            hi = np.minimum(lo + 1, clip_end - 1)
            w = np.clip(shifted - lo, 0, 1)[:, None].astype(np.float32)
            targets = train["targets"][lo] * (1 - w) + train["targets"][hi] * w
        return inputs, targets, train["mask"][safe] * valid, train["vad"][safe], level_db, formant_mean

    def add_noise(window, rng, level_db=None):
        """Room noise added in the power domain, 5-30 dB below the window's loudest tenth
        (voiceface.dataset.add_noise_to_inputs; in level mode measured again against the running
        level plus the noise's power). Returns the level the frames are now measured against (None
        in fixed mode)."""
        noise = quiet_inputs[int(rng.integers(len(quiet_inputs)))][:, :N_MELS]
        offset = int(rng.integers(0, max(1, len(noise) - len(window) + 1)))
        noise = np.resize(noise[offset:], window[:, :N_MELS].shape)
        # the bank holds dB in level mode, model inputs in fixed mode
        noise_db = noise if level_db is not None else inputs_in_db(noise)
        window[:, :N_MELS], level_db = add_noise_to_inputs(window[:, :N_MELS], noise_db, level_db,
                                                           below_loudest_db=rng.uniform(5, 30))
        return level_db

    def make_batch(indices, epoch: int, draws=None) -> dict:
        """Windows `indices` of the training split, padded to the longest; targets shifted by the
        look-ahead; the loss mask drops warm-up frames, unknown targets and padding. `draws`: each
        window's place in the epoch's draw, which seeds its augmentation where a window can be drawn
        twice (--speaker-balance); otherwise the window's own index does."""
        rows = train["windows"][indices]
        length = int(rows[:, 1].max())
        inputs = np.zeros((len(rows), length, n_inputs), np.float32)
        targets = np.zeros((len(rows), length, N_TARGETS), np.float32)
        mask = np.zeros((len(rows), length), np.float32)
        vad = np.zeros((len(rows), length), np.float32)
        for b, (start, size, loss_start) in enumerate(rows):
            rng = np.random.default_rng([SEED, epoch, int(indices[b])] + ([] if draws is None else [int(draws[b])]))
            window_inputs, window_targets, known, voiced, level_db, formant_mean = read_window(int(start), int(size), rng)
            inputs[b, :size], targets[b, :size] = window_inputs, window_targets
            mask[b, :size] = known * (np.arange(size) >= loss_start)
            vad[b, :size] = voiced
            if GAIN_AUGMENT_DB > 0 and INPUT_MODE == "fixed":
                # a recording louder or quieter by g dB: every bin moves by g, then the same clipping
                gain = rng.uniform(-GAIN_AUGMENT_DB, GAIN_AUGMENT_DB)
                inputs[b, :size] = np.clip(inputs[b, :size] + gain / MEL_SCALE_DB, -1.0, 1.0)
            if FREQ_WARP > 0:
                # on new speakers (the speaker-independent benchmark) jawOpen r 0.226 without, 0.332 with it
                factor = rng.uniform(1 - FREQ_WARP, 1 + FREQ_WARP)
                inputs[b, :size, :N_MELS] = warp_mel(inputs[b, :size, :N_MELS], factor, FREQ_WARP_AXIS)
                if FORMANTS:      # the formants move by the same factor, and with them their running mean
                    inputs[b, :size, N_MELS:N_MELS + LPC_ORDER] *= factor
                    formant_mean = formant_mean * factor
            if REVERB_AUGMENT > 0 and rng.random() < REVERB_AUGMENT:
                # a room's late echo in the power spectrogram (voiceface.dataset.add_reverb_to_inputs), before
                # the noise: a microphone's own noise is not reverberated
                inputs[b, :size, :N_MELS], level_db = add_reverb_to_inputs(
                    inputs[b, :size, :N_MELS], rng.uniform(*REVERB_RT60_S), rng.uniform(*REVERB_DRR_DB), level_db)
            if NOISE_AUGMENT > 0 and rng.random() < NOISE_AUGMENT:
                level_db = add_noise(inputs[b, :size], rng, level_db)
            for _ in range(SPEC_MASKS):
                # SpecAugment (Park et al. 2019): a band of bins and a stretch of frames set to the window's
                # mean, so no single detail of the spectrum can carry the prediction
                window = inputs[b, :size]
                width = int(rng.integers(0, 9))
                low = int(rng.integers(0, N_MELS - width + 1))
                window[:, low:low + width] = window[:, low:low + width].mean()
                span = int(rng.integers(0, min(21, size) + 1))
                first = int(rng.integers(0, size - span + 1))
                window[first:first + span] = window.mean(axis=0)
            if silence_augment > 0 and rng.random() < silence_augment:
                insert_quiet(inputs[b], targets[b], vad[b], size, rng, int(train["clip_first"][start]), level_db,
                             formant_mean)
        return {k: torch.from_numpy(v).to(device) for k, v in
                (("inputs", inputs), ("targets", targets), ("mask", mask), ("vad", vad))}

    # --- the model, optimiser, schedule ---------------------------------------------------------
    config = PRESETS[PRESET]
    overrides = {**({"dropout": DROPOUT} if DROPOUT >= 0 else {}), **({"skip_taps": SKIP_TAPS} if SKIP_TAPS >= 0 else {}),
                 "blendshape_output": BLENDSHAPE_OUTPUT, "n_inputs": n_inputs}
    config = type(config)(**{**config.to_dict(), "dilations": config.dilations, **overrides})
    torch.manual_seed(SEED)
    model = VoiceToFaceTCN(config).to(device)
    if INPUT_STANDARDISATION:     # each mel bin's mean and spread over the training frames, inside the model
        inputs = np.asarray(train["inputs"])[np.asarray(train["mask"]).astype(bool)]
        model.set_input_statistics(torch.from_numpy(inputs.mean(axis=0)), torch.from_numpy(inputs.std(axis=0)))
    if SKIP_INIT == "ridge" and model.skip is None:
        print("error: --skip-init ridge starts the linear skip, and this model has none: drop --skip-taps 0 "
              "or use --skip-init zero", file=sys.stderr)
        return 1
    started_from = {}                            # the checkpoint a fine-tuning run started from, by its hash
    if INIT_FROM and not RESUME:                 # (a resumed run loads its own weights)
        if SKIP_INIT == "ridge":
            print("error: --init-from and --skip-init ridge both set the first weights: give one", file=sys.stderr)
            return 1
        try:
            _, start = load_checkpoint(INIT_FROM, device)
        except Exception as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        differ = [f"{key} {start['model_config'].get(key)!r} here {value!r}" for key, value in config.to_dict().items()
                  if start["model_config"].get(key) != value]
        if start["training"].get("lookahead_ms") != LOOKAHEAD_MS:
            differ.append(f"lookahead_ms {start['training'].get('lookahead_ms')!r} here {LOOKAHEAD_MS!r}")
        if start["training"].get("input_mode") != INPUT_MODE:
            differ.append(f"input_mode {start['training'].get('input_mode')!r} here {INPUT_MODE!r}")
        if differ:
            print(f"error: {INIT_FROM}: a model of other settings ({'; '.join(differ)}); fine-tune with its own "
                  "--preset, --dropout, --skip-taps, --blendshape-output, --input-mode and --lookahead-ms", file=sys.stderr)
            return 1
        model.load_state_dict(start["state_dict"])      # its input statistics included
        started_from = {"init_from_sha256": file_sha256(INIT_FROM)}
        say(f"starting from the weights of {INIT_FROM}")
    if SKIP_INIT == "ridge" and not RESUME:      # (a resumed run loads its weights)
        from voiceface.ridge import RidgeBaseline
        spans = [slice(c["start"], c["start"] + c["frames"]) for c in train["clips"]]
        mean, std = model.input_mean.cpu().numpy(), model.input_std.cpu().numpy()
        def in_logit_units(y):      # a sigmoid's skip adds to its logit: fit logits (scores kept off 0 and 1)
            y = np.array(y[:, :N_BLENDSHAPES], np.float64)
            return y if BLENDSHAPE_OUTPUT != "sigmoid" else np.log(np.clip(y, 0.01, 0.99) / (1 - np.clip(y, 0.01, 0.99)))
        ridge = RidgeBaseline.fit([(np.asarray(train["inputs"][s]) - mean) / std for s in spans],
                                  [in_logit_units(np.asarray(train["targets"][s])) for s in spans],
                                  [np.asarray(train["mask"][s]).astype(bool) for s in spans], lookahead,
                                  offsets=np.array(model.skip.offsets))
        model.set_linear_reader(*ridge.per_frame_weights())
        if main_process:
            print(f"linear skip: starts as ridge (strength {ridge.strength:g}) fitted on {len(spans)} training clips")
    loss_fn = AudioBlendshapeLoss({"base": BASE_WEIGHT, "velocity": VELOCITY_WEIGHT,
                                   "acceleration": ACCELERATION_WEIGHT, "silence": SILENCE_WEIGHT,
                                   "pose": POSE_WEIGHT, "pose_bound": POSE_BOUND_WEIGHT,
                                   "correlation": CORRELATION_WEIGHT}, BLENDSHAPE_NAMES,
                                  mouth_weight=MOUTH_WEIGHT, beta=SMOOTH_L1_BETA,
                                  shape_spread=torch.from_numpy(np.asarray(train["targets"])[
                                      np.asarray(train["mask"]).astype(bool)][:, :N_BLENDSHAPES].std(axis=0))
                                  if SHAPE_SPREAD else None).to(device)
    # the linear skip reads 16 x 80 stacked inputs from little data: it may want much more shrinkage
    skip_parameters = list(model.skip.parameters()) if model.skip is not None else []
    skip_ids = {id(p) for p in skip_parameters}
    other_parameters = [p for p in model.parameters() if id(p) not in skip_ids]
    optimizer = AdamW([{"params": other_parameters, "weight_decay": WEIGHT_DECAY}] + (
        [{"params": skip_parameters, "weight_decay": SKIP_WEIGHT_DECAY if SKIP_WEIGHT_DECAY >= 0 else WEIGHT_DECAY,
          "lr_scale": SKIP_LR_SCALE}] if skip_parameters else []), lr=LEARNING_RATE)
    steps_per_epoch = int(np.ceil(len(train["windows"]) / BATCH_SIZE))
    # --speaker-balance: each window's chance in the epoch's draw (None: off, or one speaker, whose windows
    # are each taken once an epoch, as without it)
    window_chances = (speaker_window_chances(train["windows"][:, 0], train["clips"], SPEAKER_BALANCE)
                      if SPEAKER_BALANCE > 0 else None)
    epochs = max(EPOCHS, int(np.ceil(MIN_STEPS / steps_per_epoch)))      # what the run is planned for
    if epochs > EPOCHS:
        say(f"{steps_per_epoch} steps an epoch: {epochs} epochs to reach --min-steps {MIN_STEPS}")
    phases = [Phase(epochs, LEARNING_RATE)]
    ema = None
    if EMA_DECAY > 0:
        from torch.optim.swa_utils import AveragedModel
        def ema_update(averaged, current, steps):
            # warm-up: the decay grows as (1 + n) / (10 + n) towards EMA_DECAY, so the average does not
            # carry the untrained first weights for hundreds of steps (4 epochs: jaw amplitude 0.07)
            decay = min(EMA_DECAY, (1.0 + float(steps)) / (10.0 + float(steps)))
            torch._foreach_lerp_(averaged, current, 1.0 - decay)
        ema = AveragedModel(model, multi_avg_fn=ema_update)
    first_epoch, best = 1, float("inf")
    run_dir.mkdir(parents=True, exist_ok=True)
    if main_process:        # a write that a kill -9 cut short left a hidden partial file: nobody else writes here
        for stale in run_dir.glob(".*.partial*"):
            stale.unlink(missing_ok=True)
    metrics_path = run_dir / "metrics.jsonl"
    history = []
    if RESUME:
        try:
            _, saved = load_checkpoint(run_dir / "last.pt", device)
        except Exception as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        # what defines the model or its data cannot change halfway (the optimiser's state would not fit)
        before = saved["training"]
        now = settings_for_header(settings) | {"preset": PRESET}
        was = {key: before.get(key, SETTINGS_ADDED_SINCE.get(key)) for key in FIXED_ON_RESUME}
        changed = [f"--{key.replace('_', '-')} {was[key]} -> {now[key]}" for key in FIXED_ON_RESUME if was[key] != now[key]]
        if saved["dataset_manifest_sha256"] != file_sha256(manifest_path):
            changed.append(f"the dataset {manifest_path} (rebuilt or another one)")
        if (EMA_DECAY > 0) != ("ema_n_averaged" in saved):
            changed.append("--ema-decay on or off")
        if changed:
            print(f"error: {run_dir / 'last.pt'}: cannot resume with {'; '.join(changed)}; resume with the run's "
                  "own settings or start a new --run-dir", file=sys.stderr)
            return 1
        phases = [Phase(**p) for p in saved["schedule"]]
        done = saved["epoch"]
        if epochs < planned_epochs(phases):
            print(f"error: {run_dir / 'last.pt'}: this run is planned for {planned_epochs(phases)} epochs ({done} done); "
                  f"--epochs must be {planned_epochs(phases)}, or more to extend it", file=sys.stderr)
            return 1
        if epochs > planned_epochs(phases):       # extend a run: a gentler cycle of its own over the new epochs
            phases.append(Phase(epochs - planned_epochs(phases), LEARNING_RATE * EXTENSION_PEAK))
            say(f"extending {run_dir} from {done} to {epochs} epochs: a new one-cycle peaking at "
                f"{LEARNING_RATE * EXTENSION_PEAK:.2g} over epochs {done + 1}-{epochs}")
        model.load_state_dict(saved.get("training_state_dict", saved["state_dict"]))
        started_from = {"init_from_sha256": saved["init_from_sha256"]} if "init_from_sha256" in saved else {}
        optimizer.load_state_dict(saved["optimizer"])
        if ema is not None:
            ema.module.load_state_dict(saved["state_dict"])
            ema.n_averaged.fill_(saved["ema_n_averaged"])
        first_epoch, best = done + 1, saved["best_val_loss"]
        if metrics_path.exists():          # forget epochs logged after the checkpoint was written
            history = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
            history = [h for h in history if h["epoch"] < first_epoch]
        if first_epoch > epochs:
            say(f"{run_dir}: all {epochs} epochs are done; --epochs more than {epochs} extends the run")
            return 0
        say(f"resuming {run_dir} at epoch {first_epoch}")
    elif metrics_path.exists() and main_process:
        metrics_path.unlink()
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model)
    core = model.module if distributed else model
    scored = ema.module if ema is not None else core        # what is validated and saved for inference
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    field = (f"receptive field {core.receptive_field} frames ({core.receptive_field / FRAME_RATE:.2f} s)"
             if core.receptive_field else "recurrent: all of the past")
    say(f"model {PRESET}: {core.parameter_count():,} parameters, {field}, {core.flops_per_frame() / 1e6:.2f} MFLOP/frame; "
        f"{len(train['windows'])} training windows, {len(val['clips'])} validation clips; device {device}"
        + (f" x {world} processes" if distributed else ""))

    def all_reduce(tensor):
        if distributed:
            dist.all_reduce(tensor)
        return tensor

    def validate() -> dict:
        """The model (or its moving average) over each validation clip from its start, as inference runs."""
        scored.eval()
        per_clip, sums, counts = [], {t: 0.0 for t in TERMS}, {t: 0.0 for t in TERMS}
        with torch.no_grad():
            for clip in val["clips"]:
                span = slice(clip["start"], clip["start"] + clip["frames"])
                inputs = torch.from_numpy(np.array(val["inputs"][span]))[None].to(device)
                with autocast:
                    prediction = scored(inputs)[0].float().cpu().numpy()
                targets = np.array(val["targets"][span])
                mask = np.array(val["mask"][span]).astype(bool)
                vad = np.array(val["vad"][span])
                if lookahead:          # output t is the face at t - lookahead
                    prediction, targets = prediction[lookahead:], targets[:-lookahead]
                    mask, vad = mask[:-lookahead], vad[:-lookahead]
                per_clip.append(clip_metrics(prediction, targets, mask))
                # on the loss's device: its buffers (the shapes' scale) live there
                terms = loss_fn(*(torch.from_numpy(a)[None].to(device) for a in
                                  (prediction, targets, mask.astype(np.float32), vad)))
                for t in TERMS:
                    sums[t] += float(terms[t][0])
                    counts[t] += float(terms[t][1])
        total, means = loss_fn.combine({t: torch.tensor(sums[t]) for t in TERMS},
                                       {t: torch.tensor(counts[t]) for t in TERMS})
        return {"loss": float(total), **{f"loss_{t}": float(v) for t, v in means.items()},
                **combine_clip_metrics(per_clip)}

    def write_curves():
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        epochs = [h["epoch"] for h in history]
        figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        axes[0].plot(epochs, [h["train"]["loss"] for h in history], label="train")
        if history and "loss" in history[0]["val"]:
            axes[0].plot(epochs, [h["val"]["loss"] for h in history], label="val")
        axes[0].set_title("loss")
        axes[0].set_yscale("log")
        axes[0].legend()
        for key, label in (("mae", "MAE (52)"), ("mouth_mae", "mouth MAE")):
            axes[1].plot(epochs, [h["val"].get(key) for h in history], label=label)
        axes[1].set_title("validation MAE")
        axes[1].legend()
        for key, label in (("jaw_open_r", "jawOpen"), ("mouth_close_r", "mouthClose"), ("smile_r", "smile")):
            axes[2].plot(epochs, [h["val"].get(key) for h in history], label=label)
        axes[2].set_title("validation Pearson r")
        axes[2].legend()
        for axis in axes:
            axis.set_xlabel("epoch")
        figure.tight_layout()
        with atomic_path(run_dir / "curves.png") as tmp:
            figure.savefig(tmp, dpi=80)
        plt.close(figure)

    # --- training -------------------------------------------------------------------------------
    common = {"preset": PRESET, "input_mode": INPUT_MODE, "lookahead_frames": lookahead,
              "formants": formant_config() if FORMANTS else None,
              "front_end": front_end_config(), "normalisation": normalisation_config(),
              "blendshape_names": list(BLENDSHAPE_NAMES), "pose_names": list(POSE_NAMES),
              "training": settings_for_header(settings) | {"preset": PRESET},
              "dataset_manifest_sha256": file_sha256(manifest_path), "git_commit": git_commit(REPO_ROOT),
              "libraries": library_versions(), **started_from,
              # what the arithmetic ran on: a seeded run repeats bitwise only on the same device and thread
              # count (one thread against two moved a fold's weights by up to 0.0025; README, the benchmarks)
              "compute": {"device": device.type, "torch_threads": torch.get_num_threads(), "processes": world,
                          "autocast": "bf16" if device.type == "cuda" else None}}
    epochs_this_run = 0
    curves_drawn = time.perf_counter()
    saved_epoch = first_epoch - 1            # the epoch last.pt holds
    try:
        for epoch in range(first_epoch, epochs + 1):
            start_time = time.perf_counter()
            # --stop-after-epochs: this epoch ends the run early (its curves drawn, then the loop left)
            stops_here = bool(STOP_AFTER_EPOCHS) and epochs_this_run + 1 >= STOP_AFTER_EPOCHS and epoch < epochs
            model.train()
            torch.manual_seed(SEED * 100003 + epoch)            # dropout: the same per epoch, resumed or not
            epoch_rng, n_windows = np.random.default_rng([SEED, epoch]), len(train["windows"])
            if window_chances is None:
                order, draws = epoch_rng.permutation(n_windows), None
            else:       # as many windows, drawn with replacement, a speaker's chance its share ** (1 - balance)
                order, draws = epoch_rng.choice(n_windows, size=n_windows, p=window_chances), np.arange(n_windows)
            sums = {t: 0.0 for t in TERMS}
            counts = {t: 0.0 for t in TERMS}
            frames = 0
            load_seconds = 0.0
            bar = progress_bar(range(steps_per_epoch), desc=f"epoch {epoch}/{epochs}", leave=False,
                               enabled=main_process)
            for step in bar:
                batch_indices = order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE]
                mine = batch_indices[rank::world]                 # this process's share of the global batch
                my_draws = None if draws is None else draws[step * BATCH_SIZE:(step + 1) * BATCH_SIZE][rank::world]
                loading = time.perf_counter()
                batch = make_batch(mine, epoch, my_draws)
                load_seconds += time.perf_counter() - loading
                with autocast:
                    prediction = model(batch["inputs"])
                terms = loss_fn(prediction, batch["targets"], batch["mask"], batch["vad"])
                # divide by the count over all processes: DDP averages gradients, so scale by world
                global_counts = all_reduce(torch.stack([terms[t][1] for t in TERMS]).detach().clone())
                counts_by_term = dict(zip(TERMS, global_counts))
                loss, _ = loss_fn.combine({t: terms[t][0] for t in TERMS}, counts_by_term)
                for group in optimizer.param_groups:
                    group["lr"] = group.get("lr_scale", 1.0) * learning_rate((epoch - 1) * steps_per_epoch + step,
                                                                             steps_per_epoch, phases)
                optimizer.zero_grad()
                (loss * world).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
                optimizer.step()
                if ema is not None:
                    ema.update_parameters(core)
                step_sums = all_reduce(torch.stack([terms[t][0].detach() for t in TERMS]))
                for t, s, c in zip(TERMS, step_sums.tolist(), global_counts.tolist()):
                    sums[t] += s
                    counts[t] += c
                frames += int(batch["inputs"].shape[0] * batch["inputs"].shape[1])
                bar.set_postfix(loss=f"{loss.item():.4f}")
            total, means = loss_fn.combine({t: torch.tensor(sums[t]) for t in TERMS},
                                           {t: torch.tensor(counts[t]) for t in TERMS})
            seconds = time.perf_counter() - start_time
            frames = int(all_reduce(torch.tensor(frames)).item())
            record = {"epoch": epoch, "learning_rate": optimizer.param_groups[0]["lr"],
                      "train": {"loss": float(total), **{f"loss_{t}": float(v) for t, v in means.items()}},
                      "seconds": round(seconds, 2), "frames_per_second": round(frames / seconds, 1),
                      "data_loading_share": round(load_seconds / seconds, 4)}
            if main_process:
                record["val"] = validate() if val["clips"] else {}
                history.append(record)
                # rewritten whole, so through a temporary file: a kill -9 inside the write once left it
                # empty, and the resumed run then forgot every epoch before the checkpoint's
                write_text_atomic(metrics_path, "".join(json.dumps(h) + "\n" for h in history))
                if epoch == epochs or stops_here or time.perf_counter() - curves_drawn >= CURVES_EVERY_SECONDS:
                    write_curves()
                    curves_drawn = time.perf_counter()
                v = record["val"]
                improved = bool(v) and v["loss"] < best
                best = min(best, v["loss"]) if v else best
                state = dict(common, epoch=epoch, metrics=record, best_val_loss=best,
                             optimizer=optimizer.state_dict(),
                             schedule=[p.to_dict() for p in phases],
                             training=common["training"] | {"epochs": planned_epochs(phases)})
                if ema is not None:      # inference runs the average; resuming needs the raw weights too
                    state |= {"training_state_dict": {k: v.detach().cpu() for k, v in core.state_dict().items()},
                              "ema_n_averaged": int(ema.n_averaged)}
                save_checkpoint(run_dir / "last.pt", scored, **state)
                saved_epoch = epoch
                if improved or not v:
                    save_checkpoint(run_dir / "best.pt", scored, **state)
                summary = (f"epoch {epoch:3d}/{epochs}  train {record['train']['loss']:.4f}"
                           + (f"  val {v['loss']:.4f}  MAE {v['mae']:.4f}  mouth {v['mouth_mae']:.4f}  "
                              f"jawOpen r {v['jaw_open_r']:.3f}  mouthClose r {v['mouth_close_r']:.3f}  "
                              f"smile r {v['smile_r']:.3f}  pose {v['translation_mae_cm']:.2f} cm "
                              f"{v['rotation_error_deg']:.2f}°" if v else "")
                           + f"  {record['frames_per_second']:.0f} frames/s" + ("  *" if improved else ""))
                write_line(summary)           # one plain line per epoch; the bar only on a terminal
            epochs_this_run += 1
            if stops_here:
                say(f"stopped after {epochs_this_run} epochs as asked; --resume continues")
                break
    except KeyboardInterrupt:
        if main_process and history:
            write_curves()
        when = "after" if saved_epoch == epoch else "in"
        return say_stopped(f"last.pt holds epoch {saved_epoch} of {epochs}; the same command with --resume goes on "
                           "from there" if saved_epoch else "no epoch had finished, so no checkpoint was written",
                           what=f"stopped (Ctrl-C) {when} epoch {epoch} of {epochs}")
    if distributed:
        # leave together: a process that tears down its process group while another is still validating
        # and saving aborted now and then ("terminate called without an active exception", 3 runs in 40)
        dist.barrier()
        dist.destroy_process_group()
    # last.pt is the model to use (inference's default, what run_pipeline.py hands on and the benchmarks
    # score); best.pt is chosen by the loss on the validation clips, so scores on them would flatter it
    say(f"checkpoint: {run_dir / 'last.pt'} (the last epoch; best.pt: the lowest validation loss)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
