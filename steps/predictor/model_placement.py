"""Putting the model where the target's runtime can load it, and saying what it is.

Models reached directly (``s3://``, ``gs://``, ``https://``, local paths) are
served from where they are. A model reached only through the MLflow tracking
server is fetched into the host's cache for the ``local`` and ``docker``
targets (``model_cache``) and staged into S3 for ``kserve``
(``model_staging``). Either way the deployment records where the model came
from (``provenance``): the URI the user gave, the registered model, version and
run, so ``fuseml-steps apps``, ``docker inspect`` and ``kubectl describe isvc``
tell what is serving.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.artifact_store import ArtifactStore
from common.model_uri import ModelLocation
from steps.predictor import model_cache, model_staging
from steps.predictor.settings import Settings

# Annotation (kserve) and label (docker) keys of the provenance.
MODEL_KEY = "fuseml/model"
PROVENANCE_KEYS = {
    "location": "fuseml/model-location",
    "name": "fuseml/registered-model",
    "version": "fuseml/model-version",
    "run_id": "fuseml/run-id",
}


@dataclass(frozen=True)
class Placement:
    """Where the runtime loads the model from, and the plan's lines about getting it there."""

    url: str
    steps: tuple[str, ...] = ()


def place(
    location: ModelLocation,
    store: ArtifactStore,
    mlmodel: bytes,
    settings: Settings,
    on_this_machine: bool,
    environ: Mapping[str, str],
) -> Placement:
    """Fetch (``on_this_machine``: local, docker) or stage (kserve) a model the runtime cannot read where it is.

    ``mlmodel`` is the model's MLmodel file, already read by ``inspect_model``: with the location it
    is the content key, and it is not fetched from the tracking server a second time.

    A dry run fetches nothing (it says where the copy would go) but does stage:
    the manifests must name the real copy, and a staged copy is content-addressed,
    so making it again changes nothing.
    """
    if not location.through_mlflow:
        return Placement(location.artifact_uri)
    key = model_cache.content_key(location.artifact_uri, mlmodel)
    if on_this_machine:
        path = model_cache.cached_model(settings.state_dir, key)
        if settings.dry_run:
            cached = (path / "MLmodel").is_file()
            return Placement(str(path), (f"{'cached' if cached else 'fetch'} {location.describe()} -> {path}",))
        model_cache.fetch(store, location.artifact_uri, path)
        return Placement(str(path), (f"cached {location.describe()} -> {path}",))
    root = model_staging.model_store(settings.model_store, environ, location.uri)
    target = model_staging.staged_url(root, key)
    copied = model_staging.stage(store, location.artifact_uri, target, environ)
    return Placement(target, (f"{'staged' if copied else 'already staged'} {location.describe()} -> {target}",))


def provenance(location: ModelLocation | None, given: str) -> dict[str, str]:
    """What the deployment serves, as annotations or labels: the URI given and what it resolved to."""
    facts = {MODEL_KEY: given}
    if location is None:
        return facts
    values = {"location": location.artifact_uri, "name": location.name, "version": location.version,
              "run_id": location.run_id}  # fmt: skip
    facts.update({PROVENANCE_KEYS[k]: v for k, v in values.items() if v and v != given})
    return facts
