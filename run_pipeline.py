"""The whole pipeline, stage by stage, like a recipe: each stage is one of the numbered scripts,
run as you would run it by hand. This file adds no logic of its own; every stage skips outputs
that already exist, so running it twice redoes nothing.

    python run_pipeline.py                          # the built-in sample, in data/sample/
    python run_pipeline.py --raw-dir ~/my_videos    # your own talking-face videos, in data/
    python run_pipeline.py --raw-dir ~/my_videos --speaker-manifest speakers.csv   # ... and the two benchmarks
    python run_pipeline.py --raw-dir ~/videos_of_me --one-speaker   # one person's videos, a model of that person
    python run_pipeline.py --raw-dir ~/my_videos --lookahead-ms 100  # a model for files: 100 ms later, better mouths
    python run_pipeline.py --stage 1 --stop-stage 1 # only stage 1 (blendshapes)

Stages: 0 generate the sample clips (sample only) · 1 blendshapes and head pose (stage 1.1) ·
2 audio features (stage 1.2) · 3 the synchronised dataset (stage 1.3) · 4 training (stage 2), and
the model exported as one ONNX file that takes 16 kHz sound (face.onnx beside last.pt) · 5 inference
on a held-out clip, with its preview video (stage 3; sample only) · 6 evaluation of the held-out split · 7 the
speaker-dependent and speaker-independent benchmarks (your videos, with a speaker manifest: they
train a model per fold, about 13 minutes for 7 minutes of video on two cores) ·
8 each benchmark's median held-out clip drawn: the video's jaw against the TCN's and ridge's, and
the fold models scored at a few --strength gains (strength.json: which gain gives your videos' range)
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_child, run_main

# --- settings (each can be given on the command line: RAW_DIR as --raw-dir) ------------------
RAW_DIR = None                  # a folder of your videos; none: the built-in sample
WORK_DIR = None                 # where the stages write; none: data/sample (sample) or data (your videos)
RUNS_DIR = None                 # training runs go to <runs-dir>/sample or <runs-dir>/default; none: runs/,
#                                 or <work-dir>/runs with --work-dir (one project's model never retrains another's)
STAGE = 0                       # first stage to run
STOP_STAGE = 99                 # last stage to run
WORKERS = 2                     # processes for the extraction stages
SAMPLE_CLIPS = 6                # sample only: how many clips to generate
SAMPLE_DURATION = 20.0          # sample only: seconds per clip
SAMPLE_EPOCHS = 80              # sample only: epochs of the tiny model (about two minutes on two cores)
SPEAKER_MANIFEST = ""           # with --raw-dir: CSV naming each clip's speaker (columns short_name or clip, and speaker)
ONE_SPEAKER = False             # with --raw-dir: your videos are one person's, the model for that person: trains with
#                                 --formants --epochs 20 (ONE_SPEAKER_TRAINING below) instead of train.py's defaults,
#                                 which are for new voices; into its own run folder (default_one_speaker), its
#                                 benchmarks into benchmark_one_speaker
LOOKAHEAD_MS = 0.0              # the model's look-ahead in ms: 0 strictly causal, for live use; 100 for files (better mouths).
#                                 Latency does not matter in a file: on the benchmarks 100 ms lifts jawOpen r from 0.588 to
#                                 0.613 on the speaker's own clips, 0.276 to 0.316 on new speakers (README, "Lip sync on
#                                 real speech").
#                                 Each look-ahead trains into its own run folder (default_lookahead100ms), evaluated
#                                 into its own folder (evaluation_lookahead100ms).
FORCE = False                   # redo every stage's outputs
# --- end of settings ---------------------------------------------------------------------------

# A model of one speaker's videos (the design note's own use): the formant channels and twice the
# epochs. On the speaker-dependent benchmark (Obama's five clips) they raise jawOpen r strictly
# causal from 0.578-0.590 to 0.630-0.636, and at 100 ms from 0.604-0.613 to 0.623-0.641 (three seeds
# each), the shapes around the jaw with it; on new voices the formants cost 0.04 (README, "Lip sync on
# real speech"; ARCHITECTURE.md, "A recipe for one speaker").
ONE_SPEAKER_TRAINING = ["--formants", "--epochs", 20]

# Under this many seconds of one speaker to train on, a note says that other people's videos would
# help: on the real clips 17 s of Reagan's own read his jaw at r 0.29 strictly causal, a model of 25
# other voices that never heard him at 0.44; 45 s of Obama's own beat that model (0.59 against 0.47;
# ARCHITECTURE.md, "How much of your own video").
FEW_SECONDS_OF_ONE_SPEAKER = 30.0


def runs_dir() -> Path:
    return Path(RUNS_DIR) if RUNS_DIR else Path(WORK_DIR) / "runs" if WORK_DIR else REPO_ROOT / "runs"


def model_suffix(sample: bool) -> str:
    """What sets this model apart from the defaults' strictly causal one ("_one_speaker", "_lookahead100ms",
    both, or nothing): the suffix of its run folder and of its evaluation's folder."""
    recipe = "_one_speaker" if ONE_SPEAKER and not sample else ""      # the sample trains its own tiny recipe
    return recipe + (f"_lookahead{LOOKAHEAD_MS:g}ms" if LOOKAHEAD_MS else "")


