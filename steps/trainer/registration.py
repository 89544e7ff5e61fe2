"""Registering the trained model in the MLflow Model Registry, and moving an alias to it.

The step's result is then ``models:/<name>/<version>``: the exact version this
run made, never the alias, so a later step deploys what was trained even if
someone moves the alias meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from common.errors import ExecutionError
from common.storage import join_url, open_store
from steps.trainer.model_locator import FoundModel
from steps.trainer.tracking import translate_tracking_error

log = logging.getLogger(__name__)

# How long a new model version may stay PENDING_REGISTRATION (a plain server makes it READY at once).
READY_TIMEOUT_SECONDS = 120


def register(
    client,  # noqa: ANN001 - an MlflowClient
    model: FoundModel,
    name: str,
    alias: str | None,
    uri: str,
    environ: Mapping[str, str],
) -> str:
    """Register ``model`` as a new version of ``name``, point ``alias`` at it; ``models:/<name>/<version>``."""
    from mlflow.exceptions import MlflowException

    try:
        _create_registered_model(client, name)
        version = _create_version(client, model, name)
        if alias:
            client.set_registered_model_alias(name, alias, version.version)
    except MlflowException as e:
        raise translate_tracking_error(e, uri) from e
    if version.status != "READY":
        raise ExecutionError(
            f"registered model {name!r} version {version.version} is {version.status}, not READY: "
            f"{version.status_message or 'no message from the registry'}",
            "check the MLflow server's log",
        )
    result = f"models:/{name}/{version.version}"
    if not open_store(result, environ).exists(join_url(result, "MLmodel")):
        raise ExecutionError(f"{result} has no MLmodel after registration", "check the MLflow server's log")
    moved = f", alias {alias!r} moved to it" if alias else ""
    log.info("registered %s as %s%s", model.url, result, moved)
    return result


def _create_registered_model(client, name: str) -> None:  # noqa: ANN001
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
        log.info("created registered model %r", name)
    except MlflowException as e:
        if e.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise


def _create_version(client, model: FoundModel, name: str):  # noqa: ANN001, ANN202 - an MLflow ModelVersion
    """A new version whose source is the model's folder; waits (bounded) until the registry has it READY."""
    linked = {"model_id": model.model_id} if model.model_id else {}  # MLflow 3 links the logged model
    return client.create_model_version(
        name, model.url, run_id=model.run_id, await_creation_for=READY_TIMEOUT_SECONDS, **linked
    )
