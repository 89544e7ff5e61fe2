"""The Kubernetes objects of a KServe deployment, as plain dicts.

Plain dicts, not kserve's model classes: kserve 0.21's models serialise to
snake_case with nulls under kubernetes 37, and
dicts are what the API takes anyway. Everything here is pure: tests validate
each manifest against the InferenceService CRD's openAPIV3Schema.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from common import names
from common.errors import InputError
from common.storage import S3Settings
from steps.predictor.runtime_choice import ServingChoice

ISVC_GROUP = "serving.kserve.io"
ISVC_VERSION = "v1beta1"
ISVC_PLURAL = "inferenceservices"
ISVC_API_VERSION = f"{ISVC_GROUP}/{ISVC_VERSION}"
MANAGED_BY = "fuseml-predictor"
S3_ANNOTATION = "serving.kserve.io/s3-"

DEFAULT_REQUESTS = {"cpu": "100m", "memory": "512Mi"}
DEFAULT_LIMITS = {"cpu": "1", "memory": "2Gi"}


def secret_name(app: str) -> str:
    return f"{app}-s3"


def service_account_name(app: str) -> str:
    return f"{app}-sa"


def labels(app: str, workflow: str | None, org: str | None, project: str | None) -> dict[str, str]:
    """FuseML's labels: what lets FuseML (and a person with kubectl) find the app's objects."""
    values = {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "fuseml/app-name": app,
        "fuseml/workflow": workflow,
        "fuseml/org": org,
        "fuseml/project": project,
    }
    return {key: _label_value(value) for key, value in values.items() if value and _label_value(value)}


def s3_secret(app: str, namespace: str, s3: S3Settings, label_set: dict[str, str]) -> dict[str, Any]:
    """The Secret KServe's storage initializer reads S3 credentials and settings from."""
    if not s3.access_key or not s3.secret_key:
        raise InputError(
            "the model is in S3 but S3 credentials are missing",
            f"set {names.AWS_ACCESS_KEY_ID} and {names.AWS_SECRET_ACCESS_KEY} (the s3 extension)",
        )
    annotations = {
        S3_ANNOTATION + "region": s3.region or "us-east-1",
        S3_ANNOTATION + "verifyssl": "0" if s3.verify is False else "1",
        S3_ANNOTATION + "usehttps": "1",
    }
    if s3.endpoint_url:
        parsed = urlparse(s3.endpoint_url if "://" in s3.endpoint_url else "https://" + s3.endpoint_url)
        annotations[S3_ANNOTATION + "endpoint"] = parsed.netloc
        annotations[S3_ANNOTATION + "usehttps"] = "0" if parsed.scheme == "http" else "1"
    data = {names.AWS_ACCESS_KEY_ID: s3.access_key, names.AWS_SECRET_ACCESS_KEY: s3.secret_key}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(secret_name(app), namespace, label_set, annotations),
        "type": "Opaque",
        "stringData": data,
    }


def service_account(app: str, namespace: str, label_set: dict[str, str], with_secret: bool) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(service_account_name(app), namespace, label_set),
    }
    if with_secret:
        manifest["secrets"] = [{"name": secret_name(app)}]
    return manifest


def inference_service(
    app: str,
    namespace: str,
    choice: ServingChoice,
    storage_uri: str,
    label_set: dict[str, str],
    runtime_version: str | None = None,
    resources_limits: dict[str, Any] | None = None,
    model_url: str | None = None,
    provenance: dict[str, str] | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """The InferenceService: predictor.model in the modern style, protocol v2 always.

    ``image`` (the model's own serving image) replaces the runtime's: the model spec is a container.

    ``provenance`` (the model URI given, and the registered model, version and
    run it resolved to) becomes annotations, so ``kubectl describe`` says what serves.
    """
    model_format: dict[str, Any] = {"name": choice.model_format}
    if choice.format_version:
        model_format["version"] = choice.format_version
    model: dict[str, Any] = {
        "modelFormat": model_format,
        "protocolVersion": choice.protocol,
        "storageUri": storage_uri,
        "resources": resources(resources_limits or {}),
    }
    if choice.pin_runtime:
        model["runtime"] = choice.runtime
    if runtime_version:
        model["runtimeVersion"] = runtime_version
    if image:
        model["image"] = image
    annotations = {"fuseml/serving": choice.describe()}
    if model_url:
        annotations["fuseml/model"] = model_url
    annotations.update(provenance or {})
    return {
        "apiVersion": ISVC_API_VERSION,
        "kind": "InferenceService",
        "metadata": _metadata(app, namespace, label_set, annotations),
        "spec": {
            "predictor": {
                "serviceAccountName": service_account_name(app),
                "minReplicas": 1,
                "labels": dict(label_set),
                "model": model,
            }
        },
    }


def resources(limits_override: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Default requests and limits, the user's limits merged in; a request never exceeds its limit."""
    limits = dict(DEFAULT_LIMITS)
    for key, value in limits_override.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InputError(f"resources_limits: {key}={value!r} is not a quantity such as 2, 500m or 4Gi")
        limits[str(key)] = _quantity_text(key, value)
    requests = dict(DEFAULT_REQUESTS)
    for key, request in DEFAULT_REQUESTS.items():
        if parse_quantity(limits[key]) < parse_quantity(request):
            requests[key] = limits[key]
    return {"requests": requests, "limits": limits}


_SUFFIXES = {
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([+]?[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity (``500m``, ``2Gi``, ``1e3``) as a number."""
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, exponent, suffix = match.groups()
    return float(number) * (10 ** int(exponent) if exponent else 1) * _SUFFIXES[suffix or ""]


def _quantity_text(key: str, value: str | int | float) -> str:
    text = str(value).strip()
    try:
        parse_quantity(text)
    except ValueError:
        raise InputError(
            f"resources_limits: {key}={value!r} is not a Kubernetes quantity", "use forms such as 2, 500m, 4Gi"
        ) from None
    return text


def _metadata(
    name: str, namespace: str, label_set: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(label_set)}
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def _label_value(value: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
