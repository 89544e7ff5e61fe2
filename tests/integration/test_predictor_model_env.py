"""The predictor serves a model needing a package its runtime lacks, in the model's own environment.

A custom ``mlflow.pyfunc`` model (models from code) whose ``predict`` imports
``inflection``, which neither the predictor's Python nor the serving image has,
is saved in-process with that pin. Deployed by the predictor step on the local
target, it is served from a venv built from its own requirements and answers a V2
request with the model's own predictions; deployed again, that venv is a cache
hit. One venv cache folder serves the module. On the docker target the choice
compares with the serving image's packages, listed by running it once per image
id (building the model's own image takes minutes here, so that build is
common.serving_env's test; tests/integration/test_serving_env.py). Build times go
to the log (``-s`` shows them).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import pytest
import requests

from steps.predictor.apps import stop_app
from steps.predictor.serving_environment import decide, image_packages
from steps.predictor.settings import read_settings
from steps.predictor.state import StateStore
from tests.fixtures.services import read_result, run_step
from tests.fixtures.serving import build_serving_image

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

CA = Path("/etc/ssl/certs/ca-certificates.crt")
PACKAGE = "inflection==0.5.1"
MODEL_CODE = '''
import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class Doubler(mlflow.pyfunc.PythonModel):
    """x * 2 plus the length of a name inflection underscores: the model cannot predict without it."""

    def predict(self, context, model_input, params=None):
        import inflection  # at predict time: saving the model runs this file where inflection is missing

        offset = len(inflection.underscore("ModelEnv"))
        return pd.Series(model_input["x"].astype(float) * 2 + offset, name="y")


set_model(Doubler())
'''
ROWS = [1.0, 2.5, -3.0]
SERVING_TAG = "fuseml-local/mlflow-serving:predictor-test"  # test_predictor_docker's tag: its cached layers


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("predictor-model-env")


@pytest.fixture(scope="module")
def model(folder: Path) -> Path:
    """The custom model, saved as MLflow saves it (its requirements beside MLmodel), readable by any user."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    code = folder / "doubler.py"
    code.write_text(MODEL_CODE)
    example = pd.DataFrame({"x": ROWS})
    path = folder / "model"
    requirements = [f"mlflow=={version('mlflow')}", f"pandas=={version('pandas')}", PACKAGE]
    mlflow.pyfunc.save_model(
        str(path), python_model=str(code), pip_requirements=requirements, input_example=example,
        signature=infer_signature(example, pd.Series([0.0] * len(ROWS), name="y")),
    )  # fmt: skip
    assert PACKAGE in (path / "requirements.txt").read_text()
    for item in [path, *path.rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o644)
    return path


