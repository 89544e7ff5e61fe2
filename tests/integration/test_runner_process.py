"""The example workflow end to end with the process executor and the real steps:
builder (venv backend) -> trainer -> predictor (local target), then a V2 request.

Three service setups: none at all (sqlite tracking and local artifacts under the
state folder, what ``fuseml-steps run`` does by default), the real S3 and MLflow
server of the fixtures with the steps writing to S3, and an MLflow server that
proxies artifacts onto that S3 (``--stack``'s default), the steps holding no S3
keys. A rerun must reuse the builder's venv.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from runner.config import Config
from runner.engine import run_workflow
from runner.executors.process import ProcessExecutor
from runner.runs import SUCCEEDED, RunRecord
from runner.services.mlflow_server import MLflowServer
from runner.services.seaweedfs import SeaweedFS
from runner.staging import Codeset, resolve_codeset
from runner.workflow import Workflow, load_workflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "workflows" / "mlflow-e2e.yaml"
WINE = ROOT / "examples" / "codesets" / "wine"


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache for the module: the builder's venvs (built once, reused) and the predictor's
    local servers, which are stopped at the end."""
    cache = tmp_path_factory.mktemp("cache")
    yield cache
    from steps.predictor.apps import stop_app
    from steps.predictor.state import StateStore

    folder = cache / "fuseml-steps" / "predictor"
    if folder.is_dir():
        store = StateStore(folder)
        for state in folder.glob("*.json"):
            stop_app(store, state.stem)


@pytest.fixture
def executor(cache_home: Path) -> ProcessExecutor:
    return ProcessExecutor(environ={**os.environ, "XDG_CACHE_HOME": str(cache_home)})


@pytest.fixture
def workflow() -> Workflow:
    return load_workflow(WORKFLOW)


def codeset(name: str) -> Codeset:
    return resolve_codeset(WINE, name=name, project="tests")


def run_and_check(
    workflow: Workflow, codeset: Codeset, executor: ProcessExecutor, config: Config, state: Path
) -> RunRecord:
    run = run_workflow(workflow, codeset, {"predictor": "auto"}, executor, config, state)
    if run.status != SUCCEEDED:
        logs = "\n".join(
            f"--- {s.name} ---\n{s.log_path.read_text()[-3000:]}" for s in run.steps if s.log_path.exists()
        )
        pytest.fail(f"run {run.name} {run.status}: {run.error}\n{logs}")
    return run


def predict(url: str, rows: list[list[float]]) -> list[float]:
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), 11], "datatype": "FP32", "data": rows}]}
    response = requests.post(url, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["outputs"][0]["data"]


def test_local_defaults_need_no_services_and_a_rerun_skips_the_build(
    tmp_path: Path, workflow: Workflow, executor: ProcessExecutor, wine_rows: Callable[[int], list[list[float]]]
) -> None:
    state = tmp_path / "state"
    first = run_and_check(workflow, codeset("wine-local"), executor, Config(), state)
    url = first.outputs["prediction-url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v2/models/tests-wine-local-mlflow-e2e/infer")
    assert first.steps[0].output.startswith("venv://")
    model_url = first.steps[1].output
    assert model_url.startswith(str(state.resolve() / "mlflow" / "artifacts")) or model_url.startswith("file://")
    assert len(predict(url, wine_rows(2))) == 2

    second = run_and_check(workflow, codeset("wine-local"), executor, Config(), state)
    assert second.steps[0].output == first.steps[0].output
    assert "nothing to build" in second.steps[0].log_path.read_text()
    assert len(predict(second.outputs["prediction-url"], wine_rows(1))) == 1


def test_with_real_s3_and_mlflow_server(
    tmp_path: Path,
    workflow: Workflow,
    executor: ProcessExecutor,
    services_env: dict[str, str],
    wine_rows: Callable[[int], list[list[float]]],
) -> None:
    """With a password in the tracking URL: MLflow prints that URL itself, and no log file may hold it."""
    password = "url-pa55-" + uuid.uuid4().hex
    env = {**services_env}
    env["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"].replace("://", f"://fuseml:{password}@", 1)
    config = Config.from_environ(env)
    run = run_and_check(workflow, codeset("wine-s3"), executor, config, tmp_path / "state")
    assert run.steps[1].output.startswith("s3://mlflow-artifacts/")
    assert len(predict(run.outputs["prediction-url"], wine_rows(3))) == 3
    trainer_log = run.steps[1].log_path.read_text()
    assert "View run" in trainer_log and "fuseml:****@" in trainer_log, "MLflow's run link is logged, masked"
    holding = [p for p in (tmp_path / "state").rglob("*") if p.is_file() and password.encode() in p.read_bytes()]
    assert holding == [], f"files the run wrote hold the tracking password: {holding}"


def test_with_a_proxied_mlflow_server_the_trainer_gets_no_s3_keys(
    tmp_path: Path,
    workflow: Workflow,
    executor: ProcessExecutor,
    s3: SeaweedFS,
    mlflow_proxied: MLflowServer,
    wine_rows: Callable[[int], list[list[float]]],
) -> None:
    """What ``fuseml-steps run --stack`` wires by default: MLflow's own proxied mode over the stack's S3."""
    config = Config.from_environ({**s3.env(), **mlflow_proxied.env()}).merged(mlflow_artifacts="proxied")
    run = run_and_check(workflow, codeset("wine-proxied"), executor, config, tmp_path / "state")
    model_url = run.steps[1].output
    assert model_url.startswith("mlflow-artifacts:/"), "the model went through the tracking server"
    key = model_url.removeprefix("mlflow-artifacts:/").lstrip("/") + "/MLmodel"
    assert s3.client().head_object(Bucket=mlflow_proxied.artifact_root.removeprefix("s3://"), Key=key)
    assert len(predict(run.outputs["prediction-url"], wine_rows(2))) == 2
