"""Clips that are one recording (voiceface/recordings.py): found from audio written and decoded by
PyAV/FFmpeg, and kept on one side of stage 1.3's split."""
import json
import re
import shutil

import numpy as np

from conftest import run_script
from voiceface.audio import extract_file_features
from voiceface.recordings import (MIN_R, merge_recordings, recording_groups, shared_audio, with_partners)
from voiceface.synthetic import speech_utterance, write_audio_file

RATE = 48000


def write_aac(path, samples):
    return extract_file_features(write_audio_file(path, samples, RATE))[1].mel


def utterance(seconds, seed):
    return speech_utterance(seconds, RATE, seed)


def test_an_excerpt_reencoded_quieter_with_noise_is_the_same_recording_and_other_speech_is_not(tmp_path):
    whole = utterance(12.0, 3)
    excerpt = whole[3 * RATE:8 * RATE] * 10 ** (-9 / 20)
    excerpt = excerpt + 10 ** (-60 / 20) * np.random.default_rng(0).standard_normal(len(excerpt))
    mels = {"whole": write_aac(tmp_path / "whole.m4a", whole), "excerpt": write_aac(tmp_path / "excerpt.m4a", excerpt),
            "other": write_aac(tmp_path / "other.m4a", utterance(12.0, 4))}
    found = shared_audio(mels["whole"], mels["excerpt"])
    assert found.r >= MIN_R and abs(found.seconds - 5.0) < 0.1 and abs(found.offset_s - 3.0) <= 0.02, found
    # 30 dB quieter: the floor follows the copy's gain (under the fixed -80 dB floor: r 0.75, missed)
    quiet = shared_audio(mels["whole"], write_aac(tmp_path / "quiet.m4a", whole[3 * RATE:8 * RATE] * 10 ** (-30 / 20)))
    assert quiet.r >= MIN_R and abs(quiet.offset_s - 3.0) <= 0.02, quiet
    assert shared_audio(mels["whole"], mels["other"]).r < MIN_R
    assert shared_audio(mels["excerpt"], mels["other"]).r < MIN_R
    [(members, evidence)] = recording_groups(mels)
    assert members == ["excerpt", "whole"] and abs(evidence.offset_s + 3.0) <= 0.02 and evidence.seconds == found.seconds
    assert shared_audio(mels["whole"][:150], mels["excerpt"]).seconds == 0     # under 2 s: nothing to tell


def test_candidates_whose_envelopes_disagree_are_not_checked_and_the_same_recordings_are_found(tmp_path, monkeypatch):
    """The spectrogram check (three quarters of the search's time) runs only for candidate offsets
    whose loudness envelopes correlate at MIN_ENVELOPE_R over the overlap: on an excerpt re-encoded
    20 dB quieter with noise and four unrelated utterances, it runs far less often, and the groups
    and their evidence are exactly those of checking every candidate."""
    from voiceface import recordings
    whole = utterance(12.0, 5)
    excerpt = whole[2 * RATE:9 * RATE] * 10 ** (-20 / 20)
    excerpt = excerpt + 10 ** (-60 / 20) * np.random.default_rng(1).standard_normal(len(excerpt))
    mels = {"whole": write_aac(tmp_path / "whole.m4a", whole), "excerpt": write_aac(tmp_path / "excerpt.m4a", excerpt)}
    for seed in range(6, 10):
        mels[f"other{seed}"] = write_aac(tmp_path / f"other{seed}.m4a", utterance(8.0, seed))
    checked = []
    spectral_r = recordings.spectral_r
    monkeypatch.setattr(recordings, "spectral_r", lambda a, b: checked.append(1) or spectral_r(a, b))
    pruned = recording_groups(mels, min_votes=None)                 # every pair compared, as the count needs
    pruned_checks = len(checked)
    every = recording_groups(mels, min_envelope_r=None, min_votes=None)
    assert pruned == every and [members for members, _ in pruned] == [["excerpt", "whole"]]
    assert len(checked) - pruned_checks == 15 * recordings.CANDIDATES         # 15 pairs, all candidates usable
    assert pruned_checks <= len(checked) - pruned_checks - 60, (pruned_checks, len(checked) - pruned_checks)


