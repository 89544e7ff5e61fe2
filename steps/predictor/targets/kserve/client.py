"""The Kubernetes edge: a few API calls on plain dicts, errors translated once.

Only what the kserve target needs: get, create and replace a Secret, a
ServiceAccount and an InferenceService. Responses are read raw
(``_preload_content=False``) so everything stays a dict and the kubernetes
client's models never touch our manifests.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ServiceUnavailable, StepError
from steps.predictor.targets.kserve import manifests

log = logging.getLogger(__name__)

KUBECONFIG = "KUBECONFIG"
_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class KubernetesError(StepError):
    """The Kubernetes API refused a request."""


@dataclass(frozen=True)
class _Kind:
    """How to reach one kind of object through the generated client."""

    kind: str
    custom: bool


_KINDS = {
    "Secret": _Kind("secret", False),
    "ServiceAccount": _Kind("service_account", False),
    "InferenceService": _Kind("inferenceservice", True),
}


class KubeClient:
    """Get, create and replace namespaced objects given as dicts."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    @classmethod
    def connect(cls, environ: Mapping[str, str]) -> KubeClient:
        """In a pod: its service account; elsewhere: KUBECONFIG or ~/.kube/config."""
        from kubernetes import client, config

        try:
            if environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(_TOKEN_FILE):
                config.load_incluster_config()
                configuration = client.Configuration.get_default_copy()
                where = "in-cluster service account"
            else:
                configuration = client.Configuration()
                config.load_kube_config(config_file=environ.get(KUBECONFIG) or None, client_configuration=configuration)
                where = environ.get(KUBECONFIG) or "~/.kube/config"
        except (config.ConfigException, OSError) as e:
            raise ServiceUnavailable(
                f"no Kubernetes configuration: {e}",
                "run in a pod with a service account, set KUBECONFIG, or use target=local",
            ) from e
        log.info("Kubernetes API %s (%s)", configuration.host, where)
        return cls(client.ApiClient(configuration))

    @classmethod
    def for_host(cls, host: str) -> KubeClient:
        """A client for an API server that needs no credentials (tests' fake API)."""
        from kubernetes import client

        configuration = client.Configuration(host=host)
        configuration.retries = 0
        return cls(client.ApiClient(configuration))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._call(kind, "read", namespace, name=name)
        except _NotFound:
            return None

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        return self._call(manifest["kind"], "create", meta["namespace"], body=manifest)

    def replace(self, manifest: dict[str, Any], resource_version: str) -> dict[str, Any]:
        body = json.loads(json.dumps(manifest))
        body["metadata"]["resourceVersion"] = resource_version
        meta = manifest["metadata"]
        return self._call(manifest["kind"], "replace", meta["namespace"], name=meta["name"], body=body)

    def _call(self, kind: str, verb: str, namespace: str, **kwargs: Any) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        spec = _KINDS[kind]
        name = kwargs.get("name") or kwargs["body"]["metadata"]["name"]
        try:
            if spec.custom:
                method = getattr(
                    self.custom,
                    f"{verb}_namespaced_custom_object" if verb != "read" else "get_namespaced_custom_object",
                )
                response = method(
                    manifests.ISVC_GROUP, manifests.ISVC_VERSION, namespace, manifests.ISVC_PLURAL,
                    _preload_content=False, **kwargs,
                )  # fmt: skip
            else:
                method = getattr(self.core, f"{verb}_namespaced_{spec.kind}")
                response = method(namespace=namespace, _preload_content=False, **kwargs)
            return json.loads(response.data or b"{}")
        except ApiException as e:
            if e.status == 404 and verb == "read":
                raise _NotFound() from e
            raise _api_error(e, verb, kind, namespace, name) from e
        except HTTPError as e:
            raise ServiceUnavailable(
                f"Kubernetes API does not answer ({verb} {kind} {namespace}/{name}): {e}",
                "check the cluster, KUBECONFIG and the network",
            ) from e


class _NotFound(Exception):
    pass


class ConflictError(KubernetesError):
    """The object changed between our read and our write."""


def _api_error(error: Any, verb: str, kind: str, namespace: str, name: str) -> StepError:
    reason = error.reason or ""
    try:
        reason = json.loads(error.body).get("message") or reason
    except (TypeError, ValueError, AttributeError):
        pass
    what = f"cannot {verb} {kind} {namespace}/{name}: HTTP {error.status} {reason}"
    if error.status == 409:
        return ConflictError(what, "something else changed it at the same time; run the step again")
    if error.status in (401, 403):
        return KubernetesError(
            what,
            f"give the step's service account RBAC rights on {kind} in namespace {namespace} (get, create, update)",
        )
    if error.status == 404 and kind == "InferenceService":
        return KubernetesError(what, "is KServe installed? (no InferenceService CRD or namespace)")
    if error.status == 404:
        return KubernetesError(what, f"does namespace {namespace} exist? set FUSEML_ENV_WORKFLOW_NAMESPACE")
    if error.status in (400, 422):
        return KubernetesError(what, "the cluster rejected the manifest; run with dry_run=true to see it")
    if error.status and error.status >= 500:
        return ServiceUnavailable(what, "the API server or a webhook failed; retry, or check KServe's controller")
    return KubernetesError(what)
