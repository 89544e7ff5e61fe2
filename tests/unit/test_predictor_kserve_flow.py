"""The KServe target's control flow against the fake Kubernetes API: create, update, wait, fail fast, time out."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.errors import InputError
from steps.predictor.model_info import Column, ModelInfo
from steps.predictor.runtime_choice import choose
from steps.predictor.settings import Settings
from steps.predictor.targets.base import DeployPlan
from steps.predictor.targets.kserve import DeployFailed, DeployTimeout, KServeTarget
from steps.predictor.targets.kserve.client import KubeClient, KubernetesError
from tests.fixtures.kube_api import FakeKubeApi, schema_errors

NS = "fuseml-workloads"
FEATURES = ["fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides", "free sulfur dioxide",
            "total sulfur dioxide", "density", "pH", "sulphates", "alcohol"]  # fmt: skip
ROW = (7.0, 0.27, 0.36, 20.7, 0.045, 45.0, 170.0, 1.001, 3.0, 0.45, 8.8)
ENV = {
    "AWS_ACCESS_KEY_ID": "AK",
    "AWS_SECRET_ACCESS_KEY": "SK-secret",
    "MLFLOW_S3_ENDPOINT_URL": "http://s3.local:8333",
}


def wine_info(url: str = "s3://mlflow-artifacts/1/models/m-1/artifacts", model_file: str = "model.skops") -> ModelInfo:
    serialization = "skops" if model_file.endswith(".skops") else "pickle"
    flavors = {
        "python_function": {"loader_module": "mlflow.sklearn"},
        "sklearn": {"pickled_model": model_file, "serialization_format": serialization, "sklearn_version": "1.9.1"},
    }
    return ModelInfo(
        url=url, flavors=flavors, files=("MLmodel", model_file, "input_example.json"),
        inputs=tuple(Column(name, "double") for name in FEATURES), example_columns=tuple(FEATURES), example_rows=(ROW,),
    )  # fmt: skip


def make_plan(tmp_path: Path, info: ModelInfo | None = None, timeout: int = 60, **changes: Any) -> DeployPlan:
    info = info or wine_info()
    settings = Settings(
        model=info.url, predictor="auto", app_name="wine", target="kserve", namespace=NS, workflow="mlflow-e2e",
        timeout=timeout, dry_run=False, state_dir=tmp_path, serving_image="img", org="acme", project="wine",
    )  # fmt: skip
    settings = replace(settings, **changes)
    return DeployPlan(settings=settings, info=info, choice=choose(info, settings.predictor), environ=ENV)


@pytest.fixture
def api() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as fake:
        yield fake


class Clock:
    """A fake monotonic clock; sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.01)


def target(api: FakeKubeApi, clock: Clock, settle: float = 30.0) -> KServeTarget:
    return KServeTarget(
        connect=lambda environ: KubeClient.for_host(api.url), clock=clock, sleep=clock.sleep, poll_seconds=3,
        settle_seconds=settle,
    )  # fmt: skip


def conditions(status: str, reason: str = "", message: str = "") -> list[dict[str, str]]:
    return [
        {"type": kind, "status": status, **({"reason": reason, "message": message} if message else {})}
        for kind in ("PredictorReady", "IngressReady", "Ready")
    ]


def ready(url: str, observed: int | None = None) -> dict[str, Any]:
    status = {
        "url": url,
        "address": {"url": url},
        "conditions": conditions("True"),
        "modelStatus": {"transitionStatus": "UpToDate", "states": {"activeModelState": "Loaded",
                                                                    "targetModelState": "Loaded"}},
    }  # fmt: skip
    if observed is not None:
        status["observedGeneration"] = observed
    return status


def pending() -> dict[str, Any]:
    return {
        "conditions": conditions("False", "RevisionMissing", "Configuration has not yet been reconciled"),
        "modelStatus": {"transitionStatus": "InProgress", "states": {"targetModelState": "Loading"}},
    }


def failed_load() -> dict[str, Any]:
    return {
        "conditions": conditions("False", "RevisionFailed", "container exited"),
        "modelStatus": {
            "transitionStatus": "BlockedByFailedLoad",
            "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
            "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "No module named 'skops'", "exitCode": 1},
        },
    }