def test_the_index_compares_only_pairs_that_share_landmarks_and_finds_what_every_pair_finds(tmp_path, monkeypatch):
    """Forty generated utterances of 4 s and three copies written with AAC and read back (an excerpt
    20 dB quieter with noise, one 30 dB quieter, a whole clip): the index of landmarks nominates the
    three copies' pairs and a few others, and the groups are exactly those of comparing every pair."""
    from voiceface import recordings
    from voiceface.audio import compute_features
    clips = {f"u{seed:02d}": speech_utterance(4.0, 16000, seed) for seed in range(40)}
    mels = {name: compute_features(audio).mel for name, audio in clips.items()}
    noise = 10 ** (-60 / 20) * np.random.default_rng(2).standard_normal(3 * 16000)
    copies = {"copy_of_u03": clips["u03"][16000:4 * 16000] * 10 ** (-20 / 20) + noise,
              "copy_of_u17": clips["u17"][8000:3 * 16000] * 10 ** (-30 / 20), "copy_of_u29": clips["u29"]}
    for name, audio in copies.items():
        mels[name] = extract_file_features(write_audio_file(tmp_path / f"{name}.m4a", audio.astype(np.float32), 16000))[1].mel
    compared = []
    shared = recordings._shared
    monkeypatch.setattr(recordings, "_shared", lambda *a, **k: compared.append(1) or shared(*a, **k))
    indexed = recording_groups(mels)
    indexed_pairs = len(compared)
    every = recording_groups(mels, min_votes=None)
    assert indexed == every
    assert [members for members, _ in indexed] == [["copy_of_u03", "u03"], ["copy_of_u17", "u17"], ["copy_of_u29", "u29"]]
    assert len(compared) - indexed_pairs == 43 * 42 // 2
    assert 3 <= indexed_pairs <= 20, indexed_pairs                  # the copies, and few others of 903 pairs
    assert recording_groups({}) == [] and recording_groups({"u00": mels["u00"]}) == []
    # a clip's landmarks do not move with its gain (each floored under its own level)
    loud, quiet = (recordings.landmarks(recordings.prepare(compute_features(clips["u05"] * gain).mel)) for gain in (1, 0.03))
    same = np.isin(loud[0] * 10_000 + loud[1], quiet[0] * 10_000 + quiet[1]).mean()
    assert len(loud[0]) > 100 and same > 0.9, same


def test_under_noise_the_index_asks_more_votes_than_chance_gives_and_still_nominates_the_copies():
    """Thirty generated utterances of 6 s under pink noise at 10 dB SNR, each its own noise, and two
    4 s excerpts under other noise: matched on MIN_VOTES alone the noise's chance keys nominate most
    pairs (419 of 496 when measured); asked also for more votes than matches spread at random give,
    the index nominates under a quarter of that, both copies among them, and the groups are those of
    comparing every pair."""
    from scipy.stats import poisson
    from voiceface import recordings
    from voiceface.audio import compute_features
    from voiceface.degrade import mix_at_snr
    from voiceface.synthetic import room_noise

    def noisy(x, seed):
        noise = room_noise("pink", -30.0, len(x) / 16000, 16000, seed)
        return np.asarray(mix_at_snr(x, noise, 10.0, float(np.mean(np.asarray(x, np.float64) ** 2))), np.float32)
    clips = {f"u{seed:02d}": speech_utterance(6.0, 16000, seed) for seed in range(30)}
    mels = {name: compute_features(noisy(audio, 100 + i)).mel for i, (name, audio) in enumerate(clips.items())}
    for name in ("u03", "u17"):
        mels[f"copy_of_{name}"] = compute_features(noisy(clips[name][16000:5 * 16000], 500 + int(name[1:]))).mel
    names = sorted(mels)
    marks = [recordings.landmarks(recordings.prepare(mels[n])) for n in names]
    alone = recordings.votes_of_landmarks(marks, recordings.MIN_VOTES, None)
    judged = recordings.votes_of_landmarks(marks)
    copies = [tuple(sorted((names.index(f"copy_of_{n}"), names.index(n)))) for n in ("u03", "u17")]
    assert all(pair in judged and judged[pair] == alone[pair] for pair in copies), (copies, judged)
    assert set(judged) <= set(alone) and len(judged) * 4 < len(alone), (len(judged), len(alone))
    groups = recording_groups(mels)
    assert [members for members, _ in groups] == [["copy_of_u03", "u03"], ["copy_of_u17", "u17"]]
    assert groups == recording_groups(mels, min_votes=None)
    # the chance level: the fewest votes that matches spread evenly reach in any bin with probability under it
    matches, bins = np.array([1, 9, 193, 800, 20000, 10 ** 6]), np.array([200, 200, 800, 1000, 20000, 20000])
    needed = recordings.chance_votes(matches, bins, 1e-3)
    for m, b, v in zip(matches, bins, needed):
        assert poisson.sf(v - 1, m / b) <= 1e-3 / b < poisson.sf(v - 2, m / b), (m, b, v)


