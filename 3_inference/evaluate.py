"""Evaluate a checkpoint beside three baselines (the training mean, loudness -> jawOpen, and ridge
regression on the same inputs with the same look-ahead), on sync-corrected labels; or run the two
benchmarks, which train a model per fold and score it on clips it never saw.

    python 3_inference/evaluate.py --checkpoint runs/default/last.pt --dataset-dir data/dataset --json eval.json
    python 3_inference/evaluate.py --checkpoint best.pt --clips videos/*.mp4 --json eval.json  # processed first
    python 3_inference/evaluate.py --benchmark both --processed-dir data/real/processed \\
        --speaker-manifest ../shared/realdata/manifest.csv --json runs/benchmark/benchmark.json

Benchmarks (each at every --lookahead-ms, by default strictly causal and 100 ms):
- speaker-dependent: for each speaker with at least MIN_CLIPS recordings, leave one out, train on
  that speaker's other clips (and with --with-other-speakers, everyone else's too; with
  --pretrain-other-speakers, starting from one model trained on everyone else), score the
  left-out clips — the design note's use: train on your own videos. A speaker with more than
  MAX_FOLDS_PER_SPEAKER recordings has them left out that many folds, neighbours together;
- speaker-independent: FOLDS folds of whole speakers; train on the others, score the held-out ones
  (with --max-training-speakers K on only K of them: a learning curve in voices; clips named by
  --training-only are trained on in every fold and never scored: more voices, the same benchmark).
Every fold's dataset is made first, then the trainings run, --jobs at a time (on a CPU, by default
one per core, at most four, each with its share of the cores; each line they print after a label
such as [SD 0 ms 2/4]), then the folds are scored, --jobs at a time in worker processes (by
default one per core, at most four, a GPU's machine too) where their training audio is enough for
that to pay (POOL_MIN_TRAINING_SECONDS: fitting the baselines is most of the scoring).
Clips that are one recording (corpora reuse footage; voiceface/recordings.py finds them from their
audio) are held out together in both benchmarks. Labels are corrected for each clip's audio-video
offset by stage 1.3 (voiceface/sync.py), onto one lead for the whole corpus (stage 1.3's, built
once over every clip: with --dataset-args "--typical-lead-ms median" the corpus's own median), so
every fold sees the same labels.

Reports per clip and in total (median over clips, quartiles, duration-weighted mean): Pearson r of
jawOpen, mouthClose, mouthFunnel and smile at zero lag, jawOpen's r at its best lag within +-300 ms
and that lag, mouth MAE, mean jawOpen in silence (predicted and extracted), pose errors. Writes
JSON and a markdown table beside it.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import (Child, bad_lookahead, configure, given_settings, out_of_range, run_child, run_children,
                           run_main, usable_cores)

# --- settings (each can be given on the command line: CHECKPOINT as --checkpoint) -------------
CHECKPOINT = REPO_ROOT / "runs/default/last.pt"   # the model to evaluate
CLIPS = []                      # processed clip folders, folders of them, or videos
DATASET_DIR = ""                # instead of --clips: every clip of this stage 1.3 dataset's SPLIT
SPLIT = "val"                   # with --dataset-dir: which split
SYNC_CORRECTION = True          # with --clips: move each confidently measured clip onto the training corpus's lead, as
#                                 stage 1.3 does; off: score the files as they are, as inference animates them (the
#                                 jaw's best lag then says what --face-delay-ms of inference.py would put right)
JSON = ""                       # where the results go (required); the markdown table goes beside it
TRAIN_DATASET = ""              # dataset whose training split fits the baselines; default: the checkpoint's
PLOTS_DIR = ""                  # if given: a PNG per clip of predicted against extracted tracks
BENCHMARK = ""                  # speaker-dependent, speaker-independent or both: train and score fold by fold
PROCESSED_DIR = REPO_ROOT / "data/processed"   # with --benchmark: every clip's stage 1.1 and 1.2 outputs
SPEAKER_MANIFEST = ""           # with --benchmark: CSV naming each clip's speaker (required)
BENCH_DIR = REPO_ROOT / "runs/benchmark"       # with --benchmark: datasets and runs per fold (kept, reused)
LOOKAHEAD_MS = [0.0, 100.0]     # with --benchmark: the latencies to train and score
FOLDS = 5                       # with --benchmark speaker-independent: folds of whole speakers
MIN_CLIPS = 4                   # with --benchmark speaker-dependent: speakers with at least this many recordings (clips of
#                                 one recording, found from their audio by voiceface/recordings.py, count once and are
#                                 held out together)
MAX_FOLDS_PER_SPEAKER = 5       # with --benchmark speaker-dependent: at most this many folds per speaker (0: one per
#                                 recording); a speaker with more recordings has them held out in runs of neighbours in
#                                 name order (the parts of one session together), so the benchmark's time stays bounded
#                                 as the videos grow
MAX_TRAINING_RECORDINGS = 0     # with --benchmark speaker-dependent: train on only this many of the speaker's other
#                                 recordings (0: all), the ones after the held-out one in name order, so each is trained
#                                 on equally often: with 1, 2, 3 ... a learning curve (how r grows with the speaker's
#                                 minutes)
MAX_TRAINING_SPEAKERS = 0       # with --benchmark speaker-independent: train each fold on only this many of the speakers
#                                 it could train on (0: all), drawn at random per fold (SEED), fewer a subset of more:
#                                 with 2, 4, 8 ... a learning curve in speakers (how r on new voices grows with the
#                                 voices heard)
TRAINING_ONLY = []              # with --benchmark: clips of PROCESSED_DIR never held out nor scored: every
#                                 speaker-independent fold trains on them (speaker-dependent folds only with
#                                 --with-other-speakers or --pretrain-other-speakers); more voices to learn from while
#                                 the benchmark scores the same clips
WITH_OTHER_SPEAKERS = False     # with --benchmark speaker-dependent: also train on every other speaker's clips
PRETRAIN_OTHER_SPEAKERS = False  # with --benchmark speaker-dependent: train one model on every other speaker's clips
#                                 first, then fine-tune it on each fold's clips of the speaker (train.py --init-from)
FINETUNE_ARGS = ""              # with --pretrain-other-speakers: more train.py arguments for the fine-tuning runs only
TRAIN_ARGS = ""                 # with --benchmark: more train.py arguments for every fold, as one string
DATASET_ARGS = ""               # with --benchmark: more stage 1.3 arguments for every fold's dataset
SEED = 0                        # with --benchmark: which speakers share a fold
JOBS = 0                        # with --benchmark: fold trainings run at once, each on its share of the CPU cores
#                                 (threads: cores // jobs); 0: one per core, at most 4 (MAX_AUTO_JOBS), where training
#                                 runs on the CPU, and one where a GPU trains (on 2 cores, two at once ran the real clips'
#                                 benchmarks 1.26-1.27x as fast as one at a time); then as many fold scorings at once
#                                 (0: one per core, at most 4, GPU or not)
# --- end of settings ---------------------------------------------------------------------------

MAX_AUTO_JOBS = 4               # --jobs 0's most: each training holds PyTorch and its dataset in memory
POOL_MIN_TRAINING_SECONDS = 600  # folds are scored side by side only with this much training audio over them all: the
#                                  baselines' fits cost about 17 ms a second of it, the workers' start-up about 3 s


def run(script: str, *args, quiet: bool = False, made: Path | None = None, per_input: bool = False) -> int:
    """Run a stage script and return its exit status; stop on its failure, except for exit 1 —
    inputs left out, each named on its own line — when it (re)wrote `made` (stage 1.3's manifest of
    the clips it kept) or, with `per_input`, always (stages 1.1 and 1.2: the caller uses what they wrote)."""
    import subprocess
    import time
    from voiceface.formats import written_since
    started = time.time()
    result = run_child([sys.executable, str(REPO_ROOT / script), *map(str, args)],
                       stdout=subprocess.DEVNULL if quiet else None)
    if result.returncode == 1 and (per_input or made is not None and written_since(made, started)):
        return 1
    if result.returncode != 0:
        raise SystemExit(f"error: {script} failed (exit {result.returncode}); see above")
    return 0


def clip_folders(items: list, scratch: Path) -> tuple[list[Path], bool]:
    """Processed clip folders for the inputs, and whether any input was left out (each said in a line
    of its own: the others are still scored); videos go through stages 1.1 and 1.2 first (into
    `scratch`)."""
    from voiceface.cli import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, expand_inputs
    from voiceface.dataset import has_both_outputs
    folders, videos, left_out = [], [], False
    for item in map(Path, items):
        if item.is_dir() and (item / "blendshapes_and_pose.json").exists():
            folders.append(item)
        elif item.is_dir() and any((p / "blendshapes_and_pose.json").exists() for p in item.iterdir() if p.is_dir()):
            folders += sorted(p for p in item.iterdir() if (p / "blendshapes_and_pose.json").exists())
        else:
            videos.append(item)
    if videos:
        files, errors = expand_inputs(videos, VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)
        for line in errors:
            print(f"error: {line}", file=sys.stderr)
        left_out = bool(errors)
        if files:
            left_out |= bool(run("1_data_cleaning/1_extract_blendshapes.py", *files, "--output-dir", scratch,
                                 "--workers", 2, per_input=True))
            left_out |= bool(run("1_data_cleaning/2_extract_audio_features.py", *files, "--output-dir", scratch,
                                 per_input=True))
            folders += [scratch / f.stem for f in files if has_both_outputs(scratch / f.stem)]
    return folders, left_out


def corrected_clips(folders: list[Path], lead_s: float, correct: bool = True) -> list[tuple]:
    """(name, synchronised clip, shift ms) for processed clip folders, each corrected as stage 1.3
    would: a confident lag moved onto lead_s, an unsure one left as it is (all as they are
    without `correct`)."""
    from voiceface.dataset import read_processed_clip, synchronize_features
    from voiceface.sync import correction_s, estimate_clip_lag
    out = []
    for folder in folders:
        track, audio = read_processed_clip(folder)
        clip = synchronize_features(folder.name, track, audio)
        shift = correction_s(estimate_clip_lag(clip.targets, clip.mel, clip.mask), lead_s) if correct else 0.0
        if shift:
            clip = synchronize_features(folder.name, track, audio, shift)
        out.append((folder.name, clip, round(shift * 1000, 1)))
    return out


def typical_lead_of(dataset_dir: Path) -> float:
    import json
    from voiceface.dataset import MANIFEST_FILENAME
    from voiceface.sync import NATURAL_LEAD_S
    try:
        return json.loads((Path(dataset_dir) / MANIFEST_FILENAME).read_text())["sync"]["typical_lead_ms"] / 1000
    except (OSError, KeyError, ValueError):
        return NATURAL_LEAD_S


def heard_in_training(clips: list[tuple], train_dataset: Path) -> dict[str, str]:
    """Scored clip -> the training clip of train_dataset that is the same recording (voiceface/recordings.py,
    on the training split's stored mel), for every scored clip that is one: its scores are not of
    speech the model never heard."""
    import json
    import numpy as np
    from voiceface.dataset import MANIFEST_FILENAME, inputs_in_db
    from voiceface.recordings import MIN_R, shared_audio
    manifest = Path(train_dataset) / MANIFEST_FILENAME
    if not manifest.exists() or not (Path(train_dataset) / "train" / "mel.npy").exists():
        return {}
    mel = np.load(Path(train_dataset) / "train" / "mel.npy", mmap_mode="r")
    spans = [(c["clip"], c["start"], c["frames"]) for c in json.loads(manifest.read_text())["clips"] if c["split"] == "train"]
    found = {}
    for name, clip, _ in clips:
        for trained, start, frames in spans:
            stored_db = inputs_in_db(mel[start:start + frames])         # the fixed input, in dB
            if shared_audio(clip.mel, stored_db).r >= MIN_R:
                found[name] = trained
                break
    return found


def evaluate(checkpoint_path: Path, clips: list[tuple], train_dataset: Path, plots_dir: str = "",
             progress: bool = True) -> tuple[list, dict]:
    import numpy as np
    from voiceface.dataset import denormalize_targets
    from voiceface.engine import Frames
    from voiceface.evaluation import score_clips, summarise
    from voiceface.plots import plot_animation

    def frames_of(values, known):                  # 100 Hz frames at their audio-timeline times
        real = denormalize_targets(np.where(known[:, None], values, 0.5))
        real[~known] = np.nan                      # no target here: a gap in the plot, not a zero
        return Frames(None, (np.arange(len(values)) + 1) / 100, real[:, :52], real[:, 52:])

    results = score_clips(checkpoint_path, clips, train_dataset, keep_tracks=bool(plots_dir), progress=progress)
    for result in results if plots_dir else []:
        tracks = result.pop("tracks")
        everywhere = np.ones(len(tracks["model"]), bool)
        plot_animation(Path(plots_dir) / f"{result['clip']}.png", frames_of(tracks["model"], everywhere),
                       reference=frames_of(tracks["targets"], tracks["mask"]),
                       title=f"{result['clip']}: predicted (solid) against extracted (dashed)")
    return results, summarise(results)


DELAY_NOTE_MS = 40              # a median best lag this far from 0 (more than a video frame) gets a note


def delay_note(results: list[dict]) -> str:
    """A line for the clips scored as their files have them (no sync shift): where the model's jaw
    matches the video best at a lag of -L ms or more from 0 (median), recordings synchronised like
    these want inference.py --face-delay-ms L; "" when there is nothing to say."""
    import numpy as np
    lags = [r["model"]["jaw_open_best_lag_ms"] for r in results if not r["sync_shift_ms"]]
    if not lags:
        return ""
    lag = 10 * round(float(np.median(lags)) / 10)
    if abs(lag) < DELAY_NOTE_MS:
        return ""
    when = "early" if lag < 0 else "late"
    return (f"note: on the {len(lags)} clip(s) scored as their files have them, the model's jaw matches the video "
            f"best {abs(lag)} ms {when} (median best lag {lag:+d} ms): for recordings synchronised like these, "
            f"inference.py --face-delay-ms {-lag} would move it there")


# --- the benchmarks --------------------------------------------------------------------------------
def held_out_blocks(recordings: int, max_folds: int) -> list[tuple[int, int]]:
    """[start, stop) of the recordings each speaker-dependent fold holds out: one each, or with more
    than `max_folds` (> 0) recordings, `max_folds` runs of neighbours whose sizes differ by at most one."""
    folds = recordings if max_folds <= 0 else min(recordings, max_folds)
    edges = [round(k * recordings / folds) for k in range(folds + 1)]
    return list(zip(edges[:-1], edges[1:]))


def speaker_recordings(names: list[str], group: dict[str, str], partners: dict[str, list]) -> dict[str, list[list]]:
    """Each speaker's recordings among `names` (a recording: its clips, those of one recording together;
    `group`: clip -> speaker, `partners`: clip -> the clips of its recording), in name order."""
    return {speaker: [partners.get(n, [n]) for n in names if group[n] == speaker and n == partners.get(n, [n])[0]]
            for speaker in sorted({group[n] for n in names})}


def corpus_groups(folders: list[Path], speakers: dict[str, str], shared: list = ()) -> tuple[list, list, dict, dict]:
    """(clips that may be scored, --training-only clips, clip -> speaker, clip -> the clips of its
    recording) of a corpus; clips of one recording (`shared`) count as one speaker's."""
    from voiceface.recordings import merge_recordings
    only = set(TRAINING_ONLY)
    extra = [f.name for f in folders if f.name in only]
    names = [f.name for f in folders if f.name not in only]
    group = merge_recordings({n: speakers.get(n) or n for n in names + extra}, list(shared))
    return names, extra, group, {n: members for members, _ in shared for n in members}


