"""The project's promises about itself: README's test command is the one CI runs, and the
settings mechanism every stage script uses."""
import re
import runpy
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_script
from voiceface.cli import configure, expand_inputs, given_settings, out_of_range, over_limit, read_settings


def test_readme_gives_the_test_command_that_ci_runs():
    ci_lines = [line.strip() for line in (REPO_ROOT / ".ci/run").read_text().splitlines()]
    command = next(line for line in ci_lines if line.startswith("python -m pytest"))
    readme = (REPO_ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:40])
    assert command in first_screen
    assert "pip install -r requirements.txt" in first_screen and "run_pipeline.py" in first_screen


def _github_anchor(title):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _github_anchors(markdown):
    return {_github_anchor(line.lstrip("#").strip()) for line in markdown.splitlines() if re.match(r"#{1,6} ", line)}


def test_architecture_contents_list_every_section_in_order():
    # the map stays a map: its contents, at the top, name every section as it is now titled
    lines = (REPO_ROOT / "ARCHITECTURE.md").read_text().splitlines()
    headings = [line.lstrip("#").strip() for line in lines if line.startswith(("## ", "### "))]
    start = lines.index("**Contents**")
    listed = [re.match(r"\s*- \[(.*)\]\(#([^)]*)\)$", line) for line in lines[start + 2:start + 2 + len(headings)]]
    assert all(listed) and [m.group(1) for m in listed] == headings
    for m in listed:
        assert m.group(2) == _github_anchor(m.group(1))


def _names_sent_to(document: str, reference: str, more: list[Path] = ()) -> tuple[int, list[str]]:
    """Every name that the code (and `more` files) send readers to `document` for, matched by the
    regular expression `reference` (its group: the name): how many, and those not in the document."""
    text = " ".join((REPO_ROOT / document).read_text().split())
    sources = [path for path in REPO_ROOT.rglob("*.py")
               if not {".venv", "runs", "data"} & set(path.relative_to(REPO_ROOT).parts)]
    found, missing = 0, []
    for path in sources + list(more):
        for match in re.finditer(reference, re.sub(r"\n\s*#\s*", " ", path.read_text())):
            name = " ".join(match.group(1).split())
            found += 1
            if name not in text:
                missing.append(f"{path.relative_to(REPO_ROOT)}: {name}")
    return found, missing


def test_every_name_that_code_and_readme_send_readers_to_architecture_for_is_in_it():
    # (ARCHITECTURE.md, "Frequency warp"): the name is a section, a paragraph's title, or a part that
    # a section's measurement log holds and the section lists
    found, missing = _names_sent_to("ARCHITECTURE.md", r'ARCHITECTURE\.md(?:[,:]\s*|\s+\(\s*)\\?"([^"\\]+)\\?"',
                                    [REPO_ROOT / "README.md"])
    assert found >= 30 and not missing, missing


def test_every_name_that_code_and_the_logs_send_readers_to_readme_for_is_in_it():
    # (README, "Lip sync on real speech"): a name README no longer has (its section was renamed, or the
    # paragraph moved to a log) sends the reader nowhere
    found, missing = _names_sent_to("README.md", r'\(README(?:\.md)?,\s*\\?"([^"\\]+)\\?"',
                                    sorted((REPO_ROOT / "docs/measurements").glob("*.md")) + [REPO_ROOT / "ARCHITECTURE.md"])
    assert found >= 3 and not missing, missing


def test_the_map_links_its_measurement_logs_and_every_link_lands():
    architecture = REPO_ROOT / "ARCHITECTURE.md"
    logs = sorted((REPO_ROOT / "docs/measurements").glob("*.md"))
    assert logs
    for doc in [architecture, REPO_ROOT / "README.md"] + logs:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, fragment = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            assert linked.exists(), f"{doc.name} links to {target}, which is not there"
            if fragment:
                assert fragment in _github_anchors(linked.read_text()), f"{doc.name}: no #{fragment} in {path or doc.name}"
    map_text = architecture.read_text()
    assert {log.name for log in logs} == set(re.findall(r"\(docs/measurements/([\w-]+\.md)\)", map_text))
    for log in logs:         # each log says which section of the map it stands behind
        assert "](../../ARCHITECTURE.md#" in log.read_text().split("\n\n")[1]
    # the map stays readable in an afternoon: measurement detail goes into a log, not into the map
    assert len(map_text.encode()) < 200_000