def run_dir_for(sample: bool) -> Path:
    """Each recipe and look-ahead has its own model folder, so trying one never retrains (or refuses to
    resume) another: runs/default, runs/default_one_speaker, runs/default_lookahead100ms, ..."""
    return runs_dir() / (("sample" if sample else "default") + model_suffix(sample))


def evaluation_dir(work: Path, sample: bool) -> Path:
    """Stage 6's folder for this model (evaluation, evaluation_lookahead100ms, ...): another model's stays."""
    return work / ("evaluation" + model_suffix(sample))


def benchmark_dir(work: Path) -> Path:
    """Stage 7's report folder: the benchmarks train every fold with the recipe, at every look-ahead."""
    return work / ("benchmark_one_speaker" if ONE_SPEAKER else "benchmark")


def read_or(path: Path, read, fallback):
    """read(the JSON at path), or fallback when the file is missing, unreadable or not shaped as
    expected (the stage that wrote it, run next, says what is wrong)."""
    import json
    try:
        return read(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return fallback


def held_out_clips(dataset_dir: Path) -> int:
    """How many clips stage 1.3 put in the validation split (-1 when its manifest cannot be read)."""
    from voiceface.dataset import MANIFEST_FILENAME
    return read_or(dataset_dir / MANIFEST_FILENAME, lambda m: sum(c["split"] == "val" for c in m["clips"]), -1)


def benchmarks_in(report: Path) -> int:
    """How many benchmarks stage 7's report holds (-1 when it cannot be read: stage 8 says why)."""
    return read_or(report, lambda r: len(r["benchmarks"]), -1)


def one_speakers_seconds(dataset_dir: Path) -> tuple[str, float] | None:
    """(speaker, seconds of video) that stage 1.3's training split holds when it is one speaker's
    (or --one-speaker says it is); None for several speakers or an unreadable manifest."""
    from voiceface.dataset import MANIFEST_FILENAME
    clips = read_or(dataset_dir / MANIFEST_FILENAME, lambda m: [(c["speaker"], float(c["duration_s"]))
                                                                for c in m["clips"] if c["split"] == "train"], [])
    speakers = sorted({speaker for speaker, _ in clips})
    if not speakers or (len(speakers) > 1 and not ONE_SPEAKER):
        return None
    return (speakers[0] if len(speakers) == 1 else "one person, by --one-speaker"), sum(s for _, s in clips)


def usable_after_failure(number: int, work: Path, started: float) -> str:
    """After stage 1, 2 or 3 exited 1 — some videos or clips failed, each named in a line of its own —
    what the stages after it can still use ("" when nothing: the pipeline stops). One video without a
    face, or without sound, in a folder of many would otherwise stop every run at stage 1 until it is
    deleted by hand."""
    from voiceface.audio import AUDIO_FEATURES_FILENAME
    from voiceface.dataset import MANIFEST_FILENAME
    from voiceface.formats import BLENDSHAPES_FILENAME, written_since
    if number in (1, 2):
        name = BLENDSHAPES_FILENAME if number == 1 else AUDIO_FEATURES_FILENAME
        clips = sum((folder / name).exists() for folder in (work / "processed").glob("*/"))
        return f"{clips} clips with its output" if clips else ""
    if number == 3 and written_since(work / "dataset" / MANIFEST_FILENAME, started):
        return f"the dataset without the clips it left out ({work / 'dataset'})"
    return ""


def same_dataset(run_dir: Path, dataset_dir: Path) -> bool:
    """Whether the run's last checkpoint was trained on the dataset as it is now (train.py refuses to
    resume on another one)."""
    import torch
    from voiceface.dataset import MANIFEST_FILENAME
    from voiceface.formats import sha256_file
    try:
        saved = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
        manifest = sha256_file(dataset_dir / MANIFEST_FILENAME)
    except Exception:
        return True                              # nothing to compare: train.py says what is wrong
    return saved.get("dataset_manifest_sha256") == manifest


def manifest_speakers() -> set[str]:
    """The speakers SPEAKER_MANIFEST names; empty when it cannot be read (stage 1.3 says why)."""
    from voiceface.dataset import speakers_from_manifest
    from voiceface.errors import InputError
    try:
        return set(speakers_from_manifest(SPEAKER_MANIFEST).values())
    except InputError:
        return set()


def stages(raw: Path, work: Path, sample: bool) -> list[tuple[int, str, list]]:
    """(number, description, command) of each stage, in order."""
    force = ["--force"] if FORCE else []
    processed = work / "processed"
    steps = []
    if sample:
        steps.append((0, "generate the sample clips",
                      ["1_data_cleaning/0_generate_sample_clips.py", "--output-dir", raw,
                       "--clips", SAMPLE_CLIPS, "--duration", SAMPLE_DURATION, *force]))
    steps.append((1, "blendshapes and head pose (stage 1.1)",
                  ["1_data_cleaning/1_extract_blendshapes.py", raw, "--output-dir", processed,
                   "--workers", WORKERS, *force]))
    steps.append((2, "audio features (stage 1.2)",
                  ["1_data_cleaning/2_extract_audio_features.py", raw, "--output-dir", processed,
                   "--workers", WORKERS, *force]))
    held_out = f"sample_{SAMPLE_CLIPS - 1:02d}"       # the last generated clip: never trained on
    speakers = ["--speaker-manifest", SPEAKER_MANIFEST] if SPEAKER_MANIFEST and not sample else []
    steps.append((3, "the synchronised dataset (stage 1.3)",
                  ["1_data_cleaning/3_create_dataset.py", "--processed-dir", processed,
                   "--output-dir", work / "dataset", *(["--val-clips", held_out] if sample else []), *speakers, *force]))
    steps.append((3, "every clip's audio-video offset, drawn (stage 1.3)",     # (a failure here stops the run)
                  ["1_data_cleaning/plot_synchronisation.py", "--dataset-dir", work / "dataset"]))
    run_dir = run_dir_for(sample)
    training = (["--preset", "tiny", "--epochs", SAMPLE_EPOCHS, "--window-seconds", 2, "--stride-seconds", 0.5,
                 "--warmup-seconds", 0.5, "--batch-size", 8, "--learning-rate", 3e-3,
                 "--freq-warp", 0] if sample else                  # one synthetic voice: nothing to generalise over
                ONE_SPEAKER_TRAINING if ONE_SPEAKER else [])      # your videos: the one-speaker recipe or train.py's defaults
    training = [*training, *(["--lookahead-ms", f"{LOOKAHEAD_MS:g}"] if LOOKAHEAD_MS else [])]
    steps.append((4, "training (stage 2)", ["2_architecture_training/train.py", "--dataset-dir", work / "dataset",
                                          "--run-dir", run_dir, *training,
                                          *((["--force"] if FORCE else ["--resume"]) if (run_dir / "last.pt").exists()
                                            else [])]))
    steps.append((4, "the model as one ONNX file, sound in, for an engine (stage 3; 3_inference/run_onnx.py calls it)",
                  ["3_inference/inference.py", "--checkpoint", run_dir / "last.pt", "--export-onnx",
                   run_dir / "face.onnx", *force]))
    # the model handed on is the last epoch's, as in the benchmarks: best.pt is chosen by the loss on
    # the held-out clips, so scoring it on them would flatter it (on the sample: epoch 16 of 80 by a
    # validation loss 0.0002 lower, jawOpen r 0.942 against the last epoch's 0.973)
    if sample:
        steps.append((5, "inference on the held-out clip, and its preview video (stage 3)",
                      ["3_inference/inference.py", raw / f"{held_out}.mp4", "--checkpoint", run_dir / "last.pt",
                       "--output", work / "inference" / f"{held_out}.json", "--csv", "--preview",
                       "--reference", processed / held_out / "blendshapes_and_pose.json", "--force"]))
    steps.append((6, "evaluation on the held-out split",
                  ["3_inference/evaluate.py", "--checkpoint", run_dir / "last.pt", "--dataset-dir", work / "dataset",
                   "--json", evaluation_dir(work, sample) / "evaluation.json", "--plots-dir", evaluation_dir(work, sample)]))
    if speakers:
        steps.append((7, "the speaker-dependent and speaker-independent benchmarks",
                      ["3_inference/evaluate.py", "--benchmark", "both", "--processed-dir", processed, *speakers,
                       *([f"--train-args={' '.join(map(str, ONE_SPEAKER_TRAINING))}"] if ONE_SPEAKER else []),
                       "--bench-dir", runs_dir() / "benchmark",
                       "--json", benchmark_dir(work) / "benchmark.json"]))
        steps.append((8, "what the benchmarks' r looks like: each one's median held-out clip, drawn",
                      ["3_inference/jaw_tracks.py", benchmark_dir(work) / "benchmark.json",
                       "--output", benchmark_dir(work) / "jaw_tracks.png", *force]))
        steps.append((8, "how far the jaw moves against the video's, and the --strength that gives the videos' range",
                      ["3_inference/strength_check.py", benchmark_dir(work) / "benchmark.json",
                       "--json", benchmark_dir(work) / "strength.json", *force]))
    return steps


def main(argv=None) -> int:
    configure(globals(), argv)
    from voiceface.cli import bad_lookahead, given_settings, out_of_range
    # refused before any stage runs (--sample-clips 1 or a negative look-ahead ran stages 0-3 and then stopped)
    if problem := (out_of_range(("--workers", WORKERS, 1, False),
                                ("--sample-clips", SAMPLE_CLIPS, 2, False, "one held out, the others trained on"),
                                ("--sample-duration", SAMPLE_DURATION, 1, False), ("--sample-epochs", SAMPLE_EPOCHS, 1, False),
                                ("--stop-stage", STOP_STAGE, STAGE, False, "the last stage to run, --stage the first"))
                   or bad_lookahead([LOOKAHEAD_MS])):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    sample = RAW_DIR is None
    if not sample and not Path(RAW_DIR).is_dir():       # (stage 1.1 said so as one of its inputs, then stage 1 failed)
        print(f"error: --raw-dir {RAW_DIR}: {'a file' if Path(RAW_DIR).is_file() else 'no such folder'}; give the "
              "folder that holds your videos", file=sys.stderr)
        return 2
    if not sample and (given := [n for n in ("SAMPLE_CLIPS", "SAMPLE_DURATION", "SAMPLE_EPOCHS")
                                 if n in given_settings(globals())]):
        print(f"error: --{given[0].lower().replace('_', '-')} is for the built-in sample, not your videos (--raw-dir)",
              file=sys.stderr)
        return 2
    work = Path(WORK_DIR) if WORK_DIR else REPO_ROOT / "data" / "sample" if sample else REPO_ROOT / "data"
    raw = work / "raw" if sample else Path(RAW_DIR).resolve()
    if not sample and not SPEAKER_MANIFEST:
        print("note: no --speaker-manifest, so clips are split one by one (not by speaker) and the two benchmarks "
              "(speaker-dependent, speaker-independent) are not run: they need to know who speaks in each clip; "
              "give a CSV with columns short_name (or clip) and speaker", flush=True)
    named = manifest_speakers() if not sample and SPEAKER_MANIFEST else set()
    if len(named) == 1 and not ONE_SPEAKER:
        print(f"note: {SPEAKER_MANIFEST} names one speaker ({next(iter(named))}), so the model is of that person: "
              "--one-speaker trains the recipe measured for one person's videos (on the speaker-dependent benchmark "
              "jawOpen r strictly causal 0.63 against the defaults' 0.59); the defaults are for other voices, which "
              "such a model reads worse with that recipe (ARCHITECTURE.md, \"A recipe for one speaker\")", flush=True)
    if len(named) > 1 and ONE_SPEAKER:
        print(f"note: --one-speaker, but {SPEAKER_MANIFEST} names {len(named)} speakers: the recipe is measured "
              "for one person's videos, and a model of several voices reads new ones worse with it (the formant "
              "channels cost 0.04 of jawOpen r on new speakers' weighted mean); if the names are one person's, it "
              "trains as asked; if not, leave --one-speaker out", flush=True)
    evaluated = drawn = True
    steps = stages(raw, work, sample)
    numbers = [number for number, _, _ in steps]
    if not any(STAGE <= number <= STOP_STAGE for number in numbers):    # (--stage 12 ran nothing without a word)
        print(f"note: no stage from --stage {STAGE} to --stop-stage {STOP_STAGE}: here the stages are "
              f"{', '.join(map(str, sorted(set(numbers))))}", flush=True)
    failed_inputs = []                  # stages that left some inputs out (named in their own lines) and went on
    for number, description, command in steps:
        if not STAGE <= number <= STOP_STAGE:
            continue
        print(f"=== stage {number}: {description} [{command[0]}]", flush=True)
        if number == 6 and held_out_clips(work / "dataset") == 0:
            print(f"note: {work / 'dataset'} holds no held-out clip (stage 1.3 holds out whole speakers and keeps "
                  "at least one for training, so one video, or one speaker's videos, all train), so there is nothing "
                  "to evaluate on here; with enough of one speaker's recordings (evaluate.py's --min-clips) and "
                  "--speaker-manifest, stage 7's speaker-dependent benchmark holds out each in turn (one long video: "
                  "1_data_cleaning/split_recording.py cuts it into such recordings and writes the manifest)", flush=True)
            evaluated = False
            continue
        if number == 8 and benchmarks_in(benchmark_dir(work) / "benchmark.json") == 0:
            print("note: stage 7 scored no benchmark (it said why above), so there is no clip to draw", flush=True)
            drawn = False
            continue
        if number == 4 and not sample and (found := one_speakers_seconds(work / "dataset")) \
                and found[1] < FEW_SECONDS_OF_ONE_SPEAKER:
            print(f"note: {work / 'dataset'} trains on {found[1]:.0f} s of one speaker ({found[0]}); with under "
                  f"{FEW_SECONDS_OF_ONE_SPEAKER:g} s of a person, other people's videos beside theirs in --raw-dir "
                  "read the jaw better (on the real clips: 17 s of one man's own r 0.29 strictly causal, a model of "
                  "25 other voices that never heard him 0.44; ARCHITECTURE.md, \"How much of your own video\")",
                  flush=True)
        if "--resume" in command and not same_dataset(run_dir_for(sample), work / "dataset"):
            command = [c if c != "--resume" else "--force" for c in command]
            print(f"note: {run_dir_for(sample)} was trained on another version of {work / 'dataset'} (rebuilt since, "
                  "e.g. after an update): training it again from the start", flush=True)
        started = time.time()
        result = run_child([sys.executable, str(REPO_ROOT / command[0]), *map(str, command[1:])])
        if result.returncode == 1 and number in (1, 2, 3) and (usable := usable_after_failure(number, work, started)):
            print(f"stage {number}: some inputs failed (the lines above name each and what to do); going on with "
                  f"{usable}", file=sys.stderr, flush=True)
            failed_inputs.append(number)
        elif result.returncode != 0:
            print(f"stage {number} failed (exit {result.returncode}); fix what it names and run again: "
                  f"finished outputs are kept", file=sys.stderr)
            return result.returncode
    run_dir = run_dir_for(sample)
    ran = range(STAGE, STOP_STAGE + 1)          # what this call made: an older file of a stage not run may be
    print(f"outputs: {work}")                   # another model's (e.g. before --lookahead-ms)
    print(f"checkpoint: {run_dir / 'last.pt'}")
    if 4 in ran and (run_dir / "face.onnx").exists():
        print(f"the model as one ONNX file for an engine, 16 kHz sound in: {run_dir / 'face.onnx'}")
    if 3 in ran:
        print(f"every clip's audio-video offset, drawn: {work / 'dataset' / 'synchronisation.png'}")
    if sample and 5 in ran:
        print(f"animation of the held-out clip: {work / 'inference'} (JSON, Live Link Face CSV, PNG, preview MP4)")
    if evaluated and 6 in ran:
        print(f"evaluation: {evaluation_dir(work, sample) / 'evaluation.md'} and one PNG per held-out clip beside it")
    if not sample and SPEAKER_MANIFEST and 7 in ran:
        print(f"benchmarks: {benchmark_dir(work) / 'benchmark.md'}")
    if not sample and SPEAKER_MANIFEST and 8 in ran and drawn:
        print(f"the benchmarks' median clips, drawn: {benchmark_dir(work) / 'jaw_tracks.png'}")
        print(f"the --strength that gives your videos' range of movement: {benchmark_dir(work) / 'strength.md'}")
    if failed_inputs:
        print(f"done without the inputs that stage{'s' if len(failed_inputs) > 1 else ''} "
              f"{', '.join(map(str, failed_inputs))} left out (named above): mend or remove them and run again to "
              "include them (what is done is skipped)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, going_on="the same command again goes on from there (finished stages are skipped, and "
                                     "training resumes from its last finished epoch)"))
