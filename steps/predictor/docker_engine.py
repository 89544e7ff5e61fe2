"""The Docker engine the docker target and the serving-environment choice talk to: one client per process.

Through the Engine API (the docker SDK, ``DOCKER_HOST`` or ``/var/run/docker.sock``),
so the step works from its own image, which has no docker command.
"""

from __future__ import annotations

import functools
from typing import Any

from common.errors import ServiceUnavailable

ENGINE_TIMEOUT = 120


@functools.cache
def docker_client() -> Any:
    """A docker SDK client for the engine at ``DOCKER_HOST`` or the default socket (one per process)."""
    try:
        import docker
    except ImportError as e:
        raise ServiceUnavailable("the docker SDK is not installed", "pip install docker, or use target=local") from e
    try:
        client = docker.from_env(timeout=ENGINE_TIMEOUT)
        client.ping()
    except Exception as e:  # noqa: BLE001 - the SDK raises its own and requests' errors: no engine either way
        raise ServiceUnavailable(
            f"no Docker engine answers ({explain(e)})",
            "start dockerd, set DOCKER_HOST or mount /var/run/docker.sock, or use target=local",
        ) from e
    return client


def explain(error: Exception) -> str:
    """The engine's own words for ``error`` (its explanation), else the error's text."""
    return str(getattr(error, "explanation", None) or error)
