"""The local target end to end: an s3:// model served by our runtime, probed, replaced, stopped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from common.storage import S3Settings, S3Store
from runner.apps import apps
from steps.predictor.apps import stop_app
from steps.predictor.state import StateStore, process_alive
from tests.fixtures.models import WINE_FEATURES, wine_feature_rows
from tests.fixtures.services import read_result, run_step
from tests.fixtures.serving import kserve_grpc_predict

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3_model(s3, wine_model_dir: Path) -> str:
    url = f"s3://{s3.bucket}/predictor-local/{uuid.uuid4().hex[:8]}/artifacts/model"
    S3Store(S3Settings.from_environ(s3.env())).upload(wine_model_dir, url)
    return url


@pytest.fixture
def deploy_env(step_env: dict[str, str], s3_model: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The step's env for a local deploy; whatever it started is stopped afterwards, pass or fail."""
    app = f"wine-{uuid.uuid4().hex[:6]}"
    env = {**step_env, "FUSEML_MODEL": s3_model, "FUSEML_APP_NAME": app, "FUSEML_TARGET": "local",
           "FUSEML_STATE_DIR": str(tmp_path / "state"), "FUSEML_TIMEOUT": "180"}  # fmt: skip
    yield env
    stop_app(StateStore(Path(env["FUSEML_STATE_DIR"])), app)


def server_log(env: dict[str, str]) -> str:
    path = Path(env["FUSEML_STATE_DIR"]) / f"{env['FUSEML_APP_NAME']}.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no server log)"


def test_local_deploy_serves_real_clients_then_is_replaced_and_stopped(deploy_env: dict[str, str]) -> None:
    env, app = deploy_env, deploy_env["FUSEML_APP_NAME"]
    done = run_step("steps.predictor", env)
    assert done.returncode == 0, f"{done.stderr}\n--- server log ---\n{server_log(env)}"
    url = read_result(env)
    assert url is not None and url.startswith("http://127.0.0.1:") and url.endswith(f"/v2/models/{app}/infer")
    assert "probe answered" in done.stderr

    # What real clients send (docs/contract.md): one unnamed FP32 tensor of the 11 features...
    row = wine_feature_rows(1)[0]
    body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": [row]}]}
    answer = requests.post(url, json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert 3 < answer.json()["outputs"][0]["data"][0] < 9
    # ...and named per-column inputs.
    columns = [
        {"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in zip(WINE_FEATURES, row, strict=True)
    ]
    assert requests.post(url, json={"inputs": columns}, timeout=30).status_code == 200

    store = StateStore(Path(env["FUSEML_STATE_DIR"]))
    first = store.load(app)
    assert first is not None and first.url == url and process_alive(first.pid)
    # The same model over gRPC, at the address the state records (and `fuseml-steps apps` shows).
    assert first.grpc is not None and first.grpc != "127.0.0.1:8081"
    expected = answer.json()["outputs"][0]["data"]
    assert kserve_grpc_predict(first.grpc, app, [row]) == pytest.approx(expected, rel=1e-5)

    again = run_step("steps.predictor", {**env, "FUSEML_WORKERS": "2"})
    assert again.returncode == 0, f"{again.stderr}\n--- server log ---\n{server_log(env)}"
    second = store.load(app)
    assert second.pid != first.pid and not process_alive(first.pid), "the first server was not replaced"
    assert requests.post(read_result(env), json=body, timeout=30).status_code == 200
    assert len(Path(f"/proc/{second.pid}/task/{second.pid}/children").read_text().split()) == 2, "FUSEML_WORKERS=2"

    stopped = CliRunner().invoke(apps, ["stop", app, "--state-dir", env["FUSEML_STATE_DIR"]])
    assert stopped.exit_code == 0 and stopped.output == f"{app}: stopped\n", repr(stopped.exception)
    assert not process_alive(second.pid) and store.load(app) is None


def test_local_deploy_of_a_broken_model_fails_and_leaves_nothing_running(
    deploy_env: dict[str, str], s3, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n"
        "  sklearn:\n    pickled_model: model.pkl\n    serialization_format: pickle\n    sklearn_version: 1.9.1\n"
    )
    (broken / "model.pkl").write_bytes(b"not a pickle")
    env = {**deploy_env, "FUSEML_MODEL": str(broken), "FUSEML_TIMEOUT": "60"}
    done = run_step("steps.predictor", env)
    assert done.returncode == 1, done.stderr
    assert "exited before it was ready" in done.stderr or "did not answer" in done.stderr
    assert read_result(env) is None
    assert StateStore(Path(env["FUSEML_STATE_DIR"])).load(env["FUSEML_APP_NAME"]) is None
    assert env["AWS_SECRET_ACCESS_KEY"] not in done.stderr
