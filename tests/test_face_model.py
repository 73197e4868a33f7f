"""The face model: verified by SHA-256; when missing and not downloadable, one line saying what to do."""
import pytest

import voiceface.face_model as face_model
from conftest import run_script
from voiceface.errors import InputError


def test_the_official_model_verifies(face_model):
    assert face_model_module_check(face_model)


def face_model_module_check(path):
    return face_model.ensure_face_model(path) == path


def test_a_missing_model_that_cannot_be_downloaded_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(face_model, "FACE_MODEL_URL", "http://127.0.0.1:9/face_landmarker.task")
    with pytest.raises(InputError) as error:
        face_model.ensure_face_model(tmp_path / "face_landmarker.task")
    message = str(error.value)
    assert "\n" not in message and "download" in message and "--model" in message
    assert not (tmp_path / "face_landmarker.task").exists()


def test_a_wrong_model_file_is_refused(tmp_path):
    wrong = tmp_path / "face_landmarker.task"
    wrong.write_bytes(b"not the model")
    with pytest.raises(InputError, match="SHA-256"):
        face_model.ensure_face_model(wrong)
    result = run_script("1_data_cleaning/1_extract_blendshapes.py", "--model", wrong, tmp_path)
    assert result.returncode == 1 and "SHA-256" in result.stderr