def isvc_gets(api: FakeKubeApi) -> int:
    return sum(1 for r in api.requests if r.method == "GET" and r.path.endswith("/inferenceservices/wine"))


def test_create_waits_for_ready_then_probes_and_returns_the_v2_url(api: FakeKubeApi, tmp_path: Path) -> None:
    api.statuses["wine"] = [pending(), pending(), ready(api.url)]
    deployment = target(api, Clock()).deploy(make_plan(tmp_path))

    assert deployment.url == f"{api.url}/v2/models/wine/infer"
    assert deployment.namespace == NS
    assert deployment.resources == [
        {"kind": "Secret", "name": "wine-s3"},
        {"kind": "ServiceAccount", "name": "wine-sa"},
        {"kind": "InferenceService", "name": "wine"},
    ]
    secret = api.get("secrets", NS, "wine-s3")
    assert base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == "SK-secret"
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "s3.local:8333"
    isvc = api.get("inferenceservices", NS, "wine")
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "fuseml-mlflow"
    assert schema_errors({k: v for k, v in isvc.items() if k != "status"} | {"metadata": {"name": "wine"}}) == []
    probes = [r for r in api.requests if r.path == "/v2/models/wine/infer"]
    assert len(probes) == 1
    assert probes[0].body["inputs"][0]["shape"] == [1, 11]
    assert probes[0].body["inputs"][0]["data"] == [list(ROW)]
    assert isvc_gets(api) >= 3


def test_redeploy_of_the_same_spec_does_not_touch_the_inference_service(api: FakeKubeApi, tmp_path: Path) -> None:
    api.statuses["wine"] = [ready(api.url)]
    clock = Clock()
    target(api, clock).deploy(make_plan(tmp_path))
    writes_before = len(api.writes("inferenceservices"))
    started = clock.now
    target(api, clock).deploy(make_plan(tmp_path))
    assert len(api.writes("inferenceservices")) == writes_before
    assert clock.now - started < 30, "an unchanged service needs no settle time"


def test_update_ignores_the_stale_ready_until_the_new_spec_rolls_out(api: FakeKubeApi, tmp_path: Path) -> None:
    api.statuses["wine"] = [ready(api.url)]
    target(api, Clock()).deploy(make_plan(tmp_path))
    api.statuses["wine"] = [ready(api.url), ready(api.url), pending(), ready(api.url)]
    gets_before = isvc_gets(api)

    target(api, Clock()).deploy(make_plan(tmp_path, resources_limits={"memory": "4Gi"}))

    puts = [r for r in api.writes("inferenceservices") if r.method == "PUT"]
    assert len(puts) == 1 and puts[0].body["metadata"]["resourceVersion"]
    isvc = api.get("inferenceservices", NS, "wine")
    assert isvc["metadata"]["generation"] == 2
    assert isvc["spec"]["predictor"]["model"]["resources"]["limits"]["memory"] == "4Gi"
    assert isvc_gets(api) - gets_before >= 4, "returned on the stale Ready=True"


def test_update_with_observed_generation_needs_no_settle_time(api: FakeKubeApi, tmp_path: Path) -> None:
    api.statuses["wine"] = [ready(api.url)]
    target(api, Clock()).deploy(make_plan(tmp_path))
    api.statuses["wine"] = [ready(api.url, observed=1), ready(api.url, observed=2)]
    clock = Clock()
    target(api, clock).deploy(make_plan(tmp_path, runtime_version="2.0"))
    assert clock.now - 1000.0 < 10


def test_update_without_any_sign_trusts_ready_after_the_settle_time(api: FakeKubeApi, tmp_path: Path) -> None:
    api.statuses["wine"] = [ready(api.url)]
    target(api, Clock()).deploy(make_plan(tmp_path))
    clock = Clock()
    target(api, clock, settle=30).deploy(make_plan(tmp_path, runtime_version="2.0"))
    assert 30 <= clock.now - 1000.0 < 40


def test_failed_model_load_fails_fast_quoting_the_failure(api: FakeKubeApi, tmp_path: Path) -> None:
    api.statuses["wine"] = [pending(), failed_load()]
    clock = Clock()
    with pytest.raises(DeployFailed) as raised:
        target(api, clock).deploy(make_plan(tmp_path, timeout=600))
    message = str(raised.value)
    assert "BlockedByFailedLoad" in message and "ModelLoadFailed: No module named 'skops'" in message
    assert "exit code 1" in message and "kubectl -n fuseml-workloads describe isvc wine" in message
    assert clock.now - 1000.0 < 10 and isvc_gets(api) == 3  # the lookup before create, two polls


