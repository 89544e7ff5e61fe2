"""Any model flavour, served in an environment built from its own requirements, answers as the model itself.

One MLflow run (``tests/data/flavours/``, trained by our builder's venv backend
and our trainer against the test MLflow server and S3) logs a wine model per
flavour: scikit-learn saved with skops and a random forest with cloudpickle, a
scikit-learn Pipeline that selects pandas columns by name, XGBoost, LightGBM,
ONNX (skl2onnx) and a custom ``mlflow.pyfunc.PythonModel`` that needs mpmath
and its own module. Each is served on the local target with no serving image
given, so the model's own environment is built for it (the runtime in the
model's requirements, nothing else), and a V2 request must give exactly what
``mlflow.pyfunc.load_model(uri).predict`` gives in the model's own environment.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from common.ports import free_port
from common.processes import stop_process_group
from common.serving_env import ensure_serving_image, ensure_serving_venv
from runner.services import start_process, wait_until
from steps.predictor.apps import stop_app
from steps.predictor.state import StateStore
from tests.fixtures.flavours import CODESET, FLAVOURS, FlavourModels, probe_inputs
from tests.fixtures.services import read_result, run_step

pytestmark = pytest.mark.integration

# What each flavour's model needs, as MLflow infers it (plus what the codeset declares): package names.
SKLEARN_SKOPS = {"mlflow", "numpy", "pandas", "scikit-learn", "scipy", "skops"}
NEEDS = {
    "sklearn-skops": SKLEARN_SKOPS,
    "sklearn-tree-cloudpickle": {"mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn", "scipy"},
    "sklearn-pipeline": SKLEARN_SKOPS,
    # The CPU build (declared by the codeset): MLflow's default would add xgboost, and with it nvidia-nccl-cu12.
    "xgboost": {"mlflow", "xgboost-cpu", "numpy", "pandas"},
    "lightgbm": SKLEARN_SKOPS | {"lightgbm"},
    "onnx": {"mlflow", "numpy", "onnx", "onnxruntime"},
    "pyfunc-custom": {"mlflow", "cloudpickle", "mpmath", "numpy", "pandas", "scipy"},
}


def requirements(model_dir: Path) -> dict[str, Requirement]:
    lines = (line.strip() for line in (model_dir / "requirements.txt").read_text().splitlines())
    parsed = [Requirement(line) for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(r.name): r for r in parsed}


def codeset_pins() -> dict[str, str]:
    """The versions the trainer environment was built with (the codeset's requirements.txt)."""
    pins = requirements(CODESET)
    return {name: str(next(iter(r.specifier)).version) for name, r in pins.items()}


@pytest.mark.slow
def test_each_model_records_exactly_what_its_flavour_needs(flavour_models: FlavourModels) -> None:
    pins = codeset_pins()
    for flavour in FLAVOURS:
        recorded = requirements(flavour_models.dirs[flavour])
        assert set(recorded) == NEEDS[flavour], f"{flavour}: {sorted(recorded)}"
        for name, requirement in recorded.items():
            if name in pins:
                assert requirement.specifier.contains(pins[name]), (
                    f"{flavour}: {requirement}, trained with {pins[name]}"
                )
    print(f"\nflavour models: trainer venv built in {flavour_models.timings['builder']:.1f}s, "
          f"trained in {flavour_models.timings['trainer']:.1f}s")  # fmt: skip


# -- served in the model's own environment ------------------------------------------------------------------------

DATATYPES = {"float64": "FP64", "float32": "FP32"}
MAX_ULP = 4
SERVER_START_TIMEOUT = 180
# Seconds per flavour: the serving environment (built or found), the server's start, the predictor's deploys.
FIGURES: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module", autouse=True)
def report_figures() -> Iterator[None]:
    """Print the figures once the module is done (shown with ``-s``): what the README's Flavours table cites."""
    yield
    print("\nflavour figures (seconds):")
    for flavour, figures in FIGURES.items():
        print(f"{flavour}: " + ", ".join(f"{k} {v:.1f}s" for k, v in figures.items()))


@pytest.fixture(scope="module")
def serving_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the models' serving environments are built: fresh per module, so each first build is a real one."""
    return tmp_path_factory.mktemp("serving-venvs")


@contextmanager
def serving(venv: Path, model_dir: Path, name: str, log_path: Path, environ: dict[str, str]) -> Iterator[str]:
    """Our runtime, ``<venv>/bin/python -m serving``, on a free port; yields the model's V2 infer URL."""
    port = free_port(with_grpc=False)
    argv = [str(venv / "bin" / "python"), "-m", "serving", "--model", str(model_dir), "--name", name,
            "--port", str(port), "--grpc-port", "0", "--host", "127.0.0.1"]  # fmt: skip
    proc = start_process(argv, log_path, env=environ)
    try:
        wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200,
            what=f"the {name} server", timeout=SERVER_START_TIMEOUT, proc=proc, log_path=log_path,
        )  # fmt: skip
        yield f"http://127.0.0.1:{port}/v2/models/{name}/infer"
    finally:
        stop_process_group(proc)


