"""A model's serving environment, built for real: a venv and a docker image that serve the model over V2.

A scikit-learn model is saved in-process as MLflow saves it (its python_env.yaml, requirements.txt and
conda.yaml beside MLmodel), its environment is built from those files plus the runtime's
(``common.serving_env``), and the runtime started from that environment answers a V2 request with the
model's own predictions. A second call is a cache hit; a model pinning a numpy the runtime cannot use is
refused naming both sides, and leaves nothing in the cache. Build times are logged (``-s`` shows them).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import requests

from common.errors import InputError
from common.serving_env import ensure_serving_image, ensure_serving_venv
from tests.fixtures.images import docker
from tests.fixtures.models import WINE_FEATURES, WINE_TARGET, load_wine_data
from tests.fixtures.serving import free_port, stop, wait_ready

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

CA = Path("/etc/ssl/certs/ca-certificates.crt")
# The model's requirements, as MLflow would infer them, given to save a model in a second, not in ~30 s.
MODEL_PACKAGES = ("mlflow", "numpy", "pandas", "scikit-learn", "scipy", "skops")
ROWS = 3
WHERE_FROM = "import kserve, serving, sklearn; print(serving.__file__, sklearn.__file__, kserve.__file__)"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving-env")


def save_model(path: Path, requirements: list[str]) -> Path:
    """A LinearRegression on the wine data, saved by mlflow.sklearn (skops), readable by the image's user."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    data = load_wine_data()
    features = data[WINE_FEATURES]
    model = LinearRegression().fit(features, data[WINE_TARGET])
    signature = infer_signature(features, model.predict(features))
    mlflow.sklearn.save_model(model, str(path), signature=signature, pip_requirements=requirements)
    for item in [path, *path.rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o644)
    return path


@pytest.fixture(scope="module")
def model(folder: Path) -> Path:
    path = save_model(folder / "model", [f"{name}=={version(name)}" for name in MODEL_PACKAGES])
    assert {p.name for p in path.iterdir()} >= {"MLmodel", "python_env.yaml", "requirements.txt", "conda.yaml"}
    return path


def own_predictions(model: Path) -> list[float]:
    import mlflow.pyfunc

    features = load_wine_data()[WINE_FEATURES].head(ROWS)
    return [float(v) for v in mlflow.pyfunc.load_model(str(model)).predict(features)]


def infer(port: int) -> list[float]:
    rows = load_wine_data()[WINE_FEATURES].head(ROWS).astype(float).values.tolist()
    body = {"inputs": [{"name": "input-0", "shape": [ROWS, len(WINE_FEATURES)], "datatype": "FP64", "data": rows}]}
    answer = requests.post(f"http://127.0.0.1:{port}/v2/models/wine/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return [float(v) for v in answer.json()["outputs"][0]["data"]]


def environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "PIP_CERT": str(CA), "SSL_CERT_FILE": str(CA)} if CA.is_file() else env


def timed(call, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201 - a stopwatch around any call
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


@pytest.fixture(scope="module")
def venv(model: Path, folder: Path) -> Path:
    path, seconds = timed(ensure_serving_venv, model, environ(), cache_dir=folder / "cache")
    log.warning("serving venv built in %.1fs (cold)", seconds)
    return path


@pytest.fixture
def venv_server(venv: Path, model: Path, tmp_path: Path) -> Iterator[int]:
    """The venv's ``bin/run`` serving the model, started outside the checkout (no import from the repo)."""
    port = free_port()
    argv = [str(venv / "bin" / "run"), "--model", str(model), "--name", "wine", "--port", str(port),
            "--grpc-port", "0", "--host", "127.0.0.1"]  # fmt: skip
    process = subprocess.Popen(argv, cwd=tmp_path, env=environ(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, timeout=120)
        yield port
    finally:
        stop(process)


def test_the_venv_serves_the_model_with_its_own_packages(venv: Path, venv_server: int, model: Path) -> None:
    assert infer(venv_server) == pytest.approx(own_predictions(model))
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", WHERE_FROM],
        capture_output=True, text=True, cwd=venv, env=environ(), check=True,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(str(venv)) for path in where), where


def test_a_second_call_is_a_cache_hit(venv: Path, model: Path, folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    again, seconds = timed(ensure_serving_venv, model, environ(), cache_dir=folder / "cache")
    log.warning("serving venv found in %.2fs (cache hit)", seconds)
    assert again == venv
    assert f"serving environment {venv.name} found (cache hit)" in caplog.text
    assert "Building" not in caplog.text


def test_a_model_the_runtime_cannot_serve_is_refused_naming_both_sides(folder: Path, model: Path) -> None:
    pinned = folder / "numpy-1.20"
    pinned.mkdir()
    for item in model.iterdir():
        (pinned / item.name).write_bytes(item.read_bytes())
    requirements = pinned / "requirements.txt"
    lines = [line for line in requirements.read_text().splitlines() if not line.startswith("numpy")]
    requirements.write_text("\n".join([*lines, "numpy==1.20.0"]) + "\n")
    cache = folder / "refused"
    with pytest.raises(InputError) as caught:
        # uv alone: with installer=auto, pip would retry what uv found unsolvable (minutes spent building
        # numpy 1.20's sdist) and fail the same way; the reframing reads uv's words either way.
        ensure_serving_venv(pinned, environ(), cache_dir=cache, installer="uv")
    message = str(caught.value)
    assert message.startswith(
        "the model needs numpy==1.20.0 (its requirements.txt); "
        "the runtime needs numpy>=1.26.0,<3.0.0 (kserve==0.21.0); the installer says: "
    ), message
    assert "\n" not in message
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == [], "nothing half-built stays"


@pytest.mark.docker
def test_the_image_serves_the_model_like_the_serving_image(model: Path, base_image: str) -> None:
    reference, seconds = timed(ensure_serving_image, model, environ(), base_image=base_image, pip_ca=CA)
    log.warning("serving image built in %.1fs (cold)", seconds)
    try:
        port = free_port()
        name = f"serving-env-test-{port}"
        started = docker("run", "--detach", "--name", name, "--network", "host",
                         "-v", f"{model}:/mnt/models:ro", reference,
                         "--model", "/mnt/models", "--name", "wine", "--port", str(port), "--grpc-port", "0",
                         "--host", "127.0.0.1")  # fmt: skip
        assert started.returncode == 0, started.stderr
        try:
            wait_ready(f"http://127.0.0.1:{port}", timeout=120)
            assert infer(port) == pytest.approx(own_predictions(model))
        finally:
            logs = docker("logs", name).stdout
            docker("rm", "-f", name)
            log.info("container log:\n%s", logs[-3000:])
        again, seconds = timed(ensure_serving_image, model, environ(), base_image=base_image, pip_ca=CA)
        log.warning("serving image found in %.2fs (cache hit)", seconds)
        assert again == reference
    finally:
        docker("rmi", "-f", reference, timeout=120)