def test_the_search_reads_each_clip_once_and_again_only_past_its_memory_budget(tmp_path, monkeypatch):
    """recording_groups reads its mapping one clip at a time (stage 1.3 gives it MelFiles, each
    log-mel read from its audio_features.npz when asked): each clip is read once while the prepared
    clips fit PREPARED_BYTES; past it, a clip a nominated pair needs again is read again, and the
    groups found are the same."""
    from voiceface import recordings
    from voiceface.audio import AUDIO_FEATURES_FILENAME, compute_features, write_audio_features
    clips = {f"u{seed:02d}": speech_utterance(4.0, 16000, seed) for seed in range(10)}
    clips["copy_of_u02"] = clips["u02"][8000:56000] * 0.3
    clips["copy_of_u07"] = clips["u07"] * 0.1
    files = {}
    for name, audio in clips.items():
        files[name] = tmp_path / name / AUDIO_FEATURES_FILENAME
        files[name].parent.mkdir()
        write_audio_features(files[name], {"source": {"path": name}}, compute_features(audio.astype(np.float32)))
    reads = []

    class Counted(recordings.MelFiles):
        def __getitem__(self, name):
            reads.append(name)
            return super().__getitem__(name)

    within = recording_groups(Counted(files))
    assert sorted(reads) == sorted(files)                        # each once
    assert [members for members, _ in within] == [["copy_of_u02", "u02"], ["copy_of_u07", "u07"]]
    reads.clear()
    monkeypatch.setattr(recordings, "PREPARED_BYTES", 0)          # two kept: the pair in hand
    assert recording_groups(Counted(files)) == within
    assert len(reads) > len(files) and set(reads) == set(files)


def test_past_the_budget_the_pairs_are_taken_block_by_block_so_each_clip_is_read_again_once_a_block():
    """Every pair of 24 clips nominated, the budget holding 6 clips: in the clips' order each clip is
    read again for most pairs; taken block pair by block pair (blocks of 3), each clip is read at most
    once for each block of others, half as often."""
    from voiceface import recordings
    clip = recordings.prepare(np.random.default_rng(0).standard_normal((300, 80)))
    size = recordings._size(clip)
    pairs = [(i, j) for i in range(24) for j in range(i + 1, 24)]
    reads = {}
    for order in ("plain", "blocks"):
        made = []
        kept = recordings._Kept(lambda i: made.append(i) or clip, 6 * size)
        taken = pairs if order == "plain" else recordings._in_blocks(pairs, [size] * 24, 6 * size)
        assert sorted(taken) == pairs
        for i, j in taken:
            kept(i), kept(j)
        reads[order] = len(made)
    assert reads["blocks"] <= 24 * 7 and reads["blocks"] < reads["plain"] / 1.9, reads   # 8 blocks of 3 (146, 284)
    assert recordings._in_blocks(pairs[::-1], [size] * 24, 24 * size) == pairs[::-1]  # all fit: as given


