"""The predictor when the Kubernetes API fails: 500s that pass, 500s that do not, an answer lost after the work.

The API is the fake one of tests/fixtures/kube_api.py, reached through a real
kubeconfig by the predictor run as a process (the model in real S3), so the
step's output, exit code and result are the ones a user gets. An API server
or KServe's webhook restarting answers 500 for a moment: the step retries, says
so, and deploys; one that keeps failing ends the step with one line naming the
API server and its answer, within the step's timeout.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.storage import S3Settings, S3Store
from runner.services.seaweedfs import SeaweedFS
from steps.predictor.targets.kserve.client import KubeClient
from tests.faults.checks import assert_no_secret, the_error_line
from tests.fixtures.kube_api import FakeKubeApi
from tests.fixtures.services import SYSTEM_PATH, VENV_BIN, read_result, run_step

pytestmark = pytest.mark.faults

NS = "faults"
APP = "wine"
WEBHOOK_DOWN = 'Internal error occurred: failed calling webhook "inferenceservice.kserve-webhook-server.validator"'


@pytest.fixture(scope="module")
def s3_model(s3: SeaweedFS, wine_model_dir: Path) -> str:
    url = f"s3://{s3.bucket}/faults/{uuid.uuid4().hex[:8]}/artifacts/model"
    S3Store(S3Settings.from_environ(s3.env())).upload(wine_model_dir, url)
    return url


@pytest.fixture
def api() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as fake:
        fake.statuses[APP] = [ready(fake.url)]
        yield fake


def ready(url: str) -> dict[str, Any]:
    """Ready for the first spec (``observedGeneration`` 1): no settle time after the create."""
    return {"url": url, "address": {"url": url}, "conditions": [{"type": "Ready", "status": "True"}],
            "observedGeneration": 1,
            "modelStatus": {"transitionStatus": "UpToDate", "states": {"activeModelState": "Loaded"}}}  # fmt: skip


def predictor_env(api: FakeKubeApi, s3: SeaweedFS, model: str, tmp_path: Path, **inputs: str) -> dict[str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "nobody"}}],
    }))  # fmt: skip
    return {
        "PATH": f"{VENV_BIN}:{SYSTEM_PATH}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        **s3.env(),
        "KUBECONFIG": str(kubeconfig),
        "FUSEML_MODEL": model,
        "FUSEML_TARGET": "kserve",
        "FUSEML_APP_NAME": APP,
        "FUSEML_ENV_WORKFLOW_NAMESPACE": NS,
        "FUSEML_RESULTS_DIR": str(tmp_path / "results"),
        "TASK_RESULT": "prediction-url",
        **inputs,
    }


def calls(api: FakeKubeApi, method: str, plural: str) -> int:
    return sum(1 for r in api.requests if r.method == method and f"/{plural}" in r.path)


def test_500s_that_pass_are_retried_and_the_model_deploys(
    api: FakeKubeApi, s3: SeaweedFS, s3_model: str, tmp_path: Path
) -> None:
    api.flaky[("GET", "inferenceservices")] = [(500, WEBHOOK_DOWN)] * 2
    api.flaky[("POST", "inferenceservices")] = [(500, WEBHOOK_DOWN), (503, "the server is shutting down")]
    env = predictor_env(api, s3, s3_model, tmp_path)
    done = run_step("steps.predictor", env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert read_result(env) == f"{api.url}/v2/models/{APP}/infer"
    assert api.get("inferenceservices", NS, APP) is not None
    assert calls(api, "POST", "inferenceservices") == 3
    retries = [line for line in done.stderr.splitlines() if "retrying in" in line]
    assert len(retries) == 4, done.stderr
    assert f"Kubernetes API {api.url} answered HTTP 500 ({WEBHOOK_DOWN}) to create InferenceService {NS}/{APP}; " \
        "retrying in 0.5s" in done.stderr  # fmt: skip
    assert f"answered HTTP 503 (the server is shutting down) to create InferenceService {NS}/{APP}; retrying in 1.0s" \
        in done.stderr  # fmt: skip
    assert_no_secret(s3.secret_key, [done.stdout, done.stderr])


def test_500s_that_do_not_pass_end_the_step_in_one_line_within_its_timeout(
    api: FakeKubeApi, s3: SeaweedFS, s3_model: str, tmp_path: Path
) -> None:
    api.failures[("POST", "inferenceservices")] = (500, WEBHOOK_DOWN)
    env = predictor_env(api, s3, s3_model, tmp_path, FUSEML_TIMEOUT="4")
    done = run_step("steps.predictor", env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    line = the_error_line(done.stderr, "predictor: error: ")
    assert re.fullmatch(
        rf"predictor: error: Kubernetes API {re.escape(api.url)} answered HTTP 500 \({re.escape(WEBHOOK_DOWN)}\) "
        rf"to create InferenceService {NS}/{APP}, \d tries over [34]s; check the API server and its webhooks "
        r"\(KServe's controller\) or the network and KUBECONFIG, then run the step again",
        line,
    ), line
    assert read_result(env) is None
    assert api.get("inferenceservices", NS, APP) is None
    assert_no_secret(s3.secret_key, [done.stdout, done.stderr])


def test_an_api_server_that_is_gone_is_named_with_what_to_check(s3: SeaweedFS, s3_model: str, tmp_path: Path) -> None:
    with FakeKubeApi() as gone:
        pass  # its port is now closed: nothing answers there
    env = predictor_env(gone, s3, s3_model, tmp_path, FUSEML_TIMEOUT="2")
    done = run_step("steps.predictor", env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    line = the_error_line(done.stderr, "predictor: error: ")
    assert line.startswith(
        f"predictor: error: Kubernetes API {gone.url} does not answer (Failed to establish a new "
    ), line
    assert "Connection refused) to read Secret faults/wine-s3, " in line and "the network and KUBECONFIG" in line, line
    assert read_result(env) is None


def test_a_create_whose_answer_was_lost_keeps_the_object_it_made(api: FakeKubeApi) -> None:
    api.lost_creates["inferenceservices"] = 1
    client = KubeClient.for_host(api.url, sleep=lambda seconds: None)
    manifest = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                "metadata": {"name": APP, "namespace": NS}, "spec": {"predictor": {}}}  # fmt: skip
    created = client.create(manifest)
    assert created["metadata"]["uid"] == api.get("inferenceservices", NS, APP)["metadata"]["uid"]
    assert calls(api, "POST", "inferenceservices") == 2
