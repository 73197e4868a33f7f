"""Stage 1.3: synchronisation, normalisation, windows, the split and the sync check — on arrays
with known answers, and end to end on generated clips through stages 1.1, 1.2 and 1.3."""
import json
import os
import shutil

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import built_once, run_script
from voiceface.audio import AudioFeatureFile
from voiceface.constants import BLENDSHAPE_NAMES, N_BLENDSHAPES
from voiceface.dataset import (ClipPose, create_sequences, speaker_window_chances, warp_mel, denormalize_targets,
                               interpolate_targets, normalize_targets, speaker_of, split_clips, synchronize_features)
from voiceface.formats import BlendshapeTrack
from voiceface.synthetic import write_talking_face_clip

JAW = BLENDSHAPE_NAMES.index("jawOpen")


def to_wxyz(rotation):
    x, y, z, w = rotation.as_quat()
    return np.array([w, x, y, z])


def make_track(times_s, jaw, has_face=None, quaternions=None):
    n = len(times_s)
    blendshapes = np.zeros((n, 52), np.float32)
    blendshapes[:, JAW] = jaw
    pose = np.zeros((n, 7))
    pose[:, 2] = -40.0
    pose[:, 3:] = quaternions if quaternions is not None else [1, 0, 0, 0]
    has_face = np.ones(n, bool) if has_face is None else has_face
    blendshapes[~has_face] = np.nan
    pose[~has_face] = np.nan
    return BlendshapeTrack(header={"video": {"fps": 30.0}}, frame_indices=np.arange(n), times_ms=times_s * 1000,
                           blendshapes=blendshapes, pose=pose, has_face=has_face)


def make_audio(n_frames, audio_start_s):
    return AudioFeatureFile(meta={"audio_start_s": audio_start_s}, times=(np.arange(n_frames) + 1) / 100,
                            mel=np.zeros((n_frames, 80), np.float32), rms_db=np.zeros(n_frames, np.float32),
                            vad=np.zeros(n_frames, np.uint8))


@pytest.mark.parametrize("audio_start", [0.0, 0.05, -0.033])
def test_a_step_lands_at_the_right_100hz_frame(audio_start):
    video_times = np.arange(90) / 30
    step_at = 1.0                                   # the jaw opens at video frame 30
    track = make_track(video_times, (video_times >= step_at).astype(float))
    clip = synchronize_features("c", track, make_audio(250, audio_start))
    first_open = int(np.argmax(np.nan_to_num(clip.targets[:, JAW]) > 0.5))
    # the linear ramp between frames 29 and 30 crosses 0.5 half a video frame before the step;
    # audio frame i is at audio_start + (i + 1) / 100 on the video clock
    crossing = step_at - 0.5 / 30
    expected = int(np.ceil((crossing - audio_start) * 100 - 1))
    assert abs(first_open - expected) <= 1


def test_rotation_is_slerped_halfway_between_frames():
    q0 = to_wxyz(Rotation.from_euler("y", 10, degrees=True))
    q1 = to_wxyz(Rotation.from_euler("y", 30, degrees=True))
    times = np.array([0.0, 0.1])
    targets, mask = interpolate_targets(np.array([0.05]), times, np.zeros((2, 52)),
                                        np.array([[0, 0, -40, *q0], [0, 0, -40, *q1]]), np.ones(2, bool))
    expected = to_wxyz(Rotation.from_euler("y", 20, degrees=True))
    assert mask[0] and np.isclose(abs(np.dot(targets[0, N_BLENDSHAPES + 3:], expected)), 1.0)


def test_short_gaps_are_interpolated_and_long_gaps_and_outside_are_masked():
    times = np.arange(60) / 30
    has_face = np.ones(60, bool)
    has_face[10:12] = False            # 2 frames missing: face frames 100 ms apart -> interpolated
    has_face[30:36] = False            # 6 frames missing: 233 ms apart -> masked
    track = make_track(times, np.linspace(0, 1, 60), has_face)
    clip = synchronize_features("c", track, make_audio(220, 0.0))
    t = clip.video_times_s
    assert clip.mask[(t > 10 / 30) & (t < 11 / 30)].all()
    assert not clip.mask[(t > 30 / 30) & (t < 35 / 30)].any()
    assert not clip.mask[t > 59 / 30].any()         # after the last video frame
    assert np.isnan(clip.targets[~clip.mask]).all() and not np.isnan(clip.targets[clip.mask]).any()