def test_shared_recordings_join_their_groups():
    shared = [(["a", "b"], None)]
    assert merge_recordings({"a": "Ann", "b": "b", "c": "Cy"}, shared) == {"a": "Ann + b", "b": "Ann + b", "c": "Cy"}
    assert merge_recordings({"a": "Ann", "b": "Ann", "c": "Cy"}, shared) == {"a": "Ann", "b": "Ann", "c": "Cy"}
    assert with_partners(["b"], shared) == ["a", "b"] and with_partners(["c"], shared) == ["c"]


def test_stage_1_3_keeps_a_reuploaded_clip_with_its_original(learn_dataset, tmp_path):
    processed = tmp_path / "processed"
    for name in ("sample_20", "sample_21", "sample_22"):
        shutil.copytree(learn_dataset / "processed" / name, processed / name)
    shutil.copytree(learn_dataset / "processed" / "sample_20", processed / "sample_20_reupload")
    result = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", processed, "--output-dir",
                        tmp_path / "dataset", "--val-clips", "sample_20")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "shared recording: sample_20, sample_20_reupload" in result.stdout + result.stderr
    manifest = json.loads((tmp_path / "dataset" / "dataset_manifest.json").read_text())
    assert {c["clip"]: c["split"] for c in manifest["clips"]} == {
        "sample_20": "val", "sample_20_reupload": "val", "sample_21": "train", "sample_22": "train"}
    [shared] = manifest["shared_recordings"]             # the generated clips themselves are told apart
    assert shared["clips"] == ["sample_20", "sample_20_reupload"] and shared["r"] > 0.99
    for seed in range(4):                                  # drawn by fraction: always on one side together
        drawn = run_script("1_data_cleaning/3_create_dataset.py", "--processed-dir", processed, "--output-dir",
                           tmp_path / f"drawn{seed}", "--val-fraction", 0.4, "--seed", seed)
        assert drawn.returncode == 0, drawn.stderr[-2000:]
        splits = {c["clip"]: c["split"] for c in json.loads((tmp_path / f"drawn{seed}" / "dataset_manifest.json").read_text())["clips"]}
        assert splits["sample_20"] == splits["sample_20_reupload"]


def test_the_recordings_study_finds_quieter_excerpts_with_the_floor_under_each_clips_level(tmp_path):
    """recordings_study.py on three generated speech files of 12 s: each file's 5 s excerpt, 30 dB
    quieter, is found with the floor under its own level, the envelope check changes no verdict, and
    the index nominates every excerpt the comparison finds; a folder with one recording gets one line and exit code 1."""
    folder = tmp_path / "raw"
    folder.mkdir()
    for seed in (11, 12, 13):
        write_audio_file(folder / f"talk{seed}.m4a", utterance(12.0, seed), RATE)
    out = tmp_path / "study.md"
    result = run_script("1_data_cleaning/recordings_study.py", "--raw-dir", folder, "--output", out)
    assert result.returncode == 0, result.stderr[-2000:]
    table = out.read_text()
    assert "| as recorded | 3 of 3 | 3 of 3 |" in table and "| 30 dB quieter | 3 of 3 |" in table, table
    assert "36 of 36 excerpts; the same groups of the 3 recordings: yes" in table and "groups found: none" in table
    # the index: every excerpt found by the comparison is nominated, the groups those of every pair
    assert re.search(r"\| as recorded \| 3 of 3 \| \d+ \(\d+\) \| 3 of 3 \|", table), table
    assert re.search(r"\| 30 dB quieter \| 3 of 3 \| \d+ \(\d+\) \| 3 of 3 \|", table), table
    assert "- the same groups as comparing every pair: yes" in table
    (folder / "talk12.m4a").unlink()
    (folder / "talk13.m4a").unlink()
    alone = run_script("1_data_cleaning/recordings_study.py", "--raw-dir", folder, "--output", tmp_path / "alone.md")
    assert alone.returncode == 1 and "fewer than two readable recordings" in alone.stderr
