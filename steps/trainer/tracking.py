"""Talking to the MLflow tracking server: reach it fast or fail fast.

MLflow's client retries a dead server for minutes (7 retries, exponential
backoff, 120 s timeouts). A step in a pipeline should say within seconds that
the server does not answer, so the first call is made with a tight budget;
later calls get bounded defaults the user can still override. The generic part
(budgets, error translation) is ``common.tracking``, shared with the predictor.

Training is long and costly, so after the first contact the trainer's budget
(its own calls, and the entry point's) rides out a tracking server restart of
up to about two minutes (a rolling update of the server, its database
migrating) instead of losing the training to it: 6 retries, 0 + 4 + 8 + 16 +
32 + 64 s apart. A server that stays down still fails the step, that much later.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from common import tracking
from common.errors import InputError
from common.tracking import (  # noqa: F401 - the generic part moved to common; names kept for the trainer
    PROBE,
    temporary_env,
    tracking_uri,
    translate_tracking_error,
)

log = logging.getLogger(__name__)

# For every MLflow call after the first contact, the step's and its entry point's (see the docstring).
HTTP_DEFAULTS = {
    **tracking.HTTP_DEFAULTS,
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
}


def bounded_http_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the trainer's HTTP budget added where the user set none."""
    return {**HTTP_DEFAULTS, **environ}


def get_or_create_experiment(uri: str, name: str) -> tuple[str, str]:
    """(experiment id, artifact location) of experiment ``name``, created if new.

    This is the step's first call to the server, made with the probe budget.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        with temporary_env(PROBE):
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
