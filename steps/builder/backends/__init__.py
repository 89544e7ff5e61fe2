"""Builder backends by name, and the automatic choice among them.

``auto`` picks, in order: buildah inside a Kubernetes pod when buildah is
installed (no daemon there); docker when a daemon answers; otherwise venv.
Each backend module is imported only when chosen, so a cache-hit run never
imports the docker SDK.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping

from common.errors import InputError
from steps.builder.backends.base import Backend
from steps.builder.settings import BuilderSettings

log = logging.getLogger(__name__)

BACKENDS = {
    "docker": "steps.builder.backends.docker:DockerBackend",
    "buildah": "steps.builder.backends.buildah:BuildahBackend",
    "venv": "steps.builder.backends.venv:VenvBackend",
}


def load_backend(name: str, environ: Mapping[str, str], settings: BuilderSettings) -> Backend:
    """The backend called ``name``; an unknown name is an input error listing the known ones."""
    if name not in BACKENDS:
        raise InputError(f"unknown builder backend {name!r}", "use one of auto, " + ", ".join(BACKENDS))
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(environ, settings)


def choose_backend(environ: Mapping[str, str], settings: BuilderSettings) -> Backend:
    """The backend asked for, or the first usable one for ``auto``."""
    name = settings.backend
    if name == "auto":
        name = detect(environ)
        log.info("backend: %s (automatic; set input backend to choose)", name)
    else:
        log.info("backend: %s", name)
    return load_backend(name, environ, settings)


def detect(environ: Mapping[str, str]) -> str:
    from steps.builder.backends import buildah
    from steps.builder.backends.docker_probe import DockerProbe

    if buildah.in_pod(environ) and buildah.available(environ):
        return "buildah"
    if DockerProbe(environ, timeout=2.0).answers():
        return "docker"
    return "venv"