def test_normalise_then_denormalise_returns_the_input():
    rng = np.random.default_rng(0)
    n = 200
    targets = np.zeros((n, 59))
    targets[:, :52] = rng.uniform(0, 1, (n, 52))
    targets[:, 52:55] = [2.0, -3.0, -45.0] + rng.normal(0, 2, (n, 3))
    targets[:, 55:] = [to_wxyz(r) for r in Rotation.from_euler("xyz", rng.normal(0, 8, (n, 3)) + [5, -10, 2],
                                                                  degrees=True)]
    reference = ClipPose.of(targets, np.ones(n, bool))
    normalised = normalize_targets(targets, reference)
    assert np.abs(normalised[:, 52:55]).max() < 1.0                          # about [-1, 1]
    assert np.allclose(np.linalg.norm(normalised[:, 55:], axis=1), 1.0, atol=1e-6)
    back = denormalize_targets(normalised, reference)
    assert np.allclose(back[:, :55], targets[:, :55], atol=1e-5)
    signs = np.sign(np.sum(back[:, 55:] * targets[:, 55:], axis=1, keepdims=True))
    assert np.allclose(back[:, 55:] * signs, targets[:, 55:], atol=1e-6)


def test_windows_cover_every_frame_and_mask_the_warmup_only_mid_clip():
    windows = create_sequences(1000, window=300, stride=200, warmup=100)
    covered = np.zeros(1000, bool)
    for start, length, loss_start in windows:
        assert start + length <= 1000 and length == 300
        assert loss_start == (0 if start == 0 else 100)
        covered[start + loss_start:start + length] = True
    assert covered.all()
    assert create_sequences(120, 300, 200, 100).tolist() == [[0, 120, 0]]


def test_speakers_stay_on_one_side_and_val_is_near_the_fraction():
    durations = {f"clip{i}": 10.0 + i for i in range(20)}
    speakers = {f"clip{i}": f"speaker{i % 7}" for i in range(20)}
    splits = split_clips(durations, speakers, 0.2, seed=3)
    for speaker in set(speakers.values()):
        assert len({splits[c] for c in durations if speakers[c] == speaker}) == 1
    val = sum(d for c, d in durations.items() if splits[c] == "val") / sum(durations.values())
    assert 0.1 < val <= 0.22
    assert set(split_clips(durations, speakers, 0.0, seed=3).values()) == {"train"}     # nothing held out
    assert speaker_of("Barack Obama, male, English") == "Barack Obama" and speaker_of("older female, English") is None


def test_speaker_balance_moves_the_draw_from_windows_alike_to_speakers_alike():
    # speaker A: two clips, 30 windows; B: 10 windows; a clip without a speaker is its own (5 windows)
    clips = [{"clip": "a1", "speaker": "A", "start": 0, "frames": 2000}, {"clip": "b", "speaker": "B", "start": 2000,
             "frames": 1000}, {"clip": "a2", "speaker": "A", "start": 3000, "frames": 1000}, {"clip": "c", "start": 4000,
             "frames": 500, "speaker": None}]
    starts = np.concatenate([np.arange(0, 2000, 100), np.arange(2000, 3000, 100), np.arange(3000, 4000, 100),
                             np.arange(4000, 4500, 100)])
    a, b, c = (starts < 2000) | ((starts >= 3000) & (starts < 4000)), (starts >= 2000) & (starts < 3000), starts >= 4000
    share = lambda chances: [round(float(chances[m].sum()), 6) for m in (a, b, c)]
    plain = speaker_window_chances(starts, clips, 0.0)
    assert np.allclose(plain, 1 / len(starts)) and share(plain) == [round(30 / 45, 6), round(10 / 45, 6), round(5 / 45, 6)]
    alike = speaker_window_chances(starts, clips, 1.0)
    assert share(alike) == [round(1 / 3, 6)] * 3 and np.isclose(alike.sum(), 1.0)
    assert np.allclose(alike[a], alike[a][0]) and alike[c][0] > alike[b][0] > alike[a][0]   # alike within a speaker
    half = share(speaker_window_chances(starts, clips, 0.5))     # shares as the square roots of 30 : 10 : 5
    assert np.allclose(half, np.sqrt([30, 10, 5]) / np.sqrt([30, 10, 5]).sum(), atol=1e-6)
    assert speaker_window_chances(starts[a], [clips[0], clips[2]], 0.5) is None     # one speaker: nothing to balance


@pytest.fixture(scope="module")
def processed(tmp_path_factory, face_model):
    """Four generated clips through stages 1.1 and 1.2: two plain, one whose audio starts 0.3 s
    late, one whose mouth moves 100 ms before its sound."""
    def build(root):
        raw, out = root / "raw", root / "processed"
        truths = {
            "plain_a": write_talking_face_clip(raw / "plain_a.mp4", duration=5.0, seed=10),
            "plain_b": write_talking_face_clip(raw / "plain_b.mp4", duration=5.0, seed=11),
            "late_audio": write_talking_face_clip(raw / "late_audio.mp4", duration=5.0, seed=12, audio_start=0.3),
            "mouth_first": write_talking_face_clip(raw / "mouth_first.mp4", duration=5.0, seed=13, mouth_lead=0.1),
        }
        for script in ("1_data_cleaning/1_extract_blendshapes.py", "1_data_cleaning/2_extract_audio_features.py"):
            result = run_script(script, raw, "--output-dir", out, "--workers", "2")
            assert result.returncode == 0, result.stderr
        return out, truths
    return built_once(tmp_path_factory, "dataset", build)


