"""Manifests: every InferenceService validated against the CRD schema; Secret, resources, labels."""

from __future__ import annotations

import pytest

from common.errors import InputError
from common.storage import S3Settings
from steps.predictor.model_info import ModelInfo
from steps.predictor.runtime_choice import choose
from steps.predictor.targets.kserve import manifests
from tests.fixtures.kube_api import schema_errors

PYFUNC = {"python_function": {}}
MODELS = {
    "sklearn-pickle": ModelInfo(
        "s3://b/m",
        {
            **PYFUNC,
            "sklearn": {"pickled_model": "model.pkl", "serialization_format": "pickle", "sklearn_version": "1.9"},
        },
        ("MLmodel", "model.pkl"),
    ),
    "sklearn-skops": ModelInfo(
        "s3://b/m",
        {
            **PYFUNC,
            "sklearn": {"pickled_model": "model.skops", "serialization_format": "skops", "sklearn_version": "1.9"},
        },
        ("MLmodel", "model.skops"),
    ),
    "onnx": ModelInfo("s3://b/m", {**PYFUNC, "onnx": {"data": "model.onnx"}}, ("MLmodel", "model.onnx")),
}
CASES = [(model, predictor) for model in MODELS for predictor in ("auto", "mlflow", "mlserver")] + [
    ("sklearn-pickle", "sklearn"),
    ("onnx", "triton"),
]
LABELS = manifests.labels("wine", "mlflow-e2e", "org", "proj")


@pytest.mark.parametrize(("model", "predictor"), CASES)
def test_every_inference_service_matches_the_crd_schema(model: str, predictor: str) -> None:
    choice = choose(MODELS[model], predictor)
    isvc = manifests.inference_service(
        "wine", "fuseml-workloads", choice, "s3://b/m", LABELS,
        runtime_version="1.2.3", resources_limits={"nvidia.com/gpu": 1, "memory": "4Gi"}, model_url="s3://b/m",
    )  # fmt: skip
    assert schema_errors(isvc) == []
    model_spec = isvc["spec"]["predictor"]["model"]
    assert model_spec["protocolVersion"] == "v2"
    assert model_spec["modelFormat"]["name"] == choice.model_format
    assert model_spec["runtime"] == choice.runtime
    assert model_spec["runtimeVersion"] == "1.2.3"
    assert model_spec["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "wine-sa"
    assert isvc["metadata"]["labels"]["fuseml/app-name"] == "wine"


def test_schema_check_catches_a_misspelt_field() -> None:
    isvc = manifests.inference_service("w", "ns", choose(MODELS["sklearn-skops"]), "s3://b/m", LABELS)
    isvc["spec"]["predictor"]["model"]["protocolversion"] = "v2"
    assert any("protocolversion" in e for e in schema_errors(isvc))


def test_schema_check_enforces_kserve_types_and_required_fields() -> None:
    """What only KServe's own schema knows: field types and required keys."""
    isvc = manifests.inference_service("w", "ns", choose(MODELS["sklearn-skops"]), "s3://b/m", LABELS)
    isvc["spec"]["predictor"]["minReplicas"] = "two"
    del isvc["spec"]["predictor"]["model"]["modelFormat"]["name"]
    errors = schema_errors(isvc)
    assert any(e.startswith("spec/predictor/minReplicas:") and "not of type 'integer'" in e for e in errors), errors
    assert any(e.startswith("spec/predictor/model/modelFormat:") and "'name' is a required" in e for e in errors), (
        errors
    )


def test_secret_for_plain_http_endpoint() -> None:
    s3 = S3Settings(endpoint_url="http://seaweed.s3.svc:8333", access_key="AK", secret_key="SK", region="eu-west-1")
    secret = manifests.s3_secret("wine", "ns", s3, LABELS)
    assert secret["metadata"]["name"] == "wine-s3"
    assert secret["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": "seaweed.s3.svc:8333",
        "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-region": "eu-west-1",
        "serving.kserve.io/s3-verifyssl": "1",
    }
    assert secret["stringData"] == {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}


def test_secret_for_https_endpoint_without_tls_check_and_default_region() -> None:
    s3 = S3Settings(endpoint_url="https://minio.example:9000", access_key="AK", secret_key="SK", verify=False)
    annotations = manifests.s3_secret("wine", "ns", s3, LABELS)["metadata"]["annotations"]
    assert annotations["serving.kserve.io/s3-usehttps"] == "1"
    assert annotations["serving.kserve.io/s3-verifyssl"] == "0"
    assert annotations["serving.kserve.io/s3-region"] == "us-east-1"
    assert annotations["serving.kserve.io/s3-endpoint"] == "minio.example:9000"


def test_secret_needs_both_keys() -> None:
    with pytest.raises(InputError, match="AWS_SECRET_ACCESS_KEY"):
        manifests.s3_secret("wine", "ns", S3Settings(access_key="AK"), LABELS)


def test_service_account_lists_the_secret() -> None:
    sa = manifests.service_account("wine", "ns", LABELS, with_secret=True)
    assert sa["secrets"] == [{"name": "wine-s3"}]
    assert "secrets" not in manifests.service_account("wine", "ns", LABELS, with_secret=False)


def test_resources_merge_limits_and_keep_requests_below_them() -> None:
    assert manifests.resources({}) == {
        "requests": {"cpu": "100m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    merged = manifests.resources({"nvidia.com/gpu": 1, "memory": "256Mi", "cpu": "50m"})
    assert merged["limits"] == {"cpu": "50m", "memory": "256Mi", "nvidia.com/gpu": "1"}
    assert merged["requests"] == {"cpu": "50m", "memory": "256Mi"}


@pytest.mark.parametrize("bad", [{"cpu": "lots"}, {"memory": [1]}, {"cpu": True}])
def test_resources_reject_what_is_not_a_quantity(bad: dict) -> None:
    with pytest.raises(InputError, match="resources_limits"):
        manifests.resources(bad)


@pytest.mark.parametrize(("text", "value"), [("500m", 0.5), ("2", 2), ("1Gi", 2**30), ("1.5G", 1.5e9), ("1e3", 1000)])
def test_parse_quantity(text: str, value: float) -> None:
    assert manifests.parse_quantity(text) == value


def test_labels_are_valid_label_values_and_skip_unknowns() -> None:
    assert manifests.labels("wine", "my workflow!", None, "_p_") == {
        "app.kubernetes.io/managed-by": "fuseml-predictor",
        "fuseml/app-name": "wine",
        "fuseml/workflow": "my-workflow",
        "fuseml/project": "p",
    }


def test_the_model_provenance_becomes_annotations() -> None:
    facts = {"fuseml/model": "models:/wine@champion", "fuseml/model-version": "3", "fuseml/run-id": "r1"}
    isvc = manifests.inference_service(
        "w", "ns", choose(MODELS["sklearn-skops"]), "s3://b/staged/k", LABELS, provenance=facts
    )
    assert schema_errors(isvc) == []
    assert facts.items() <= isvc["metadata"]["annotations"].items()
