"""Result files as Tekton reads them: exact value, atomic, only when asked for."""

import pytest

from common.errors import InputError, StepError
from common.results import check_result_folder, result_path, write_result


def test_value_written_without_newline(tmp_path):
    env = {"TASK_RESULT": "image", "FUSEML_RESULTS_DIR": str(tmp_path / "r")}
    path = write_result("reg/repo:tag", env)
    assert path == tmp_path / "r" / "image"
    assert path.read_bytes() == b"reg/repo:tag"
    assert [p.name for p in path.parent.iterdir()] == ["image"], "no temporary file left behind"


def test_no_task_result_writes_nothing(tmp_path):
    assert write_result("x", {"FUSEML_RESULTS_DIR": str(tmp_path)}) is None
    assert list(tmp_path.iterdir()) == []


def test_default_folder_is_tekton_results():
    assert str(result_path({"TASK_RESULT": "x"})) == "/tekton/results/x"


def test_result_name_cannot_escape_the_folder(tmp_path):
    with pytest.raises(InputError, match="not a valid result name"):
        result_path({"TASK_RESULT": "../x", "FUSEML_RESULTS_DIR": str(tmp_path)})


def test_oversized_result_is_refused(tmp_path):
    env = {"TASK_RESULT": "x", "FUSEML_RESULTS_DIR": str(tmp_path)}
    with pytest.raises(StepError, match="more than Tekton's 4096"):
        write_result("a" * 5000, env)
    assert not (tmp_path / "x").exists()


def test_unwritable_folder_is_reported_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot be created"):
        check_result_folder({"TASK_RESULT": "x", "FUSEML_RESULTS_DIR": str(blocker / "sub")})
