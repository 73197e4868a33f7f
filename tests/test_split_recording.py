"""1_data_cleaning/split_recording.py: one long recording cut into parts at key frames, with the
speaker manifest that lets the speaker-dependent benchmark hold each out in turn."""
import csv
from pathlib import Path

import av
import numpy as np

from conftest import run_script
from voiceface.dataset import speakers_from_manifest
from voiceface.synthetic import write_talking_face_clip
from voiceface.video import probe_video

SCRIPT = "1_data_cleaning/split_recording.py"
GATHER = "1_data_cleaning/gather_clips.py"


def decoded(path):
    """Every picture (stored orientation) with its time, and the sound with its first sample's time."""
    with av.open(str(path)) as container:
        pictures = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        frames = list(container.decode(audio=0))
    sound = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    return pictures, float(frames[0].time), sound, frames[0].sample_rate


def assert_parts_are_the_source(parts, source):
    """The parts hold the source's pictures, every one once and in order, each the very same picture
    at its source time (within 1 ms of the part's first picture's place in the source), and the sound
    at the same instant as in the source, within 1 ms (a decoder started mid-stream lands 16 samples,
    0.3 ms, from one started at the file's first packet); past the first AAC frames, which a cut
    decodes without their predecessor; a shifted offset (a frame is 33 ms) would fail. Returns each
    part's pictures, for the checks a test adds."""
    pictures, sound_start, sound, rate = decoded(source)
    index, decoded_parts = 0, []
    for part in parts:
        part_pictures, part_sound_start, part_sound, _ = decoded(part)
        origin = pictures[index][0] - part_pictures[0][0]              # the source's time of the part's 0
        for time, picture in part_pictures:
            assert abs(time + origin - pictures[index][0]) < 1e-3 and np.array_equal(picture, pictures[index][1]), \
                (part.name, time)
            index += 1
        first = int(round((origin + part_sound_start - sound_start) * rate))
        skip, n = 4096, len(part_sound) - 8192
        assert n > rate
        errors = {lag: np.abs(part_sound[skip:skip + n] - sound[first + lag + skip:first + lag + skip + n]).max()
                  for lag in range(-rate // 500, rate // 500 + 1)}               # +-2 ms
        lag = min(errors, key=errors.get)
        assert abs(lag) <= rate // 1000 and errors[lag] < 1e-3, (part.name, lag, errors[lag])
        decoded_parts.append(part_pictures)
    assert index == len(pictures)                                          # every picture, once
    return decoded_parts


def test_a_recording_cut_into_parts_keeps_every_picture_its_sound_in_sync_and_its_rotation(tmp_path):
    # a phone video (stored on its side), key frames every second, the sound starting 0.25 s after the picture
    source = tmp_path / "raw" / "Ada Lovelace.mp4"
    write_talking_face_clip(source, duration=9.0, seed=4, keyframe_seconds=1.0, display_rotation=90, audio_start=0.25)
    out = tmp_path / "parts"
    out.mkdir()
    (out / "speakers.csv").write_text("clip,speaker\nsomeone_else,Grace Hopper\n")
    result = run_script(SCRIPT, source, "--output-dir", out, "--parts", 3, "--min-part-seconds", 2)
    assert result.returncode == 0, result.stderr
    parts = [out / f"Ada Lovelace_part{k}.mp4" for k in (1, 2, 3)]
    assert all(p.exists() for p in parts) and not list(out.glob(".*partial*"))

    for part, part_pictures in zip(parts, assert_parts_are_the_source(parts, source)):
        assert probe_video(part).rotation_deg == 90
        assert 2.5 <= len(part_pictures) / 30 <= 3.5                       # about equal thirds
        assert part_pictures[0][0] == 0.0                                  # each part's clock starts at its picture

    assert speakers_from_manifest(out / "speakers.csv") == {
        "someone_else": "Grace Hopper", **{p.stem: "Ada Lovelace" for p in parts}}

    again = run_script(SCRIPT, source, "--output-dir", out, "--parts", 3, "--min-part-seconds", 2)
    assert again.returncode == 0 and "skipped" in again.stdout


def test_recordings_too_short_or_without_sound_get_one_line_and_the_others_are_cut(tmp_path):
    raw = tmp_path / "raw"
    write_talking_face_clip(raw / "long.mp4", duration=6.0, seed=5, keyframe_seconds=1.0)
    write_talking_face_clip(raw / "short.mp4", duration=3.0, seed=6, keyframe_seconds=1.0)
    write_talking_face_clip(raw / "silent film.mp4", duration=6.0, seed=7, keyframe_seconds=1.0, with_audio=False)
    write_talking_face_clip(raw / "sparse.mp4", duration=6.0, seed=8)           # one key frame only
    # a download's long title: 80 CJK characters leave its parts' names room (250 bytes), 82 do not (256)
    long_title, too_long = "演" * 80, "演" * 82
    for name in (long_title, too_long):
        write_talking_face_clip(raw / f"{name}.mp4", duration=6.0, seed=5, keyframe_seconds=1.0)
    out = tmp_path / "parts"
    result = run_script(SCRIPT, raw, "--output-dir", out, "--parts", 2, "--min-part-seconds", 2.5,
                        "--speaker", "Ada Lovelace")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 4 and "Traceback" not in result.stderr
    assert any("short.mp4" in e and "too short for 2 parts of at least 2.5 s" in e for e in errors)
    assert any("silent film.mp4" in e and "no audio stream" in e for e in errors)
    assert any("sparse.mp4" in e and "key frames" in e for e in errors)
    assert any(f"{too_long}_part1.mp4: a file name of 256 bytes" in e for e in errors)
    assert sorted(p.name for p in out.iterdir()) == sorted(["long_part1.mp4", "long_part2.mp4", "speakers.csv",
                                                            f"{long_title}_part1.mp4", f"{long_title}_part2.mp4"])
    with open(out / "speakers.csv", newline="") as f:
        assert sorted(tuple(row.values()) for row in csv.DictReader(f)) == sorted(
            [("long_part1", "Ada Lovelace"), ("long_part2", "Ada Lovelace"), (f"{long_title}_part1", "Ada Lovelace"),
             (f"{long_title}_part2", "Ada Lovelace")])
    refused = run_script(SCRIPT, raw / "long.mp4", "--output-dir", out, "--speaker", "male")
    assert refused.returncode == 1 and "does not name one person" in refused.stderr


def test_mpeg_program_and_transport_streams_are_read_cut_and_kept_in_sync_like_mp4(tmp_path, face_model):
    """A .mpg (MPEG-1 video and MPEG audio, as the GRID corpus is stored; its clock starts at 0.53 s)
    and a .ts (the mp4's packets in a transport stream; sound and picture start at different times):
    stages 1.1 and 1.2 read them, the parts of a cut keep every picture, and each file and part
    measures the same audio-video lag as the mp4 it came from, within 10 ms."""
    from voiceface.dataset import read_processed_clip, synchronize_features
    from voiceface.formats import read_blendshapes_json
    from voiceface.sync import estimate_clip_lag
    from voiceface.synthetic import rewrite_container
    raw = tmp_path / "raw"
    mp4 = write_talking_face_clip(raw / "clip_mp4.mp4", duration=8.0, seed=9, keyframe_seconds=1.0).path
    rewrite_container(mp4, raw / "clip_mpg.mpg", "mpeg1video", "mp2")
    rewrite_container(mp4, raw / "clip_ts.ts")
    parts = tmp_path / "parts"
    result = run_script(SCRIPT, raw / "clip_mpg.mpg", raw / "clip_ts.ts", "--output-dir", parts, "--parts", 2,
                        "--min-part-seconds", 3, "--speaker", "Ada Lovelace")
    assert result.returncode == 0, result.stderr
    cut = sorted(parts.glob("clip_*_part*"))
    assert [p.name for p in cut] == ["clip_mpg_part1.mpg", "clip_mpg_part2.mpg", "clip_ts_part1.ts", "clip_ts_part2.ts"]
    for suffix in ("mpg", "ts"):
        whole, _, _, _ = decoded(raw / f"clip_{suffix}.{suffix}")
        halves = [decoded(p)[0] for p in cut if p.suffix == f".{suffix}"]
        assert sum(len(h) for h in halves) == len(whole) == 240
    processed = tmp_path / "processed"
    for script in ("1_data_cleaning/1_extract_blendshapes.py", "1_data_cleaning/2_extract_audio_features.py"):
        result = run_script(script, raw, parts, "--output-dir", processed)
        assert result.returncode == 0, result.stderr

    def lag_ms(name):
        track, audio = read_processed_clip(processed / name)
        clip = synchronize_features(name, track, audio)
        estimate = estimate_clip_lag(clip.targets, clip.mel, clip.mask)
        assert estimate.confident, (name, estimate)
        return 1000 * estimate.lag_s

    reference = lag_ms("clip_mp4")
    for name in ("clip_mpg", "clip_ts", "clip_mpg_part1", "clip_mpg_part2", "clip_ts_part1", "clip_ts_part2"):
        track = read_blendshapes_json(processed / name / "blendshapes_and_pose.json")
        assert track.has_face.all()
        assert abs(lag_ms(name) - reference) <= 10, name


def test_phone_and_web_containers_are_found_and_cut_in_their_own_format_and_others_into_matroska(tmp_path):
    """An old phone's .3gp and a web download's .flv: a folder search finds them and their parts are
    3GP and FLV again; a container written by no muxer here (a .wmv, named) is cut into .mkv parts, not
    Matroska under the source's name."""
    from voiceface.cli import VIDEO_EXTENSIONS, expand_inputs
    from voiceface.synthetic import rewrite_container
    mp4 = write_talking_face_clip(tmp_path / "src" / "clip.mp4", duration=4.0, seed=5, keyframe_seconds=1.0).path
    raw = tmp_path / "raw"
    for name in ("phone.3gp", "web.flv"):
        rewrite_container(mp4, raw / name)
    odd = tmp_path / "odd" / "tv.wmv"                              # Matroska inside: FFmpeg reads by content
    odd.parent.mkdir()
    odd.write_bytes(rewrite_container(mp4, tmp_path / "tv.mkv").read_bytes())
    assert [p.name for p in expand_inputs([raw], VIDEO_EXTENSIONS)[0]] == ["phone.3gp", "web.flv"]
    out = tmp_path / "parts"
    result = run_script(SCRIPT, raw, odd, "--output-dir", out, "--parts", 2, "--min-part-seconds", 1)
    assert result.returncode == 0, result.stderr
    for stem, suffix, muxer in (("phone", ".3gp", "3gp"), ("web", ".flv", "flv"), ("tv", ".mkv", "matroska")):
        parts = [out / f"{stem}_part{k}{suffix}" for k in (1, 2)]
        assert all(p.exists() for p in parts), sorted(p.name for p in out.iterdir())
        for part in parts:
            with av.open(str(part)) as container:
                assert muxer in container.format.name.split(","), (part.name, container.format.name)
        pictures = assert_parts_are_the_source(parts, raw / f"{stem}{suffix}" if stem != "tv" else odd)
        assert sum(map(len, pictures)) == 120
    # a real Windows Media file, named: its codecs go in no container written here, so it is refused in
    # one line that says what to do, and nothing is left behind
    wmv = rewrite_container(mp4, tmp_path / "odd" / "old.wmv", "wmv2", "wmav2", audio_rate=44100, audio_bit_rate=64000)
    refused = run_script(SCRIPT, wmv, "--output-dir", tmp_path / "wmv_parts", "--parts", 2, "--min-part-seconds", 1,
                         "--speaker", "Ada Lovelace")
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {wmv}: its wmv2 picture and wmav2 sound cannot be copied into matroska "
                                     "parts; convert it to mp4"), refused.stderr
    assert not [p.name for p in (tmp_path / "wmv_parts").glob("*") if p.name != "speakers.csv"]


def test_a_dataset_in_folders_is_gathered_into_uniquely_named_links_with_its_speakers(tmp_path):
    """VoxCeleb's layout, <speaker>/<video>/00001.mp4: by file name every clip is 00001 and all but
    one were refused; gathered, each is its own clip, its speaker the first folder."""
    dataset = tmp_path / "vox"
    clip = write_talking_face_clip(tmp_path / "talk.mp4", duration=2.0, seed=5).path
    layout = ["id00012/21Uxsk56VDQ/00001.mp4", "id00012/21Uxsk56VDQ/00002.mp4", "id00012/5V8sU4nK0sY/00001.mp4",
              "id00015/0fijmz4vTVU/00001.mp4", "stray.mp4"]
    for relative in layout:
        (dataset / relative).parent.mkdir(parents=True, exist_ok=True)
        (dataset / relative).write_bytes(Path(clip).read_bytes())
    as_named = run_script("1_data_cleaning/2_extract_audio_features.py", dataset, "--output-dir", tmp_path / "named")
    refused = [line for line in as_named.stderr.splitlines() if line.startswith("error:")]
    assert as_named.returncode == 1 and len(refused) == 2 and all("gather_clips.py" in e for e in refused), refused
    out = tmp_path / "gathered"
    result = run_script(GATHER, dataset, "--output-dir", out, "--speaker-level", 1)
    assert result.returncode == 1                      # the stray video names no speaker folder: one line
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "stray.mp4: lies 0 folder(s) below" in errors[0], result.stderr
    names = ["id00012__21Uxsk56VDQ__00001", "id00012__21Uxsk56VDQ__00002", "id00012__5V8sU4nK0sY__00001",
             "id00015__0fijmz4vTVU__00001"]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.mp4" for n in names] + ["speakers.csv"])
    assert all((out / f"{n}.mp4").is_symlink() for n in names)
    assert speakers_from_manifest(out / "speakers.csv") == dict(zip(names, ["id00012"] * 3 + ["id00015"]))
    # the stages find every clip in the gathered folder, each under its own name
    features = run_script("1_data_cleaning/2_extract_audio_features.py", out, "--output-dir", tmp_path / "processed")
    assert features.returncode == 0, features.stderr
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == names
    again = run_script(GATHER, dataset, "--output-dir", out, "--speaker-level", 1)       # what is there is kept
    assert "0 linked, 4 already there, 1 failed" in again.stdout, again.stdout + again.stderr
    within = run_script(GATHER, dataset, "--output-dir", dataset / "gathered")     # twice: its own links not taken
    assert within.returncode == 0 and "5 linked" in within.stdout, within.stdout + within.stderr
    again = run_script(GATHER, dataset, "--output-dir", dataset / "gathered")
    assert "0 linked, 5 already there, 0 failed" in again.stdout, again.stdout + again.stderr
