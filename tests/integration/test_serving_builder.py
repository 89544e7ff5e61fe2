"""The builder's model mode end to end: ``FUSEML_MODEL`` builds the serving environment of a real MLflow
model, with no codeset in the working directory, and the result serves it (a V2 answer equal to the
model's own prediction).

- ``examples/workflows/mlflow-any-flavour.yaml`` on FuseML's ONNX example codeset with the runner's
  process executor and a proxying tracking server: builder, trainer, serving-builder (``venv://`` for
  the ``mlflow-artifacts:/`` model, onnxruntime in it), predictor (local target in that venv), a V2
  request; then the builder on a local copy of the same model finds the same venv (cache hit).
- docker backend (marker docker), on the wine model saved in-process: an image pushed to the test
  registry whose entrypoint is the runtime (``docker run IMAGE --model /mnt/models ...`` answers V2);
  the second build is a cache hit, and so is the builder image's own run on the same files registered
  as ``models:/NAME/1`` on the test MLflow server (artifacts on S3): the image reads ``models:/`` and
  computes the same tag.

Both cold builds are the expensive part (a venv of the ONNX model's packages, an image of the wine
model's); everything else is a cache hit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from common.ports import free_port
from common.processes import stop_process_group
from common.storage import open_store
from runner.services import start_process, wait_until
from steps.builder.registry import ImageRef, RegistryClient
from tests.fixtures.images import our_image
from tests.fixtures.models import WINE_FEATURES
from tests.fixtures.services import STEP_TIMEOUT, read_result, run_step

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "workflows" / "mlflow-any-flavour.yaml"
ONNX = ROOT / "examples" / "codesets" / "onnx"
BUILD_TIMEOUT = 1500
SERVE_TIMEOUT = 120
# pip's and uv's download caches survive across runs (HOME is a fresh folder per test), as in test_builder.py.
PIP_CACHE = "/var/tmp/fuseml-tests-pip-cache"
UV_CACHE = "/var/tmp/fuseml-tests-uv-cache"


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``XDG_CACHE_HOME`` for the module: one venv cache, so a serving environment is built once, and the
    predictor's state, whose servers are stopped at the end. uv's download cache is the one that survives."""
    cache = tmp_path_factory.mktemp("cache")
    Path(UV_CACHE).mkdir(parents=True, exist_ok=True)
    (cache / "uv").symlink_to(UV_CACHE)
    yield cache
    from steps.predictor.apps import stop_app
    from steps.predictor.state import StateStore

    folder = cache / "fuseml-steps" / "predictor"
    if folder.is_dir():
        for state in folder.glob("*.json"):
            stop_app(StateStore(folder), state.stem)


@pytest.fixture(scope="module")
def venvs(cache_home: Path) -> Path:
    """The venv backend's default cache under ``cache_home`` (what the runner's builder steps use too)."""
    return cache_home / "fuseml" / "venvs"


@pytest.fixture
def model_env(step_env: dict[str, str], venvs: Path, tmp_path: Path) -> dict[str, str]:
    """A serving-builder step's env on the venv backend, in an empty working folder (no codeset)."""
    env = {**step_env, "FUSEML_BACKEND": "venv", "FUSEML_CACHE_DIR": str(venvs)}
    env.update(PIP_CACHE_DIR=PIP_CACHE, UV_CACHE_DIR=UV_CACHE)
    if os.environ.get("PIP_CERT"):
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    return env


