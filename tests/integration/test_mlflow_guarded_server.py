"""Model URIs against a password-protected MLflow server whose artifacts live in a local folder.

The other tracking setup users run: MLflow's basic-auth app, artifacts proxied by
the server onto ``--artifacts-destination`` (a folder, not S3). A model
registered there is read through the server with the right password; a wrong
one is one line naming the variables to check, and the password appears in no
output.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import InputError
from common.model_uri import resolve
from common.storage import open_store
from runner.services.mlflow_server import MLflowServer
from tests.fixtures.services import STEP_TIMEOUT, read_result, run_step

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = f"Adm1n-{uuid.uuid4().hex}"
WRONG = f"Wr0ng-{uuid.uuid4().hex}"
LOG_MODEL = textwrap.dedent("""
    import sys
    import mlflow
    from sklearn.linear_model import LinearRegression
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", registered_model_name=sys.argv[1])
    print(run.info.artifact_uri)
""")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLflowServer]:
    data = tmp_path_factory.mktemp("mlflow-guarded")
    with MLflowServer(
        data, {}, artifact_root=str(data / "artifacts"), artifacts="proxied", admin_password=PASSWORD
    ) as server:
        yield server


def _env(server: MLflowServer, password: str) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **server.env(),
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": password,
    }


@pytest.fixture(scope="module")
def registered(guarded: MLflowServer) -> str:
    name = f"guarded-{uuid.uuid4().hex[:6]}"
    done = subprocess.run([sys.executable, "-c", LOG_MODEL, name], env=_env(guarded, PASSWORD), cwd=ROOT,
                          capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("mlflow-artifacts:/")
    return name


def test_a_registered_model_is_read_through_the_server_with_the_password(
    guarded: MLflowServer, registered: str
) -> None:
    assert (Path(guarded.artifact_root)).is_dir(), "the server writes artifacts to its folder"
    uri = f"models:/{registered}/1"
    location = resolve(uri, _env(guarded, PASSWORD))
    assert location.version == "1"
    assert "MLmodel" in open_store(uri, _env(guarded, PASSWORD)).list(uri)


def test_a_wrong_password_is_one_line_naming_the_variables(guarded: MLflowServer, registered: str) -> None:
    with pytest.raises(InputError) as refused:
        resolve(f"models:/{registered}/1", _env(guarded, WRONG))
    message = str(refused.value)
    assert "MLFLOW_TRACKING_USERNAME" in message and "MLFLOW_TRACKING_PASSWORD" in message
    assert WRONG not in message and "\n" not in message


def test_the_predictor_with_a_wrong_password_in_the_uri_fails_cleanly(
    guarded: MLflowServer, registered: str, tmp_path: Path
) -> None:
    env = {**_env(guarded, WRONG), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
           "MLFLOW_TRACKING_URI": guarded.tracking_uri.replace("http://", f"http://admin:{WRONG}@"),
           "FUSEML_MODEL": f"models:/{registered}/1", "FUSEML_TARGET": "local", "FUSEML_APP_NAME": "guarded",
           "FUSEML_STATE_DIR": str(tmp_path / "state"), "FUSEML_RESULTS_DIR": str(tmp_path / "results"),
           "TASK_RESULT": "result"}  # fmt: skip
    done = run_step("steps.predictor", env)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("predictor: error:")]
    assert len(errors) == 1 and "MLFLOW_TRACKING_PASSWORD" in errors[0], done.stderr
    assert WRONG not in done.stdout + done.stderr
    assert read_result(env) is None
