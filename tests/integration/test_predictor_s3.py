"""The predictor on models in real S3 (SeaweedFS): inspection, choice, and the KServe dry run as a step."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from common.storage import S3Settings, S3Store
from steps.predictor.model_info import inspect_model
from steps.predictor.runtime_choice import choose
from tests.fixtures.kube_api import schema_errors
from tests.fixtures.services import read_result, run_step

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_models(s3, wine_model_dir: Path, wine_model_pickle_dir: Path) -> dict[str, str]:
    """The two wine models uploaded as a trainer leaves them: s3://mlflow-artifacts/<run>/artifacts/model."""
    store = S3Store(S3Settings.from_environ(s3.env()))
    base = f"s3://{s3.bucket}/predictor-tests/{uuid.uuid4().hex[:8]}"
    urls = {"skops": f"{base}/skops/artifacts/model", "pickle": f"{base}/pickle/artifacts/model"}
    store.upload(wine_model_dir, urls["skops"])
    store.upload(wine_model_pickle_dir, urls["pickle"])
    return urls


def test_inspect_models_in_s3(s3, s3_models: Mapping[str, str]) -> None:
    store = S3Store(S3Settings.from_environ(s3.env()))
    skops = inspect_model(s3_models["skops"], store)
    assert skops.flavor("sklearn")["pickled_model"] == "model.skops" and len(skops.inputs) == 11
    assert choose(skops).runtime == "fuseml-mlflow"
    pickle = inspect_model(s3_models["pickle"] + "/", store)
    assert pickle.sklearn_server_files == ("model.pkl",) and pickle.example_rows
    assert choose(pickle).runtime == "fuseml-mlflow"  # saved with scikit-learn 1.9, the sklearn server has 1.5.2
    assert choose(pickle, "sklearn").runtime == "kserve-sklearnserver"


@pytest.mark.parametrize(("model", "predictor", "runtime", "model_format"), [
    ("skops", "auto", "fuseml-mlflow", "mlflow"),
    ("pickle", "sklearn", "kserve-sklearnserver", "sklearn"),
])  # fmt: skip
def test_kserve_dry_run_step_prints_valid_manifests_and_changes_nothing(
    step_env: dict[str, str], s3_models: Mapping[str, str], tmp_path: Path, model: str, predictor: str, runtime: str,
    model_format: str,
) -> None:  # fmt: skip
    env = {**step_env, "FUSEML_MODEL": s3_models[model], "FUSEML_TARGET": "kserve", "FUSEML_DRY_RUN": "true",
           "FUSEML_PREDICTOR": predictor, "FUSEML_ENV_WORKFLOW_NAME": "mlflow-e2e",
           "KUBECONFIG": str(tmp_path / "absent")}  # fmt: skip
    (tmp_path / ".fuseml").mkdir()
    (tmp_path / ".fuseml" / "_org").write_text("acme\n")
    (tmp_path / ".fuseml" / "_project").write_text("wine\n")
    done = run_step("steps.predictor", env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert env["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr
    documents = list(yaml.safe_load_all(done.stdout.split("---\n", 1)[1]))
    isvc = documents[-1]
    assert schema_errors(isvc) == []
    assert isvc["metadata"]["name"] == "acme-wine-mlflow-e2e"
    assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] == model_format
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == s3_models[model]
    endpoint = documents[0]["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"]
    assert env["MLFLOW_S3_ENDPOINT_URL"].endswith(endpoint)
    assert read_result(env).endswith("/v2/models/acme-wine-mlflow-e2e/infer")


def test_a_parent_folder_fails_with_the_subfolder_to_use(
    step_env: dict[str, str], s3_models: Mapping[str, str]
) -> None:
    parent = s3_models["skops"].rsplit("/", 1)[0]
    env = {**step_env, "FUSEML_MODEL": parent, "FUSEML_APP_NAME": "wine", "FUSEML_DRY_RUN": "true"}
    done = run_step("steps.predictor", env)
    assert done.returncode == 1
    assert "no MLmodel file there" in done.stderr and "subfolder 'model'" in done.stderr
    assert read_result(env) is None


def test_explicit_sklearn_for_the_skops_model_is_refused(
    step_env: dict[str, str], s3_models: Mapping[str, str]
) -> None:
    env = {**step_env, "FUSEML_MODEL": s3_models["skops"], "FUSEML_APP_NAME": "wine", "FUSEML_DRY_RUN": "true",
           "FUSEML_TARGET": "kserve", "FUSEML_PREDICTOR": "sklearn"}  # fmt: skip
    done = run_step("steps.predictor", env)
    assert done.returncode == 1
    assert "predictor=sklearn cannot serve" in done.stderr and "model.skops" in done.stderr