def test_every_stage_script_has_a_docstring_and_settings():
    scripts = sorted(REPO_ROOT.glob("[0-9]_*/*.py")) + [REPO_ROOT / "run_pipeline.py"]
    assert len(scripts) >= 3
    for script in scripts:
        text = script.read_text()
        assert text.startswith('"""'), f"{script} has no docstring"
        assert read_settings(script), f"{script} has no settings block"
        if re.search(r"^\s*(from|import) voiceface", text, re.MULTILINE):    # (run_onnx.py stands alone)
            assert "sys.path.insert(0, str(Path(__file__).resolve()" in text


def write_script(tmp_path: Path) -> dict:
    script = tmp_path / "script.py"
    script.write_text("# --- settings\nOUTPUT_DIR = 'x'   # where it goes\nWORKERS = 1   # processes\n"
                      "RATE = 0.5   # a float\nFORCE = False   # redo\nNAMES = ['a']   # names\n"
                      "# --- end of settings\n")
    return {"__file__": str(script), "__doc__": "a test script", "OUTPUT_DIR": Path("x"), "WORKERS": 1,
            "RATE": 0.5, "FORCE": False, "NAMES": ["a"]}


def test_settings_are_overridden_with_their_types(tmp_path):
    namespace = write_script(tmp_path)
    configure(namespace, ["--output-dir", "y", "--workers", "3", "--rate", "2", "--force", "--names", "b", "c"])
    assert namespace["OUTPUT_DIR"] == Path("y") and namespace["WORKERS"] == 3 and namespace["RATE"] == 2.0
    assert namespace["FORCE"] is True and namespace["NAMES"] == ["b", "c"]
    with pytest.raises(SystemExit):
        configure(write_script(tmp_path), ["--workers", "2.5"])
    with pytest.raises(SystemExit):
        configure(write_script(tmp_path), ["--no-such-setting", "1"])


def test_a_setting_that_works_with_another_is_refused_without_it(tmp_path, capsys):
    script = tmp_path / "script.py"
    script.write_text("# --- settings\nSTREAM = False   # feed it live\nMIC = False   # the microphone\n"
                      "CHUNK_MS = 10.0   # with --stream / --mic: per chunk\nSYNC = True   # with --stream: in step\n"
                      "FOLDS = 5   # with --stream speaker-independent: folds\n# --- end of settings\n")

    def parsed(*argv):
        namespace = {"__file__": str(script), "STREAM": False, "MIC": False, "CHUNK_MS": 10.0, "SYNC": True, "FOLDS": 5}
        configure(namespace, list(argv))
        return namespace

    assert parsed("--mic", "--chunk-ms", "20")["CHUNK_MS"] == 20.0 and parsed("--stream", "--no-sync")["SYNC"] is False
    assert given_settings(parsed("--stream", "--chunk", "20")) == {"STREAM", "CHUNK_MS"}   # abbreviated, as argparse allows
    assert given_settings(parsed()) == set()
    for argv, said in ((["--chunk-ms", "20"], "--chunk-ms works only with --stream or --mic"),
                       (["--no-sync"], "--no-sync works only with --stream\n"), (["--folds", "3"], "--folds works only"),
                       (["--no-stream", "--no-sync"], "--no-sync works only with --stream (--no-stream turns it off)"),
                       (["--no-mic", "--chunk-ms", "5"], "--chunk-ms works only with --stream or --mic (--no-mic turns")):
        with pytest.raises(SystemExit) as stop:
            parsed(*argv)
        assert stop.value.code == 2 and capsys.readouterr().err.startswith(f"error: {said}")