def read_split(dataset, split):
    return {key: np.load(dataset / split / f"{key}.npy", mmap_mode="r")
            for key in ("mel", "mel_level", "targets", "mask", "vad", "windows")}


def build_datasets(out, tmp_path, variants: dict) -> dict:
    """Stage 1.3 on the same processed clips (plain_b held out) once per variant: name -> extra
    arguments; returns name -> manifest."""
    builds = {}
    for name, extra in variants.items():
        result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", out, "--output-dir",
                            tmp_path / name, "--val-clips", "plain_b", "--unsure-sync", "keep", *extra)
        assert result.returncode == 0, result.stderr
        builds[name] = json.loads((tmp_path / name / "dataset_manifest.json").read_text())
    return builds


def test_end_to_end_targets_follow_the_truth_and_splits_do_not_overlap(processed, tmp_path):
    out, truths = processed
    dataset = tmp_path / "dataset"
    result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", out, "--output-dir", dataset,
                        "--val-clips", "plain_b")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((dataset / "dataset_manifest.json").read_text())
    by_split = {s: [c["clip"] for c in manifest["clips"] if c["split"] == s] for s in ("train", "val")}
    assert by_split["val"] == ["plain_b"] and not set(by_split["train"]) & set(by_split["val"])
    lags = {c["clip"]: c["sync"]["measured_lag_ms"] for c in manifest["clips"]}
    # a known injected lag (mouth 100 ms first) is measured within one video frame of the truth
    assert abs(lags["mouth_first"] - (-100)) <= 1000 / 30
    assert abs(lags["plain_a"]) <= 1000 / 30 and abs(lags["late_audio"]) <= 1000 / 30
    for entry in manifest["clips"]:
        arrays = read_split(dataset, entry["split"])
        span = slice(entry["start"], entry["start"] + entry["frames"])
        mask = arrays["mask"][span].astype(bool)
        assert mask.mean() > 0.9
        clip = truths[entry["clip"]]
        if entry["clip"] == "mouth_first":
            continue
        # each audio frame's target against the generating opening at that time on the video clock
        audio_start = 0.3 - 1024 / 48000 if entry["clip"] == "late_audio" else 0.0    # AAC priming
        times = audio_start + (np.arange(entry["frames"]) + 1) / 100
        truth = np.interp(times, clip.frame_times, clip.openness)
        r = np.corrcoef(arrays["targets"][span, JAW][mask], truth[mask])[0, 1]
        assert r > 0.9, (entry["clip"], r)
    windows = read_split(dataset, "train")["windows"]
    assert (windows[:, 1] <= manifest["windows"]["length"]).all()
    # a misspelt held-out name is refused, not a dataset with nothing held out
    typo = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", out, "--output-dir",
                      tmp_path / "typo", "--val-clips", "plain_bb")
    assert typo.returncode == 1 and "--val-clips names plain_bb, neither a clip folder" in typo.stderr
    assert not (tmp_path / "typo" / "dataset_manifest.json").exists()


def test_a_dataset_is_skipped_when_current_and_rebuilt_when_its_features_changed(processed, tmp_path):
    out, _ = processed
    source = tmp_path / "processed"
    shutil.copytree(out, source)
    dataset = tmp_path / "dataset"
    args = ("1_data_cleaning/3_create_dataset.py", "--processed-dir", source, "--output-dir", dataset)
    assert run_script(*args).returncode == 0
    stamp = (dataset / "dataset_manifest.json").stat().st_mtime_ns
    again = run_script(*args)
    assert again.returncode == 0 and "skipped" in again.stdout
    assert (dataset / "dataset_manifest.json").stat().st_mtime_ns == stamp
    # stage 1.2 re-run (after an update of the front-end, say): the old dataset is rebuilt, not reused
    features = source / "plain_a" / "audio_features.npz"
    with np.load(features) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["mel"] = arrays["mel"] - 1.0                      # 1 dB quieter
    np.savez(features, **arrays)
    rebuilt = run_script(*args)
    assert rebuilt.returncode == 0 and "rebuilding" in rebuilt.stdout and "plain_a" in rebuilt.stdout, rebuilt.stdout
    assert (dataset / "dataset_manifest.json").stat().st_mtime_ns != stamp
    # a setting that shapes the content, given now or changed by an update of the defaults: rebuilt
    other = run_script(*args, "--no-centre-training-clips")
    assert other.returncode == 0 and "other settings (centre_training_clips)" in other.stdout, other.stdout
    assert not json.loads((dataset / "dataset_manifest.json").read_text())["centre_training_clips"]
    assert "skipped" in run_script(*args, "--no-centre-training-clips").stdout
    # stage 1.1 re-run (another face model, say): its labels changed, so the dataset is rebuilt too
    labels = source / "plain_a" / "blendshapes_and_pose.json"
    document = json.loads(labels.read_text())
    document["frames"][0]["blendshapes"]["jawOpen"] = 0.5
    labels.write_text(json.dumps(document))
    relabelled = run_script(*args, "--no-centre-training-clips")
    assert "rebuilding" in relabelled.stdout and "blendshapes of plain_a changed" in relabelled.stdout, relabelled.stdout
    # made by a search for shared recordings with other constants (an update of voiceface/recordings.py):
    # rebuilt, and the manifest records the search's constants as they are now
    from voiceface.recordings import search_config
    manifest_path = dataset / "dataset_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["shared_recordings_search"] == search_config()
    manifest["shared_recordings_search"]["index"]["min_votes"] += 1
    manifest_path.write_text(json.dumps(manifest))
    searched = run_script(*args, "--no-centre-training-clips")
    assert "rebuilding" in searched.stdout and "search for shared recordings" in searched.stdout, searched.stdout
    assert json.loads(manifest_path.read_text())["shared_recordings_search"] == search_config()