def with_training_only(clips: list[str]) -> str:
    """The folder-name part saying how many --training-only clips a run also learns from ("" for none)."""
    count = len(set(clips) & set(TRAINING_ONLY))
    return f"__with_{count}_training_only" if count else ""


def fewest_folds_note(folders: list[Path], speakers: dict[str, str], shared: list = ()) -> str:
    """Why the speaker-dependent benchmark has no fold, and the way to one."""
    names, _, group, partners = corpus_groups(folders, speakers, shared)
    counts = {s: len(r) for s, r in speaker_recordings(names, group, partners).items()}
    most = max(counts, key=counts.get, default="")
    n = counts.get(most, 0)
    return (f"no speaker has {MIN_CLIPS} or more recordings" + (f" (the most: {most}, {n})" if most else "")
            + "; 1_data_cleaning/split_recording.py --parts cuts one long video of a speaker into more"
            + (f", or evaluate.py --min-clips {n} scores these (each fold trains on {n - 1})" if n >= 2 else ""))


def benchmark_folds(kind: str, folders: list[Path], speakers: dict[str, str],
                    shared: list = ()) -> list[tuple[str, list, list, list]]:
    """(fold name, training clips, held-out clips, clips to pretrain on first or []) of one benchmark.
    Clips of one recording (`shared`, from voiceface.recordings) are held out together and counted
    as one: a model is never scored on audio it trained on."""
    import random

    from voiceface.dataset import speaker_folds
    names, extra, group, partners = corpus_groups(folders, speakers, shared)
    with_extra = with_training_only(extra)
    if kind == "speaker-dependent":
        folds = []
        for speaker, recordings in speaker_recordings(names, group, partners).items():
            if len(recordings) < MIN_CLIPS:
                continue
            blocks = held_out_blocks(len(recordings), MAX_FOLDS_PER_SPEAKER)
            for k, (start, stop) in enumerate(blocks):
                held = [n for rec in recordings[start:stop] for n in rec]
                others = [n for n in names + extra if group[n] != speaker]
                rest = recordings[stop:] + recordings[:start]       # from the recording after the held-out ones
                if MAX_TRAINING_RECORDINGS > 0:
                    rest = rest[:MAX_TRAINING_RECORDINGS]
                mine = [n for rec in rest for n in rec]
                train = mine + (others if WITH_OTHER_SPEAKERS else [])
                # another training set or start, another folder
                suffix = ("__with_others" if WITH_OTHER_SPEAKERS else "") + ("__pretrained" if PRETRAIN_OTHER_SPEAKERS else "")
                if WITH_OTHER_SPEAKERS or PRETRAIN_OTHER_SPEAKERS:
                    suffix += with_extra
                if 0 < MAX_TRAINING_RECORDINGS < len(recordings) - (stop - start):
                    suffix += f"__{MAX_TRAINING_RECORDINGS}_recordings"
                # one recording held out: named by its clips; several, or names that could outgrow a file name (255
                # bytes; a download's title with its id): by the fold; and by a digest of all its clips: a corpus with a
                # recording more trains this fold on other clips, and its folder must not be the first one's (whose
                # dataset would be rebuilt under its finished run)
                label = "+".join(held)
                if stop - start != 1 or len(os.fsencode(label)) > 120:
                    label = f"fold_{k + 1}_of_{len(blocks)}"
                folds.append((f"{speaker.replace(' ', '_')}__{label}{suffix}__{clips_digest(train, held)}", train, held,
                              others if PRETRAIN_OTHER_SPEAKERS else []))
        return folds
    if len(set(group.values())) < 2:
        return []                 # one speaker: no one to train on while their clips are held out
    durations = {f.name: (f / "audio_features.npz").stat().st_size for f in folders if f.name in names}   # ~ length
    folds = []
    for k, held in enumerate(speaker_folds(durations, {n: group[n] for n in names}, FOLDS, SEED)):
        if not held:
            continue
        held_voices = {group[n] for n in held}
        train = [n for n in names + extra if group[n] not in held_voices]
        voices = sorted({group[n] for n in train})
        suffix = ""
        if 0 < MAX_TRAINING_SPEAKERS < len(voices):      # one order per fold: fewer speakers are a subset of more
            random.Random(f"{SEED}:{k}").shuffle(voices)
            keep = set(voices[:MAX_TRAINING_SPEAKERS])
            train, suffix = [n for n in train if group[n] in keep], f"__{MAX_TRAINING_SPEAKERS}_speakers"
        suffix += with_extra
        # named by its clips too: another --seed or another corpus puts other clips in fold k, and its folder
        # must not be the first one's (whose dataset would be rebuilt under its finished run)
        folds.append((f"fold_{k}{suffix}__{clips_digest(train, held)}", train, held, []))
    return folds


