"""The few files of a model that decide its serving environment, fetched wherever the model lives, and the
environment they make.

A serving environment depends on what MLflow wrote beside ``MLmodel``
(``python_env.yaml``, ``requirements.txt``, ``conda.yaml``), never on the
weights, so only those files are copied: a model of gigabytes costs the
builder a few kilobytes. The model URI is resolved once (``runs:/`` and
``models:/`` to one exact version, as the predictor does), and every file is
read through the store for its concrete location (S3, a local folder, the
tracking server's proxied artifacts). ``serving_environment`` turns them into
the spec to build (``common.serving_env``: the model's requirements plus the
runtime's) and keeps the name of the file the model's lines came from, for
a conflict the installer finds later.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.artifact_store import join_url
from common.build_log import BuildError
from common.envspec import EnvSpec
from common.errors import StepError
from common.mlmodel import MLMODEL, ModelError, parse_mlmodel
from common.model_uri import ModelLocation, resolve
from common.serving_env import requirements_origin, runtime_requirements, serving_spec
from common.serving_env_conflicts import reframe_build_error
from common.storage import open_store

log = logging.getLogger(__name__)

# What MLflow writes beside MLmodel to describe the model's environment.
ENVIRONMENT_FILES = ("python_env.yaml", "requirements.txt", "conda.yaml")


@dataclass(frozen=True)
class ServingEnvironment:
    """The spec that serves a model, and the model's file its requirement lines come from."""

    spec: EnvSpec
    origin: str

    def explain(self, error: BuildError) -> StepError:
        """A failed install said as a conflict between the model's requirements and the runtime's, when it is one."""
        return reframe_build_error(error, self.spec, runtime_requirements(), self.origin)


def serving_environment(uri: str, environ: Mapping[str, str]) -> ServingEnvironment:
    """The serving environment of the model at ``uri``: its own requirements plus the serving runtime's."""
    log.info("=== serving environment of model %s ===", uri)
    with tempfile.TemporaryDirectory(prefix="fuseml-model-env-") as folder:
        fetch_environment_files(uri, environ, Path(folder))
        return ServingEnvironment(serving_spec(Path(folder)), requirements_origin(Path(folder)))


def fetch_environment_files(uri: str, environ: Mapping[str, str], destination: Path) -> ModelLocation:
    """Copy the model's MLmodel and environment files into ``destination``; returns where the model is.

    A place without MLmodel is refused here, before anything is built: the URI
    must name the folder the trainer logged (its output).
    """
    location = resolve(uri, environ)
    if location.artifact_uri != location.uri:
        log.info("model %s", location.describe())
    url = location.artifact_uri.rstrip("/")
    store = open_store(url, environ)
    present = set(store.list(url))
    if MLMODEL not in present:
        raise ModelError(
            f"model={uri}: no {MLMODEL} file at {url} ({len(present)} files found)",
            "give the folder that directly holds MLmodel (the trainer step's output)",
        )
    files = {name: store.read(join_url(url, name)) for name in (MLMODEL, *ENVIRONMENT_FILES) if name in present}
    parse_mlmodel(files[MLMODEL].decode("utf-8", "replace"), f"{url}/{MLMODEL}")
    destination.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (destination / name).write_bytes(content)
    log.info("model environment files: %s", ", ".join(sorted(files.keys() - {MLMODEL})) or "none (only MLmodel)")
    return location
