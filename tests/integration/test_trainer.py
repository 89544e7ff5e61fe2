"""The trainer step end to end, against a real MLflow server and real S3 (SeaweedFS).

Each test sets only the variables FuseML would set, runs ``python -m
steps.trainer`` in a codeset as its working directory, and checks the result
file, the exit code and the message the user sees.
"""

from __future__ import annotations

import socket
import textwrap
import uuid
from pathlib import Path

import pytest

from common.storage import open_store
from tests.fixtures.codesets import WINE, checkout_wine
from tests.fixtures.services import read_result, run_step

pytestmark = pytest.mark.integration


@pytest.fixture
def wine_codeset(tmp_path: Path) -> Path:
    """The example codeset as FuseML checks it out: with its .fuseml metadata."""
    return checkout_wine(tmp_path / "project")


def make_codeset(tmp_path: Path, mlproject: str, **files: str) -> Path:
    codeset = tmp_path / "project"
    codeset.mkdir()
    (codeset / "MLproject").write_text(textwrap.dedent(mlproject))
    for name, text in files.items():
        (codeset / name).write_text(textwrap.dedent(text))
    return codeset


def assert_failed(result, env, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert read_result(env) is None, "a failed step must leave no result"
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("trainer: error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last


def test_trains_the_wine_codeset_and_returns_a_loadable_model(wine_codeset, step_env, monkeypatch):
    step_env["FUSEML_MLFLOW_ENTRYPOINT_ARGS"] = "alpha=0.4"
    step_env["FUSEML_L1_RATIO"] = "0.2"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert result.returncode == 0, result.stderr
    url = read_result(step_env)
    assert url.startswith("s3://mlflow-artifacts/"), url
    assert "/models/m-" in url and url.endswith("/artifacts"), "MLflow 3 logs models under models/<id>/artifacts"
    assert open_store(url, step_env).exists(url + "/MLmodel")

    for name, value in step_env.items():
        if name.startswith(("AWS_", "MLFLOW_")):
            monkeypatch.setenv(name, value)
    import mlflow
    import pandas as pd

    rows = pd.read_csv(WINE / "wine-quality.csv").drop(columns=["quality"]).head(5)
    predictions = mlflow.pyfunc.load_model(url).predict(rows)
    assert len(predictions) == 5 and all(3 <= p <= 9 for p in predictions)

    run = mlflow.MlflowClient(step_env["MLFLOW_TRACKING_URI"]).search_runs(
        [
            mlflow.MlflowClient(step_env["MLFLOW_TRACKING_URI"])
            .get_experiment_by_name(_experiment(wine_codeset))
            .experiment_id
        ]
    )[0]
    assert run.data.params["alpha"] == "0.4" and run.data.params["l1_ratio"] == "0.2"
    assert run.info.status == "FINISHED" and "rmse" in run.data.metrics


def _experiment(codeset: Path) -> str:
    return "tests." + (codeset / ".fuseml" / "_project").read_text().strip()


def test_verbose_run_never_shows_a_secret(wine_codeset, step_env):
    step_env["FUSEML_VERBOSE"] = "true"
    step_env["MLFLOW_TRACKING_USERNAME"] = "fuseml"
    step_env["MLFLOW_TRACKING_PASSWORD"] = "tracking-pa55-" + uuid.uuid4().hex
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "DEBUG" in output, "verbose mode shows detail"
    for secret in (step_env["AWS_SECRET_ACCESS_KEY"], step_env["MLFLOW_TRACKING_PASSWORD"]):
        assert secret not in output


def test_no_mlproject(tmp_path, step_env):
    (tmp_path / "project").mkdir()
    result = run_step("steps.trainer", step_env, cwd=tmp_path / "project")
    assert_failed(result, step_env, "no MLproject file in the codeset")


def test_unknown_entry_point(wine_codeset, step_env):
    step_env["FUSEML_MLFLOW_ENTRYPOINT"] = "train"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "no entry point 'train'", "entry points: main")


def test_unknown_argument(wine_codeset, step_env):
    step_env["FUSEML_MLFLOW_ENTRYPOINT_ARGS"] = "alpha=0.1 l1-ratio=0.3"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "no parameter 'l1-ratio'", "parameters: alpha, l1_ratio")


def test_parameter_of_the_wrong_type(wine_codeset, step_env):
    step_env["FUSEML_ALPHA"] = "lots"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "'alpha'", "declared float but got 'lots'")


def test_entry_point_failing(tmp_path, step_env):
    codeset = make_codeset(
        tmp_path,
        """\
        name: broken
        entry_points:
          main:
            command: "python fail.py"
        """,
        **{"fail.py": "import sys\nprint('cannot read the training data')\nsys.exit(3)\n"},
    )
    result = run_step("steps.trainer", step_env, cwd=codeset)
    assert_failed(result, step_env, "failed with exit code 3", "cannot read the training data")


def test_wrong_model_artifact_path_lists_what_the_run_logged(wine_codeset, step_env):
    step_env["FUSEML_MLFLOW_ARTIFACT_PATH"] = "classifier"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "logged no model at 'classifier'", "models: model")


def test_tracking_server_not_answering_fails_fast(wine_codeset, step_env):
    """A server that accepts connections but never answers: the step gives up within 30 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        step_env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = run_step("steps.trainer", step_env, cwd=wine_codeset, timeout=30)
    assert_failed(result, step_env, "does not answer", "MLFLOW_TRACKING_URI")


def test_tracking_server_refusing_connections(wine_codeset, step_env):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    step_env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset, timeout=30)
    assert_failed(result, step_env, "does not answer")


def test_wrong_s3_credentials(wine_codeset, step_env):
    step_env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-" + uuid.uuid4().hex
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "S3 authentication failed", "AWS_SECRET_ACCESS_KEY")
    assert step_env["AWS_SECRET_ACCESS_KEY"] not in result.stderr