def test_invalid_spec_fails_fast(api: FakeKubeApi, tmp_path: Path) -> None:
    api.statuses["wine"] = [
        {
            "conditions": conditions("False", "NoSupportingRuntime", "no runtime"),
            "modelStatus": {
                "transitionStatus": "InvalidSpec",
                "lastFailureInfo": {"reason": "NoSupportingRuntime", "message": "Specified runtime does not exist"},
            },
        }
    ]
    with pytest.raises(DeployFailed, match="InvalidSpec, NoSupportingRuntime: Specified runtime does not exist"):
        target(api, Clock()).deploy(make_plan(tmp_path))


def test_timeout_reports_the_last_status(api: FakeKubeApi, tmp_path: Path) -> None:
    api.statuses["wine"] = [pending()]
    clock = Clock()
    with pytest.raises(DeployTimeout) as raised:
        target(api, clock).deploy(make_plan(tmp_path, timeout=20))
    assert "Ready=False (RevisionMissing: Configuration has not yet been reconciled)" in str(raised.value)
    assert "FUSEML_TIMEOUT" in str(raised.value)
    assert 20 <= clock.now - 1000.0 <= 21


def test_forbidden_names_the_rbac_fix(api: FakeKubeApi, tmp_path: Path) -> None:
    api.failures[("POST", "inferenceservices")] = (403, 'inferenceservices is forbidden: User "x" cannot create')
    with pytest.raises(KubernetesError) as raised:
        target(api, Clock()).deploy(make_plan(tmp_path))
    assert "HTTP 403" in str(raised.value) and "RBAC" in str(raised.value) and "forbidden" in str(raised.value)


def test_existing_secret_is_replaced_with_its_resource_version(api: FakeKubeApi, tmp_path: Path) -> None:
    metadata = {"name": "wine-s3", "namespace": NS}
    old = api.put_object(
        "secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "stringData": {"A": "b"}}
    )
    api.statuses["wine"] = [ready(api.url)]
    target(api, Clock()).deploy(make_plan(tmp_path))
    secret = api.get("secrets", NS, "wine-s3")
    assert secret["metadata"]["uid"] == old["metadata"]["uid"]
    assert set(secret["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def test_a_local_model_cannot_go_to_kserve(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="KServe cannot download a local path"):
        KServeTarget().describe(make_plan(tmp_path, info=wine_info(url=str(tmp_path))))


def test_dry_run_shows_masked_manifests_that_match_the_schema(tmp_path: Path) -> None:
    text, url = KServeTarget().describe(make_plan(tmp_path))
    assert "SK-secret" not in text
    documents = list(yaml.safe_load_all(text.split("---\n", 1)[1]))
    assert [d["kind"] for d in documents] == ["Secret", "ServiceAccount", "InferenceService"]
    assert documents[0]["stringData"]["AWS_SECRET_ACCESS_KEY"] == "****"
    assert schema_errors(documents[2]) == []
    assert url == "http://wine-predictor.fuseml-workloads.svc.cluster.local/v2/models/wine/infer"


def test_onnx_plan_stages_a_triton_repository_outside_the_model_folder(tmp_path: Path) -> None:
    info = ModelInfo("s3://b/1/r/artifacts/model", {"python_function": {}, "onnx": {"data": "model.onnx"}},
                     ("MLmodel", "model.onnx"), inputs=(Column("x", "tensor", "float32", (-1, 11)),))  # fmt: skip
    text, _ = KServeTarget().describe(make_plan(tmp_path, info=info))
    assert (
        "copy s3://b/1/r/artifacts/model/model.onnx -> s3://b/1/r/artifacts/fuseml-triton/wine/repository/wine/1/model.onnx"
        in text
    )
    isvc = list(yaml.safe_load_all(text.split("---\n", 1)[1]))[-1]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://b/1/r/artifacts/fuseml-triton/wine/repository"
    assert isvc["spec"]["predictor"]["model"]["modelFormat"] == {"name": "onnx", "version": "1"}
