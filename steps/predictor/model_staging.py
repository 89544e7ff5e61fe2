"""Copying a model KServe cannot read where it is into an S3 store it can read.

KServe's storage initializer downloads ``s3://``, ``gs://`` and ``https://``
itself, but not ``mlflow-artifacts:/`` (artifacts proxied by the tracking
server, behind its credentials). Such a model is copied once into the S3
store (input ``model_store``, else ``s3://mlflow-artifacts/fuseml-models`` on
the endpoint ``MLFLOW_S3_ENDPOINT_URL``/``AWS_*`` name) under
``<store>/<content key>`` (``model_cache.content_key``: the same model is
staged once, whatever URI named it), and the InferenceService reads it there.
MLmodel is written last, so a staged copy with an MLmodel is a complete one.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from common import names
from common.artifact_store import ArtifactStore, join_url
from common.errors import InputError
from common.mlmodel import MLMODEL
from common.storage import open_store

log = logging.getLogger(__name__)

DEFAULT_MODEL_STORE = "s3://mlflow-artifacts/fuseml-models"


def model_store(configured: str | None, environ: Mapping[str, str], uri: str) -> str:
    """The S3 folder models are staged into: input ``model_store``, else the default bucket when S3 is configured."""
    if configured:
        return configured
    if environ.get(names.MLFLOW_S3_ENDPOINT_URL) or environ.get(names.AWS_ACCESS_KEY_ID):
        return DEFAULT_MODEL_STORE
    raise InputError(
        f"model={uri}: KServe cannot download it from the MLflow server, and no S3 store is configured to copy it to",
        f"set FUSEML_MODEL_STORE=s3://bucket/prefix with {names.AWS_ACCESS_KEY_ID}/{names.AWS_SECRET_ACCESS_KEY} "
        f"(and {names.MLFLOW_S3_ENDPOINT_URL}), or give the model's s3:// URL",
    )


def staged_url(store_url: str, key: str) -> str:
    return join_url(store_url, key)


def stage(source: ArtifactStore, artifact_uri: str, target: str, environ: Mapping[str, str]) -> bool:
    """Copy the model at ``artifact_uri`` to the S3 folder ``target`` unless it is there; True when copied."""
    destination = open_store(target, environ)
    if destination.exists(join_url(target, MLMODEL)):
        log.info("model %s is already staged at %s", artifact_uri, target)
        return False
    log.info("staging model %s -> %s", artifact_uri, target)
    with tempfile.TemporaryDirectory(prefix="fuseml-stage-") as tmp:
        local = source.download(artifact_uri, Path(tmp) / "model")
        mlmodel = Path(tmp) / MLMODEL
        shutil.move(local / MLMODEL, mlmodel)
        destination.upload(local, target)
        destination.upload(mlmodel, join_url(target, MLMODEL))
    return True
