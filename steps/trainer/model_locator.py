"""Where the model a run logged really is.

MLflow 3 stores a logged model under ``<experiment>/models/<model_id>/artifacts``,
not under the run's ``artifacts/<path>`` as MLflow 2 did. The step's output must
be the URL of the folder whose ``MLmodel`` file exists, so we ask the tracking
server which models the run logged, take the one named like the artifact path,
fall back to the MLflow 2 layout, and check the MLmodel file is really there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from common.errors import ExecutionError
from common.storage import join_url, open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundModel:
    """The folder holding the model's MLmodel, and what MLflow knows it by."""

    url: str
    run_id: str
    model_id: str | None = None  # MLflow 3's logged model id; None for an MLflow 2 run artifact


def find_model(client, run_id: str, experiment_id: str, artifact_path: str, environ: Mapping[str, str]) -> FoundModel:  # noqa: ANN001
    """The model the run logged as ``artifact_path``, its MLmodel checked to exist through ``open_store``.

    The URL is whatever the tracking server stores: ``s3://`` or a local folder when clients write
    artifacts themselves, ``mlflow-artifacts:/`` when the server proxies them.
    """
    logged = _logged_models(client, run_id, experiment_id)
    candidates = [(m.artifact_location, m.model_id) for m in logged if m.name == artifact_path]
    run_artifacts = client.get_run(run_id).info.artifact_uri
    candidates.append((join_url(run_artifacts, artifact_path), None))
    for url, model_id in candidates:
        store = open_store(url, environ)
        if store.exists(join_url(url, "MLmodel")):
            return FoundModel(url.rstrip("/"), run_id, model_id)
        log.debug("no MLmodel at %s", url)
    raise ExecutionError(
        f"the run {run_id} logged no model at {artifact_path!r}: {_what_was_logged(logged, client, run_id)}",
        "set FUSEML_MLFLOW_ARTIFACT_PATH to the name the code logs its model under",
    )


def _logged_models(client, run_id: str, experiment_id: str) -> list:  # noqa: ANN001
    search = getattr(client, "search_logged_models", None)
    if search is None:  # MLflow 2: models are plain run artifacts
        return []
    return list(search(experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'"))


def _what_was_logged(logged: list, client, run_id: str) -> str:  # noqa: ANN001
    models = sorted(m.name for m in logged)
    artifacts = sorted(a.path for a in client.list_artifacts(run_id))
    parts = []
    parts.append("models: " + (", ".join(models) if models else "none"))
    parts.append("run artifacts: " + (", ".join(artifacts) if artifacts else "none"))
    return "; ".join(parts)
