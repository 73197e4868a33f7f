"""The pipeline runner on a miniature built-in sample, and the evaluation script."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, run_script


def run_pipeline(*args):
    return subprocess.run([sys.executable, str(REPO_ROOT / "run_pipeline.py"), *map(str, args)], cwd="/",
                          capture_output=True, text=True, timeout=900, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def test_evaluation_reports_the_model_and_both_baselines(trained_run, learn_dataset, tmp_path):
    out = tmp_path / "evaluation.json"
    result = run_script("3_inference/evaluate.py", "--checkpoint", trained_run / "best.pt", "--dataset-dir",
                        learn_dataset / "dataset", "--json", out, "--plots-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert [c["clip"] for c in report["clips"]] == ["sample_24"]
    clip = report["clips"][0]
    for label in ("model", "loudness", "mean_face"):
        for key in ("mae", "mouth_mae", "jaw_open_r", "mouth_close_r", "smile_r", "translation_mae_cm",
                    "rotation_error_deg", "silence_jaw_open"):
            assert key in clip[label]
    assert clip["mean_face"]["jaw_open_r"] == 0.0            # a constant explains nothing
    assert clip["loudness"]["jaw_open_r"] > 0.5               # loudness does follow the generated jaw
    assert clip["model"]["mouth_mae"] < clip["mean_face"]["mouth_mae"]
    assert abs(clip["model"]["lag_ms"]) <= 20                 # causal, and not late
    assert clip["model"]["silence_jaw_open"] < clip["model"]["jaw_open_r"]
    summary = report["summary"]["model"]["weighted_mean"]
    assert summary["mouth_mae"] == pytest.approx(clip["model"]["mouth_mae"])
    assert "| model |" in out.with_suffix(".md").read_text()
    assert (tmp_path / "sample_24.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("broken", ["checkpoint"])
def test_evaluation_refuses_a_bad_checkpoint_in_one_line(broken, tmp_path, learn_dataset):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"no")
    result = run_script("3_inference/evaluate.py", "--checkpoint", bad, "--dataset-dir", learn_dataset / "dataset",
                        "--json", tmp_path / "e.json")
    assert result.returncode == 1 and result.stderr.count("error: ") == 1


def test_the_runner_runs_every_stage_and_a_second_run_redoes_nothing(tmp_path):
    # a miniature sample in temporary folders: 3 clips of 4 s, 3 epochs
    work, runs = tmp_path / "sample", tmp_path / "runs"
    args = ("--work-dir", work, "--runs-dir", runs, "--sample-clips", 3, "--sample-duration", 4, "--sample-epochs", 3)
    first = run_pipeline(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    for path in ("processed/sample_00/blendshapes_and_pose.json", "processed/sample_02/audio_features.npz",
                 "dataset/dataset_manifest.json", "inference/sample_02.json", "inference/sample_02.csv",
                 "inference/sample_02.png", "evaluation/evaluation.md", "evaluation/sample_02.png"):
        assert (work / path).exists(), path
    assert (runs / "sample" / "best.pt").exists()
    assert f"checkpoint: {runs / 'sample' / 'best.pt'}" in first.stdout and "evaluation: " in first.stdout
    # the held-out clip was never trained on
    manifest = json.loads((work / "dataset" / "dataset_manifest.json").read_text())
    assert [c["clip"] for c in manifest["clips"] if c["split"] == "val"] == ["sample_02"]
    stamp = (work / "processed/sample_00/blendshapes_and_pose.json").stat().st_mtime_ns
    second = run_pipeline(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "skipped" in second.stdout and not re.search(r"epoch +\d+/\d+  train", second.stdout + second.stderr)
    assert (work / "processed/sample_00/blendshapes_and_pose.json").stat().st_mtime_ns == stamp


def test_clip_figures_combine_weighted_by_frames_even_when_some_are_missing():
    from voiceface.metrics import combine_clip_metrics
    combined = combine_clip_metrics([{"mae": 0.1, "silence_jaw_open": 0.2, "frames": 100},
                                     {"mae": 0.4, "silence_jaw_open": None, "frames": 300}])
    assert combined["mae"] == pytest.approx(0.325) and combined["silence_jaw_open"] == pytest.approx(0.2)
    assert combined["frames"] == 400