def assert_answers_as_the_model(answer: dict, expected: list[dict], flavour: str) -> None:
    """The V2 outputs equal the model's own predict: same values in the model's dtype, the signature's names."""
    outputs = answer["outputs"]
    assert len(outputs) == len(expected), f"{flavour}: {answer}"
    for got, want in zip(outputs, expected, strict=True):
        assert got["datatype"] == DATATYPES[want["dtype"]], f"{flavour}: {got['datatype']}, the model gives {want}"
        dtype = np.dtype(want["dtype"])
        # Equal but for the order of a sum: a request's rows arrive as a C-ordered array, a DataFrame's values are
        # column-major, and BLAS sums a product over the two in different orders (seen: 1 ulp of a float64).
        try:
            np.testing.assert_array_max_ulp(
                np.asarray(got["data"], dtype=dtype).ravel(), np.asarray(want["data"], dtype=dtype), maxulp=MAX_ULP
            )
        except AssertionError as e:
            raise AssertionError(f"{flavour}: served {got['data']}, the model predicts {want['data']}") from e
        assert int(np.prod(got["shape"])) == len(want["data"]), f"{flavour}: shape {got['shape']}"
        if want["name"] is not None:  # a tensor signature names its outputs
            assert got["name"] == want["name"] and got["shape"] == want["shape"], f"{flavour}: {got}"


LOCAL_FLAVOURS = FLAVOURS


@pytest.mark.slow
@pytest.mark.parametrize("flavour", LOCAL_FLAVOURS)
def test_served_in_its_own_environment_answers_as_the_model(
    flavour: str, flavour_models: FlavourModels, flavour_predictions, flavours_env, serving_cache, tmp_path
) -> None:
    model_dir = flavour_models.dirs[flavour]
    started = time.monotonic()
    venv = ensure_serving_venv(model_dir, flavours_env, cache_dir=serving_cache)
    figures = FIGURES.setdefault(flavour, {"environment": time.monotonic() - started})
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    has_sklearn = (site_packages / "sklearn").is_dir()
    assert has_sklearn == ("scikit-learn" in NEEDS[flavour]), f"{flavour}: scikit-learn only where the model needs it"

    started = time.monotonic()
    log_path = tmp_path / "server.log"
    with serving(venv, model_dir, f"wine-{flavour}", log_path, flavours_env) as url:
        figures["server start"] = time.monotonic() - started
        answer = requests.post(url, json={"inputs": probe_inputs(flavour)}, timeout=60)
        assert answer.status_code == 200, f"{answer.text}\n--- server log ---\n{log_path.read_text()[-3000:]}"
    assert_answers_as_the_model(answer.json(), flavour_predictions[flavour], flavour)


@pytest.mark.slow
def test_a_second_model_with_the_same_requirements_reuses_the_environment(
    flavour_models: FlavourModels, flavours_env, serving_cache, caplog
) -> None:
    first, second = flavour_models.dirs["sklearn-skops"], flavour_models.dirs["sklearn-pipeline"]
    assert (first / "requirements.txt").read_text() == (second / "requirements.txt").read_text()
    venv = ensure_serving_venv(first, flavours_env, cache_dir=serving_cache)

    caplog.set_level(logging.INFO, logger="common.serving_env")
    started = time.monotonic()
    again = ensure_serving_venv(second, flavours_env, cache_dir=serving_cache)
    hit = time.monotonic() - started
    assert again == venv, "the same requirements must find the same environment"
    assert f"found (cache hit): {venv}" in caplog.text, caplog.text
    assert "building" not in caplog.text, caplog.text
    FIGURES.setdefault("sklearn-pipeline", {})["cache hit"] = hit


