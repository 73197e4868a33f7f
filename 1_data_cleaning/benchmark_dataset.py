"""Benchmark stage 1.3 (not a test): the whole stage as a user runs it, in seconds of audio per
second, and its costliest step, each clip's audio-video offset (voiceface.sync's evidence at every
lag), beside the same evidence written plainly (sync.evidence_by_lag_plainly: each lag's two ridge
folds fitted and scored one at a time) on the same clips, measured in the same run: the ratio. Also
the search for clips that share a recording, which compares the pairs its index of landmarks
nominates, beside comparing every pair (min_votes None) and comparing every pair with every candidate
offset checked on the spectrogram (min_envelope_r None as well): the ratios, and whether they find
the same recordings; and the search on SEARCH_CLIPS generated clips of 4 s with 20 copies among them
(excerpts of 2.5 s, up to 30 dB quieter, half with noise), against every pair's time (every pair of
40 of them compared and timed, per pair, times the pairs).

    python 1_data_cleaning/benchmark_dataset.py        # the sample's clips: `python run_pipeline.py --stop-stage 2` first
    python 1_data_cleaning/benchmark_dataset.py --processed-dir data/realf/processed

Aim: the sync evidence >= 3x its plain reference; the whole stage >= 50x real time on the 33 real
clips (on the sample's 2 minutes too since scipy.signal's import went: 92-94x);
the shared-recording search >= 2x the one that checks every candidate, finding the same; on 1,000
generated clips >= 20x comparing every pair.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")          # one core, for both sides
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: PROCESSED_DIR as --processed-dir) -------
PROCESSED_DIR = REPO_ROOT / "data/sample/processed"   # stage 1.1 and 1.2 outputs (run_pipeline.py makes this one)
REPEATS = 3                     # best of this many runs
SEARCH_CLIPS = 1000             # generated clips for the shared-recording search at scale (0: not run)
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv)
    import json
    import runpy
    import subprocess
    import tempfile
    import time

    import numpy as np

    from voiceface import recordings, sync
    from voiceface.audio import AUDIO_FEATURES_FILENAME, compute_features, read_audio_features
    from voiceface.benchmarks import best_seconds
    from voiceface.cli import out_of_range
    from voiceface.constants import FRAME_RATE, SAMPLE_RATE
    from voiceface.dataset import MANIFEST_FILENAME, has_both_outputs
    from voiceface.errors import InputError
    from voiceface.recordings import recording_groups
    from voiceface.synthetic import speech_utterance
    if refusal := out_of_range(("--repeats", REPEATS, 1, False), ("--search-clips", SEARCH_CLIPS, 0, False)):
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    folders = sorted(p for p in Path(PROCESSED_DIR).iterdir() if has_both_outputs(p)) if Path(PROCESSED_DIR).is_dir() else []
    if not folders:
        print(f"error: {PROCESSED_DIR}: no processed clips (stage 1.1 and 1.2 outputs); run `python run_pipeline.py "
              "--stop-stage 2` first, or pass --processed-dir", file=sys.stderr)
        return 1
    stage = Path(__file__).parent / "3_create_dataset.py"

    # the whole stage, as a user runs it (a fresh process: imports included), into a scratch folder each time
    made = {}

    def whole_stage():
        with tempfile.TemporaryDirectory() as scratch:
            result = subprocess.run([sys.executable, str(stage), "--processed-dir", str(PROCESSED_DIR), "--output-dir",
                                     str(Path(scratch) / "dataset")], capture_output=True, text=True)
            if result.returncode not in (0, 1):          # 1: some clips left out, each named; the rest is a dataset
                raise SystemExit(f"error: stage 1.3 failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
            manifest = json.loads((Path(scratch) / "dataset" / MANIFEST_FILENAME).read_text())
            made.update(seconds=sum(c["duration_s"] for c in manifest["clips"]), clips=len(manifest["clips"]))
    stage_s = best_seconds(whole_stage, REPEATS)

    # the sync evidence on each clip's synchronised targets, as stage 1.3 estimates it, fast and plainly
    load_clip = runpy.run_path(str(stage), run_name="benchmark")["load_clip"]
    inputs = []
    for folder in folders:
        try:
            clip = load_clip(folder)[0]
        except InputError:
            continue                                       # stage 1.3 leaves it out too (said by the run above)
        inputs.append((sync.smoothed_mouth(clip.targets), sync.band_envelopes(clip.mel), np.asarray(clip.mask, bool)))
    max_lag = int(round(sync.SEARCH_S * FRAME_RATE))

    def evidence(function):
        return [function(mouth, bands, valid, max_lag)[1] for mouth, bands, valid in inputs]
    fast_s = best_seconds(lambda: evidence(sync.evidence_by_lag), REPEATS)
    plain_s = best_seconds(lambda: evidence(sync.evidence_by_lag_plainly), REPEATS)
    apart = max(float(np.nanmax(np.abs(a - b), initial=0.0))
                for a, b in zip(evidence(sync.evidence_by_lag), evidence(sync.evidence_by_lag_plainly)))

    # shared recordings: the pairs the index nominates, every pair, every pair and candidate, on their log-mels
    mels = {f.name: read_audio_features(f / AUDIO_FEATURES_FILENAME).mel for f in folders}
    pairs = len(mels) * (len(mels) - 1) // 2
    groups_s = best_seconds(lambda: recording_groups(mels), REPEATS)
    pairs_s = best_seconds(lambda: recording_groups(mels, min_votes=None), REPEATS)
    every_s = best_seconds(lambda: recording_groups(mels, min_envelope_r=None, min_votes=None), REPEATS)
    found = recording_groups(mels)
    same = found == recording_groups(mels, min_votes=None) == recording_groups(mels, min_envelope_r=None, min_votes=None)

    # the search at scale: generated clips of 4 s, 20 of them excerpts of others
    if SEARCH_CLIPS:
        rng = np.random.default_rng(0)
        audio = [speech_utterance(4.0, SAMPLE_RATE, 1000 + k) for k in range(SEARCH_CLIPS)]
        copies = []
        for k in range(20):
            source = int(rng.integers(SEARCH_CLIPS))
            start = int(rng.integers(0, len(audio[source]) - int(2.5 * SAMPLE_RATE)))
            piece = audio[source][start:start + int(2.5 * SAMPLE_RATE)] * 10 ** (-rng.uniform(0, 30) / 20)
            if k % 2:
                piece = piece + 1e-3 * rng.standard_normal(len(piece))
            audio.append(piece.astype(np.float32))
            copies.append((f"g{source:05d}", f"g{len(audio) - 1:05d}"))
        generated = {f"g{k:05d}": compute_features(a).mel for k, a in enumerate(audio)}
        started = time.perf_counter()                    # one run, timed, whose groups are checked below
        many = recording_groups(generated)
        many_s = time.perf_counter() - started
        prepared = [recordings.prepare(m) for m in generated.values()]
        some = sorted(rng.choice(len(generated), 40, replace=False))          # every pair of 40 of them: 780 pairs
        subset = {f"g{k:05d}": generated[f"g{k:05d}"] for k in some}
        per_pair_s = best_seconds(lambda: recording_groups(subset, min_votes=None), 1) / (40 * 39 // 2)
        many_pairs = len(generated) * (len(generated) - 1) // 2
        nominated = len(recordings.candidate_pairs(prepared))
        alike = [c for c in copies if recordings.shared_audio(generated[c[0]], generated[c[1]]).r >= recordings.MIN_R]
        kept = sum(any(set(c) <= set(members) for members, _ in many) for c in alike)

    audio_s = made["seconds"]
    print(f"stage 1.3 on {made['clips']} clips of {PROCESSED_DIR} ({audio_s:.1f} s of audio), best of {REPEATS}")
    print(f"  the whole stage (a fresh process):  {stage_s:7.2f} s   {audio_s / stage_s:7.1f}x real time   (aim >= 50x)")
    print(f"  sync evidence, {2 * max_lag + 1} lags per clip:  {fast_s:7.2f} s   {audio_s / fast_s:7.1f}x real time")
    print(f"  the same written plainly:           {plain_s:7.2f} s   {audio_s / plain_s:7.1f}x real time")
    print(f"  ratio plain / fast:                 {plain_s / fast_s:7.2f}         (aim >= 3; they agree within {apart:.1e})")
    print(f"  shared recordings, {pairs} pairs:    {groups_s:7.2f} s   {1000 * groups_s / max(pairs, 1):7.2f} ms a pair "
          "(the pairs the index nominates compared)")
    print(f"  every pair compared:                {pairs_s:7.2f} s   {1000 * pairs_s / max(pairs, 1):7.2f} ms a pair")
    print(f"  ... every candidate checked:        {every_s:7.2f} s   {1000 * every_s / max(pairs, 1):7.2f} ms a pair")
    print(f"  ratio every pair / index:           {pairs_s / groups_s:7.2f}")
    print(f"  ratio every candidate / pruned:     {every_s / pairs_s:7.2f}         (aim >= 2; "
          + ("the same recordings found all three ways)" if same else "NOT the same recordings found)"))
    if SEARCH_CLIPS:
        print(f"  {len(generated)} generated clips of 4 s:    {many_s:7.2f} s   for {many_pairs} pairs, "
              f"{nominated} of them compared, {len(many)} groups found")
        print(f"  every pair compared (estimated):    {per_pair_s * many_pairs:7.0f} s   ({1000 * per_pair_s:.2f} ms a pair, "
              "timed on the 780 pairs of 40 of them)")
        print(f"  ratio every pair / index:           {per_pair_s * many_pairs / many_s:7.0f}         (aim >= 20; "
              f"of the 20 copies the {len(alike)} the comparison finds: {kept} grouped)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