@pytest.fixture
def deploy_env(step_env: dict[str, str], model: Path, folder: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The step's env for deploying ``model``; whatever it started is stopped afterwards, pass or fail."""
    app = f"doubler-{uuid.uuid4().hex[:6]}"
    env = dict(step_env)
    env.update({"FUSEML_MODEL": str(model), "FUSEML_APP_NAME": app, "FUSEML_TARGET": "local",
                "FUSEML_STATE_DIR": str(tmp_path / "state"), "FUSEML_TIMEOUT": "180",
                "FUSEML_CACHE_DIR": str(folder / "venvs"), "PYTHONDONTWRITEBYTECODE": "1"})  # fmt: skip
    if CA.is_file():
        env.update({"PIP_CERT": str(CA), "SSL_CERT_FILE": str(CA)})
    yield env
    stop_app(StateStore(Path(env["FUSEML_STATE_DIR"])), app)


def own_predictions(model: Path) -> list[float]:
    """What the model's code computes: it cannot be loaded in this Python, which lacks ``inflection``."""
    assert "inflection.underscore" in (model / "doubler.py").read_text() or any(model.rglob("*.py"))
    return [x * 2 + len("model_env") for x in ROWS]


def infer(url: str) -> list[float]:
    body = {"inputs": [{"name": "x", "shape": [len(ROWS)], "datatype": "FP64", "data": ROWS}]}
    answer = requests.post(url, json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return [float(v) for v in answer.json()["outputs"][0]["data"]]


def deploy(env: dict[str, str]) -> tuple[str, str]:
    started = time.monotonic()
    done = run_step("steps.predictor", env)
    log.warning("%s deployed in %.1fs", env["FUSEML_APP_NAME"], time.monotonic() - started)
    server_log = Path(env["FUSEML_STATE_DIR"]) / f"{env['FUSEML_APP_NAME']}.log"
    tail = server_log.read_text(errors="replace")[-3000:] if server_log.exists() else "(no server log)"
    assert done.returncode == 0, f"{done.stderr[-5000:]}\n--- server log ---\n{tail}"
    url = read_result(env)
    assert url is not None
    return url, done.stderr


def test_local_target_serves_the_model_in_its_own_venv_then_finds_it_again(
    deploy_env: dict[str, str], model: Path
) -> None:
    with pytest.raises(ModuleNotFoundError):
        __import__("inflection")  # the predictor's own Python lacks it: the runtime's environment cannot serve
    url, logs = deploy(deploy_env)
    assert (
        f"the model needs {PACKAGE}, which the runtime's environment lacks: serving it in its own environment" in logs
    )
    assert infer(url) == pytest.approx(own_predictions(model))
    state = StateStore(Path(deploy_env["FUSEML_STATE_DIR"])).load(deploy_env["FUSEML_APP_NAME"])
    assert state is not None
    command = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    assert command.startswith(deploy_env["FUSEML_CACHE_DIR"]), command
    # What the model imported at predict time is compiled in its venv for the next start, though the
    # step ran with PYTHONDONTWRITEBYTECODE (the venv's install and import check compile only the runtime's).
    venv = Path(command).parents[1]
    compiled = [p for p in venv.glob("lib/python*/site-packages/**/__pycache__/*.pyc") if "inflection" in str(p)]
    assert compiled, "inflection was not compiled"

    again_url, again = deploy(deploy_env)
    assert "serving it in its own environment" in again and "(cache hit)" in again
    assert infer(again_url) == pytest.approx(own_predictions(model))


def test_dry_runs_say_which_environment_would_serve_and_serving_env_runtime_forces_ours(
    deploy_env: dict[str, str],
) -> None:
    env = {**deploy_env, "FUSEML_DRY_RUN": "true"}
    auto = run_step("steps.predictor", env)
    assert auto.returncode == 0, auto.stderr
    assert f"serving environment: the model needs {PACKAGE}, which the runtime's environment lacks" in auto.stdout
    assert "start: <the model's own venv>/bin/python -m serving" in auto.stdout
    forced = run_step("steps.predictor", {**env, "FUSEML_SERVING_ENV": "runtime"})
    assert forced.returncode == 0, forced.stderr
    assert "as serving_env=runtime asks" in forced.stdout
    assert f"start: {sys.executable} -m serving" in forced.stdout


@pytest.mark.docker
def test_docker_auto_compares_with_the_serving_images_packages_listed_once(
    model: Path, wine_model_dir: Path, base_image: str, tmp_path: Path
) -> None:
    image = build_serving_image(base_image, SERVING_TAG)  # test_predictor_docker's: cached layers
    state = tmp_path / "state"
    packages = image_packages(image, state)
    assert packages is not None and packages["kserve"] == version("kserve") and "inflection" not in packages
    listed = list((state / "image-packages").glob("*.json"))
    assert len(listed) == 1
    listed[0].write_text(json.dumps({**packages, "listed-once": "1"}))
    assert image_packages(image, state) == {**packages, "listed-once": "1"}, "listed again for the same image id"

    settings = read_settings({"FUSEML_MODEL": str(model), "FUSEML_APP_NAME": "a", "FUSEML_STATE_DIR": str(state),
                              "FUSEML_SERVING_IMAGE": image}, cwd=tmp_path)  # fmt: skip
    auto = replace(settings, serving_image_given=False)  # the runtime image as if it were the default
    own = decide(auto, "docker", model)
    assert (own.kind, own.reason) == ("model", f"the model needs {PACKAGE}, which the runtime's environment lacks")
    runtime = decide(auto, "docker", wine_model_dir)
    assert (runtime.kind, runtime.image) == ("runtime", image), runtime.reason
