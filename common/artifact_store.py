"""The one interface of artifact storage: six operations on URLs, the same errors whatever the store.

``common.storage.open_store`` picks the store for a URL (S3, a local folder,
MLflow's tracking server); this module is only what they share, so a store
may live in its own module without importing the others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path


class ArtifactStore(ABC):
    """Artifacts under URLs of one scheme. Paths are full URLs (or local paths)."""

    @abstractmethod
    def exists(self, url: str) -> bool:
        """True for an object, or a folder holding at least one object."""

    @abstractmethod
    def read(self, url: str) -> bytes:
        """The object's bytes; StorageError when there is none."""

    @abstractmethod
    def list(self, url: str) -> list[str]:
        """Every object under the folder ``url``, as paths relative to it, sorted."""

    @abstractmethod
    def download(self, url: str, destination: Path) -> Path:
        """Copy an object or a whole folder to ``destination``; returns it."""

    @abstractmethod
    def upload(self, source: Path, url: str) -> None:
        """Copy a local file or folder to ``url``."""

    def copy(self, source: str, destination: str) -> None:
        """Copy an object or folder within this store."""
        for relative in self.list(source) or [""]:
            src = join_url(source, relative)
            self.write(join_url(destination, relative), self.read(src))

    @abstractmethod
    def write(self, url: str, data: bytes) -> None:
        """Store ``data`` as the object ``url``."""


def join_url(base: str, relative: str) -> str:
    if not relative:
        return base
    return base.rstrip("/") + "/" + relative.lstrip("/")
