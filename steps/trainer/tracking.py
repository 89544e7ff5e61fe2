"""Talking to the MLflow tracking server: reach it fast or fail fast.

MLflow's client retries a dead server for minutes (7 retries, exponential
backoff, 120 s timeouts). A step in a pipeline should say within seconds that
the server does not answer, so the first call is made with a tight budget;
later calls get bounded defaults the user can still override.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlparse

from common import names
from common.errors import InputError, ServiceUnavailable, StepError

log = logging.getLogger(__name__)

# Bounded defaults for every MLflow HTTP call of the step and its entry point.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# The first contact: two tries of 8 s at most, well under 30 s in all.
_PROBE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "8",
}


def tracking_uri(environ: Mapping[str, str]) -> str:
    uri = environ.get(names.MLFLOW_TRACKING_URI, "").strip()
    if not uri:
        raise InputError(
            f"{names.MLFLOW_TRACKING_URI} is not set",
            "attach the mlflow-tracking extension, or set it to http://host:port or sqlite:///path/mlflow.db",
        )
    return uri


def bounded_http_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the bounded HTTP defaults added where the user set none."""
    return {**HTTP_DEFAULTS, **environ}


@contextlib.contextmanager
def _temporary_env(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def get_or_create_experiment(uri: str, name: str) -> tuple[str, str]:
    """(experiment id, artifact location) of experiment ``name``, created if new.

    This is the step's first call to the server, made with the probe budget.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        with _temporary_env(_PROBE):
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                log.info("creating MLflow experiment %r", name)
                try:
                    client.create_experiment(name, artifact_location=local_artifact_root(uri))
                except MlflowException as e:
                    if "RESOURCE_ALREADY_EXISTS" not in str(e.error_code):
                        raise
                experiment = client.get_experiment_by_name(name)
    except MlflowException as e:
        raise translate_tracking_error(e, uri) from e
    if experiment.lifecycle_stage == "deleted":
        raise InputError(
            f"MLflow experiment {name!r} is deleted",
            "restore it in MLflow or set FUSEML_MLFLOW_EXPERIMENT to another name",
        )
    return experiment.experiment_id, experiment.artifact_location


def local_artifact_root(uri: str) -> str | None:
    """Artifacts of a local sqlite store go beside the database file.

    MLflow's own default is ``./mlruns`` in the working directory, which here is
    the user's codeset: a training run must not write into it.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or not parsed.path or parsed.path in ("/", "/:memory:"):
        return None
    database = Path(parsed.path[1:]).resolve()  # sqlite:///rel.db is relative, sqlite:////abs.db absolute
    return (database.parent / "artifacts").as_uri()


def translate_tracking_error(error: Exception, uri: str) -> StepError:
    """An MLflow client error as a message that says which setting to check."""
    text = str(error)
    shown = _without_credentials(uri)
    if "401" in text or "403" in text or "Unauthorized" in text or "PERMISSION_DENIED" in text:
        return InputError(
            f"MLflow tracking server {shown} refused the credentials",
            f"check {names.MLFLOW_TRACKING_USERNAME} and {names.MLFLOW_TRACKING_PASSWORD}",
        )
    if "Max retries exceeded" in text or "Connection" in text or "timed out" in text.lower():
        return ServiceUnavailable(
            f"MLflow tracking server {shown} does not answer",
            f"check {names.MLFLOW_TRACKING_URI} and that the server runs",
        )
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return ServiceUnavailable(f"MLflow tracking server {shown} failed: {first}")


def _without_credentials(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":****@")
    return uri