# -- through the predictor step: no serving image given, the model's own environment built or found ---------------

# Flavours whose packages the test's own Python (the local target's runtime environment) lacks, so that `auto`
# must build or find the model's environment: the dev venv has xgboost and lightgbm (for their direct paths' tests).
PREDICTOR_FLAVOURS = ("onnx", "pyfunc-custom")


@pytest.mark.slow
@pytest.mark.parametrize("flavour", PREDICTOR_FLAVOURS)
def test_the_predictor_serves_it_in_its_own_environment_then_finds_it_again(
    flavour: str, flavour_models: FlavourModels, flavour_predictions, flavours_env, serving_cache, tmp_path
) -> None:
    app = f"flavour-{flavour}-{uuid.uuid4().hex[:6]}"
    env = {**flavours_env, "FUSEML_MODEL": flavour_models.urls[flavour], "FUSEML_APP_NAME": app,
           "FUSEML_TARGET": "local", "FUSEML_STATE_DIR": str(tmp_path / "state"), "FUSEML_TIMEOUT": "600",
           "FUSEML_CACHE_DIR": str(serving_cache), "FUSEML_RESULTS_DIR": str(tmp_path / "results")}  # fmt: skip
    runs = []
    try:
        for _ in range(2):
            started = time.monotonic()
            done = run_step("steps.predictor", env, timeout=1800)
            runs.append(time.monotonic() - started)
            assert done.returncode == 0, done.stderr[-5000:]
            assert "serving it in its own environment" in done.stderr, done.stderr[-3000:]
            answer = requests.post(read_result(env), json={"inputs": probe_inputs(flavour)}, timeout=60)
            assert answer.status_code == 200, answer.text
            assert_answers_as_the_model(answer.json(), flavour_predictions[flavour], flavour)
        assert "(cache hit)" in done.stderr, "the second deploy must find the environment the first one used"
    finally:
        stop_app(StateStore(Path(env["FUSEML_STATE_DIR"])), app)
    FIGURES.setdefault(flavour, {}).update({"predictor deploy": runs[0], "predictor redeploy": runs[1]})


# -- the docker target: the same environment as an image -----------------------------------------------------------

# scikit-learn (skops) in an image: tests/integration/test_serving_env.py, through the same ensure_serving_image.
DOCKER_FLAVOURS = ("onnx",)


@contextmanager
def serving_container(docker_client, image: str, model_dir: Path, name: str) -> Iterator[str]:
    """``docker run IMAGE --model /mnt/models ...`` on the host network, as the docker target runs it."""
    port = free_port(with_grpc=False)
    command = ["--model", "/mnt/models", "--name", name, "--port", str(port), "--grpc-port", "0", "--host", "127.0.0.1"]
    container = docker_client.containers.run(
        image, command, detach=True, network_mode="host",
        volumes={str(model_dir): {"bind": "/mnt/models", "mode": "ro"}},
    )  # fmt: skip
    try:

        def ready() -> bool:
            container.reload()
            assert container.status in ("created", "running"), container.logs()[-3000:].decode(errors="replace")
            return requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200

        wait_until(ready, what=f"the {name} container", timeout=SERVER_START_TIMEOUT)
        yield f"http://127.0.0.1:{port}/v2/models/{name}/infer"
    finally:
        container.remove(force=True)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("flavour", DOCKER_FLAVOURS)
def test_served_in_its_own_image_answers_as_the_model(
    flavour: str, flavour_models: FlavourModels, flavour_predictions, flavours_env, base_image, docker_client, tmp_path
) -> None:
    # The container's user (uid 1000) reads the model: a world-readable copy.
    model_dir = Path(shutil.copytree(flavour_models.dirs[flavour], tmp_path / "model"))
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    started = time.monotonic()
    image = ensure_serving_image(model_dir, flavours_env, base_image=base_image)
    FIGURES.setdefault(f"{flavour} (docker)", {})["image"] = time.monotonic() - started
    try:
        with serving_container(docker_client, image, model_dir, f"wine-{flavour}") as url:
            answer = requests.post(url, json={"inputs": probe_inputs(flavour)}, timeout=60)
            assert answer.status_code == 200, answer.text
        assert_answers_as_the_model(answer.json(), flavour_predictions[flavour], flavour)
        assert ensure_serving_image(model_dir, flavours_env, base_image=base_image) == image, "a second build"
    finally:
        docker_client.images.remove(image, force=True)
