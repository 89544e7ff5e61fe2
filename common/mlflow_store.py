"""Artifacts behind MLflow URIs: ``mlflow-artifacts:/…``, ``runs:/…`` and ``models:/…``.

The same six operations as S3 and local folders. A ``runs:/`` or ``models:/``
URL is resolved once per store (``common.model_uri``), so every file read
through one store comes from the same model version even if an alias moves
meanwhile; the concrete location is then served by the store for its scheme
(S3 or local, given by ``open_store``) or, for artifacts the tracking server
proxies, by MLflow's own artifact repository over HTTP. Calls see the step's
``environ`` (tracking URI, credentials, bounded retries), not the process's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from common import names
from common.artifact_store import ArtifactStore, join_url
from common.errors import ServiceUnavailable, StepError, StorageError
from common.model_uri import ModelLocation, kind_of, resolve, split_model_path
from common.tracking import (
    mlflow_environment,
    require_mlflow,
    tracking_uri,
    translate_tracking_error,
    without_credentials,
)

# Concrete schemes served by MLflow's artifact repository over the tracking server.
PROXIED_SCHEMES = ("mlflow-artifacts", "http", "https")


class MlflowStore(ArtifactStore):
    """Artifacts under MLflow URIs; ``concrete`` opens the store of a resolved s3:// or local location."""

    def __init__(self, environ: Mapping[str, str], concrete: Callable[[str, Mapping[str, str]], ArtifactStore]) -> None:
        self.environ = dict(environ)
        self.concrete = concrete
        self._resolved: dict[str, ModelLocation] = {}

    def location(self, url: str) -> ModelLocation:
        """What the model part of ``url`` resolves to (resolved once per store)."""
        base, _ = self._split(url)
        if base not in self._resolved:
            self._resolved[base] = resolve(base, self.environ)
        return self._resolved[base]

    def exists(self, url: str) -> bool:
        return self._call(url, lambda store, target: store.exists(target))

    def read(self, url: str) -> bytes:
        return self._call(url, lambda store, target: store.read(target))

    def list(self, url: str) -> list[str]:
        return self._call(url, lambda store, target: store.list(target))

    def download(self, url: str, destination: Path) -> Path:
        return self._call(url, lambda store, target: store.download(target, destination))

    def upload(self, source: Path, url: str) -> None:
        self._call(url, lambda store, target: store.upload(source, target))

    def write(self, url: str, data: bytes) -> None:
        self._call(url, lambda store, target: store.write(target, data))

    def copy(self, source: str, destination: str) -> None:
        for relative in self.list(source) or [""]:
            self.write(join_url(destination, relative), self.read(join_url(source, relative)))

    def _split(self, url: str) -> tuple[str, str]:
        if kind_of(url) == "runs":
            return url.rstrip("/"), ""  # the run path is resolved whole (run artifacts or a logged model)
        return split_model_path(url)

    def _concrete(self, url: str) -> str:
        """The URL behind ``url``: ``mlflow-artifacts:/`` as it is, ``runs:/`` and ``models:/`` resolved."""
        if kind_of(url) == "mlflow-artifacts":
            return url
        _, inner = self._split(url)
        return join_url(self.location(url).artifact_uri, inner)

    def _call(self, url: str, operation: Callable[[ArtifactStore, str], object]):  # noqa: ANN202
        """``operation`` on the store that serves the concrete URL: MLflow's proxy, else S3 or local."""
        concrete = self._concrete(url)
        if urlparse(concrete).scheme in PROXIED_SCHEMES:
            return operation(ProxiedArtifacts(self.environ, shown=url), concrete)
        return operation(self.concrete(concrete, self.environ), concrete)


