"""The trainer step: run an MLproject entry point under MLflow, return the model's URL (or registered version).

Order matters for users: everything that can be checked without training
(inputs, registry names, MLproject, parameters, the tracking server, the artifact store) is
checked first, so a misconfigured workflow fails in seconds, not after the
training run.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from common.codeset import Codeset
from common.errors import ExecutionError, InputError
from common.inputs import Inputs
from common.storage import S3Settings, S3Store
from steps.trainer.launch import run_command, with_python_on_path
from steps.trainer.model_locator import find_model
from steps.trainer.parameters import resolve_parameters
from steps.trainer.registration import register
from steps.trainer.settings import TrainerSettings
from steps.trainer.tracking import (
    HTTP_DEFAULTS,
    bounded_http_env,
    get_or_create_experiment,
    tracking_uri,
    translate_tracking_error,
)

if TYPE_CHECKING:
    from mlflow.projects._project_spec import EntryPoint

log = logging.getLogger(__name__)


def train(environ: Mapping[str, str]) -> str:
    """Run the codeset in the working directory as FuseML's trainer step does."""
    inputs = Inputs(environ)
    codeset = Codeset.at(Path.cwd())
    settings = TrainerSettings.from_inputs(inputs, codeset)
    entry_point = codeset.entry_point(settings.entry_point)
    parameters = resolve_parameters(entry_point, inputs, settings.entry_point)
    uri = tracking_uri(environ)
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, environ.get(name, value))

    log.info("trainer: codeset %s, experiment %r, tracking %s", codeset.path, settings.experiment, uri)
    experiment_id, artifact_location = get_or_create_experiment(uri, settings.experiment)
    _check_artifact_store(artifact_location, environ)

    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.projects.utils import get_or_create_run, get_run_env_vars

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    with tempfile.TemporaryDirectory(prefix="fuseml-trainer-") as storage_dir:
        # Path parameters are resolved (checked, or downloaded) here, before a run exists to leave RUNNING.
        command = _entry_point_command(entry_point, parameters, storage_dir, settings.entry_point)
        try:
            run = get_or_create_run(
                None, str(codeset.path), experiment_id, str(codeset.path), None, settings.entry_point, parameters
            )
        except MlflowException as e:
            raise translate_tracking_error(e, uri) from e
        run_id = run.info.run_id
        log.info("=== running entry point %r in MLflow run %s: %s ===", settings.entry_point, run_id, command)
        env = with_python_on_path({**bounded_http_env(environ), **get_run_env_vars(run_id, experiment_id)})
        started = time.monotonic()
        try:
            finished = run_command(command, codeset.path, env)
        except BaseException:
            _mark_run(client, run_id, "KILLED")
            raise
    if finished.returncode != 0:
        _mark_run(client, run_id, "FAILED")
        last = f"; last output: {finished.last_line}" if finished.last_line else ""
        raise ExecutionError(
            f"entry point {settings.entry_point!r} failed with exit code {finished.returncode} "
            f"(MLflow run {run_id}){last}"
        )
    client.set_terminated(run_id, "FINISHED")
    log.info("entry point %r finished in %.1fs", settings.entry_point, time.monotonic() - started)
    model = find_model(client, run_id, experiment_id, settings.artifact_path, environ)
    if settings.register_model:
        return register(client, model, settings.register_model, settings.model_alias, uri, environ)
    return model.url


def _entry_point_command(entry_point: EntryPoint, parameters: Mapping[str, str], storage_dir: str, name: str) -> str:
    """The entry point's shell command, its ``path`` parameters checked to exist (or downloaded)."""
    from mlflow.exceptions import MlflowException

    try:
        return entry_point.compute_command(parameters, storage_dir)
    except MlflowException as e:
        raise InputError(
            f"entry point {name!r}: {e.message}",
            "give an existing file or folder (relative to the codeset) or a URI MLflow can download",
        ) from e


def _check_artifact_store(artifact_location: str, environ: Mapping[str, str]) -> None:
    """Fail before training when the experiment's S3 bucket refuses these credentials.

    Only for ``s3://``: a proxied server (``mlflow-artifacts:/``) holds the credentials itself, and a
    local folder needs none.
    """
    if not artifact_location.startswith("s3://"):
        return
    S3Store(S3Settings.from_environ(environ)).check_bucket(artifact_location)


def _mark_run(client, run_id: str, status: str) -> None:  # noqa: ANN001 - mlflow.MlflowClient, imported lazily
    """Record how the run ended, best effort: the step is failing already, and its own error says why.

    The tracking server may be the reason training failed; a second error from it must not replace
    the first with a traceback.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.set_terminated(run_id, status)
    except MlflowException as e:
        log.warning("could not mark MLflow run %s %s: %s", run_id, status, str(e).splitlines()[0] if str(e) else e)
