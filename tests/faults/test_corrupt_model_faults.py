"""A corrupt model, deployed by the predictor and served by the runtime: one error line, whatever broke.

Two ways a model gets corrupt: its MLmodel is not YAML (a truncated upload), or
its model file is garbage. The garbage model is loaded through ``mlflow.pyfunc``
(the python_function flavour alone), whose unpickling error spans two lines:
the error must still be one line, naming the file and the cause.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.faults.checks import assert_no_secret, processes_mentioning, the_error_line
from tests.fixtures.images import ROOT
from tests.fixtures.services import SYSTEM_PATH, VENV_BIN, read_result, run_step
from tests.fixtures.serving import free_port, serve_argv

pytestmark = pytest.mark.faults

SECRET = "fault-secret-" + "7" * 12
CORRUPTIONS = ("mlmodel-not-yaml", "model-file-garbage")
# pickle's message for the garbage below, on two lines in Python 3.11: it must arrive joined.
PERSISTENT_ID = "A load persistent id instruction was encountered, but no persistent_load function was specified."


def corrupt_copy(model: Path, folder: Path, corruption: str) -> Path:
    """A copy of ``model`` under ``folder``, broken the way ``corruption`` says."""
    broken = folder / corruption
    shutil.copytree(model, broken)
    if corruption == "mlmodel-not-yaml":
        (broken / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.skops\n   serialization: [\n")
        return broken
    document = yaml.safe_load((broken / "MLmodel").read_text())
    del document["flavors"]["sklearn"]  # only python_function left: mlflow.pyfunc loads it
    (broken / "MLmodel").write_text(yaml.safe_dump(document))
    (broken / "model.skops").write_bytes(b"Pgarbage, not a model\n.")  # a pickle asking for a persistent id
    return broken


@pytest.fixture(params=CORRUPTIONS)
def corrupt_model(request: pytest.FixtureRequest, wine_model_dir: Path, tmp_path: Path) -> tuple[str, Path]:
    return request.param, corrupt_copy(wine_model_dir, tmp_path, request.param)


def test_the_runtime_says_in_one_line_why_a_corrupt_model_cannot_load(corrupt_model: tuple[str, Path]) -> None:
    corruption, model = corrupt_model
    done = subprocess.run(
        serve_argv(str(model), free_port()),
        cwd=ROOT,
        env={"PATH": f"{VENV_BIN}:{SYSTEM_PATH}", "HOME": str(model.parent), "AWS_SECRET_ACCESS_KEY": SECRET},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    line = the_error_line(done.stderr, "serve: error: ")
    if corruption == "mlmodel-not-yaml":
        assert f"{model}/MLmodel is not valid YAML: " in line and "(line 4, column 4)" in line, line
        assert line.endswith("; save the model again with MLflow"), line
    else:
        assert f"{model}: mlflow.pyfunc cannot load the model (UnpicklingError: {PERSISTENT_ID}); " in line, line
        assert line.endswith("or its files are damaged (log it again with MLflow)"), line
    assert_no_secret(SECRET, [done.stdout, done.stderr])
    assert processes_mentioning(str(model)) == []


def test_the_predictor_says_in_one_line_why_a_corrupt_model_cannot_deploy(
    corrupt_model: tuple[str, Path], tmp_path: Path
) -> None:
    corruption, model = corrupt_model
    state = tmp_path / "state"
    env = {
        "PATH": f"{VENV_BIN}:{SYSTEM_PATH}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "FUSEML_MODEL": str(model),
        "FUSEML_APP_NAME": "corrupt",
        "FUSEML_TARGET": "local",
        "FUSEML_STATE_DIR": str(state),
        "FUSEML_RESULTS_DIR": str(tmp_path / "results"),
        "TASK_RESULT": "prediction-url",
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    done = run_step("steps.predictor", env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    line = the_error_line(done.stderr, "predictor: error: ")
    if corruption == "mlmodel-not-yaml":
        assert line.startswith(f"predictor: error: {model}/MLmodel is not valid YAML: "), line
    else:
        assert line.startswith("predictor: error: local server of corrupt (pid "), line
        assert f"exited before it was ready: serve: error: {model}: mlflow.pyfunc cannot load the model" in line
        assert PERSISTENT_ID in line, line
    assert read_result(env) is None
    assert not (state / "corrupt.json").exists(), "a failed deployment is still recorded"
    assert_no_secret(SECRET, [done.stdout, done.stderr], [state])
    assert processes_mentioning(str(model)) == [], "the server of a failed deployment still runs"