@pytest.fixture
def empty_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def build(env: dict[str, str], cwd: Path) -> tuple[str, str]:
    """Run the builder step, which must succeed: its result and its log."""
    done = run_step("steps.builder", env, cwd=cwd, timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, done.stderr[-5000:]
    result = read_result(env)
    assert result, done.stderr[-3000:]
    return result, done.stderr


def v2_request(rows: list[list[float]]) -> dict:
    return {"inputs": [{"name": "input-0", "shape": [len(rows), len(WINE_FEATURES)], "datatype": "FP64", "data": rows}]}


def serve_and_ask(argv: list[str], name: str, port: int, log: Path, rows: list[list[float]]) -> list[float]:
    """Start a serving command, wait for the model to be ready, send one V2 request, stop it; the answer."""
    proc = start_process(argv, log)
    try:
        base = f"http://127.0.0.1:{port}/v2/models/{name}"
        wait_until(
            lambda: requests.get(f"{base}/ready", timeout=2).status_code == 200,
            what=f"model {name}", timeout=SERVE_TIMEOUT, proc=proc, log_path=log,
        )  # fmt: skip
        answer = requests.post(f"{base}/infer", json=v2_request(rows), timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()["outputs"][0]["data"]
    finally:
        stop_process_group(proc)


def own_predictions(model_dir: Path, rows: list[list[float]]) -> list[float]:
    import mlflow.pyfunc
    import pandas as pd

    return [
        float(v) for v in mlflow.pyfunc.load_model(str(model_dir)).predict(pd.DataFrame(rows, columns=WINE_FEATURES))
    ]


# The model's own predict, in the environment it is served in: {"output name": rows}.
OWN_ONNX_PREDICTION = textwrap.dedent("""
    import json, sys
    import mlflow.pyfunc, numpy as np

    out = mlflow.pyfunc.load_model(sys.argv[1]).predict(np.array(json.loads(sys.argv[2]), dtype=np.float32))
    print(json.dumps({name: value.tolist() for name, value in out.items()}))
""")
# Logs a model folder's files as a run's artifacts (on S3) and registers them; prints the version.
REGISTER = textwrap.dedent("""
    import sys
    from mlflow import MlflowClient

    folder, name = sys.argv[1], sys.argv[2]
    client = MlflowClient()
    run = client.create_run(client.create_experiment(name))
    client.log_artifacts(run.info.run_id, folder, "model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(name)
    print(client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id).version)
""")


@pytest.fixture(scope="module")
def registered(mlflow_server, wine_model_dir: Path) -> str:
    """The saved wine model's files registered on the test server, artifacts on S3: ``models:/NAME/1``."""
    name = f"serving-builder-{uuid.uuid4().hex[:8]}"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "MLFLOW_DISABLE_TELEMETRY": "true", **mlflow_server.env()}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", REGISTER, str(wine_model_dir), name], env=env,
                          capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "1"
    return f"models:/{name}/1"


@pytest.fixture(scope="module")
def builder_image(base_image: str) -> str:
    """The builder image (Dockerfiles/builder.Dockerfile), shared with the session's other tests."""
    return our_image("builder", base_image)


@pytest.mark.docker
def test_docker_serving_image_is_pushed_answers_v2_and_is_found_again(
    step_env: dict[str, str],
    empty_folder: Path,
    wine_model_dir: Path,
    wine_rows: Callable[[int], list[list[float]]],
    registered: str,
    registry,
    base_image: str,
    builder_image: str,
    docker_client,
    services_env: dict[str, str],
    tmp_path: Path,
) -> None:
    env = {
        **step_env,
        "FUSEML_MODEL": wine_model_dir.as_uri(),
        "FUSEML_BACKEND": "docker",
        "FUSEML_REGISTRY": registry.host,
        "FUSEML_PULL_REGISTRY": "",
        "FUSEML_REPOSITORY": f"tests/serving-{uuid.uuid4().hex[:8]}",
        "FUSEML_BASE_IMAGE": base_image,
        "PIP_CACHE_DIR": PIP_CACHE,
    }
    if os.environ.get("PIP_CERT"):
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    image, log = build(env, empty_folder)
    ref = ImageRef.parse(image)
    assert (ref.registry, ref.repository) == (registry.host, env["FUSEML_REPOSITORY"])
    assert RegistryClient(registry.host).exists(ref), "the image was pushed"
    assert "=== Building" in log and "push:" in log

    # The image's entrypoint is the runtime: docker run IMAGE --model /mnt/models ..., as the serving image.
    for path in [wine_model_dir, *wine_model_dir.rglob("*")]:
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
    port, name = free_port(), f"serving-builder-{uuid.uuid4().hex[:6]}"
    argv = ["/usr/bin/docker", "run", "--rm", "--name", name, "--network", "host"]
    argv += ["-v", f"{wine_model_dir}:/mnt/models:ro", image]
    argv += ["--model", "/mnt/models", "--name", "wine", "--port", str(port), "--grpc-port", "0"]
    rows = wine_rows(2)
    try:
        answer = serve_and_ask(argv, "wine", port, tmp_path / "docker.log", rows)
    finally:
        subprocess.run(["/usr/bin/docker", "rm", "-f", name], capture_output=True, check=False)
    assert answer == pytest.approx(own_predictions(wine_model_dir, rows), rel=1e-9)

    images_before = {i.id for i in docker_client.images.list(all=True)}
    again, again_log = build(env, empty_folder)
    assert again == image
    assert "already exists" in again_log and "=== Building" not in again_log

    # The builder image, as a serving-builder step in a pod runs: the registered copy (through the tracking
    # server, files on S3) has the same requirements, so the image computes the same tag and finds it.
    results = tmp_path / "image-results"
    results.mkdir(mode=0o777)
    argv = ["/usr/bin/docker", "run", "--rm", "--network", "host", "-v", f"{results}:/results"]
    argv += ["-v", "/var/run/docker.sock:/var/run/docker.sock", "-e", "TASK_RESULT=image"]
    argv += ["-e", "FUSEML_RESULTS_DIR=/results", "-e", f"FUSEML_MODEL={registered}"]
    for name in ("FUSEML_BACKEND", "FUSEML_REGISTRY", "FUSEML_PULL_REGISTRY", "FUSEML_REPOSITORY", "FUSEML_BASE_IMAGE"):
        argv += ["-e", f"{name}={env[name]}"]
    for name, value in services_env.items():
        argv += ["-e", f"{name}={value}"]
    done = subprocess.run([*argv, builder_image], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-5000:]
    assert (results / "image").read_text() == image
    assert "already exists" in done.stderr and "=== Building" not in done.stderr
    assert {i.id for i in docker_client.images.list(all=True)} == images_before, "nothing may be built"


def test_the_any_flavour_workflow_serves_the_onnx_example_in_its_own_environment(
    tmp_path: Path,
    cache_home: Path,
    venvs: Path,
    model_env: dict[str, str],
    empty_folder: Path,
    s3,
    mlflow_proxied,
    wine_rows: Callable[[int], list[list[float]]],
) -> None:
    """What ``fuseml-steps run --stack`` wires: the model behind a proxying tracking server (mlflow-artifacts:/).
    Then the same model as a plain local folder is the same environment: the builder finds it."""
    from runner.config import Config
    from runner.engine import run_workflow
    from runner.executors.process import ProcessExecutor
    from runner.runs import SUCCEEDED
    from runner.staging import resolve_codeset
    from runner.workflow import load_workflow

    executor = ProcessExecutor(environ={**os.environ, "XDG_CACHE_HOME": str(cache_home)})
    config = Config.from_environ({**s3.env(), **mlflow_proxied.env()}).merged(mlflow_artifacts="proxied")
    codeset = resolve_codeset(ONNX, name="onnx-any", project="tests")
    run = run_workflow(load_workflow(WORKFLOW), codeset, {"predictor": "auto"}, executor, config, tmp_path / "state")
    logs = "\n".join(f"--- {s.name} ---\n{s.log_path.read_text()[-3000:]}" for s in run.steps if s.log_path.exists())
    assert run.status == SUCCEEDED, f"{run.error}\n{logs}"
    outputs = {s.name: s.output for s in run.steps}
    model_url = outputs["trainer"]
    assert model_url.startswith("mlflow-artifacts:/")
    serving = outputs["serving-builder"]
    assert serving.startswith(f"venv://{venvs}/") and serving != outputs["builder"]
    venv = Path(serving.removeprefix("venv://"))
    predictor_log = next(s for s in run.steps if s.name == "predictor").log_path.read_text()
    assert str(venv) in predictor_log, "the predictor serves in the serving-builder's venv"

    # The answer is the model's own prediction, computed in the model's environment (onnxruntime is there).
    model = tmp_path / "model"
    open_store(model_url, mlflow_proxied.env()).download(model_url, model)
    rows = wine_rows(2)
    body = {"inputs": [{"name": "input_0", "shape": [2, 11], "datatype": "FP32", "data": rows}]}
    answer = requests.post(run.outputs["prediction-url"], json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    served = answer.json()["outputs"][0]
    own = subprocess.run(
        [str(venv / "bin" / "python"), "-c", OWN_ONNX_PREDICTION, str(model), json.dumps(rows)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert own.returncode == 0, own.stderr[-3000:]
    expected = json.loads(own.stdout)
    assert (served["name"], served["shape"]) == ("variable", [2, 1])
    assert served["data"] == pytest.approx([v for row in expected["variable"] for v in row], rel=1e-6)

    # The same model as a local folder, built in an empty folder (no codeset): the same environment, found.
    again, log = build({**model_env, "FUSEML_MODEL": str(model)}, empty_folder)
    assert again == serving
    assert "already exists" in log and "=== Building" not in log
    assert list(empty_folder.iterdir()) == [], "the builder wrote nothing into its working folder"
