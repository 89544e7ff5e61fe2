"""Deploy to KServe: Secret, ServiceAccount and InferenceService, then wait and probe.

Create or update each object; wait until the InferenceService is Ready *for the
current spec* (after an update the old Ready=True lingers), failing fast when
KServe reports the model cannot load; then send a real inference. The API is
reached through ``KubeClient`` and the clock is injectable, so the whole flow
runs against the fake API of ``tests/fixtures/kube_api.py``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import yaml

from common.errors import InputError, StepError
from common.polling import wait_until
from common.storage import S3Settings, join_url, open_store
from steps.predictor.kserve_serving_image import kserve_serving_image
from steps.predictor.probe import probe
from steps.predictor.runtime_choice import LAYOUT_TRITON
from steps.predictor.targets.base import Deployment, DeployPlan, Target
from steps.predictor.targets.kserve import manifests
from steps.predictor.targets.kserve.client import KubeClient
from steps.predictor.targets.kserve.status import IsvcStatus, read_status, spec_unchanged

log = logging.getLogger(__name__)

# Schemes KServe's storage initializer downloads from (its `kserve-storage` package, KServe v0.20).
REMOTE_SCHEMES = ("s3", "gs", "pvc", "http", "https", "hdfs", "webhdfs", "oci", "hf")
POLL_SECONDS = 3.0
# After an update, a Ready=True this old may still describe the previous spec.
SETTLE_SECONDS = 30.0
MIN_PROBE_SECONDS = 30.0


class DeployFailed(StepError):
    """KServe reported that the model cannot be served."""


class DeployTimeout(StepError):
    """The InferenceService did not become ready in time."""


@dataclass(frozen=True)
class KServePlan:
    """The manifests in apply order and the files to stage first."""

    objects: list[dict[str, Any]]
    storage_uri: str
    staging: list[tuple[str, str]]

    @property
    def isvc(self) -> dict[str, Any]:
        return self.objects[-1]


def build(plan: DeployPlan) -> KServePlan:
    """The objects to apply for ``plan`` (pure: no API calls)."""
    s, info, choice = plan.settings, plan.info, plan.choice
    scheme = urlparse(info.url).scheme
    if scheme not in REMOTE_SCHEMES:
        raise InputError(
            f"model={info.url}: KServe cannot download a local path",
            "give an s3:// model URL (the trainer's output), or use target=local",
        )
    label_set = manifests.labels(s.app_name, s.workflow, s.org, s.project)
    storage_uri, staging = info.url, []
    if choice.layout == LAYOUT_TRITON:
        storage_uri, staging = triton_repository(info.url, s.app_name, choice.triton_files)
    objects = []
    if scheme == "s3":
        objects.append(manifests.s3_secret(s.app_name, s.namespace, S3Settings.from_environ(plan.environ), label_set))
    objects.append(manifests.service_account(s.app_name, s.namespace, label_set, with_secret=scheme == "s3"))
    objects.append(
        manifests.inference_service(
            s.app_name, s.namespace, choice, storage_uri, label_set,
            runtime_version=s.runtime_version, resources_limits=s.resources_limits, provenance=plan.provenance,
            image=kserve_serving_image(s, info, choice),
        )
    )  # fmt: skip
    return KServePlan(objects, storage_uri, staging)


def triton_repository(
    model_url: str, app: str, files: tuple[tuple[str, str], ...]
) -> tuple[str, list[tuple[str, str]]]:
    """A Triton model repository beside the model: ``<parent>/fuseml-triton/<app>/repository/<app>/1/...``.

    Kept out of the model folder, and under a name no sibling shares as a prefix
    (KServe downloads every key that starts with the storageUri).
    """
    parent = model_url.rstrip("/").rsplit("/", 1)[0]
    repository = f"{parent}/fuseml-triton/{app}/repository"
    staging = [(join_url(model_url, source), f"{repository}/{app}/1/{target}") for source, target in files]
    return repository, staging


class KServeTarget(Target):
    name = "kserve"

    def __init__(
        self,
        connect: Callable[[Mapping[str, str]], KubeClient] = KubeClient.connect,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = POLL_SECONDS,
        settle_seconds: float = SETTLE_SECONDS,
        prober: Callable[..., str] = probe,
    ) -> None:
        self.connect = connect
        self.clock = clock
        self.sleep = sleep
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self.prober = prober

    def describe(self, plan: DeployPlan) -> tuple[str, str]:
        built = build(plan)
        lines = [f"target kserve, namespace {plan.settings.namespace}: {plan.choice.describe()}", *plan.preparation]
        lines += [f"copy {source} -> {target}" for source, target in built.staging]
        lines.append("create or update:")
        shown = [_masked(o) for o in built.objects]
        text = "\n".join(lines) + "\n---\n" + yaml.safe_dump_all(shown, sort_keys=False)
        app, ns = plan.settings.app_name, plan.settings.namespace
        return text, f"http://{app}-predictor.{ns}.svc.cluster.local/v2/models/{app}/infer"

    def deploy(self, plan: DeployPlan) -> Deployment:
        built = build(plan)
        started = self.clock()
        deadline = started + plan.settings.timeout
        if built.staging:
            store = open_store(plan.info.url, plan.environ)
            for source, target in built.staging:
                log.info("staging %s -> %s", source, target)
                store.copy(source, target)
        client = self.connect(plan.environ)
        changed = False
        for manifest in built.objects:
            changed = self._apply(client, manifest)  # the last one, the InferenceService, decides
        isvc = built.isvc
        name, namespace = isvc["metadata"]["name"], isvc["metadata"]["namespace"]
        status = self.wait(client, name, namespace, updated_at=self.clock() if changed else None, deadline=deadline)
        bases = [u for u in _probe_order(status, plan.environ) if u]
        remaining = max(deadline - self.clock(), MIN_PROBE_SECONDS)
        self.prober(bases, name, plan.info, per_column=plan.choice.engine == "mlserver", timeout=remaining)
        url = f"{status.url.rstrip('/')}/v2/models/{name}/infer"
        resources = [{"kind": o["kind"], "name": o["metadata"]["name"]} for o in built.objects]
        return Deployment(url=url, namespace=namespace, resources=resources)

    def wait(
        self, client: KubeClient, name: str, namespace: str, updated_at: float | None, deadline: float
    ) -> IsvcStatus:
        """Poll until Ready for the current spec; fail fast on a failed load; time out at ``deadline``."""
        fresh = updated_at is None
        last: IsvcStatus | None = None

        def ready() -> IsvcStatus | None:
            nonlocal fresh, last
            isvc = client.get("InferenceService", name, namespace)
            if isvc is None:
                raise DeployFailed(f"InferenceService {namespace}/{name} disappeared while waiting for it")
            status = read_status(isvc)
            if not fresh and (
                status.caught_up or status.ready is not True or self.clock() - updated_at >= self.settle_seconds
            ):
                fresh = True
            if fresh and status.failure:
                raise DeployFailed(
                    f"InferenceService {namespace}/{name} cannot serve the model: {status.failure}",
                    f"see `kubectl -n {namespace} describe isvc {name}` and the predictor pod's logs",
                )
            if fresh and status.ready and status.url:
                return status
            if status.progress != (last.progress if last else ""):
                log.info("waiting for %s/%s: %s", namespace, name, status.progress)
            last = status
            return None

        status = wait_until(
            ready, timeout=deadline - self.clock(), interval=self.poll_seconds, clock=self.clock, sleep=self.sleep
        )
        if status is None:
            progress = last.progress if last else "no status yet"
            raise DeployTimeout(
                f"InferenceService {namespace}/{name} not Ready in time; last status: {progress}",
                f"raise FUSEML_TIMEOUT, or see `kubectl -n {namespace} describe isvc {name}`",
            )
        log.info("InferenceService %s/%s is Ready at %s", namespace, name, status.url)
        return status

    def _apply(self, client: KubeClient, manifest: dict[str, Any]) -> bool:
        """Create or update one object; True when something changed."""
        kind, meta = manifest["kind"], manifest["metadata"]
        existing = client.get(kind, meta["name"], meta["namespace"])
        if existing is None:
            client.create(manifest)
            log.info("created %s %s/%s", kind, meta["namespace"], meta["name"])
            return True
        if kind == "InferenceService" and spec_unchanged(existing, manifest):
            log.info("InferenceService %s/%s is up to date", meta["namespace"], meta["name"])
            return False
        client.replace(manifest, existing["metadata"]["resourceVersion"])
        log.info("updated %s %s/%s", kind, meta["namespace"], meta["name"])
        return True


def _probe_order(status: IsvcStatus, environ: Mapping[str, str]) -> list[str | None]:
    """In a pod the cluster-local address is the one sure to resolve; outside, the external URL."""
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return [status.address, status.url]
    return [status.url, status.address]


def _masked(manifest: dict[str, Any]) -> dict[str, Any]:
    shown = copy.deepcopy(manifest)
    for key in ("stringData", "data"):
        if key in shown:
            shown[key] = {k: "****" for k in shown[key]}
    return shown
