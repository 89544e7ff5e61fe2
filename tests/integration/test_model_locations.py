"""Every MLflow model location against a real ``mlflow server`` in its default mode (artifacts proxied onto S3).

A module fixture logs two wine models to the proxied server (no S3 variables
on the client side), registers them as versions 1 and 2 of one registered
model and points the alias ``champion`` at version 1. Then: the artifact store
reads every URI form; the predictor deploys ``models:/name@champion`` and
``runs:/`` locally (fetching each model into its host cache once), follows the
alias to version 2, finds an ``mlflow-artifacts:`` URI's copy in the cache,
serves in docker, and stages for KServe; every wrong location fails with one line, exit 1 and no result,
and a password never shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner
from mlflow import MlflowClient

from common.errors import InputError, ServiceUnavailable
from common.mlmodel import parse_mlmodel
from common.model_uri import resolve
from common.storage import S3Settings, S3Store, open_store
from runner.apps import apps
from steps.predictor.apps import stop_app
from steps.predictor.state import StateStore
from tests.fixtures.images import build_image, docker
from tests.fixtures.kube_api import schema_errors
from tests.fixtures.models import wine_feature_rows
from tests.fixtures.services import STEP_TIMEOUT, read_result, run_step
from tests.fixtures.serving import build_serving_image

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SERVING_TAG = "fuseml-local/mlflow-serving:predictor-test"
PREDICTOR_TAG = "fuseml-local/kserve-predictor:test"  # the tag test_predictor_image builds: cached layers
BODY = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": wine_feature_rows(1)}]}

# Logs version 1 (the example's ElasticNet) and version 2 (another alpha: other predictions) of one registered model.
LOG_MODELS = textwrap.dedent("""
    import json, sys
    import mlflow, mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import ElasticNet
    from tests.fixtures.models import WINE_FEATURES, WINE_TARGET, load_wine_data, train_wine_model
    from tests.fixtures.models import wine_pip_requirements

    name = sys.argv[1]
    first, x = train_wine_model()
    data = load_wine_data()
    second = ElasticNet(alpha=0.01, l1_ratio=0.9, random_state=42).fit(data[WINE_FEATURES], data[WINE_TARGET])
    mlflow.set_experiment(name)
    found = {}
    for number, model in (("1", first), ("2", second)):
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(x, model.predict(x)),
                                            input_example=x.head(3), registered_model_name=name,
                                            pip_requirements=wine_pip_requirements())
        found[number] = {"run": run.info.run_id, "location": info.artifact_path, "model_id": info.model_id,
                         "version": str(info.registered_model_version)}
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", found["1"]["version"])
    print(json.dumps(found))
""")


@pytest.fixture(scope="module")
def registered(mlflow_proxied) -> dict:
    """Two versions of a registered model on the proxied server; ``champion`` points at version 1."""
    name = f"wine-{uuid.uuid4().hex[:6]}"
    done = subprocess.run([sys.executable, "-c", LOG_MODELS, name], env=_process_env(mlflow_proxied.env()),
                          cwd=ROOT, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    versions = json.loads(done.stdout.strip().splitlines()[-1])
    assert versions["1"]["location"].startswith("mlflow-artifacts:/"), "the server does not proxy artifacts"
    return {"name": name, **versions}


@pytest.fixture(scope="module")
def serving_image(base_image: str) -> str:
    build_serving_image(base_image, SERVING_TAG)  # the same tag as test_predictor_docker: cached layers
    return SERVING_TAG


@pytest.fixture
def proxied_env(tmp_path: Path, mlflow_proxied) -> Iterator[dict[str, str]]:
    """A step's env with the proxied server and no S3 variables at all; its app is stopped afterwards."""
    (tmp_path / "home").mkdir()
    env = {**_process_env(mlflow_proxied.env()), "HOME": str(tmp_path / "home"),
           "FUSEML_RESULTS_DIR": str(tmp_path / "results"), "TASK_RESULT": "result",
           "FUSEML_APP_NAME": f"wine-{uuid.uuid4().hex[:6]}", "FUSEML_STATE_DIR": str(tmp_path / "state"),
           "FUSEML_TIMEOUT": "180"}  # fmt: skip
    yield env
    stop_app(StateStore(Path(env["FUSEML_STATE_DIR"])), env["FUSEML_APP_NAME"])


def _process_env(extra: dict[str, str]) -> dict[str, str]:
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT),
            "MLFLOW_DISABLE_TELEMETRY": "true", **extra}  # fmt: skip


def uri_forms(registered: dict) -> dict[str, str]:
    name, first = registered["name"], registered["1"]
    return {
        "alias": f"models:/{name}@champion",
        "version": f"models:/{name}/1",
        "latest": f"models:/{name}/latest",
        "run": f"runs:/{first['run']}/model",
        "logged model": f"models:/{first['model_id']}",
        "proxied artifacts": first["location"],
    }