def test_a_dataset_whose_clips_moved_is_scored_from_where_they_are(processed, tmp_path):
    """The processed clips moved (the same features): stage 1.3 keeps the dataset, and the benchmarks,
    which give the folder, read the clips from there; read from the folder it names, it says in one
    line that they are gone."""
    from voiceface.errors import InputError
    from voiceface.evaluation import dataset_clips
    out, _ = processed
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(out, first)
    dataset = tmp_path / "dataset"
    args = ("1_data_cleaning/3_create_dataset.py", "--output-dir", dataset, "--val-clips", "plain_b")
    assert run_script(*args, "--processed-dir", first).returncode == 0
    here = dataset_clips(dataset, "val")
    first.rename(second)
    assert "skipped" in run_script(*args, "--processed-dir", second).stdout
    with pytest.raises(InputError, match="gone from .*first.*plain_b.*move them back"):
        dataset_clips(dataset, "val")
    there = dataset_clips(dataset, "val", second)
    assert [name for name, _, _ in there] == ["plain_b"]
    assert np.array_equal(there[0][1].targets, here[0][1].targets, equal_nan=True)


@pytest.mark.parametrize("option, value", [("--stride-seconds", 0), ("--window-seconds", 0), ("--warmup-seconds", 9),
                                           ("--val-fraction", 1.5), ("--val-fraction", -0.2),
                                           ("--target-smoothing-ms", -30), ("--min-speech-fraction", 2)])
def test_settings_past_what_they_mean_are_refused_before_any_work(tmp_path, option, value):
    """(--stride-seconds 0 ended in a traceback; --val-fraction 1.5 or -0.2 made a split anyway)"""
    result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", tmp_path, "--output-dir",
                        tmp_path / "dataset", option, value)
    assert result.returncode == 2 and result.stderr.startswith(f"error: {option} {value}: give"), result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "dataset").exists()


def test_a_speaker_manifest_that_cannot_be_read_or_misses_clips_is_said_in_one_line(processed, tmp_path):
    out, _ = processed
    args = ("1_data_cleaning/3_create_dataset.py", "--processed-dir", out, "--output-dir", tmp_path / "dataset")
    (tmp_path / "columns.csv").write_text("name,who\nplain_a,Ada Lovelace\n")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)))
    for manifest, said in (("missing.csv", "cannot read the speaker manifest (No such file or directory)"),
                           ("columns.csv", "the speaker manifest's columns are name, who"),
                           ("binary.csv", "cannot read the speaker manifest (it is not text: save the "
                                          "spreadsheet as CSV)")):
        result = run_script(*args, "--speaker-manifest", tmp_path / manifest)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr[-2000:]
        assert said in result.stderr and "give a CSV with the columns clip (or short_name) and speaker" in result.stderr
        assert not (tmp_path / "dataset").exists()
    # a clip without a row is a speaker of its own, as before, and now said (a misspelt name split one
    # person's videos silently)
    (tmp_path / "speakers.csv").write_text("clip,speaker\nplain_a,Ada Lovelace\nplain_bb,Ada Lovelace\n"
                                           "late_audio,Alan Turing\nmouth_first,Alan Turing\n")
    result = run_script(*args, "--speaker-manifest", tmp_path / "speakers.csv")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "has no row for 1 of the 4 clips (plain_b): each is taken as a speaker of its own" in result.stderr
    manifest = json.loads((tmp_path / "dataset" / "dataset_manifest.json").read_text())
    assert {c["clip"]: c["speaker"] for c in manifest["clips"]}["plain_b"] == "plain_b"


