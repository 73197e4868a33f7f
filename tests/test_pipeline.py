"""The pipeline runner on a miniature built-in sample, and the evaluation script."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, as_a_terminal_starts_it, by_default, run_script
from voiceface.formats import sha256_file


def run_pipeline(*args):
    return subprocess.run([sys.executable, str(REPO_ROOT / "run_pipeline.py"), *map(str, args)], cwd="/",
                          capture_output=True, text=True, timeout=900, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def test_evaluation_reports_the_model_and_three_baselines_on_sync_corrected_labels(trained_run, learn_dataset, tmp_path):
    out = tmp_path / "evaluation.json"
    result = run_script("3_inference/evaluate.py", "--checkpoint", trained_run / "best.pt", "--dataset-dir",
                        learn_dataset / "dataset", "--json", out, "--plots-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert [c["clip"] for c in report["clips"]] == ["sample_24"]
    clip = report["clips"][0]
    for label in ("model", "ridge", "loudness", "mean_face"):
        for key in ("mae", "mouth_mae", "jaw_open_r", "mouth_close_r", "mouth_funnel_r", "smile_r",
                    "translation_mae_cm", "rotation_error_deg", "silence_jaw_open"):
            assert key in clip[label]
    manifest = json.loads((learn_dataset / "dataset" / "dataset_manifest.json").read_text())
    shift = next(c["sync"]["applied_shift_ms"] for c in manifest["clips"] if c["clip"] == "sample_24")
    assert clip["sync_shift_ms"] == shift                     # scored on the labels stage 1.3 corrected
    assert clip["mean_face"]["jaw_open_r"] == 0.0            # a constant explains nothing
    assert clip["loudness"]["jaw_open_r"] > 0.5               # loudness does follow the generated jaw
    assert clip["ridge"]["jaw_open_r"] > 0.7                  # so does a linear model of the mel
    assert clip["model"]["mouth_mae"] < clip["mean_face"]["mouth_mae"]
    assert clip["model"]["jaw_open_best_r"] >= clip["model"]["jaw_open_r"]
    assert abs(clip["model"]["jaw_open_best_lag_ms"]) <= 20  # causal, and not late
    assert clip["model"]["silence_jaw_open"] < clip["model"]["jaw_open_r"]
    # the jaw while the voice is on, pauses left out: the sound's loudness still follows it there
    assert "jaw_open_r_in_speech" not in clip["mean_face"]
    assert clip["loudness"]["jaw_open_r_in_speech"] > 0.3 and clip["ridge"]["jaw_open_r_in_speech"] > 0.5
    assert -1 <= clip["model"]["jaw_open_r_in_speech"] <= 1
    summary = report["summary"]["model"]
    assert summary["weighted_mean"]["mouth_mae"] == pytest.approx(clip["model"]["mouth_mae"])
    assert summary["median"]["jaw_open_r"] == pytest.approx(clip["model"]["jaw_open_r"])
    table = out.with_suffix(".md").read_text()
    assert "| TCN |" in table and "| ridge (same inputs, same look-ahead) |" in table
    assert (tmp_path / "sample_24.png").read_bytes()[:4] == b"\x89PNG"
    assert clip["heard_in_training"] is None and "warning" not in result.stderr
    # scored on clips it trained on: said, clip by clip, and still scored
    seen = run_script("3_inference/evaluate.py", "--checkpoint", trained_run / "best.pt", "--dataset-dir",
                      learn_dataset / "dataset", "--split", "train", "--json", tmp_path / "seen.json")
    assert seen.returncode == 0, seen.stderr
    assert [c["heard_in_training"] for c in json.loads((tmp_path / "seen.json").read_text())["clips"]] == \
        [f"sample_{k}" for k in range(20, 24)]
    assert seen.stderr.count("is the same recording as the training clip") == 4


def test_evaluating_clip_folders_corrects_their_offset_first(trained_run, learn_dataset, face_model, tmp_path):
    from voiceface.synthetic import write_talking_face_clip
    write_talking_face_clip(tmp_path / "raw" / "late_sound.mp4", duration=6.0, seed=31, mouth_lead=0.2)
    out = tmp_path / "evaluation.json"
    result = run_script("3_inference/evaluate.py", "--checkpoint", trained_run / "best.pt", "--clips",
                        tmp_path / "raw" / "late_sound.mp4", "--json", out)
    assert result.returncode == 0, result.stderr
    clip = json.loads(out.read_text())["clips"][0]
    lead = json.loads((learn_dataset / "dataset" / "dataset_manifest.json").read_text())["sync"]["typical_lead_ms"]
    # the sound comes 200 ms after the mouth: the labels are taken ~200 ms earlier, onto the training lead
    assert abs(clip["sync_shift_ms"] - (-200 - lead)) <= 1000 / 30
    assert clip["model"]["jaw_open_r"] > 0.6 and abs(clip["model"]["jaw_open_best_lag_ms"]) <= 40
    assert "--face-delay-ms" not in result.stdout                  # moved onto the training lead: no note
    # scored as the file has it (what inference animates): the model's jaw is late by the difference
    # of the leads, which its best lag reports (and inference.py --face-delay-ms would undo)
    result = run_script("3_inference/evaluate.py", "--checkpoint", trained_run / "best.pt", "--clips",
                        tmp_path / "raw" / "late_sound.mp4", "--no-sync-correction", "--json", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    clip = report["clips"][0]
    assert clip["sync_shift_ms"] == 0 and report["sync_correction"]["clips"].startswith("none")
    assert abs(clip["model"]["jaw_open_best_lag_ms"] - (200 + lead)) <= 40, (clip["model"], lead)
    assert clip["model"]["jaw_open_best_r"] > 0.6 > clip["model"]["jaw_open_r"]
    late = 10 * round(clip["model"]["jaw_open_best_lag_ms"] / 10)
    assert f"best {late} ms late (median best lag {late:+d} ms)" in result.stdout, result.stdout[-600:]
    assert f"inference.py --face-delay-ms {-late} would move it there" in result.stdout
    # a damaged video and a sound-only file among the clips: each gets its line, the rest is scored,
    # and the exit says something was left out (the first bad file stopped the whole evaluation)
    (tmp_path / "raw" / "damaged.mp4").write_bytes(b"not a video")
    from voiceface.synthetic import speech_envelope, write_audio_file
    write_audio_file(tmp_path / "raw" / "voice.m4a", 0.3 * speech_envelope(2.0, 16000, 3), 16000)
    result = run_script("3_inference/evaluate.py", "--checkpoint", trained_run / "best.pt", "--clips",
                        *(tmp_path / "raw" / name for name in ("damaged.mp4", "late_sound.mp4", "voice.m4a")),
                        "--json", out)
    assert result.returncode == 1 and "damaged.mp4: not a readable" in result.stderr, result.stderr[-2000:]
    assert "voice.m4a: has no video stream" in result.stderr and "some inputs were left out" in result.stderr
    assert [c["clip"] for c in json.loads(out.read_text())["clips"]] == ["late_sound"]


def test_evaluating_a_dataset_without_a_training_split_fits_the_baselines_on_the_models_own(trained_run,
                                                                                          learn_dataset, tmp_path):
    # a dataset of new recordings only (every clip held out) used to end in a traceback from np.polyfit
    result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", learn_dataset / "processed",
                        "--output-dir", tmp_path / "new", "--val-clips", *[f"sample_{k}" for k in range(20, 25)])
    assert result.returncode == 0, result.stderr
    out = tmp_path / "evaluation.json"
    result = run_script("3_inference/evaluate.py", "--checkpoint", trained_run / "best.pt", "--dataset-dir",
                        tmp_path / "new", "--json", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert Path(report["train_dataset"]) == learn_dataset / "dataset" and len(report["clips"]) == 5
    refused = run_script("3_inference/evaluate.py", "--checkpoint", trained_run / "best.pt", "--dataset-dir",
                         tmp_path / "new", "--train-dataset", tmp_path / "new", "--json", tmp_path / "other.json")
    assert refused.returncode == 1 and not (tmp_path / "other.json").exists()
    assert refused.stderr.startswith(f"error: {tmp_path / 'new'}: no training clips to fit the baselines on; give "
                                     "--train-dataset"), refused.stderr


def test_evaluation_finds_the_models_dataset_from_another_folder_or_says_it_is_gone(trained_run, learn_dataset,
                                                                                   tmp_path):
    # a checkpoint records its dataset as train.py was given it: relative to where the stages ran (the repo
    # root, usually); evaluate.py run from elsewhere (run_script: from /) used to end in a traceback
    saved = torch.load(trained_run / "best.pt", map_location="cpu", weights_only=False)
    dataset = learn_dataset / "dataset"
    def scored_with(recorded: str):
        checkpoint = tmp_path / f"model_{len(list(tmp_path.glob('model_*')))}.pt"
        torch.save({**saved, "training": {**saved["training"], "dataset_dir": recorded}}, checkpoint)
        out = tmp_path / f"{checkpoint.stem}.json"
        return run_script("3_inference/evaluate.py", "--checkpoint", checkpoint, "--clips",
                          learn_dataset / "processed" / "sample_24", "--json", out), out, checkpoint
    found, out, _ = scored_with(os.path.relpath(dataset, REPO_ROOT))
    assert found.returncode == 0, found.stderr
    assert Path(json.loads(out.read_text())["train_dataset"]).resolve() == dataset.resolve()
    gone, out, checkpoint = scored_with("moved/dataset")
    assert gone.returncode == 1 and not out.exists()
    assert gone.stderr == (f"error: {REPO_ROOT / 'moved/dataset'}: no stage 1.3 dataset here to fit the baselines "
                           f"on (the one {checkpoint} was trained on: moved or deleted); give --train-dataset DIR, "
                           "the dataset the model was trained on (or another with a training split)\n")


def test_the_benchmark_scores_a_held_out_clip_stage_1_3_dropped_as_unsure(learn_dataset, tmp_path):
    # sample_23's mouth played backwards: nothing in its sound tells its offset, so it is unsure
    processed = tmp_path / "processed"
    shutil.copytree(learn_dataset / "processed", processed)
    track_path = processed / "sample_23" / "blendshapes_and_pose.json"
    track = json.loads(track_path.read_text())
    jaws = [frame["blendshapes"]["jawOpen"] for frame in track["frames"]]
    for frame, jaw in zip(track["frames"], reversed(jaws)):
        frame["blendshapes"]["jawOpen"] = jaw
    track_path.write_text(json.dumps(track))
    speakers = tmp_path / "speakers.csv"
    speakers.write_text("short_name,speaker\n" + "".join(f"sample_{k},{'AB'[k % 2]}\n" for k in range(20, 25)))
    out = tmp_path / "bench" / "benchmark.json"
    result = run_script("3_inference/evaluate.py", "--benchmark", "speaker-independent", "--processed-dir", processed,
                        "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench", "--folds", 2,
                        "--json", out, "--lookahead-ms", 0, "--dataset-args=--unsure-sync drop",
                        "--train-args", "--preset tiny --epochs 1 --window-seconds 2 --stride-seconds 1 --freq-warp 0")
    assert result.returncode == 0, result.stderr[-3000:]
    benchmark = json.loads(out.read_text())["benchmarks"]["speaker-independent, look-ahead 0 ms"]
    # dropped from what its fold's model learnt from (stage 1.3's choice), scored all the same, uncorrected
    fold = next(f for f in benchmark["folds"] if "sample_23" in f["held_out"])
    manifest = json.loads((next(Path(fold["run_dir"]).parent.glob("dataset_*")) / "dataset_manifest.json").read_text())
    assert [d["clip"] for d in manifest["sync"]["dropped_as_unsure"]] == ["sample_23"]
    assert sorted(c["clip"] for c in benchmark["clips"]) == [f"sample_{k}" for k in range(20, 25)]
    assert next(c for c in benchmark["clips"] if c["clip"] == "sample_23")["sync_shift_ms"] == 0
    assert benchmark["summary"]["clips"] == 5
    # the second pass: each clip's lag against the jaw of the fold model that never heard it; a mouth
    # played backwards is not placed by it either, and stage 1.3 records what it read
    second = run_script("1_data_cleaning/sync_second_pass.py", out, "--output", tmp_path / "second.json")
    assert second.returncode == 0, second.stderr[-3000:]
    document = json.loads((tmp_path / "second.json").read_text())
    assert document["format"] == "voiceface/sync-second-pass" and sorted(document["clips"]) == [f"sample_{k}" for k in range(20, 25)]
    assert not document["clips"]["sample_23"]["model_confident"] and not document["clips"]["sample_23"]["corrects"]
    assert "| sample_23 | " in second.stdout and "stage 1.3 reads it with --second-pass" in second.stdout
    built = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", processed, "--output-dir",
                       tmp_path / "second_dataset", "--second-pass", tmp_path / "second.json")
    assert built.returncode == 0, built.stderr[-3000:]
    manifest = json.loads((tmp_path / "second_dataset" / "dataset_manifest.json").read_text())
    assert manifest["sync"]["second_pass"]["sha256"] == sha256_file(tmp_path / "second.json")[:16]
    for entry in manifest["clips"]:
        row = document["clips"][entry["clip"]]
        assert entry["sync"]["second_pass"]["lag_ms"] == row["lag_ms"]
        assert (entry["sync"]["correction"] == "second pass (--second-pass)") == row["corrects"]
    document["calibration_ms"] += 1                    # the file rewritten: the dataset is rebuilt, not reused
    (tmp_path / "second.json").write_text(json.dumps(document))
    again = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", processed, "--output-dir",
                       tmp_path / "second_dataset", "--second-pass", tmp_path / "second.json")
    assert again.returncode == 0 and "changed" in again.stdout, again.stdout[-2000:]


def test_benchmark_folds_trained_side_by_side_score_as_one_by_one_and_stop_together(learn_dataset, tmp_path, capsys):
    speakers = tmp_path / "speakers.csv"
    speakers.write_text("short_name,speaker\n" + "".join(f"sample_{k},{'AB'[k % 2]}\n" for k in range(20, 25)))
    tiny = "--preset tiny --window-seconds 2 --stride-seconds 1 --freq-warp 0"

    def command(jobs: int, epochs: int) -> list:
        return [REPO_ROOT / "3_inference/evaluate.py", "--benchmark", "speaker-independent", "--processed-dir",
                learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / f"bench{jobs}",
                "--folds", 2, "--json", tmp_path / f"jobs{jobs}_{epochs}.json", "--lookahead-ms", 0, "--jobs", jobs,
                "--train-args", f"{tiny} --epochs {epochs}"]

    one, two = (run_script(*command(jobs, 2)) for jobs in (1, 2))
    assert one.returncode == 0 and two.returncode == 0, one.stderr[-3000:] + two.stderr[-3000:]
    # side by side: both folds started before either finished, every line of theirs says whose it is
    lines = two.stdout.splitlines()
    started = [n for n, line in enumerate(lines) if line.startswith("=== speaker-independent, look-ahead 0 ms")]
    finished = [n for n, line in enumerate(lines) if re.match(r"\[SI 0 ms [12]/2\] checkpoint: ", line)]
    assert len(started) == 2 and len(finished) == 2 and max(started) < min(finished), two.stdout[-3000:]
    assert re.search(r"^2 trainings, 2 at once, \d+ threads? each", two.stdout, re.M)
    assert not any(line.startswith("[SI") for line in one.stdout.splitlines())      # one at a time: as before
    # the same folds, models and figures (each training's threads may differ, so to float precision)
    key = "speaker-independent, look-ahead 0 ms"
    a, b = (json.loads((tmp_path / f"jobs{jobs}_2.json").read_text())["benchmarks"][key] for jobs in (1, 2))
    assert [f["held_out"] for f in a["folds"]] == [f["held_out"] for f in b["folds"]]
    for x, y in zip(a["clips"], b["clips"]):
        assert x["clip"] == y["clip"] and x["model"]["jaw_open_r"] == pytest.approx(y["model"]["jaw_open_r"], abs=1e-4)
    # the folds scored side by side in worker processes (what a benchmark with enough training audio
    # does) give each clip's figures as scoring them one by one did, and say which libraries scored them
    sys.path.insert(0, str(REPO_ROOT / "3_inference"))
    import evaluate
    from voiceface.errors import InputError
    report = json.loads((tmp_path / "jobs2_2.json").read_text())
    folds = [(Path(f["run_dir"]), next(Path(f["run_dir"]).parent.glob("dataset_*")), f["held_out"],
              report["typical_lead_ms"], learn_dataset / "processed") for f in b["folds"]]
    evaluate.JOBS = 2
    try:
        scored, libraries = evaluate.score_folds(folds, evaluate.POOL_MIN_TRAINING_SECONDS)
        assert "2 folds scored, 2 at once," in capsys.readouterr().out
        with pytest.raises(InputError, match="last.pt"):         # a fold that fails: one line, the others stopped
            evaluate.score_folds([folds[0], (tmp_path / "nothing", *folds[1][1:])], evaluate.POOL_MIN_TRAINING_SECONDS)
    finally:
        evaluate.JOBS = 0
    assert [c["clip"] for c in sum(scored, [])] == [c["clip"] for c in b["clips"]]
    for x, y in zip(sum(scored, []), b["clips"]):
        for label in ("model", "ridge", "loudness"):
            assert x[label]["jaw_open_r"] == pytest.approx(y[label]["jaw_open_r"], abs=1e-5)
    assert {"torch", "scipy", "numpy"} <= set(libraries) and libraries["torch"] == report["libraries"]["torch"]
    # Ctrl-C, as the terminal sends it to every process: both trainings stop at once and keep their
    # last finished epoch, and the benchmark says the one line
    process = subprocess.Popen([sys.executable, *map(str, command(2, 200))], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=as_a_terminal_starts_it, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    trained = set()
    for line in process.stdout:
        if match := re.match(r"\[SI 0 ms ([12])/2\] epoch +2/200", line):
            trained.add(match.group(1))
            if len(trained) == 2:
                break
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines() == ["stopped (Ctrl-C); what it finished is kept, nothing is left half-written; "
                                        "with --benchmark, the same command again goes on from the folds already "
                                        "trained"]
    runs = [run for run in (tmp_path / "bench2" / "speaker-independent").glob("*/run_*") if run.name not in
            {Path(f["run_dir"]).name for f in b["folds"]}]
    assert len(runs) == 2 and all(torch.load(run / "last.pt", weights_only=False)["epoch"] >= 2 for run in runs)
    assert not (tmp_path / "jobs2_200.json").exists()
    # a training that fails is named in one line, after its own lines, and nothing is written
    failed = run_script(*command(2, 1)[:-1], f"{tiny} --epochs 1 --preset nosuch")
    assert failed.returncode == 1 and not (tmp_path / "jobs2_1.json").exists()
    assert re.search(r"^\[SI 0 ms [12]/2\] error: no preset 'nosuch'", failed.stdout, re.M), failed.stdout[-2000:]
    assert re.fullmatch(r"error: train\.py failed \(exit 1\) for speaker-independent, look-ahead 0 ms, fold_\d__\w+: "
                        r"\d+ clips train, \d+ held out -> \S+; see its lines above", failed.stderr.strip()), failed.stderr


def test_a_miniature_speaker_dependent_benchmark(learn_dataset, tmp_path):
    speakers = tmp_path / "speakers.csv"
    speakers.write_text("short_name,speaker\n" + "".join(f"sample_{k},Eileen Collins\n" for k in range(20, 25)))
    out = tmp_path / "bench" / "benchmark.json"
    result = run_script("3_inference/evaluate.py", "--benchmark", "speaker-dependent", "--processed-dir",
                        learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                        "--json", out, "--lookahead-ms", 0, "--min-clips", 5,
                        "--train-args", "--preset tiny --epochs 2 --window-seconds 2 --stride-seconds 1 --freq-warp 0")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    benchmark = report["benchmarks"]["speaker-dependent, look-ahead 0 ms"]
    assert len(benchmark["folds"]) == 5 and sorted(c["clip"] for c in benchmark["clips"]) == [f"sample_{k}" for k in range(20, 25)]
    for fold in benchmark["folds"]:                          # the held-out clip is never trained on
        assert fold["held_out"][0] not in fold["train"] and len(fold["train"]) == 4
    summary = benchmark["summary"]
    assert summary["clips"] == 5 and {"model", "ridge", "loudness", "mean_face"} <= set(summary)
    assert summary["ridge"]["median"]["jaw_open_r"] > 0.7
    assert "### speaker-dependent, look-ahead 0 ms" in out.with_suffix(".md").read_text()
    # one speaker's clips (one person's videos, or one video cut into parts) hold no new voice: that
    # benchmark says so and the run goes on (run_pipeline.py asks for both), not a fold with nothing to train
    alone = run_script("3_inference/evaluate.py", "--benchmark", "speaker-independent", "--processed-dir",
                       learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                       "--json", tmp_path / "alone.json", "--lookahead-ms", 0)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert "speaker-independent: every clip is one speaker's" in alone.stderr
    assert json.loads((tmp_path / "alone.json").read_text())["benchmarks"] == {}
    for option in ("--folds", "--min-clips"):          # a fold would have nothing to train on
        refused = run_script("3_inference/evaluate.py", "--benchmark", "both", "--processed-dir",
                             learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir",
                             tmp_path / "bench", "--json", tmp_path / "refused.json", option, 1)
        assert refused.returncode == 2 and refused.stderr.startswith(f"error: {option} 1: give 2 or more")
        assert not (tmp_path / "refused.json").exists()
    # a point of the learning curve: two of the speaker's other clips per fold, each clip trained on twice
    fewer = run_script("3_inference/evaluate.py", "--benchmark", "speaker-dependent", "--processed-dir",
                       learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                       "--json", tmp_path / "two.json", "--lookahead-ms", 0, "--min-clips", 5, "--max-training-recordings", 2,
                       "--train-args", "--preset tiny --epochs 1 --window-seconds 2 --stride-seconds 1 --freq-warp 0")
    assert fewer.returncode == 0, fewer.stderr[-3000:]
    folds = json.loads((tmp_path / "two.json").read_text())["benchmarks"]["speaker-dependent, look-ahead 0 ms"]["folds"]
    assert [f["train"] for f in folds[:2]] == [["sample_21", "sample_22"], ["sample_22", "sample_23"]]
    assert sorted(sum((f["train"] for f in folds), [])) == sorted(f"sample_{k}" for k in range(20, 25) for _ in (0, 1))
    everything = json.loads(out.read_text())["benchmarks"]["speaker-dependent, look-ahead 0 ms"]["folds"]
    assert all(0 < f["train_seconds"] < g["train_seconds"] for f, g in zip(folds, everything))
    assert all(re.search(r"__2_recordings__[0-9a-f]{6}$", f["fold"]) for f in folds)
    assert "Training audio per fold" in (tmp_path / "two.md").read_text()
    # a speaker with more recordings than --max-folds-per-speaker: held out in runs of neighbours,
    # every clip scored once by a model that never heard it
    grouped = run_script("3_inference/evaluate.py", "--benchmark", "speaker-dependent", "--processed-dir",
                         learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                         "--json", tmp_path / "grouped.json", "--lookahead-ms", 0, "--min-clips", 5,
                         "--max-folds-per-speaker", 2,
                         "--train-args", "--preset tiny --epochs 1 --window-seconds 2 --stride-seconds 1 --freq-warp 0")
    assert grouped.returncode == 0, grouped.stderr[-3000:]
    grouped = json.loads((tmp_path / "grouped.json").read_text())["benchmarks"]["speaker-dependent, look-ahead 0 ms"]
    assert [f["held_out"] for f in grouped["folds"]] == [["sample_20", "sample_21"], ["sample_22", "sample_23", "sample_24"]]
    assert [f["fold"][:-8] for f in grouped["folds"]] == ["Eileen_Collins__fold_1_of_2", "Eileen_Collins__fold_2_of_2"]
    assert all(not set(f["held_out"]) & set(f["train"]) and len(f["train"]) + len(f["held_out"]) == 5 for f in grouped["folds"])
    assert sorted(c["clip"] for c in grouped["clips"]) == [f"sample_{k}" for k in range(20, 25)]
    # the same folds and training arguments on other dataset settings, in the same folder: new runs, not
    # the first runs resumed on another dataset (which train.py refuses)
    again = run_script("3_inference/evaluate.py", "--benchmark", "speaker-dependent", "--processed-dir",
                       learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                       "--json", tmp_path / "uncentred.json", "--lookahead-ms", 0, "--min-clips", 5,
                       "--max-folds-per-speaker", 2,
                       "--train-args", "--preset tiny --epochs 1 --window-seconds 2 --stride-seconds 1 --freq-warp 0",
                       "--dataset-args=--no-centre-training-clips")
    assert again.returncode == 0, again.stderr[-3000:]
    runs = {fold["run_dir"] for path in (tmp_path / "grouped.json", tmp_path / "uncentred.json")
            for fold in json.loads(path.read_text())["benchmarks"]["speaker-dependent, look-ahead 0 ms"]["folds"]}
    assert len(runs) == 4
    refused = run_script("3_inference/evaluate.py", "--benchmark", "speaker-dependent", "--processed-dir",
                         learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                         "--json", tmp_path / "refused.json", "--max-folds-per-speaker", 1)
    assert refused.returncode == 2 and refused.stderr.startswith("error: --max-folds-per-speaker 1: give 0")
    # the learning curve of the two: a picture and a table, two points, fewer seconds first
    curve = run_script("3_inference/learning_curve.py", out, tmp_path / "two.json", "--output", tmp_path / "curve.png")
    assert curve.returncode == 0, curve.stderr[-3000:]
    rows = [line for line in (tmp_path / "curve.md").read_text().splitlines() if line.startswith("| 0 ms")]
    assert [row.split(" | ")[1] for row in rows] == ["2", "4"] and (tmp_path / "curve.png").stat().st_size > 10_000
    refused = run_script("3_inference/learning_curve.py", tmp_path / "curve.md", "--output", tmp_path / "bad.png")
    assert refused.returncode == 1 and "curve.md" in refused.stderr and not (tmp_path / "bad.png").exists()
    # the report says what made it: evaluate.py's settings and the libraries
    assert report["settings"]["min_clips"] == 5 and report["settings"]["lookahead_ms"] == [0.0]
    assert "torch" in report["libraries"] and report["created"]
    # what latency buys (latency_curve.py): a second look-ahead, here the same report under another key
    # with its TCN 0.05 better; reports of another recipe (other labels, fewer recordings) are refused
    later = json.loads(out.read_text())
    moved = later["benchmarks"].pop("speaker-dependent, look-ahead 0 ms")
    moved["summary"]["model"]["median"]["jaw_open_r"] += 0.05
    later["benchmarks"]["speaker-dependent, look-ahead 40 ms"] = moved
    later["settings"]["jobs"] = 3                       # trainings side by side: the same recipe
    (tmp_path / "later.json").write_text(json.dumps(later))
    latency = run_script("3_inference/latency_curve.py", tmp_path / "later.json", out, "--output", tmp_path / "latency.png")
    assert latency.returncode == 0, latency.stderr[-3000:]
    rows = [line.split(" | ") for line in (tmp_path / "latency.md").read_text().splitlines()
            if line.startswith("| speaker-dependent")]
    assert [row[1:3] for row in rows] == [["0 ms", "35 ms"], ["40 ms", "75 ms"]]
    median = summary["model"]["median"]["jaw_open_r"]
    assert rows[0][3].startswith(f"{median:.3f} (") and rows[1][3].startswith(f"{median + 0.05:.3f} (")
    assert (tmp_path / "latency.png").stat().st_size > 10_000
    for other in ("uncentred.json", "two.json"):
        refused = run_script("3_inference/latency_curve.py", out, tmp_path / other, "--output", tmp_path / "mixed.png")
        assert refused.returncode == 1 and other in refused.stderr and "one recipe" in refused.stderr
    assert not (tmp_path / "mixed.png").exists()
    # what the benchmark's r looks like: the median clip's jaw, as the fold's model and ridge predict it
    tracks = run_script("3_inference/jaw_tracks.py", out, "--output", tmp_path / "jaw.png", "--seconds", 5)
    assert tracks.returncode == 0, tracks.stderr[-3000:]
    median = sorted(benchmark["clips"], key=lambda c: c["model"]["jaw_open_r"])[2]
    assert f"{median['clip']}: jawOpen r TCN {median['model']['jaw_open_r']:.3f}, " \
           f"ridge {median['ridge']['jaw_open_r']:.3f}" in tracks.stdout      # the benchmark's own figures again
    assert (tmp_path / "jaw.png").stat().st_size > 10_000
    # the TCN drawn again as inference.py --strength makes it: the jaw moves about twice as far from its rest
    strong = run_script("3_inference/jaw_tracks.py", out, "--output", tmp_path / "strong.png", "--seconds", 5,
                        "--strength", "mouth=2")
    assert strong.returncode == 0, strong.stderr[-3000:]
    plain_amplitude, strong_amplitude = map(float, re.search(r"the jaw's amplitude ([\d.]+), with --strength mouth=2 "
                                                             r"([\d.]+)", strong.stdout).groups())
    assert 1.6 * plain_amplitude < strong_amplitude <= 2.0 * plain_amplitude + 0.01, strong.stdout
    assert abs(plain_amplitude - median["model"]["jaw_open_amplitude"]) < 0.01        # the benchmark's own figure
    # what a strength does to the benchmark's figures: r kept, the jaw's amplitude doubled, the error grown
    check = run_script("3_inference/strength_check.py", out, "--gains", 1, 2, "--json", tmp_path / "strength.json")
    assert check.returncode == 0, check.stderr[-3000:]
    rows = json.loads((tmp_path / "strength.json").read_text())["benchmarks"]["benchmark.json: speaker-dependent, "
                                                                             "look-ahead 0 ms"]
    scored = {c["clip"]: c["model"] for c in benchmark["clips"]}
    assert sorted(row["clip"] for row in rows) == sorted(scored)
    for row in rows:
        plain, strong = row["gains"]["1"], row["gains"]["2"]
        assert abs(plain["jaw_open_r"] - scored[row["clip"]]["jaw_open_r"]) < 0.02          # the benchmark's, clipped
        assert abs(plain["mouth_mae"] - scored[row["clip"]]["mouth_mae"]) < 0.002
        assert 1.6 * plain["jaw_open_amplitude"] < strong["jaw_open_amplitude"] and abs(
            strong["jaw_open_r"] - plain["jaw_open_r"]) < 0.05
    assert "| mouth=2 |" in (tmp_path / "strength.md").read_text() and "as far as the video's" in check.stdout
    # each clip moved onto its speaker's rest read from the speaker's other clips (inference.py --rest): r kept,
    # the jaw in the pauses moved by the speaker's rest less the model's, as far as [0, 1] allows
    rested = run_script("3_inference/strength_check.py", out, "--gains", 1, "--rest", "speaker", "--json",
                        tmp_path / "rest.json")
    assert rested.returncode == 0, rested.stderr[-3000:]
    rows = json.loads((tmp_path / "rest.json").read_text())["benchmarks"]["benchmark.json: speaker-dependent, "
                                                                         "look-ahead 0 ms"]
    from voiceface.engine import load_model
    from voiceface.formats import recorded_path
    from voiceface.strength import face_at_rest, rest_of
    folds = {c: f for f in benchmark["folds"] for c in f["held_out"]}
    assert sorted(row["clip"] for row in rows) == sorted(scored)
    for row in rows:
        plain, moved = row["gains"]["1"], row["gains"]["1 + rest"]
        assert moved["jaw_open_r"] == pytest.approx(plain["jaw_open_r"], abs=1e-6)
        others = [face_at_rest(learn_dataset / "processed" / c)[0][25] for c in scored if c != row["clip"]]
        model_rest = rest_of(*load_model(recorded_path(folds[row["clip"]]["run_dir"]) / "last.pt"))[25]
        shift = moved["pause_jaw_open"] - plain["pause_jaw_open"]
        assert shift == pytest.approx(np.median(others) - model_rest, abs=0.01) or moved["pause_jaw_open"] < 0.01
    assert "| mouth=1 --rest speaker |" in (tmp_path / "rest.md").read_text()
    # smoothed (inference.py --smoothing): the median clip's jaw flickers less against the video for its swing (these
    # generated mouths move fast, which opens the filter: a little less), r kept near
    smoothed = run_script("3_inference/strength_check.py", out, "--gains", 1, "--smoothing", "mouth=40", "--json",
                          tmp_path / "smooth.json")
    assert smoothed.returncode == 0, smoothed.stderr[-3000:]
    smooth_rows = json.loads((tmp_path / "smooth.json").read_text())["benchmarks"][
        "benchmark.json: speaker-dependent, look-ahead 0 ms"]
    assert sorted(row["clip"] for row in smooth_rows) == sorted(scored)
    pairs = [(row["gains"]["1"], row["gains"]["1 ~ mouth=40"]) for row in smooth_rows]
    for (plain, calm), row in zip(pairs, smooth_rows):
        assert calm["jaw_flicker"] != plain["jaw_flicker"], smooth_rows
        assert abs(calm["jaw_open_r"] - plain["jaw_open_r"]) < 0.15, smooth_rows
        assert plain["jaw_open_r"] == pytest.approx(scored[row["clip"]]["jaw_open_r"], abs=0.02)
    assert np.median([c["jaw_flicker"] for _, c in pairs]) < np.median([p["jaw_flicker"] for p, _ in pairs]), smooth_rows
    assert "| mouth=1 --smoothing mouth=40 |" in (tmp_path / "smooth.md").read_text()
    # drawn (jaw_tracks.py --rest speaker), two clips named: a panel each, the errors strength_check.py gave
    drawn = run_script("3_inference/jaw_tracks.py", out, "--output", tmp_path / "rest.png", "--clip",
                       "sample_20,sample_23", "--rest", "speaker")
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    by_clip = {row["clip"]: row["gains"] for row in rows}
    for clip in ("sample_20", "sample_23"):
        said = re.search(rf"{clip}: .*jawOpen MAE ([\d.]+), at the speaker's rest ([\d.]+)", drawn.stdout)
        assert said, drawn.stdout
        assert float(said.group(1)) == pytest.approx(by_clip[clip]["1"]["jaw_open_mae"], abs=2e-3)
        assert float(said.group(2)) == pytest.approx(by_clip[clip]["1 + rest"]["jaw_open_mae"], abs=2e-3)
    assert (tmp_path / "rest.png").stat().st_size > 10_000
    # drawn smoothed (jaw_tracks.py --smoothing): the flicker strength_check.py gave, both ways
    calmed = run_script("3_inference/jaw_tracks.py", out, "--output", tmp_path / "calm.png", "--clip", "sample_20",
                        "--smoothing", "mouth=40")
    assert calmed.returncode == 0, calmed.stderr[-3000:]
    said = re.search(r"flicker against the video's ([\d.]+), with --smoothing mouth=40 ([\d.]+)", calmed.stdout)
    figures = next(row["gains"] for row in smooth_rows if row["clip"] == "sample_20")
    assert said and float(said.group(1)) == pytest.approx(figures["1"]["jaw_flicker"], abs=0.01), calmed.stdout
    assert float(said.group(2)) == pytest.approx(figures["1 ~ mouth=40"]["jaw_flicker"], abs=0.01), calmed.stdout
    refused = run_script("3_inference/strength_check.py", out, "--region", "jaw")
    assert refused.returncode == 2 and "'jaw' is not a blendshape or region" in refused.stderr
    # seeds averaged (seed_ensemble.py): one report twice is its own ensemble, scored as the benchmark scored it
    ensemble = run_script("3_inference/seed_ensemble.py", out, out, "--json", tmp_path / "ensemble.json")
    assert ensemble.returncode == 0, ensemble.stderr[-3000:]
    rows = json.loads((tmp_path / "ensemble.json").read_text())["benchmarks"]["speaker-dependent, look-ahead 0 ms"]
    by_clip = {c["clip"]: c["model"]["jaw_open_r"] for c in benchmark["clips"]}
    assert {row["clip"]: row["ensemble"] for row in rows} == pytest.approx(by_clip, abs=1e-5)
    assert all(row["seeds"] == pytest.approx([row["ensemble"]] * 2, abs=1e-6) for row in rows)
    assert "averaged" in ensemble.stdout
    alone = run_script("3_inference/seed_ensemble.py", out)
    assert alone.returncode == 1 and "two or more" in alone.stderr
    # the fold models on their clips with the sound made worse: as recorded, the benchmark's figures again
    degraded = run_script("3_inference/degraded_sound.py", out, "--json", tmp_path / "degraded.json")
    assert degraded.returncode == 0, degraded.stderr[-3000:]
    rows = json.loads((tmp_path / "degraded.json").read_text())["benchmarks"]["benchmark.json: speaker-dependent, look-ahead 0 ms"]
    scored = {c["clip"]: c["model"]["jaw_open_r"] for c in benchmark["clips"]}
    assert {row["clip"]: row["conditions"]["as recorded"]["jaw_open_r"] for row in rows} == pytest.approx(scored, abs=1e-5)
    assert len(rows[0]["conditions"]) == 12 and "| pink noise, 10 dB SNR |" in (tmp_path / "degraded.md").read_text()
    # other voices the model never heard cost it (generated clips: 0.79 -> 0.70); steady noise need not
    # cost a model that reads the sound as it comes, but in the pauses it reads as soft speech
    babble = np.median([row["conditions"]["babble of 4 other recordings, 10 dB SNR"]["jaw_open_r"] for row in rows])
    assert babble < np.median(list(scored.values())) - 0.02
    pauses = {c: np.median([row["conditions"][c]["pause_jaw_open"] for row in rows])
              for c in ("as recorded", "pink noise, 10 dB SNR")}
    assert pauses["pink noise, 10 dB SNR"] > pauses["as recorded"] + 0.01, pauses
    # 40 dB quieter (the generated speech's loudest frames near -58 dBFS): read as the recording is
    quiet = [row["conditions"]["40 dB quieter"] for row in rows]
    assert abs(np.median([q["jaw_open_r"] for q in quiet]) - np.median(list(scored.values()))) < 0.02, quiet
    assert min(q["voiced_fraction"] for q in quiet) > 0.5
    # the picture says what it was drawn from: the same reports and settings again are skipped, others drawn
    for seconds, skipped in ((5, True), (4, False)):
        again = run_script("3_inference/jaw_tracks.py", out, "--output", tmp_path / "jaw.png", "--seconds", seconds)
        assert again.returncode == 0 and ("skipped: " in again.stdout) == skipped, again.stdout + again.stderr[-2000:]
    empty = run_script("3_inference/jaw_tracks.py", out, "--output", tmp_path / "empty.png", "--seconds", 0)
    assert empty.returncode == 2 and "--seconds 0: give more than 0" in empty.stderr    # was an IndexError
    # the runner's stage 8 draws it beside its benchmark, and a second run leaves it be
    work = tmp_path / "work"
    (work / "benchmark").mkdir(parents=True)
    shutil.copy(out, work / "benchmark" / "benchmark.json")
    for attempt in ("drawn", "skipped"):
        staged = run_pipeline("--raw-dir", tmp_path, "--work-dir", work, "--speaker-manifest", speakers,
                              "--stage", 8, "--stop-stage", 8)
        assert staged.returncode == 0, staged.stderr[-3000:]
        assert (work / "benchmark" / "jaw_tracks.png").exists() and ("skipped: " in staged.stdout) == (attempt == "skipped")
        assert (work / "benchmark" / "strength.json").exists()       # and which strength gives the videos' range
        assert f"range of movement: {work / 'benchmark' / 'strength.md'}" in staged.stdout
        assert ("as far as the video's" in staged.stdout) == (attempt == "drawn"), staged.stdout[-2000:]
        assert staged.stdout.count("skipped: ") == (2 if attempt == "skipped" else 0)
    run_dir = next(f["run_dir"] for f in benchmark["folds"] if median["clip"] in f["held_out"])
    trained_on = torch.load(os.path.join(run_dir, "last.pt"), map_location="cpu", weights_only=False)["training"]
    manifest = Path(trained_on["dataset_dir"]) / "dataset_manifest.json"
    manifest.write_text(manifest.read_text() + " ")                         # the fold's dataset remade since
    changed = run_script("3_inference/jaw_tracks.py", out, "--output", tmp_path / "changed.png")
    assert changed.returncode == 1 and "not the dataset" in changed.stderr and not (tmp_path / "changed.png").exists()


def test_the_speaker_dependent_benchmark_can_start_each_fold_from_a_model_of_the_other_speakers(learn_dataset,
                                                                                            tmp_path):
    speakers = tmp_path / "speakers.csv"
    speakers.write_text("short_name,speaker\n" + "".join(f"sample_{k},Eileen Collins\n" for k in range(20, 24))
                        + "sample_24,Someone Else\n")
    out = tmp_path / "bench" / "pretrained.json"
    result = run_script("3_inference/evaluate.py", "--benchmark", "speaker-dependent", "--processed-dir",
                        learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                        "--json", out, "--lookahead-ms", 0, "--min-clips", 4, "--pretrain-other-speakers",
                        "--train-args", "--preset tiny --epochs 2 --window-seconds 2 --stride-seconds 1 --freq-warp 0")
    assert result.returncode == 0, result.stderr[-3000:]
    [pretrained] = (tmp_path / "bench" / "speaker-dependent").glob("pretrain_without_Eileen_Collins__*")
    [manifest] = pretrained.glob("dataset_*/dataset_manifest.json")
    assert [(c["clip"], c["split"]) for c in json.loads(manifest.read_text())["clips"]] == [("sample_24", "train")]
    [start] = pretrained.glob("run_*/last.pt")
    assert result.stdout.count(f"starting from the weights of {start}") == 4      # each fold, one shared start
    assert result.stdout.count("=== pretraining") == 1 and result.stdout.count("epoch   1/2  train") == 5
    folds = json.loads(out.read_text())["benchmarks"]["speaker-dependent, look-ahead 0 ms"]["folds"]
    assert len(folds) == 4 and all("sample_24" not in f["train"] and re.search(r"__pretrained__[0-9a-f]{6}$", f["fold"]) for f in folds)


def test_the_speaker_independent_benchmark_trains_on_fewer_voices_or_on_clips_it_never_scores(learn_dataset, tmp_path):
    # five voices; sample_24 only ever trained on: the benchmark scores the same four clips with more to learn from
    speakers = tmp_path / "speakers.csv"
    speakers.write_text("short_name,speaker\n" + "".join(f"sample_{k},Voice {k}\n" for k in range(20, 25)))
    common = ["--benchmark", "speaker-independent", "--processed-dir", learn_dataset / "processed",
              "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench", "--lookahead-ms", 0, "--folds", 2,
              "--training-only", "sample_24",
              "--train-args", "--preset tiny --epochs 1 --window-seconds 2 --stride-seconds 1 --freq-warp 0"]
    reports = {}
    for name, more in (("all", []), ("one", ["--max-training-speakers", 1])):
        result = run_script("3_inference/evaluate.py", *common, *more, "--json", tmp_path / f"{name}.json")
        assert result.returncode == 0, result.stderr[-3000:]
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())["benchmarks"]["speaker-independent, look-ahead 0 ms"]
    every = reports["all"]
    assert sorted(c["clip"] for c in every["clips"]) == [f"sample_{k}" for k in range(20, 24)]
    assert sorted(sum((f["held_out"] for f in every["folds"]), [])) == [f"sample_{k}" for k in range(20, 24)]
    for fold in every["folds"]:               # the extra voice in every fold's training, beside the fold's other two
        assert "sample_24" in fold["train"] and not set(fold["train"]) & set(fold["held_out"])
        assert fold["train_speakers"] == 3 and re.search(r"__with_1_training_only__[0-9a-f]{6}$", fold["fold"])
    for fewer, more in zip(reports["one"]["folds"], every["folds"]):   # one voice, drawn from the fold's three
        assert fewer["train_speakers"] == 1 and len(fewer["train"]) == 1 and set(fewer["train"]) < set(more["train"])
        assert fewer["held_out"] == more["held_out"] and "__1_speakers__with_1_training_only__" in fewer["fold"]
    curve = run_script("3_inference/learning_curve.py", "--kind", "speaker-independent", tmp_path / "all.json",
                       tmp_path / "one.json", "--output", tmp_path / "voices.png")
    assert curve.returncode == 0, curve.stderr[-3000:]
    rows = [line.split(" | ") for line in (tmp_path / "voices.md").read_text().splitlines() if line.startswith("| 0 ms")]
    assert [row[1] for row in rows] == ["1", "3"] and (tmp_path / "voices.png").stat().st_size > 10_000
    # speaker-dependent folds train on the extra clips only beside the other speakers' (or starting from
    # them), and then in folders of their own: a run made without them is not resumed with them
    sys.path.insert(0, str(REPO_ROOT / "3_inference"))
    import evaluate
    folders = sorted((learn_dataset / "processed").iterdir())
    # a corpus with a clip more (or another --seed) puts other clips in fold k: another folder, never the
    # first one's run resumed on them
    voices = {f"sample_{k}": f"Voice {k}" for k in range(20, 25)}
    evaluate.FOLDS = 2
    try:
        corpora = [{name: (sorted(train), sorted(held)) for name, train, held, _ in
                    evaluate.benchmark_folds("speaker-independent", some, voices)} for some in (folders[:4], folders)]
    finally:
        evaluate.FOLDS = 5
    named = {name: clips for folds in corpora for name, clips in folds.items()}
    assert len(set(map(str, named.values()))) == len(named) == 4 and all(n.startswith("fold_") for n in named)
    one = {f"sample_{k}": "Eileen Collins" for k in range(20, 24)}
    plain = evaluate.benchmark_folds("speaker-dependent", folders, one)
    # so does a speaker-dependent corpus with a recording more of the speaker: each fold trains on it, in
    # another folder (the same held-out clip, other training clips)
    more = evaluate.benchmark_folds("speaker-dependent", folders, {**one, "sample_24": "Eileen Collins"})
    assert [held for _, _, held, _ in more[:4]] == [held for _, _, held, _ in plain]
    assert not {name for name, *_ in more} & {name for name, *_ in plain}
    assert all(name.startswith(f"Eileen_Collins__{held[0]}__") for name, _, held, _ in plain + more)
    evaluate.TRAINING_ONLY = ["sample_24"]
    try:
        assert evaluate.benchmark_folds("speaker-dependent", folders, one) == plain   # no one else's clips: the same
        evaluate.WITH_OTHER_SPEAKERS = True
        others = evaluate.benchmark_folds("speaker-dependent", folders, one)
        assert all("sample_24" in train and "sample_24" not in held for _, train, held, _ in others)
        assert all(re.search(r"__with_others__with_1_training_only__[0-9a-f]{6}$", name) for name, *_ in others)
    finally:
        evaluate.TRAINING_ONLY, evaluate.WITH_OTHER_SPEAKERS = [], False
    refused = run_script("3_inference/evaluate.py", *common[:-2], "--training-only", "sample_99",
                         "--json", tmp_path / "refused.json")
    assert refused.returncode == 2 and refused.stderr.startswith("error: --training-only sample_99: no such processed clip")
    assert not (tmp_path / "refused.json").exists()


@pytest.mark.parametrize("broken", ["checkpoint"])
def test_evaluation_refuses_a_bad_checkpoint_in_one_line(broken, tmp_path, learn_dataset):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"no")
    result = run_script("3_inference/evaluate.py", "--checkpoint", bad, "--dataset-dir", learn_dataset / "dataset",
                        "--json", tmp_path / "e.json")
    assert result.returncode == 1 and result.stderr.count("error: ") == 1


def test_the_benchmark_refuses_a_negative_look_ahead_before_it_makes_anything(learn_dataset, tmp_path):
    speakers = tmp_path / "speakers.csv"
    speakers.write_text("short_name,speaker\n" + "".join(f"sample_{k},Eileen Collins\n" for k in range(20, 25)))
    result = run_script("3_inference/evaluate.py", "--benchmark", "speaker-dependent", "--processed-dir",
                        learn_dataset / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                        "--json", tmp_path / "out.json", "--lookahead-ms", 0, -100)
    assert result.returncode == 1 and result.stderr.count("error: ") == 1 and "--lookahead-ms 0 -100" in result.stderr
    assert not (tmp_path / "bench").exists() and not (tmp_path / "out.json").exists()


def test_the_runner_runs_every_stage_and_a_second_run_redoes_nothing(tmp_path):
    # a miniature sample in temporary folders: 3 clips of 4 s, 3 epochs
    work, runs = tmp_path / "sample", tmp_path / "runs"
    args = ("--work-dir", work, "--runs-dir", runs, "--sample-clips", 3, "--sample-duration", 4, "--sample-epochs", 3)
    first = run_pipeline(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    # its output went to pipes, as to a log file: plain lines, no bars, no C++ start-up chatter
    log = first.stdout + first.stderr
    assert "\r" not in log
    assert not [line for line in log.splitlines() if any(word in line for word in
                                                          ("W0000", "I0000", "inference_feedback_manager", "xnnpack",
                                                           "TensorFlow Lite", "InitGoogle"))], log[-3000:]
    for path in ("processed/sample_00/blendshapes_and_pose.json", "processed/sample_02/audio_features.npz",
                 "dataset/dataset_manifest.json", "inference/sample_02.json", "inference/sample_02.csv",
                 "inference/sample_02.png", "inference/sample_02.preview.mp4", "evaluation/evaluation.md",
                 "evaluation/sample_02.png", "dataset/synchronisation.png"):
        assert (work / path).exists(), path
    assert (runs / "sample" / "last.pt").exists()
    # each stage's line: the runner's number (what --stage takes), the pipeline's stage, the script it runs
    assert "=== stage 4: training (stage 2) [2_architecture_training/train.py]" in first.stdout.splitlines()
    assert [line.split(" [")[-1] for line in first.stdout.splitlines() if line.startswith("=== stage ")] == [
        "1_data_cleaning/0_generate_sample_clips.py]", "1_data_cleaning/1_extract_blendshapes.py]",
        "1_data_cleaning/2_extract_audio_features.py]", "1_data_cleaning/3_create_dataset.py]",
        "1_data_cleaning/plot_synchronisation.py]", "2_architecture_training/train.py]", "3_inference/inference.py]",
        "3_inference/inference.py]", "3_inference/evaluate.py]"]
    assert f"the model as one ONNX file for an engine, 16 kHz sound in: {runs / 'sample' / 'face.onnx'}" in first.stdout
    from voiceface.formats import sha256_file
    from voiceface.stream_onnx import exported_checkpoint
    assert exported_checkpoint(runs / "sample" / "face.onnx", by_default()) == sha256_file(runs / "sample" / "last.pt")
    exported = (runs / "sample" / "face.onnx").stat().st_mtime_ns
    assert f"every clip's audio-video offset, drawn: {work / 'dataset' / 'synchronisation.png'}" in first.stdout
    assert f"checkpoint: {runs / 'sample' / 'last.pt'}" in first.stdout and "evaluation: " in first.stdout
    # the held-out clip was never trained on
    manifest = json.loads((work / "dataset" / "dataset_manifest.json").read_text())
    assert [c["clip"] for c in manifest["clips"] if c["split"] == "val"] == ["sample_02"]
    stamp = (work / "processed/sample_00/blendshapes_and_pose.json").stat().st_mtime_ns
    second = run_pipeline(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "skipped" in second.stdout and not re.search(r"epoch +\d+/\d+  train", second.stdout + second.stderr)
    assert (work / "processed/sample_00/blendshapes_and_pose.json").stat().st_mtime_ns == stamp
    assert "holds this checkpoint's export already: skipped" in second.stdout
    assert (runs / "sample" / "face.onnx").stat().st_mtime_ns == exported
    # a dataset rebuilt since the run was trained (as after an update): the run is trained again, not refused
    manifest_path = work / "dataset" / "dataset_manifest.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "rebuilt": True}))
    third = run_pipeline(*args, "--stage", 4, "--stop-stage", 4)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "training it again from the start" in third.stdout and re.search(r"epoch +3/3  train", third.stdout)
    assert exported_checkpoint(runs / "sample" / "face.onnx", by_default()) == sha256_file(
        runs / "sample" / "last.pt")  # new
    assert "evaluation: " not in third.stdout and "animation of the held-out clip" not in third.stdout   # not made now
    # a model for files: 40 ms of look-ahead trains into its own folder and is evaluated into its own, and the
    # strictly causal model and its evaluation are left as they are
    causal = (runs / "sample" / "last.pt").read_bytes()
    causal_evaluation = (work / "evaluation" / "evaluation.json").read_bytes()
    later = run_pipeline(*args, "--lookahead-ms", 40, "--stage", 4, "--stop-stage", 6)
    assert later.returncode == 0, later.stderr[-3000:]
    trained = torch.load(runs / "sample_lookahead40ms" / "last.pt", map_location="cpu", weights_only=False)
    assert trained["lookahead_frames"] == 4 and trained["training"]["lookahead_ms"] == 40
    assert f"checkpoint: {runs / 'sample_lookahead40ms' / 'last.pt'}" in later.stdout
    assert "animation of the held-out clip" in later.stdout
    assert f"evaluation: {work / 'evaluation_lookahead40ms' / 'evaluation.md'}" in later.stdout
    evaluated = json.loads((work / "evaluation_lookahead40ms" / "evaluation.json").read_text())
    assert evaluated["checkpoint"] == str(runs / "sample_lookahead40ms" / "last.pt")
    assert (work / "evaluation_lookahead40ms" / "sample_02.png").exists()
    assert (runs / "sample" / "last.pt").read_bytes() == causal
    assert (work / "evaluation" / "evaluation.json").read_bytes() == causal_evaluation
    animation = json.loads((work / "inference" / "sample_02.json").read_text())
    assert animation["header"]["checkpoint"]["lookahead_ms"] == 40      # the animation the runner made is its


def test_clip_figures_combine_weighted_by_frames_even_when_some_are_missing():
    from voiceface.metrics import combine_clip_metrics
    combined = combine_clip_metrics([{"mae": 0.1, "silence_jaw_open": 0.2, "frames": 100},
                                     {"mae": 0.4, "silence_jaw_open": None, "frames": 300}])
    assert combined["mae"] == pytest.approx(0.325) and combined["silence_jaw_open"] == pytest.approx(0.2)
    assert combined["frames"] == 400


@pytest.mark.parametrize("args", [("--sample-clips", 1), ("--lookahead-ms", -5), ("--lookahead-ms", 25),
                                  ("--stage", 5, "--stop-stage", 2),
                                  ("--workers", 0)])
def test_the_runner_refuses_settings_out_of_range_before_any_stage(tmp_path, args):
    """(--sample-clips 1 or a negative look-ahead ran stages 0-3 and then stopped at training)"""
    result = run_pipeline("--work-dir", tmp_path / "work", "--runs-dir", tmp_path / "runs", *args)
    assert result.returncode == 2 and result.stderr.startswith(f"error: {args[-2]} {args[-1]}"), result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "work").exists()


@pytest.mark.parametrize("args, said", [(("--raw-dir", "{tmp}", "--sample-clips", 3), "--sample-clips is for the built-in"),
                                        (("--speaker-manifest", "{tmp}/speakers.csv"), "--speaker-manifest works only "
                                                                                       "with --raw-dir"),
                                        (("--one-speaker",), "--one-speaker works only with --raw-dir"),
                                        (("--raw-dir", "{tmp}/gone"), "--raw-dir {tmp}/gone: no such folder")])
def test_the_runner_refuses_a_setting_for_the_sample_with_videos_and_one_for_videos_with_the_sample(tmp_path, args, said):
    """(each was silently ignored: the sample ran with --speaker-manifest, videos with --sample-clips)"""
    result = run_pipeline("--work-dir", tmp_path / "work", *(str(a).replace("{tmp}", str(tmp_path)) for a in args))
    assert result.returncode == 2 and result.stderr.startswith(f"error: {said.replace('{tmp}', str(tmp_path))}"), \
        result.stderr
    assert not (tmp_path / "work").exists()


def test_the_runner_says_what_it_cannot_do_without_a_speaker_manifest(tmp_path):
    (tmp_path / "videos").mkdir()
    result = run_pipeline("--raw-dir", tmp_path / "videos", "--work-dir", tmp_path / "work", "--stage", 99)
    assert result.returncode == 0, result.stderr
    assert "no --speaker-manifest" in result.stdout and "benchmarks" in result.stdout
    assert "note: no stage from --stage 99 to --stop-stage 99: here the stages are 1, 2, 3, 4, 6" in result.stdout


def test_the_runner_points_a_one_speaker_manifest_to_the_one_speaker_recipe(tmp_path):
    (tmp_path / "videos").mkdir()
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("clip,speaker\na,Ada Lovelace\nb,Ada Lovelace\n")
    two.write_text("clip,speaker\na,Ada Lovelace\nb,Alan Turing\n")
    def said(*args) -> str:
        result = run_pipeline("--raw-dir", tmp_path / "videos", "--work-dir", tmp_path / "work", "--stage", 99, *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def note(*args):
        out = said(*args)
        return "--one-speaker trains" in out and "(Ada Lovelace)" in out
    assert note("--speaker-manifest", one)
    assert not note("--speaker-manifest", one, "--one-speaker")      # asked for already
    assert not note("--speaker-manifest", two)
    assert not note("--speaker-manifest", tmp_path / "missing.csv")  # stage 1.3 says what is wrong with it
    # the converse: --one-speaker with a manifest of several people says what the recipe costs them
    several = said("--speaker-manifest", two, "--one-speaker")
    assert "note: --one-speaker, but" in several and "names 2 speakers" in several
    assert "note: --one-speaker, but" not in said("--speaker-manifest", one, "--one-speaker")
    # the seconds of one speaker that stage 1.3's training split holds, for the note on too little video
    sys.path.insert(0, str(REPO_ROOT))
    import run_pipeline as runner
    manifest = tmp_path / "dataset" / "dataset_manifest.json"
    manifest.parent.mkdir()
    def seconds_of(*clips, one_speaker=False):
        manifest.write_text(json.dumps({"clips": [{"speaker": who, "split": split, "duration_s": s}
                                                  for who, split, s in clips]}))
        runner.ONE_SPEAKER = one_speaker
        try:
            return runner.one_speakers_seconds(manifest.parent)
        finally:
            runner.ONE_SPEAKER = False
    assert seconds_of(("Ada", "train", 10.0), ("Ada", "train", 7.5), ("Ada", "val", 9.0)) == ("Ada", 17.5)
    assert seconds_of(("Ada", "train", 10.0), ("Alan", "train", 7.5)) is None
    assert seconds_of(("Ada", "train", 10.0), ("Alan", "train", 7.5), one_speaker=True)[1] == 17.5


def test_the_runner_goes_on_past_a_bad_video_and_says_so_at_the_end(face_model, tmp_path):
    """A folder of videos with a faceless one, a damaged one and an audio file among them: each gets
    its line, the stages go on with the others, and the run ends non-zero naming them (it stopped at
    stage 1.1 on every run until they were deleted by hand)."""
    from voiceface.synthetic import speech_envelope, write_audio_file, write_faceless_clip, write_talking_face_clip
    videos = tmp_path / "videos"
    for k in range(3):
        write_talking_face_clip(videos / f"talk_{k}.mp4", duration=3.0, seed=40 + k)
    write_faceless_clip(videos / "no_face.mp4")
    (videos / "damaged.mp4").write_bytes(b"not a video")
    noise = np.random.default_rng(7).standard_normal(48000)
    write_audio_file(videos / "voice_only.m4a", 0.3 * speech_envelope(3.0, 16000, 7) * noise, 16000)
    result = run_pipeline("--raw-dir", videos, "--work-dir", tmp_path / "work", "--stop-stage", 3)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "no_face.mp4: no face found" in result.stderr and "damaged.mp4: not a readable" in result.stderr
    assert "voice_only: made from an audio file (voice_only.m4a), with no face to learn from" in result.stderr
    for number in (1, 2, 3):
        assert f"stage {number}: some inputs failed" in result.stderr, result.stderr[-3000:]
    assert "done without the inputs that stages 1, 2, 3 left out" in result.stderr
    manifest = json.loads((tmp_path / "work" / "dataset" / "dataset_manifest.json").read_text())
    assert sorted(c["clip"] for c in manifest["clips"]) == ["talk_0", "talk_1", "talk_2"]
    # the benchmarks on that folder: the clip stage 1.3 leaves out is in no fold, and they run (stage
    # 1.3's exit for it stopped them before any fold)
    speakers = tmp_path / "speakers.csv"
    speakers.write_text("clip,speaker\ntalk_0,Ada\ntalk_1,Alan\ntalk_2,Grace\nvoice_only,Ada\n")
    bench = run_script("3_inference/evaluate.py", "--benchmark", "speaker-independent", "--processed-dir",
                       tmp_path / "work" / "processed", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                       "--json", tmp_path / "bench.json", "--lookahead-ms", 0, "--folds", 2,
                       "--train-args", "--preset tiny --epochs 1 --window-seconds 2 --stride-seconds 1")
    assert bench.returncode == 0, bench.stderr[-3000:]
    assert "left out of the benchmarks, as stage 1.3 leaves them out of every dataset: voice_only" in bench.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["left_out"] == ["voice_only"]
    assert sorted(c["clip"] for c in report["benchmarks"]["speaker-independent, look-ahead 0 ms"]["clips"]) == \
        ["talk_0", "talk_1", "talk_2"]
    # the processed clips moved: the fold datasets and runs are reused and the clips scored from the
    # folder given (the datasets name the old one, which stopped the benchmark with a traceback)
    (tmp_path / "work" / "processed").rename(tmp_path / "moved")
    moved = run_script("3_inference/evaluate.py", "--benchmark", "speaker-independent", "--processed-dir",
                       tmp_path / "moved", "--speaker-manifest", speakers, "--bench-dir", tmp_path / "bench",
                       "--json", tmp_path / "moved.json", "--lookahead-ms", 0, "--folds", 2,
                       "--train-args", "--preset tiny --epochs 1 --window-seconds 2 --stride-seconds 1")
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert "=== speaker-independent" in moved.stdout and "epoch " not in moved.stdout      # nothing trained again
    scores = [[c["model"]["jaw_open_r"] for c in json.loads(path.read_text())["benchmarks"][
        "speaker-independent, look-ahead 0 ms"]["clips"]] for path in (tmp_path / "bench.json", tmp_path / "moved.json")]
    assert scores[0] == scores[1]
    drawn = run_script("3_inference/jaw_tracks.py", tmp_path / "moved.json", "--output", tmp_path / "moved.png")
    assert drawn.returncode == 0 and (tmp_path / "moved.png").exists(), drawn.stderr[-3000:]
    # nothing usable at all: the stage that found nothing stops the run, as before
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "damaged.mp4").write_bytes(b"not a video")
    stopped = run_pipeline("--raw-dir", tmp_path / "bad", "--work-dir", tmp_path / "bad_work")
    assert stopped.returncode == 1 and "stage 1 failed (exit 1)" in stopped.stderr
    assert "=== stage 2" not in stopped.stdout


def test_one_video_trains_into_its_work_folder_and_says_there_is_nothing_held_out(face_model, tmp_path):
    from voiceface.synthetic import write_talking_face_clip
    write_talking_face_clip(tmp_path / "videos" / "me.mp4", duration=3.0, seed=5)
    # one person's videos: the one-speaker recipe (formant channels, twice the epochs) instead of the defaults
    result = run_pipeline("--raw-dir", tmp_path / "videos", "--work-dir", tmp_path / "work", "--one-speaker")
    assert result.returncode == 0, result.stderr[-3000:]
    # the model sits with the work it was trained on (another project's runs/ is not retrained over), in the
    # recipe's own folder
    one_speaker = tmp_path / "work" / "runs" / "default_one_speaker" / "last.pt"
    trained = torch.load(one_speaker, map_location="cpu", weights_only=False)
    assert trained["training"]["formants"] is True and trained["training"]["epochs"] == 20
    assert trained["formants"] and "epoch  20/20" in result.stdout
    assert f"checkpoint: {one_speaker}" in result.stdout
    assert f"the model as one ONNX file for an engine, 16 kHz sound in: {one_speaker.parent / 'face.onnx'}" \
        in result.stdout                                                   # the formant channels inside it
    assert "holds no held-out clip" in result.stdout and "evaluation: " not in result.stdout
    # three seconds of one person: a note that other people's videos would help
    assert "trains on 3 s of one speaker (me); with under 30 s of a person" in result.stdout
    # named in a manifest, one recording gives neither benchmark: the report and its table say why, and
    # stage 8 has nothing to draw (a note, not a failure)
    (tmp_path / "speakers.csv").write_text("clip,speaker\nme,Ada Lovelace\n")
    benchmarks = run_pipeline("--raw-dir", tmp_path / "videos", "--work-dir", tmp_path / "work", "--one-speaker",
                              "--speaker-manifest", tmp_path / "speakers.csv", "--stage", 7)
    assert benchmarks.returncode == 0, benchmarks.stderr[-3000:]
    report = json.loads((tmp_path / "work" / "benchmark_one_speaker" / "benchmark.json").read_text())
    assert report["benchmarks"] == {} and "(the most: Ada Lovelace, 1)" in report["not_run"]["speaker-dependent"]
    table = (tmp_path / "work" / "benchmark_one_speaker" / "benchmark.md").read_text()
    assert "Not run: no speaker has 4 or more recordings" in table and "split_recording.py --parts" in table
    assert "there is no clip to draw" in benchmarks.stdout and "drawn: " not in benchmarks.stdout
    assert not list((tmp_path / "work").glob("evaluation*"))
    # the defaults after it train a model of their own beside it, not a resume the changed recipe would refuse
    defaults = run_pipeline("--raw-dir", tmp_path / "videos", "--work-dir", tmp_path / "work", "--stage", 4,
                            "--stop-stage", 4)
    assert defaults.returncode == 0, defaults.stderr[-3000:]
    trained_again = torch.load(tmp_path / "work" / "runs" / "default" / "last.pt", map_location="cpu", weights_only=False)
    assert trained_again["training"]["formants"] is False
    assert (tmp_path / "work" / "runs" / "default" / "face.onnx").exists()                 # the defaults' too
    assert torch.load(one_speaker, map_location="cpu", weights_only=False)["training"]["formants"] is True
    # the empty held-out split keeps each array's columns, as the training split has them
    for key in ("mel", "mel_level", "level_db", "targets", "mask", "vad", "rms_db", "formants", "lsf"):
        train, val = (np.load(tmp_path / "work" / "dataset" / split / f"{key}.npy") for split in ("train", "val"))
        assert len(val) == 0 and val.shape[1:] == train.shape[1:] and val.dtype == train.dtype, key



def test_a_video_named_as_a_download_tool_names_it_goes_through_every_stage(learn_dataset, trained_run, tmp_path):
    """yt-dlp names a download "Title [video id].mp4": spaces, commas, quotes, any script, and
    square brackets, which as a glob pattern matched nothing (every stage refused the file)."""
    name = "Dr. Ng, on “AI” — 中文 🎤 [dQw4w9WgXcQ]"
    video = tmp_path / f"{name}.mp4"
    shutil.copy(learn_dataset / "raw" / "sample_24.mp4", video)
    processed = tmp_path / "processed"
    for script in ("1_data_cleaning/1_extract_blendshapes.py", "1_data_cleaning/2_extract_audio_features.py"):
        result = run_script(script, video, "--output-dir", processed)
        assert result.returncode == 0, result.stderr
    assert {"blendshapes_and_pose.json", "audio_features.npz"} <= {p.name for p in (processed / name).iterdir()}
    for k in (20, 21):
        shutil.copytree(learn_dataset / "processed" / f"sample_{k}", processed / f"sample_{k}")
    speakers = tmp_path / "speakers.csv"                 # written as a spreadsheet writes it: the name quoted
    speakers.write_text(f'clip,speaker\n"{name.replace(chr(34), chr(34) * 2)}",Andrew Ng\nsample_20,A\nsample_21,B\n')
    made = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", processed, "--output-dir",
                      tmp_path / "dataset", "--speaker-manifest", speakers, "--val-clips", name)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((tmp_path / "dataset" / "dataset_manifest.json").read_text())
    held = [c for c in manifest["clips"] if c["split"] == "val"]
    assert [(c["clip"], c["speaker"]) for c in held] == [(name, "Andrew Ng")]
    animated = run_script("3_inference/inference.py", video, "--checkpoint", trained_run / "last.pt", "--output",
                          tmp_path / "takes", "--csv", "--preview")
    assert animated.returncode == 0, animated.stderr
    assert {p.name for p in (tmp_path / "takes").iterdir()} == {f"{name}.{ending}" for ending in
                                                                 ("json", "csv", "png", "preview.mp4")}


def test_benchmark_folds_of_long_titled_clips_make_folders_that_fit_a_file_name(tmp_path):
    """A held-out clip names its fold's folder; a title of 80 CJK characters is 240 bytes of a file
    name's 255, and the folder's name, with the speaker and a digest around it, could not be made."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("evaluate", REPO_ROOT / "3_inference/evaluate.py")
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    names = ["talk_1", "talk_2", "talk_3", "演" * 80 + " [dQw4w9WgXcQ]"]
    folds = evaluate.benchmark_folds("speaker-dependent", [tmp_path / n for n in names], dict.fromkeys(names, "Ada L"))
    assert [held for _, _, held, _ in folds] == [[n] for n in names]
    for fold, _, _, _ in folds:
        (tmp_path / "bench" / fold).mkdir(parents=True)            # OSError: File name too long, before
    assert [fold.split("__")[1] for fold, *_ in folds] == ["talk_1", "talk_2", "talk_3", "fold_4_of_4"]
