"""The Kubernetes edge: a few API calls on plain dicts, errors translated once.

Only what the kserve target needs: get, create and replace a Secret, a
ServiceAccount and an InferenceService. Responses are read raw
(``_preload_content=False``) so everything stays a dict and the kubernetes
client's models never touch our manifests.

API servers and the webhooks behind them (KServe's) fail for a moment during
upgrades and restarts: a 5xx, a 429 or no answer is retried with a growing
pause for at most ``RETRY_SECONDS`` (never longer than the step's timeout),
each retry logged in one line; after that the step fails with one line naming
the API server and its last answer. Other answers (403, 404, 409, 422) are final.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ServiceUnavailable, StepError
from common.inputs import Inputs
from steps.predictor.settings import DEFAULT_TIMEOUT, TIMEOUT
from steps.predictor.targets.kserve import manifests

log = logging.getLogger(__name__)

KUBECONFIG = "KUBECONFIG"
_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
RETRY_SECONDS = 60.0
FIRST_PAUSE, MAX_PAUSE = 0.5, 8.0
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
REQUEST_TIMEOUT = (10, 60)  # seconds to connect, to read an answer
_WRAPPERS = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>: |\w+\(host=[^)]*\): ")


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

    def __init__(
        self,
        api_client: Any,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.host = api_client.configuration.host
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.sleep = sleep

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
        timeout = Inputs(environ).int(TIMEOUT, DEFAULT_TIMEOUT, minimum=1)
        return cls(client.ApiClient(configuration), retry_seconds=min(RETRY_SECONDS, timeout))

    @classmethod
    def for_host(cls, host: str, **options: Any) -> KubeClient:
        """A client for an API server that needs no credentials (tests' fake API); ``options`` as ``__init__``'s."""
        from kubernetes import client

        configuration = client.Configuration(host=host)
        configuration.retries = 0
        return cls(client.ApiClient(configuration), **options)

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
        """One API call, retried while the API server fails for a moment (see the module's docstring)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        name = kwargs.get("name") or kwargs["body"]["metadata"]["name"]
        action = f"{verb} {kind} {namespace}/{name}"
        started = self.clock()
        pause, tries = FIRST_PAUSE, 0
        maybe_done = False  # an earlier try may have been carried out (its answer was a 5xx, or none)
        while True:
            tries += 1
            try:
                return self._send(kind, verb, namespace, **kwargs)
            except ApiException as e:
                if e.status == 404 and verb == "read":
                    raise _NotFound() from e
                if e.status == 409 and verb == "create" and maybe_done:
                    # An earlier try went through but its answer was lost: the object is ours.
                    log.info("%s exists after a retried create: keeping it", action)
                    return self._send(kind, "read", namespace, name=name)
                if e.status not in TRANSIENT_STATUSES:
                    raise _api_error(e, verb, kind, namespace, name) from e
                failed: Exception = e
                answer = f"answered HTTP {e.status} ({_reason(e)})"
                maybe_done = maybe_done or e.status != 429
            except HTTPError as e:
                failed, answer = e, f"does not answer ({_no_answer(e)})"
                maybe_done = True
            elapsed = self.clock() - started
            wait = min(pause, self.retry_seconds - elapsed)
            if wait <= 0:
                raise ServiceUnavailable(
                    f"Kubernetes API {self.host} {answer} to {action}, {tries} tries over {elapsed:.0f}s",
                    "check the API server and its webhooks (KServe's controller) or the network and KUBECONFIG, "
                    "then run the step again",
                ) from failed
            log.warning("Kubernetes API %s %s to %s; retrying in %.1fs", self.host, answer, action, wait)
            self.sleep(wait)
            pause = min(pause * 2, MAX_PAUSE)

    def _send(self, kind: str, verb: str, namespace: str, **kwargs: Any) -> dict[str, Any]:
        spec = _KINDS[kind]
        options = {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT, **kwargs}
        if spec.custom:
            method = getattr(
                self.custom, f"{verb}_namespaced_custom_object" if verb != "read" else "get_namespaced_custom_object"
            )
            response = method(manifests.ISVC_GROUP, manifests.ISVC_VERSION, namespace, manifests.ISVC_PLURAL, **options)
        else:
            response = getattr(self.core, f"{verb}_namespaced_{spec.kind}")(namespace=namespace, **options)
        return json.loads(response.data or b"{}")


class _NotFound(Exception):
    pass


class ConflictError(KubernetesError):
    """The object changed between our read and our write."""


def _reason(error: Any) -> str:
    """The API's own message (a Status object's ``message``), else the HTTP reason, on one line."""
    reason = error.reason or ""
    try:
        reason = json.loads(error.body).get("message") or reason
    except (TypeError, ValueError, AttributeError):
        pass
    return " ".join(str(reason).split())


def _no_answer(error: Exception) -> str:
    """urllib3's error without its wrappers and reprs: "Failed to establish a new connection: ..."."""
    error = getattr(error, "reason", None) or error  # MaxRetryError wraps the error that counts
    return _WRAPPERS.sub("", " ".join(str(error).split()))


def _api_error(error: Any, verb: str, kind: str, namespace: str, name: str) -> StepError:
    what = f"cannot {verb} {kind} {namespace}/{name}: HTTP {error.status} {_reason(error)}"
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