def test_a_settings_comment_carried_onto_indented_lines_is_all_of_its_help(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("# --- settings\nOUTPUT = ''   # a path; default: beside the input (--stream\n"
                      "#                 writes only with it)\n# a note between settings, not help\n"
                      "WORKERS = 1   # processes\n\n#   not WORKERS' help: a blank line came first\n"
                      "# --- end of settings\n")
    assert read_settings(script) == [("OUTPUT", "a path; default: beside the input (--stream writes only with it)"),
                                     ("WORKERS", "processes")]


@pytest.mark.parametrize("script", sorted(REPO_ROOT.glob("[0-9]_*/*.py")) + [REPO_ROOT / "run_pipeline.py"],
                         ids=lambda path: path.name)
def test_every_script_prints_its_help(script, monkeypatch, capsys):
    if not read_settings(script):
        pytest.skip("a module, not a stage script")
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(script), run_name="__main__")
    assert stop.value.code == 0
    shown = "".join(capsys.readouterr().out.split())          # argparse wraps lines, at hyphens too
    for name, help_text in read_settings(script):
        assert "".join(help_text.split()) in shown, f"{script.name}: {name}'s help is not all shown"


def test_a_setting_below_its_bound_is_named_with_what_to_give(tmp_path):
    assert out_of_range(("--fps", 30.0, 0, True), ("--epochs", 1, 1, False)) is None
    assert out_of_range(("--fps", 0.0, 0, True, "30 or 60")) == "--fps 0: give more than 0 (30 or 60)"
    assert out_of_range(("--epochs", 5, 1, False), ("--folds", 1, 2, False)) == "--folds 1: give 2 or more"
    assert over_limit(("--dropout", 0.5, 1, True), ("--share", 1.0, 1, False)) is None
    assert over_limit(("--dropout", 1.0, 1, True, "a share")) == "--dropout 1: give less than 1 (a share)"
    result = run_script("1_data_cleaning/0_generate_sample_clips.py", "--output-dir", tmp_path, "--duration", 0)
    assert result.returncode == 2 and result.stderr.startswith("error: --duration 0: give 1 or more")
    assert not list(tmp_path.iterdir())
    listener = run_script("3_inference/livelink_listen.py", "--seconds", -1)     # returned at once, as if it had listened
    assert listener.returncode == 2 and listener.stderr.startswith("error: --seconds -1: give 0 or more")
    # the extraction stages, before they open a file (a confidence over 1 failed every video one by one)
    for script, option, value in (("1_data_cleaning/1_extract_blendshapes.py", "--min-detection-confidence", 1.5),
                                  ("1_data_cleaning/1_extract_blendshapes.py", "--workers", 0),
                                  ("1_data_cleaning/2_extract_audio_features.py", "--workers", 0),
                                  ("1_data_cleaning/split_recording.py", "--min-part-seconds", -1)):
        refused = run_script(script, tmp_path / "missing.mp4", "--output-dir", tmp_path / "out", option, value)
        assert refused.returncode in (1, 2) and refused.stderr.startswith(f"error: {option} {value}: give"), refused.stderr
        assert not (tmp_path / "out").exists()


def test_inputs_expand_files_folders_and_globs(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/one.mp4", "a/two.MOV", "a/notes.txt", "three.mp4"):
        (tmp_path / name).write_bytes(b"x")
    files, errors = expand_inputs([tmp_path / "a", str(tmp_path / "*.mp4"), tmp_path / "three.mp4",
                                   tmp_path / "gone.mp4", str(tmp_path / "*.mkv")], (".mp4", ".mov"))
    assert [f.name for f in files] == ["one.mp4", "two.MOV", "three.mp4"]
    assert len(errors) == 2 and re.search("gone.mp4: no such file", errors[0]) and "no file matches" in errors[1]