@pytest.mark.parametrize("written", [
    b"\xef\xbb\xbfclip,speaker\r\nplain_a,Ad\xc3\xa8le Lovelace\r\nplain_b.mp4,\"Alan Turing, male\"\r\n",  # Excel's CSV UTF-8
    b"clip;speaker\r\nplain_a;Ad\xe8le Lovelace\r\nplain_b.mp4;Alan Turing, male\r\n",  # Excel in French: ; and cp1252
    b"Clip\tSpeaker\nplain_a\tAd\xc3\xa8le Lovelace\nplain_b.mp4\tAlan Turing, male\n",   # tabs, capitals
    b"clip, speaker\nplain_a, Ad\xc3\xa8le Lovelace \n\nplain_b.mp4, \"Alan Turing, male\"\n"])  # spaces, a blank line
def test_a_speaker_manifest_is_read_as_spreadsheets_write_it(tmp_path, written):
    """A byte-order mark made the first column "\ufeffclip" and a semicolon-separated file one column:
    both were refused as lacking the columns; a Windows code page's è could not be decoded."""
    from voiceface.dataset import speakers_from_manifest
    (tmp_path / "speakers.csv").write_bytes(written)
    assert speakers_from_manifest(tmp_path / "speakers.csv") == {"plain_a": "Adèle Lovelace", "plain_b": "Alan Turing"}


def test_a_speaker_manifest_names_a_latin1_file_as_its_bytes_and_as_windows_reads_them(tmp_path):
    """A field that is not UTF-8: Windows' code page for a spreadsheet's CSV, and for a clip also the
    file system's own bytes (an old archive's Latin-1 file name, as split_recording.py writes it)."""
    from voiceface.dataset import speakers_from_manifest
    (tmp_path / "speakers.csv").write_bytes(b"clip,speaker\ncaf\xe9 talk,Ad\xe8le Lovelace\nplain_b,Alan Turing\n")
    assert speakers_from_manifest(tmp_path / "speakers.csv") == {
        os.fsdecode(b"caf\xe9 talk"): "Adèle Lovelace", "café talk": "Adèle Lovelace", "plain_b": "Alan Turing"}


@pytest.mark.parametrize("centre_on", ["low", "mean", "rest"])
def test_centring_moves_each_training_clip_onto_one_centre_and_leaves_validation_as_extracted(processed, tmp_path,
                                                                                             centre_on):
    out, _ = processed
    centre = {"low": lambda x, quiet: np.percentile(x, 10), "mean": lambda x, quiet: np.mean(x),
              "rest": lambda x, quiet: np.median(x[quiet])}[centre_on]       # rest: the face in the pauses
    builds = build_datasets(out, tmp_path, {"plain": ("--no-centre-training-clips",),
                                            "centred": ("--centre-training-clips", "--centre-on", centre_on)})
    assert builds["centred"]["centre_training_clips"] and not builds["plain"]["centre_training_clips"]
    before, after = read_split(tmp_path / "plain", "train"), read_split(tmp_path / "centred", "train")
    means_before, means_after = [], []
    for entry in builds["centred"]["clips"]:
        if entry["split"] != "train":
            continue
        span = slice(entry["start"], entry["start"] + entry["frames"])
        known = after["mask"][span].astype(bool)
        quiet = after["vad"][span][known] == 0
        assert quiet.sum() >= 10                                    # pauses enough for a rest face
        means_before.append(centre(before["targets"][span][known, JAW], quiet))
        means_after.append(centre(after["targets"][span][known, JAW], quiet))
        assert abs(entry["centring_offset"][JAW] - (means_after[-1] - means_before[-1])) < 0.01
        # the movement is kept: the centred track is the extracted one moved, not reshaped
        assert np.corrcoef(before["targets"][span][known, JAW], after["targets"][span][known, JAW])[0, 1] > 0.99
    assert np.ptp(means_before) > 0.001 and np.ptp(means_after) < 0.1 * np.ptp(means_before)
    # onto the median of the clips' centres, one vote per recording (not a mean weighted by length)
    assert abs(np.median(means_after) - np.median(means_before)) < 0.1 * np.ptp(means_before)
    assert np.array_equal(read_split(tmp_path / "plain", "val")["targets"], read_split(tmp_path / "centred", "val")["targets"])


def test_scaling_gives_each_training_clip_the_typical_swing_about_its_rest(processed, tmp_path):
    out, _ = processed
    builds = build_datasets(out, tmp_path, {"centred": (), "scaled": ("--scale-training-clips",)})
    assert builds["scaled"]["scale_training_clips"] and not builds["centred"]["scale_training_clips"]
    before, after = read_split(tmp_path / "centred", "train"), read_split(tmp_path / "scaled", "train")
    spreads, factors = [], []
    for entry in builds["scaled"]["clips"]:
        assert ("scaling_factor" in entry) == (entry["split"] == "train")
        if entry["split"] != "train":
            continue
        span = slice(entry["start"], entry["start"] + entry["frames"])
        known = after["mask"][span].astype(bool)
        jaw_before, jaw_after = before["targets"][span][known, JAW], after["targets"][span][known, JAW]
        quiet = after["vad"][span][known] == 0
        factor = entry["scaling_factor"][JAW]
        assert 0.5 <= factor <= 2.0
        # scaled about the rest: the face in the pauses stays where centring put it, the movement is kept
        assert abs(np.median(jaw_after[quiet]) - np.median(jaw_before[quiet])) < 0.01
        assert np.corrcoef(jaw_before, jaw_after)[0, 1] > 0.99
        assert abs(jaw_after.std() - factor * jaw_before.std()) < 0.05 * factor * jaw_before.std() + 1e-4
        spreads.append(jaw_before.std())
        factors.append(factor)
    typical = np.median(spreads)                                  # one vote per recording
    assert np.ptp(factors) > 0.1                                  # the generated clips do swing differently
    assert np.allclose(factors, np.clip(typical / np.array(spreads), 0.5, 2.0), rtol=0.02)
    assert np.array_equal(read_split(tmp_path / "centred", "val")["targets"], read_split(tmp_path / "scaled", "val")["targets"])


