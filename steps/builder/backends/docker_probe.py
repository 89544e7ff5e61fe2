"""A few read-only Docker Engine API calls over the socket, without the docker SDK.

The cache-hit path only needs to know whether a daemon answers, its platform,
and the id of the base image; importing the docker SDK (and requests) for
that would cost more than the whole check. ``DOCKER_HOST`` is honoured for
``unix://`` and plain ``tcp://``; anything else (TLS) reports "unknown" and
the SDK takes over when it is time to build.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import urllib.parse
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/run/docker.sock"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class DockerProbe:
    """Read-only questions to the Docker daemon named by ``DOCKER_HOST``."""

    def __init__(self, environ: Mapping[str, str], timeout: float = 3.0) -> None:
        self.host = environ.get("DOCKER_HOST", "").strip() or f"unix://{DEFAULT_SOCKET}"
        self.tls = environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
        self.timeout = timeout

    def _connection(self) -> http.client.HTTPConnection | None:
        parsed = urllib.parse.urlparse(self.host)
        if parsed.scheme == "unix":
            return _UnixConnection(parsed.path or DEFAULT_SOCKET, self.timeout)
        if parsed.scheme in ("tcp", "http") and not self.tls:
            return http.client.HTTPConnection(parsed.hostname or "localhost", parsed.port or 2375, timeout=self.timeout)
        return None

    def get(self, path: str) -> tuple[int, Any] | None:
        """(status, decoded JSON) of ``GET path``, or None when the daemon cannot be asked."""
        connection = self._connection()
        if connection is None:
            return None
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        except OSError as e:
            log.debug("docker daemon at %s does not answer: %s", self.host, e)
            return None
        finally:
            connection.close()
        try:
            return response.status, json.loads(body) if body else None
        except ValueError:
            return response.status, body.decode("utf-8", "replace")

    def answers(self) -> bool:
        answer = self.get("/_ping")
        return answer is not None and answer[0] == 200

    def platform(self) -> str | None:
        """``linux/amd64`` as the daemon builds for it."""
        answer = self.get("/version")
        if not answer or answer[0] != 200 or not isinstance(answer[1], dict):
            return None
        return f"{answer[1].get('Os', 'linux')}/{answer[1].get('Arch', 'unknown')}"

    def image(self, reference: str) -> dict[str, Any] | None:
        """The daemon's inspect data for a local image, or None when it has no such image."""
        answer = self.get(f"/images/{urllib.parse.quote(reference, safe='')}/json")
        if not answer or answer[0] != 200 or not isinstance(answer[1], dict):
            return None
        return answer[1]
