"""A content-addressed copy on this machine of models that live behind the MLflow tracking server.

The ``local`` and ``docker`` targets serve a folder: a model reached only
through MLflow (``mlflow-artifacts:/``, and ``runs:/`` or ``models:/`` that
resolve to it) is fetched once into ``<state_dir>/models/<key>`` and served
from there. The key (``content_key``) is the hash of the concrete artifact
location together with the model's MLmodel file: the location tells copies
apart, and MLmodel carries the ``model_uuid`` MLflow gives every saved model,
so a model logged again at the same place gets a new key while the same model
deployed twice (by alias, version or run) finds its copy. The listing alone
would not do: our stores list names, not sizes or checksums. A fetch goes to a
temporary folder beside the cache entry and is renamed into place only when
complete, so a half-fetched model is never served.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from common.artifact_store import ArtifactStore
from common.errors import InputError, StorageError
from common.mlmodel import MLMODEL

log = logging.getLogger(__name__)

CACHE_FOLDER = "models"
KEY_LENGTH = 16


def content_key(artifact_uri: str, mlmodel: bytes) -> str:
    """The cache key of the model at ``artifact_uri`` whose MLmodel is ``mlmodel``."""
    digest = hashlib.sha256(artifact_uri.rstrip("/").encode() + b"\n" + mlmodel)
    return digest.hexdigest()[:KEY_LENGTH]


def cache_root(state_dir: Path) -> Path:
    return state_dir / CACHE_FOLDER


def cached_model(state_dir: Path, key: str) -> Path:
    """Where the model with ``key`` is (or will be) kept."""
    return cache_root(state_dir) / key


def fetch(store: ArtifactStore, artifact_uri: str, destination: Path) -> Path:
    """``destination`` holding the model at ``artifact_uri``: fetched unless a complete copy is there already."""
    if (destination / MLMODEL).is_file():
        log.info("model %s is already in the cache: %s", artifact_uri, destination)
        return destination
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    except OSError as e:
        raise InputError(
            f"model cache {destination.parent} cannot be written ({e.strerror})", "set FUSEML_STATE_DIR"
        ) from e
    try:
        log.info("fetching model %s into the cache: %s", artifact_uri, destination)
        store.download(artifact_uri, partial)
        if not (partial / MLMODEL).is_file():
            raise StorageError(f"{artifact_uri}: the fetched model has no {MLMODEL} file", "check the model URL")
        _publish(partial, destination)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return destination


def _publish(partial: Path, destination: Path) -> None:
    """Rename the complete copy into place; a copy another deploy published meanwhile wins (same content).

    The copy is made readable by all first: the docker target mounts it into a
    container whose server runs as another user (and ``mkdtemp`` made it 0700).
    """
    for path in (partial, *partial.rglob("*")):
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
    try:
        os.rename(partial, destination)
    except OSError:
        if not (destination / MLMODEL).is_file():
            raise
        log.info("another deploy cached %s meanwhile; using its copy", destination)