def test_bad_clips_are_left_out_named_and_the_rest_proceed(processed, tmp_path):
    out, _ = processed
    mixed = tmp_path / "processed"
    shutil.copytree(out, mixed)
    (mixed / "plain_b" / "audio_features.npz").unlink()                          # missing stage 1.2 output
    shutil.copytree(mixed / "plain_a", mixed / "other_version")
    path = mixed / "other_version" / "blendshapes_and_pose.json"
    path.write_text(path.read_text().replace('"format_version": 1', '"format_version": 7', 1))
    shutil.copytree(mixed / "plain_a", mixed / "mismatched")                      # 5 s video, 8 s audio
    write_talking_face_clip(tmp_path / "long.mp4", duration=8.0, seed=14)
    run_script("1_data_cleaning/2_extract_audio_features.py", tmp_path / "long.mp4", "--output-dir", tmp_path / "x")
    shutil.copy(tmp_path / "x" / "long" / "audio_features.npz", mixed / "mismatched" / "audio_features.npz")
    shutil.copytree(mixed / "plain_a", mixed / "muted")                           # its sound muted on export
    write_talking_face_clip(tmp_path / "muted.mp4", duration=5.0, seed=10, muted_audio=True)
    run_script("1_data_cleaning/2_extract_audio_features.py", tmp_path / "muted.mp4", "--output-dir", tmp_path / "x")
    shutil.copy(tmp_path / "x" / "muted" / "audio_features.npz", mixed / "muted" / "audio_features.npz")
    shutil.copytree(mixed / "plain_a", mixed / "faceless")
    path = mixed / "faceless" / "blendshapes_and_pose.json"
    text = path.read_text().replace('"has_face":true', '"has_face":false')
    path.write_text(text)
    dataset = tmp_path / "dataset"
    result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", mixed, "--output-dir", dataset)
    assert result.returncode == 1
    manifest = json.loads((dataset / "dataset_manifest.json").read_text())
    reasons = {entry["clip"]: entry["reason"] for entry in manifest["excluded"]}
    assert "audio_features.npz is missing" in reasons["plain_b"]
    assert "format version 7" in reasons["other_version"]
    assert "audio lasts 8.00 s but video 5.00 s" in reasons["mismatched"]
    assert "all masked" in reasons["faceless"]
    assert "is speech for 0% of its 5.0 s (a muted or silent track?)" in reasons["muted"]
    assert sorted(c["clip"] for c in manifest["clips"]) == ["late_audio", "mouth_first", "plain_a"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 5


def test_sync_correction_by_default_by_hand_or_off(processed, tmp_path):
    out, _ = processed
    runs = {"auto": [], "by_hand": ["--clip-lag-corrections", "mouth_first=0"], "off": ["--no-sync-correction"]}
    sync, summaries = {}, {}
    for name, extra in runs.items():
        result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", out, "--output-dir",
                            tmp_path / name, "--val-clips", "plain_b", *extra)
        assert result.returncode == 0, result.stderr
        manifest = json.loads((tmp_path / name / "dataset_manifest.json").read_text())
        sync[name] = {c["clip"]: c["sync"] for c in manifest["clips"]}
        summaries[name] = next(line for line in result.stdout.splitlines() if line.startswith("sync: "))
        for entry in sync[name].values():      # what the manifest promises for every clip
            assert {"measured_lag_ms", "confidence", "confident", "applied_shift_ms", "correction"} <= set(entry)
    # three in-sync clips set the typical lead near 0; the clip whose mouth leads by 100 ms is moved onto it
    auto = sync["auto"]["mouth_first"]
    assert auto["confident"] and auto["correction"] == "estimated"
    assert abs(auto["applied_shift_ms"] + 100) <= 1000 / 30 and abs(auto["lag_after_ms"]) <= 1000 / 30
    assert sync["by_hand"]["mouth_first"]["applied_shift_ms"] == 0
    assert sync["by_hand"]["mouth_first"]["correction"].startswith("by hand")
    assert all(entry["applied_shift_ms"] == 0 for entry in sync["off"].values())
    # the printed summary counts what was done (with correction off it said "0 clips corrected, N unsure")
    assert "1 set by hand" in summaries["by_hand"] and "set by hand" not in summaries["auto"]
    assert summaries["off"].startswith("sync: correction off (--no-sync-correction), 4 clips as they are (")
    # every clip's offset at a glance, from the manifest: which were moved, how, and by how much
    largest = max(abs(entry["applied_shift_ms"]) for entry in sync["auto"].values())
    for name, says in (("auto", "moved onto the lead, its lag measured: "),
                       ("by_hand", "set by hand (--clip-lag-corrections): 1;"),
                       ("off", "not corrected (--no-sync-correction): 4; the largest shift 0 ms")):
        drawn = run_script("1_data_cleaning/plot_synchronisation.py", "--dataset-dir", tmp_path / name)
        assert drawn.returncode == 0 and drawn.stdout.startswith("4 clips: ") and says in drawn.stdout, drawn
        assert name != "auto" or f"the largest shift {largest:.0f} ms" in drawn.stdout
        assert (tmp_path / name / "synchronisation.png").read_bytes()[:4] == b"\x89PNG"