def clips_digest(*groups: list[str]) -> str:
    """Six hex digits naming one or more lists of clips (each in any order): a fold's training and
    held-out clips, or the clips a pretraining run learns from."""
    import hashlib
    return hashlib.sha1("\n|\n".join("\n".join(sorted(group)) for group in groups).encode()).hexdigest()[:6]


def training_code_hash() -> str:
    """SHA-256 over train.py and the model package: a benchmark run made by other code (or other
    defaults) is never reused."""
    import hashlib
    digest = hashlib.sha256()
    folder = REPO_ROOT / "2_architecture_training"
    for path in [folder / "train.py", *sorted((folder / "models").glob("*.py"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def pretraining(folder: Path, clips: list[str], data_tag: str, lead_ms: float, args: str, tag: str,
                label: str) -> Child:
    """The training (once, then reused) of a model on `clips`, all of them in training; its dataset is made now."""
    import shlex
    dataset = folder / f"dataset_{data_tag}"
    run("1_data_cleaning/3_create_dataset.py", "--processed-dir", PROCESSED_DIR, "--output-dir", dataset,
        "--speaker-manifest", SPEAKER_MANIFEST, "--clips", *clips, "--val-fraction", 0,
        "--typical-lead-ms", lead_ms, *shlex.split(DATASET_ARGS), quiet=True)
    run_dir = folder / f"run_{tag}"
    return Child(label, f"=== pretraining on {len(clips)} clips of other speakers -> {run_dir}",
                 training_command(dataset, run_dir, args))


def training_command(dataset: Path, run_dir: Path, args: str) -> list[str]:
    """train.py on `dataset` into `run_dir`, going on from its last epoch where it has one (a finished run says so)."""
    import shlex
    return [sys.executable, str(REPO_ROOT / "2_architecture_training/train.py"), "--dataset-dir", str(dataset),
            "--run-dir", str(run_dir), *shlex.split(args), *(["--resume"] if (run_dir / "last.pt").exists() else [])]


def trainings_at_once(trainings: int) -> int:
    """JOBS, or with 0 what it means here: one training per core, at most MAX_AUTO_JOBS, where the
    trainings run on the CPU; one where train.py's --device auto finds a GPU."""
    if JOBS > 0:
        return min(JOBS, max(trainings, 1))
    import torch
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        return 1
    return max(1, min(usable_cores(), MAX_AUTO_JOBS, trainings))


def threads_each(at_once: int) -> str:
    """The threads each of `at_once` processes side by side gets: its share of the cores."""
    return str(max(1, usable_cores() // at_once))


def train_all(children: list[Child]) -> None:
    """Run the trainings, JOBS at once, each with its share of the cores; stop at a failure, naming it."""
    at_once = trainings_at_once(len(children))
    threads = threads_each(at_once)
    # side by side, each PyTorch would start a thread per core (four threads spinning on two cores ran two
    # trainings 6x slower); MKL's variable too, which PyTorch takes before OpenMP's
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads} if at_once > 1 else {}
    if at_once > 1:
        print(f"{len(children)} trainings, {at_once} at once, {threads} thread{'s' * (threads != '1')} each "
              "(--jobs); each line says whose it is", flush=True)
    for child, code in zip(children, run_children(children, at_once, env)):
        if code not in (0, None):           # (one stopped because another failed reads None; a stop by Ctrl-C raised)
            raise SystemExit(f"error: train.py failed (exit {code}) for {child.header.removeprefix('=== ')}; "
                             "see its lines above")


def score_fold(run_dir: Path, dataset: Path, held: list[str], lead_ms: float, processed_dir: Path,
               progress: bool = True) -> list[dict]:
    """A benchmark fold's model scored on the clips it held out. Every held-out clip is scored,
    whatever the dataset settings let the model learn from: a clip stage 1.3 dropped as unsure
    (--unsure-sync drop) is scored uncorrected, as with keep. The last epoch is scored: best.pt was
    chosen on these very clips, which would flatter it."""
    import json
    from voiceface.dataset import MANIFEST_FILENAME
    from voiceface.evaluation import dataset_clips
    manifest = json.loads((dataset / MANIFEST_FILENAME).read_text())
    scored = dataset_clips(dataset, "val", processed_dir)      # (a reused dataset may name an old folder)
    dropped = [entry["clip"] for entry in manifest["sync"].get("dropped_as_unsure", []) if entry["clip"] in held]
    scored += corrected_clips([Path(processed_dir) / name for name in dropped], lead_ms / 1000)
    return evaluate(run_dir / "last.pt", scored, dataset, progress=progress)[0]


def _score_fold_in_worker(*fold) -> tuple[list[dict], dict]:
    from voiceface.formats import library_versions
    return score_fold(*fold, progress=False), library_versions()


def score_folds(folds: list[tuple], training_seconds: float) -> tuple[list[list[dict]], dict]:
    """score_fold for each (run_dir, dataset, held, lead_ms, processed_dir), results in their order,
    and the versions of the libraries that scored them (voiceface.formats.library_versions). With
    JOBS (or with 0 the cores, at most MAX_AUTO_JOBS) above one and at least
    POOL_MIN_TRAINING_SECONDS of training audio to fit baselines on over all the folds, several at
    once in worker processes, each with its share of the cores; Ctrl-C stops them all."""
    import multiprocessing
    import signal
    from concurrent.futures import ProcessPoolExecutor
    from voiceface.formats import library_versions
    at_once = min(JOBS or min(usable_cores(), MAX_AUTO_JOBS), len(folds))
    if at_once <= 1 or training_seconds < POOL_MIN_TRAINING_SECONDS:
        results = [score_fold(*fold) for fold in folds]
        return results, library_versions()
    threads = threads_each(at_once)
    pools = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    before = {name: os.environ.get(name) for name in pools}
    # spawn, not fork (this process may hold PyTorch's threads); the workers start ignoring Ctrl-C, so
    # one during their imports prints no traceback, and take their share of the cores from the environment
    pool = ProcessPoolExecutor(max_workers=at_once, mp_context=multiprocessing.get_context("spawn"))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.environ.update({name: threads for name in pools})
        futures = [pool.submit(_score_fold_in_worker, *fold) for fold in folds]      # starts the workers
    finally:
        signal.signal(signal.SIGINT, previous)
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    print(f"{len(folds)} folds scored, {at_once} at once, {threads} thread{'s' * (threads != '1')} each (--jobs)",
          flush=True)
    try:
        from voiceface.progress import progress_bar
        scored = [future.result() for future in progress_bar(futures, desc="scoring", unit="fold")]
        return [results for results, _ in scored], {**library_versions(), **scored[0][1]}
    except BaseException:          # Ctrl-C, or a fold that failed: nothing to keep, so the others stop now
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            if process.is_alive():
                process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_benchmarks(settings: dict) -> int:
    """settings: this script's, as configure() parsed them (the report records them)."""
    import hashlib
    import json
    import shlex

    from voiceface.audio import AUDIO_FEATURES_FILENAME
    from voiceface.dataset import MANIFEST_FILENAME, has_both_outputs, speakers_from_manifest
    from voiceface.evaluation import BENCHMARK_KINDS, benchmark_data_tag, benchmark_key, markdown, summarise
    from voiceface.recordings import MelFiles, describe, recording_groups, to_dict
    from voiceface.cli import settings_for_header
    from voiceface.formats import now_iso, write_json_atomic, write_text_atomic
    if not SPEAKER_MANIFEST:
        print("error: the benchmarks need to know who speaks in each clip: give --speaker-manifest CSV "
              "(columns short_name or clip, and speaker)", file=sys.stderr)
        return 2
    kinds = list(BENCHMARK_KINDS) if BENCHMARK == "both" else [BENCHMARK]
    if any(k not in BENCHMARK_KINDS for k in kinds):
        print(f"error: --benchmark {BENCHMARK!r}: say speaker-dependent, speaker-independent or both", file=sys.stderr)
        return 2
    # one fold, or one recording of a speaker, would leave a fold nothing to train on
    if problem := out_of_range(("--folds", FOLDS, 2, False, "each fold trains on what it does not hold out"),
                               ("--min-clips", MIN_CLIPS, 2, False, "each fold trains on what it does not hold out")):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if JOBS < 0:
        print(f"error: --jobs {JOBS}: give how many trainings run at once, or 0 to let the machine say", file=sys.stderr)
        return 2
    if MAX_FOLDS_PER_SPEAKER < 0 or MAX_FOLDS_PER_SPEAKER == 1:
        print(f"error: --max-folds-per-speaker {MAX_FOLDS_PER_SPEAKER}: give 0 (a fold per recording) or 2 or more "
              "(each fold trains on what it does not hold out)", file=sys.stderr)
        return 2
    folders = sorted(p for p in Path(PROCESSED_DIR).iterdir() if has_both_outputs(p))
    if missing := sorted(set(TRAINING_ONLY) - {f.name for f in folders}):
        print(f"error: --training-only {' '.join(missing)}: no such processed clip in {PROCESSED_DIR} (a folder with "
              f"stage 1.1's and 1.2's outputs); put the clips there or leave them out", file=sys.stderr)
        return 2
    speakers = speakers_from_manifest(SPEAKER_MANIFEST)
    bench = Path(BENCH_DIR)
    # one typical lead for the whole corpus, so that every fold's labels are the same labels
    data_tag = benchmark_data_tag(DATASET_ARGS)
    corpus = bench / f"corpus_dataset_{data_tag}"
    run("1_data_cleaning/3_create_dataset.py", "--processed-dir", PROCESSED_DIR, "--output-dir", corpus,
        "--speaker-manifest", SPEAKER_MANIFEST, *shlex.split(DATASET_ARGS), quiet=True, made=corpus / MANIFEST_FILENAME)
    lead_ms = typical_lead_of(corpus) * 1000
    # a clip stage 1.3 cannot use (said above: a silent track, a face never seen, ...) is in no fold
    left_out = {entry["clip"] for entry in json.loads((corpus / MANIFEST_FILENAME).read_text()).get("excluded", [])}
    if left_out:
        print(f"left out of the benchmarks, as stage 1.3 leaves them out of every dataset: {', '.join(sorted(left_out))}",
              file=sys.stderr, flush=True)
        folders = [f for f in folders if f.name not in left_out]
    shared = recording_groups(MelFiles({f.name: f / AUDIO_FEATURES_FILENAME for f in folders}))
    for line in describe(shared):
        print(f"shared recording: {line}; held out together, never one in training and one scored", flush=True)
    # what made the report: every setting of this script (the folds' runs record their own training), the libraries
    report, sections = {"processed_dir": str(PROCESSED_DIR), "typical_lead_ms": lead_ms, "train_args": TRAIN_ARGS,
                        "dataset_args": DATASET_ARGS, "settings": settings_for_header(settings), "libraries": {},
                        "created": now_iso(), "shared_recordings": to_dict(shared), "left_out": sorted(left_out),
                        "benchmarks": {}, "not_run": {}}, []
    # every fold's dataset first, and the runs they start from, then the trainings (several at once
    # with --jobs), pretraining before the folds that start from it, then the scoring
    scoring, pretrain_runs, fold_runs = [], {}, []
    for kind in kinds:
        folds = benchmark_folds(kind, folders, speakers, shared)
        if not folds:              # said on the terminal, and in the report and its table
            report["not_run"][kind] = (fewest_folds_note(folders, speakers, shared) if kind == "speaker-dependent" else
                                       "every clip is one speaker's, and new voices are measured on a speaker no fold "
                                       "trained on")
            print(f"{kind}: {report['not_run'][kind]}; nothing to do", file=sys.stderr)
            scoring.append((kind, None, []))          # its table says why, in its place
            continue
        short = "SD" if kind == "speaker-dependent" else "SI"
        for lookahead in LOOKAHEAD_MS:
            args = f"{TRAIN_ARGS} --lookahead-ms {lookahead:g}"
            # a run is reused only for the same arguments, dataset settings and training code (its defaults included)
            tag = hashlib.sha1(args.encode() + data_tag.encode() + training_code_hash().encode()).hexdigest()[:8]
            runs = []
            for number, (name, train, held, pretrain) in enumerate(folds, 1):
                folder = bench / kind / name
                fold_args, fold_tag = args, tag
                if pretrain:      # one model of everyone else (the same for each of a speaker's folds), then fine-tuned
                    speaker = name.split("__")[0]
                    without = bench / kind / (f"pretrain_without_{speaker}{with_training_only(pretrain)}"
                                              f"__{clips_digest(pretrain)}")      # named by its clips, as the folds are
                    start = without / f"run_{tag}" / "last.pt"
                    if start not in pretrain_runs:       # trained (or found done) once per speaker and look-ahead
                        pretrain_runs[start] = pretraining(without, pretrain, data_tag, lead_ms, args, tag,
                                                           f"{short} {lookahead:g} ms pretrain {speaker}")
                    fold_args = f"{args} {FINETUNE_ARGS} --init-from {shlex.quote(str(start))}"
                    fold_tag = hashlib.sha1(fold_args.encode() + tag.encode()).hexdigest()[:8]
                dataset = folder / f"dataset_{data_tag}"
                run("1_data_cleaning/3_create_dataset.py", "--processed-dir", PROCESSED_DIR, "--output-dir", dataset,
                    "--speaker-manifest", SPEAKER_MANIFEST, "--clips", *train, *held, "--val-clips", *held,
                    "--typical-lead-ms", lead_ms, *shlex.split(DATASET_ARGS), quiet=True)
                run_dir = folder / f"run_{fold_tag}"
                header = (f"=== {kind}, look-ahead {lookahead:g} ms, {name}: {len(train)} clips train, "
                          f"{len(held)} held out -> {run_dir}")
                fold_runs.append(Child(f"{short} {lookahead:g} ms {number}/{len(folds)}", header,
                                       training_command(dataset, run_dir, fold_args)))
                runs.append((name, train, held, dataset, run_dir))
            scoring.append((kind, lookahead, runs))
    train_all(list(pretrain_runs.values()))
    train_all(fold_runs)
    # every fold scored (several at once where there is enough to score), then each benchmark's table
    folds = [(run_dir, dataset, held, lead_ms, Path(PROCESSED_DIR))
             for _, lookahead, runs in scoring if lookahead is not None for _, _, held, dataset, run_dir in runs]
    manifests = {dataset: json.loads((dataset / MANIFEST_FILENAME).read_text()) for _, dataset, *_ in folds}
    train_seconds = {dataset: sum(c["duration_s"] for c in manifest["clips"] if c["split"] == "train")
                     for dataset, manifest in manifests.items()}
    scores, report["libraries"] = score_folds(folds, sum(train_seconds[dataset] for _, dataset, *_ in folds))
    scores = iter(scores)
    for kind, lookahead, runs in scoring:
        if lookahead is None:
            sections.append(f"### {kind}\n\nNot run: {report['not_run'][kind]}.\n")
            continue
        results, per_fold = [], []
        for name, train, held, dataset, run_dir in runs:
            results += next(scores)
            trained = manifests[dataset]["clips"]
            per_fold.append({"fold": name, "train": train, "held_out": held, "run_dir": str(run_dir),
                             "train_speakers": len({c["speaker"] for c in trained if c["split"] == "train"}),
                             "train_seconds": round(train_seconds[dataset], 2)})
        summary = summarise(results)
        key = benchmark_key(kind, lookahead)
        report["benchmarks"][key] = {"folds": per_fold, "clips": results, "summary": summary}
        seconds = sorted(f["train_seconds"] for f in per_fold)
        sections.append(markdown(results, summary, f"### {key}") + f"\nTraining audio per fold: {seconds[0]:g}–"
                        f"{seconds[-1]:g} s (median {seconds[len(seconds) // 2]:g} s).\n")
        print(sections[-1], flush=True)
    write_json_atomic(Path(JSON), report)
    write_text_atomic(Path(JSON).with_suffix(".md"), "\n".join(sections))
    print(f"wrote {JSON} and {Path(JSON).with_suffix('.md')}")
    return 0


def main(argv=None) -> int:
    settings = configure(globals(), argv)
    import tempfile
    from voiceface.errors import InputError
    from voiceface.formats import write_json_atomic, write_text_atomic
    if not JSON:
        print("error: say where the results go with --json OUT.json", file=sys.stderr)
        return 2
    from voiceface.formats import ensure_writable_folder
    try:
        ensure_writable_folder(Path(JSON).parent, "--json path")
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if BENCHMARK:
        # one model's settings beside --benchmark (which trains its own fold by fold) were silently ignored
        if scoring := [name for name in ("CHECKPOINT", "CLIPS", "DATASET_DIR", "TRAIN_DATASET", "PLOTS_DIR")
                       if name in given_settings(globals())]:
            option = "--" + scoring[0].lower().replace("_", "-")
            print(f"error: {option} is for scoring one model; --benchmark trains and scores its own, fold by fold: "
                  "run the two separately", file=sys.stderr)
            return 2
        if problem := bad_lookahead(LOOKAHEAD_MS):        # refused before any fold's dataset is made
            print(f"error: {problem}", file=sys.stderr)
            return 1
        try:
            return run_benchmarks(settings)
        except InputError as error:      # a fold's clips unreadable, say: one line, not a traceback
            print(f"error: {error}", file=sys.stderr)
            return 1
    from voiceface.dataset import MANIFEST_FILENAME, read_dataset_manifest
    if DATASET_DIR and SPLIT not in ("train", "val"):
        print(f"error: --split {SPLIT}: a stage 1.3 dataset has the splits train and val", file=sys.stderr)
        return 2
    try:
        scored_dataset = read_dataset_manifest(DATASET_DIR) if DATASET_DIR else {"clips": []}
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        from voiceface.engine import load_model
        _, checkpoint = load_model(CHECKPOINT)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from voiceface.formats import recorded_path
    # the baselines are fitted on --train-dataset, else --dataset-dir's training split, else the checkpoint's dataset
    own = not TRAIN_DATASET and not any(c.get("split") == "train" for c in scored_dataset["clips"])
    train_dataset = (recorded_path(checkpoint["training"]["dataset_dir"]) if own
                     else Path(TRAIN_DATASET or DATASET_DIR))
    if (own or TRAIN_DATASET) and not (train_dataset / MANIFEST_FILENAME).exists():   # (--dataset-dir's: said below)
        print(f"error: {train_dataset}: no stage 1.3 dataset here to fit the baselines on "
              f"({f'the one {CHECKPOINT} was trained on: moved or deleted' if own else '--train-dataset'}); "
              "give --train-dataset DIR, the dataset the model was trained on (or another with a training split)",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        folders, left_out = clip_folders(CLIPS, Path(scratch)) if CLIPS else ([], False)
        clips = corrected_clips(folders, typical_lead_of(train_dataset), SYNC_CORRECTION)
        from voiceface.evaluation import dataset_clips, markdown
        try:
            clips += dataset_clips(Path(DATASET_DIR), SPLIT) if DATASET_DIR else []
        except InputError as error:            # the clips it was made from moved or deleted
            print(f"error: {error}", file=sys.stderr)
            return 1
        if not clips:
            print("error: no clips to evaluate; give processed clip folders or videos with --clips", file=sys.stderr)
            return 1
        heard = heard_in_training(clips, train_dataset)
        for name, trained in heard.items():
            print(f"warning: {name} is the same recording as the training clip {trained} of {train_dataset}: "
                  f"its scores are not of unheard speech; score clips the model was not trained on", file=sys.stderr)
        try:
            results, summary = evaluate(Path(CHECKPOINT), clips, train_dataset, PLOTS_DIR)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    for result in results:
        result["heard_in_training"] = heard.get(result["clip"])
    write_json_atomic(Path(JSON), {"checkpoint": str(CHECKPOINT), "train_dataset": str(train_dataset),
                                   "sync_correction": {
                                       "clips": ("onto the training lead where confident" if SYNC_CORRECTION else
                                                 "none (--no-sync-correction): the files as they are") if CLIPS else None,
                                       "dataset": "as stage 1.3 made it (its manifest has each clip's shift)"
                                                  if DATASET_DIR else None},
                                   "clips": results, "summary": summary})
    table = markdown(results, summary)
    write_text_atomic(Path(JSON).with_suffix(".md"), table)
    print(table)
    if note := delay_note(results):
        print(note)
    print(f"wrote {JSON} and {Path(JSON).with_suffix('.md')}")
    if left_out:
        print("error: some inputs were left out (the lines above name each); the others are scored above",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, going_on="with --benchmark, the same command again goes on from the folds "
                                     "already trained"))