class ProxiedArtifacts(ArtifactStore):
    """``mlflow-artifacts:/`` (and the server's ``http(s)://…/mlflow-artifacts/…``) through MLflow's repository."""

    def __init__(self, environ: Mapping[str, str], shown: str | None = None) -> None:
        self.environ = environ
        self.server = tracking_uri(environ)
        self.shown = shown
        require_mlflow(shown or self.server)

    def exists(self, url: str) -> bool:
        parent, name = _parent(url)
        with self._errors(url):
            entries = self._repo(parent).list_artifacts(None)
        match = next((e for e in entries if e.path.rstrip("/").rsplit("/", 1)[-1] == name), None)
        if match is None:
            return False
        return not match.is_dir or bool(self.list(url))

    def read(self, url: str) -> bytes:
        parent, name = _parent(url)
        with self._errors(url), tempfile.TemporaryDirectory(prefix="fuseml-read-") as tmp:
            local = self._repo(parent).download_artifacts(name, dst_path=tmp)
            if Path(local).is_dir():
                raise StorageError(f"{self._shown(url)}: is a folder, not a file")
            return Path(local).read_bytes()

    def list(self, url: str) -> list[str]:
        with self._errors(url):
            return sorted(self._walk(self._repo(url), None))

    def download(self, url: str, destination: Path) -> Path:
        files = self.list(url)
        if not files:
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(self.read(url))
            return destination
        destination.mkdir(parents=True, exist_ok=True)
        with self._errors(url):
            self._repo(url).download_artifacts("", dst_path=str(destination))
        return destination

    def upload(self, source: Path, url: str) -> None:
        with self._errors(url):
            if source.is_dir():
                self._repo(url).log_artifacts(str(source))
            else:
                parent, name = _parent(url)
                with tempfile.TemporaryDirectory(prefix="fuseml-upload-") as tmp:
                    named = Path(tmp) / name
                    named.write_bytes(source.read_bytes())
                    self._repo(parent).log_artifact(str(named))

    def write(self, url: str, data: bytes) -> None:
        parent, name = _parent(url)
        with self._errors(url), tempfile.TemporaryDirectory(prefix="fuseml-write-") as tmp:
            named = Path(tmp) / name
            named.write_bytes(data)
            self._repo(parent).log_artifact(str(named))

    def _repo(self, url: str):  # noqa: ANN202 - MLflow's ArtifactRepository, imported lazily
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(url.rstrip("/"), tracking_uri=self.server)

    def _walk(self, repo, path: str | None) -> Iterator[str]:  # noqa: ANN001
        for entry in repo.list_artifacts(path):
            if entry.is_dir:
                yield from self._walk(repo, entry.path)
            else:
                yield entry.path

    def _shown(self, url: str) -> str:
        return without_credentials(self.shown or url)

    @contextmanager
    def _errors(self, url: str) -> Iterator[None]:
        """MLflow's and requests' errors as one line that names the URL and what to check."""
        with mlflow_environment(self.environ):
            try:
                yield
            except StepError:
                raise
            except Exception as e:  # noqa: BLE001 - MlflowException, requests' errors, OSError: all translated here
                raise self._translated(e, url) from e

    def _translated(self, error: Exception, url: str) -> StepError:
        text = str(error)
        shown = self._shown(url)
        if " 404" in text or "404 Client Error" in text or "RESOURCE_DOES_NOT_EXIST" in text or "No such" in text:
            return StorageError(f"{shown}: no such artifact on the MLflow server {without_credentials(self.server)}")
        if "does not support" in text and "artifact" in text.lower():
            return StorageError(
                f"{shown}: the MLflow server {without_credentials(self.server)} does not serve artifacts",
                "start it with --serve-artifacts, or give the model's s3:// URL",
            )
        translated = translate_tracking_error(error, self.server)
        if isinstance(translated, ServiceUnavailable) or names.MLFLOW_TRACKING_USERNAME in str(translated):
            translated.message = f"{shown}: {translated.message}"
        return translated


def _parent(url: str) -> tuple[str, str]:
    stripped = url.rstrip("/")
    parent, _, name = stripped.rpartition("/")
    return parent, name