def test_the_plot_is_written(processed, tmp_path):
    out, _ = processed
    result = run_script("1_data_cleaning/plot_synchronisation.py", "--processed-dir", out, "--clip", "late_audio",
                        "--output", tmp_path / "sync.png")
    assert result.returncode == 0, result.stderr
    # a span outside the clip, or backwards, is said in one line and draws nothing (it was an IndexError)
    for span, code, says in ((("--start-s", 100), 1, "nothing to draw from 100 s on (the clip lasts"),
                             (("--start-s", 3, "--end-s", 2), 2, "--end-s 2: give more than 3")):
        refused = run_script("1_data_cleaning/plot_synchronisation.py", "--processed-dir", out, "--clip", "late_audio",
                             "--output", tmp_path / "none.png", *span)
        assert refused.returncode == code and says in refused.stderr and not (tmp_path / "none.png").exists()
    assert (tmp_path / "sync.png").read_bytes()[:4] == b"\x89PNG"


def test_frequency_warp_moves_a_formant_and_keeps_the_identity():
    mel = np.zeros((3, 80), np.float32)
    mel[:, 40] = 1.0
    assert np.array_equal(warp_mel(mel, 1.0), mel)
    assert int(np.argmax(warp_mel(mel, 1.1)[0])) == 44          # a higher voice: the peak moves up
    assert int(np.argmax(warp_mel(mel, 0.9)[0])) == 36
    assert np.allclose(warp_mel(mel, 1.0, "hz"), mel, atol=1e-6)
    with pytest.raises(ValueError, match="warp axis"):
        warp_mel(mel, 1.1, "bark")


@pytest.mark.parametrize("hz", [300, 700, 2000, 4000, 6000])
def test_the_hz_warp_moves_a_tone_as_a_higher_voice_would_and_the_mel_warp_overshoots_high_up(hz):
    """A tone through the front-end, warped by 1.15 on the hz axis, peaks in the band where the
    tone 15 % higher does; the mel-axis warp stretches the bin index, which above 1 kHz (the
    Slaney scale's logarithmic part) moves it further than the voice would."""
    from voiceface.audio import compute_features
    t = np.arange(16000) / 16000
    def peak(mel):
        return int(np.argmax(mel[50]))
    low, high = (compute_features((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)).mel for f in (hz, 1.15 * hz))
    assert peak(warp_mel(low, 1.15, "hz")) == peak(high)
    if hz >= 2000:
        assert peak(warp_mel(low, 1.15, "mel")) >= peak(high) + 3


def test_silence_spliced_into_level_inputs_is_what_the_normaliser_gives_a_recorded_pause():
    """train.py's silence augmentation in level mode measures the spliced silence against the running
    level stored beside the inputs; a pause that really is in the audio must read the same."""
    from voiceface.audio import compute_features
    from voiceface.dataset import level_inputs_against, model_inputs, level_inputs_and_level
    from voiceface.synthetic import room_noise, speech_envelope, voiced_audio
    speech = np.clip(voiced_audio(speech_envelope(6.0, 16000, 3), 16000, 3) * 1.6, -1, 1).astype(np.float32)
    silence = room_noise("digital", 0.0, 1.0, 16000, 0).astype(np.float32)
    features = compute_features(speech)
    begin = 400                                            # frame 400 = 4 s: the pause starts here
    with_pause = compute_features(np.concatenate([speech[:begin * 160], silence, speech[begin * 160:]]))
    recorded = model_inputs(with_pause.mel, with_pause.vad, "level")[begin + 5:begin + 95]   # inside the pause
    quiet_db = compute_features(silence).mel[5:95]
    spliced = level_inputs_against(quiet_db, level_inputs_and_level(features.mel, features.vad)[1][begin])
    assert with_pause.vad[begin + 20:begin + 95].max() == 0               # the pause is unvoiced...
    assert features.vad[begin - 50:begin].mean() > 0.5                    # ...after speech, whose level is held
    # past the hangover the same numbers, to within the 0.2 dB that the hangover's silent frames,
    # counted as voice, pull the recorded mean down
    assert np.abs(recorded - spliced)[15:].max() < 0.5 / 45