def deploy(env: dict[str, str], model: str, **extra: str) -> tuple[str, dict]:
    """Deploy ``model`` with the predictor step; (its URL, the app's record). Fails the test with the step's log."""
    done = run_step("steps.predictor", {**env, "FUSEML_MODEL": model, **extra})
    assert done.returncode == 0, done.stderr
    state = StateStore(Path(env["FUSEML_STATE_DIR"])).load(env["FUSEML_APP_NAME"])
    assert state is not None
    return read_result(env), state


def predict(url: str) -> float:
    answer = requests.post(url, json=BODY, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["outputs"][0]["data"][0]


def test_the_store_reads_every_uri_form(mlflow_proxied, registered: dict) -> None:
    environ = mlflow_proxied.env()
    for form, uri in uri_forms(registered).items():
        store = open_store(uri, environ)
        files = store.list(uri)
        assert "MLmodel" in files and "model.skops" in files, (form, files)
        assert store.exists(f"{uri}/MLmodel") and not store.exists(f"{uri}/absent"), form
        mlmodel = parse_mlmodel(store.read(f"{uri}/MLmodel").decode(), uri)
        assert "sklearn" in mlmodel.flavors, form
    alias = resolve(f"models:/{registered['name']}@champion", environ)
    assert (alias.name, alias.version, alias.run_id) == (registered["name"], "1", registered["1"]["run"])
    assert alias.artifact_uri == registered["1"]["location"] and not alias.kserve_readable
    assert resolve(f"models:/{registered['name']}/latest", environ).version == "2"


def test_wrong_locations_name_what_to_check(mlflow_proxied, registered: dict) -> None:
    environ, name = mlflow_proxied.env(), registered["name"]
    with pytest.raises(InputError, match=r"has no alias 'gold'; its aliases: @champion \(version 1\)"):
        resolve(f"models:/{name}@gold", environ)
    with pytest.raises(InputError, match="the Model Registry has no model 'no-such-model'"):
        resolve("models:/no-such-model/1", environ)
    with pytest.raises(InputError, match=f"'{name}' has no version 9"):
        resolve(f"models:/{name}/9", environ)
    with pytest.raises(InputError, match="MLflow has no run '0123456789abcdef'"):
        resolve("runs:/0123456789abcdef/model", environ)
    with pytest.raises(ServiceUnavailable, match=r"http://bob:\*\*\*\*@127\.0\.0\.1:9 does not answer"):
        resolve(f"models:/{name}@champion", {"MLFLOW_TRACKING_URI": "http://bob:hunter2@127.0.0.1:9"})


@pytest.mark.parametrize("case", ["unknown alias", "unreachable server"])
def test_a_wrong_location_is_one_line_exit_1_no_result_no_password(
    proxied_env: dict[str, str], registered: dict, case: str
) -> None:
    env = {**proxied_env, "MLFLOW_TRACKING_PASSWORD": "s3cr3t-pass", "MLFLOW_TRACKING_USERNAME": "bob"}
    if case == "unknown alias":
        env["FUSEML_MODEL"] = f"models:/{registered['name']}@gold"
        expected = "has no alias 'gold'; its aliases: @champion (version 1)"
    else:
        env["FUSEML_MODEL"] = f"models:/{registered['name']}@champion"
        env["MLFLOW_TRACKING_URI"] = "http://bob:hunter2-pass@127.0.0.1:9"
        expected = "does not answer; check MLFLOW_TRACKING_URI"
    done = run_step("steps.predictor", env)
    errors = [line for line in done.stderr.splitlines() if line.startswith("predictor: error:")]
    assert done.returncode == 1 and len(errors) == 1 and expected in errors[0], done.stderr
    assert "Traceback" not in done.stderr and read_result(env) is None
    assert "s3cr3t-pass" not in done.stdout + done.stderr and "hunter2-pass" not in done.stdout + done.stderr


def test_local_deploys_by_alias_and_run_fetch_once_and_follow_the_alias(
    mlflow_proxied, registered: dict, proxied_env: dict[str, str]
) -> None:
    env, name = proxied_env, registered["name"]
    cache = Path(env["FUSEML_STATE_DIR"]) / "models"

    url, state = deploy(env, f"models:/{name}@champion")
    first = predict(url)
    assert (state.model, state.registered_model, state.model_version, state.run_id) == (
        f"models:/{name}@champion", name, "1", registered["1"]["run"])  # fmt: skip
    assert [p.parent for p in cache.glob("*/MLmodel")] == [Path(state.served_from)]
    fetched = Path(state.served_from).stat().st_ino

    # The same model by its run: served from the same cached copy, not fetched again.
    url, state = deploy(env, f"runs:/{registered['1']['run']}/model")
    assert predict(url) == pytest.approx(first)
    assert len(list(cache.iterdir())) == 1 and Path(state.served_from).stat().st_ino == fetched

    # Move the alias: the redeploy follows it to version 2, which answers differently.
    client = MlflowClient(tracking_uri=mlflow_proxied.tracking_uri)
    client.set_registered_model_alias(name, "champion", "2")
    try:
        url, state = deploy(env, f"models:/{name}@champion")
    finally:
        client.set_registered_model_alias(name, "champion", "1")
    assert state.model_version == "2" and predict(url) != pytest.approx(first)
    assert len(list(cache.iterdir())) == 2
    listed = CliRunner().invoke(apps, ["--state-dir", env["FUSEML_STATE_DIR"]])
    assert f"models:/{name}@champion" in listed.output

    # Version 2 by its proxied artifact URI is the copy just fetched (a dry run: no second server start).
    done = run_step("steps.predictor", {**env, "FUSEML_MODEL": registered["2"]["location"], "FUSEML_DRY_RUN": "true"})
    assert done.returncode == 0, done.stderr
    assert f"cached {registered['2']['location']} -> {state.served_from}" in done.stdout


@pytest.mark.docker
@pytest.mark.slow
def test_docker_serves_a_registered_model_by_alias(
    serving_image: str, registered: dict, proxied_env: dict[str, str]
) -> None:
    env = {**proxied_env, "FUSEML_TARGET": "docker", "FUSEML_SERVING_IMAGE": serving_image}
    try:
        url, state = deploy(env, f"models:/{registered['name']}@champion")
        assert state.kind == "docker" and state.model_version == "1"
        assert 3 < predict(url) < 9
        import docker

        labels = docker.from_env().containers.get(state.container).labels
        assert labels["fuseml/model"] == f"models:/{registered['name']}@champion"
        assert labels["fuseml/model-version"] == "1" and labels["fuseml/run-id"] == registered["1"]["run"]
    finally:
        CliRunner().invoke(apps, ["stop", env["FUSEML_APP_NAME"], "--state-dir", env["FUSEML_STATE_DIR"]])


def test_kserve_dry_run_stages_the_model_in_s3(
    s3, mlflow_proxied, registered: dict, proxied_env: dict[str, str], tmp_path: Path
) -> None:
    model = f"models:/{registered['name']}/1"
    store_url = f"s3://{s3.bucket}/staged-{uuid.uuid4().hex[:6]}"
    env = {**proxied_env, **s3.env(), "FUSEML_MODEL": model, "FUSEML_TARGET": "kserve", "FUSEML_DRY_RUN": "true",
           "FUSEML_MODEL_STORE": store_url, "KUBECONFIG": str(tmp_path / "absent")}  # fmt: skip
    done = run_step("steps.predictor", env)
    assert done.returncode == 0, done.stderr
    assert env["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr
    plan, manifests = done.stdout.split("---\n", 1)
    isvc = list(yaml.safe_load_all(manifests))[-1]
    assert schema_errors(isvc) == []
    storage_uri = isvc["spec"]["predictor"]["model"]["storageUri"]
    assert storage_uri.startswith(store_url + "/") and f"staged {model} -> " in plan
    s3_store = S3Store(S3Settings.from_environ(s3.env()))
    assert {"MLmodel", "model.skops"} <= set(s3_store.list(storage_uri))
    annotations = isvc["metadata"]["annotations"]
    assert annotations["fuseml/model"] == model and annotations["fuseml/model-version"] == "1"
    assert annotations["fuseml/registered-model"] == registered["name"]
    assert annotations["fuseml/run-id"] == registered["1"]["run"]

    again = run_step("steps.predictor", env)
    assert again.returncode == 0, again.stderr
    staged = [line for line in again.stdout.splitlines() if line.startswith(f"already staged {model} -> ")]
    assert len(staged) == 1 and staged[0].endswith(f"-> {storage_uri}"), again.stdout


def test_the_predictor_image_stages_a_model_given_by_alias(
    s3, mlflow_proxied, registered: dict, base_image: str, tmp_path: Path
) -> None:
    # In a Tekton pod the step runs from its image: MLflow's client must be in it to resolve models:/.
    image = build_image(ROOT / "Dockerfiles" / "predictor.Dockerfile", PREDICTOR_TAG, base_image)
    results = tmp_path / "results"
    results.mkdir(mode=0o777)
    results.chmod(0o777)
    model = f"models:/{registered['name']}@champion"
    env = {**mlflow_proxied.env(), **s3.env(), "FUSEML_MODEL": model, "FUSEML_APP_NAME": "wine",
           "FUSEML_DRY_RUN": "true", "FUSEML_MODEL_STORE": f"s3://{s3.bucket}/staged-{uuid.uuid4().hex[:6]}",
           "KUBERNETES_SERVICE_HOST": "10.0.0.1", "TASK_RESULT": "prediction-url",
           "FUSEML_RESULTS_DIR": "/tekton/results"}  # fmt: skip
    flags = [f"--env={name}={value}" for name, value in env.items()]
    done = docker("run", "--rm", "--network", "host", "-v", f"{results}:/tekton/results", *flags, image, "run",
                  timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    isvc = list(yaml.safe_load_all(done.stdout.split("---\n", 1)[1]))[-1]
    assert isvc["spec"]["predictor"]["model"]["storageUri"].startswith(env["FUSEML_MODEL_STORE"] + "/")
    assert isvc["metadata"]["annotations"]["fuseml/model-version"] == registered["1"]["version"]
    assert (results / "prediction-url").read_text().endswith("/v2/models/wine/infer")
