"""A Docker Engine for tests and the local runner.

CI machines start with no daemon (``.ci/run`` starts one); a developer machine
usually has one. ``ensure_docker`` uses whatever answers at the default socket
and only starts ``dockerd`` when nothing does. A daemon started here is left
running on purpose: it is machine-wide state, images cached in it (the base
image) are worth keeping, and a daemon we did not start is never touched.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import docker
from docker.errors import DockerException

from runner.services import ServiceStartError, log_tail, wait_until

log = logging.getLogger(__name__)

DOCKERD = "/usr/sbin/dockerd"
START_TIMEOUT = 60.0
DEFAULT_LOG = Path("/var/log/fuseml-dockerd.log")


def _client() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException:
        return None
    return client


def ensure_docker(log_path: Path = DEFAULT_LOG) -> docker.DockerClient:
    """A client for a running Docker Engine; starts ``dockerd`` (as root) if none answers."""
    client = _client()
    if client is not None:
        return client
    if os.environ.get("DOCKER_HOST"):
        raise ServiceStartError(
            f"no Docker Engine answers at DOCKER_HOST={os.environ['DOCKER_HOST']}: start it or unset DOCKER_HOST"
        )
    binary = shutil.which(DOCKERD) or shutil.which("dockerd")
    if binary is None:
        raise ServiceStartError("no Docker Engine answers and dockerd is not installed: apt-get install docker.io")
    if os.geteuid() != 0:
        raise ServiceStartError("no Docker Engine answers at /var/run/docker.sock; start one (dockerd needs root)")
    log.info("no Docker Engine answers: starting %s (log %s)", binary, log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [binary], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        wait_until(lambda: _client() is not None, what="dockerd", timeout=START_TIMEOUT, proc=proc, log_path=log_path)
    except ServiceStartError:
        if proc.poll() is None:
            proc.terminate()
        raise
    client = _client()
    if client is None:
        raise ServiceStartError(f"dockerd started but does not answer; log {log_path}:\n{log_tail(log_path)}")
    log.info("Docker Engine %s ready", client.version().get("Version", "?"))
    return client