def test_npy_rows_writes_the_bytes_np_save_writes_and_refuses_rows_that_do_not_fit(tmp_path):
    from voiceface.formats import NpyRows, read_npy_rows
    rng = np.random.default_rng(0)
    for name, array in {"mel": rng.standard_normal((250, 80)).astype(np.float32),
                        "mask": (rng.random(250) > 0.5).astype(np.uint8), "empty": np.zeros((0, 59), np.float32)}.items():
        np.save(tmp_path / f"{name}_saved.npy", array)
        rows = NpyRows(tmp_path / f"{name}.npy", array.dtype, len(array), array.shape[1:])
        for start in range(0, len(array), 97):                     # blocks of any length
            rows.write(array[start:start + 97])
        rows.close()
        assert (tmp_path / f"{name}.npy").read_bytes() == (tmp_path / f"{name}_saved.npy").read_bytes()
    assert np.array_equal(read_npy_rows(tmp_path / "mel.npy", 100, 30), np.load(tmp_path / "mel_saved.npy")[100:130])
    rows = NpyRows(tmp_path / "short.npy", np.float32, 10, (80,))
    with pytest.raises(ValueError, match="do not fit"):
        rows.write(np.zeros((5, 79), np.float32))                  # other columns
    rows.write(np.zeros((5, 80), np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        rows.write(np.zeros((6, 80), np.float32))                  # past the rows declared
    with pytest.raises(ValueError, match="5 rows written of the 10 declared"):
        rows.close()


def test_stage_1_3_holds_a_clip_at_a_time_not_the_corpus(processed, tmp_path, monkeypatch):
    """Stage 1.3 writes each split's arrays clip by clip and keeps only what the split needs of each
    clip, so that a corpus larger than memory can be made: given every clip folder four times (linked
    under four names), its peak of allocated memory (tracemalloc: NumPy's arrays and Python's
    objects) grows by a small part of the arrays it writes — holding the corpus, as it did, it grew
    by more than all of them (1.8 times). The prepared log-mels the search for shared recordings keeps
    are held to one pair here, as a corpus past voiceface.recordings.PREPARED_BYTES holds them."""
    import runpy
    import tracemalloc
    from voiceface import REPO_ROOT, recordings
    out, _ = processed
    many = tmp_path / "many"
    many.mkdir()
    for k in range(4):
        for clip in sorted(p for p in out.iterdir() if p.is_dir()):
            (many / f"{clip.name}_{k}").symlink_to(clip, target_is_directory=True)
    monkeypatch.setattr(recordings, "PREPARED_BYTES", 0)
    main = runpy.run_path(str(REPO_ROOT / "1_data_cleaning/3_create_dataset.py"))["main"]
    peaks = {}
    for name, folder in (("once", out), ("four times", many)):
        tracemalloc.start()
        try:
            assert main(["--processed-dir", str(folder), "--output-dir", str(tmp_path / name)]) == 0
            peaks[name] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    written = sum(f.stat().st_size for f in (tmp_path / "four times").glob("*/*.npy"))
    grown = peaks["four times"] - peaks["once"]
    assert grown < 0.3 * written, (grown, written, peaks)
    # every clip four times, each four one recording
    manifest = json.loads((tmp_path / "four times" / "dataset_manifest.json").read_text())
    assert len(manifest["clips"]) == 16 and len(manifest["shared_recordings"]) == 4


def test_side_by_side_reads_what_the_joined_arrays_would_without_joining_them(tmp_path):
    """train.py --formants reads a split's mel and formant channels side by side, each memory-mapped,
    where it joined them into one array in memory (160 MB an hour of audio)."""
    from voiceface.dataset import SideBySide
    rng = np.random.default_rng(3)
    mel, formants = rng.standard_normal((500, 80)).astype(np.float32), rng.standard_normal((500, 16)).astype(np.float32)
    np.save(tmp_path / "mel.npy", mel)
    np.save(tmp_path / "formants.npy", formants)
    both = SideBySide(np.load(tmp_path / "mel.npy", mmap_mode="r"), np.load(tmp_path / "formants.npy", mmap_mode="r"))
    joined = np.concatenate([mel, formants], axis=1)
    assert both.shape == joined.shape and len(both) == 500 and both.dtype == np.float32
    rows = rng.integers(0, 500, 64)
    for index in (rows, slice(120, 320), slice(None), 7):
        got = both[index] if not isinstance(index, int) else both[index:index + 1]
        want = joined[index] if not isinstance(index, int) else joined[index:index + 1]
        assert np.array_equal(got, want)
    assert np.array_equal(np.asarray(both), joined) and np.asarray(both, np.float64).dtype == np.float64
