"""A local OCI registry (Debian's ``docker-registry``, distribution v2) on loopback.

The builder pushes images and the predictor's docker target pulls them, so
tests need a real registry. Docker treats 127.0.0.0/8 registries as insecure
by default, so plain HTTP on 127.0.0.1 needs no daemon configuration. Basic
auth is optional (htpasswd needs bcrypt; the standard ``crypt`` module makes it
through the system's libxcrypt).
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import subprocess
import warnings
from pathlib import Path
from types import TracebackType

import requests

from common.ports import free_port
from common.processes import stop_process_group
from runner.services import ServiceStartError, start_process, wait_until

log = logging.getLogger(__name__)

REGISTRY_BINARY = "/usr/bin/docker-registry"
START_TIMEOUT = 30.0


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for htpasswd (the only scheme the registry accepts)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated, but the only bcrypt this venv has without a new dependency

    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    if not hashed or not hashed.startswith("$2"):
        raise ServiceStartError("this system's crypt() cannot make bcrypt hashes: registry auth is unavailable")
    return hashed


class Registry:
    """``docker-registry serve`` on 127.0.0.1 with storage in ``data_dir``.

    With ``auth=True`` it requires basic auth as ``username``/``password``.
    """

    def __init__(self, data_dir: Path, auth: bool = False, username: str = "fuseml") -> None:
        self.data_dir = Path(data_dir)
        self.port = free_port(with_grpc=False)
        self.debug_port = free_port(with_grpc=False)
        self.auth = auth
        self.username = username if auth else None
        self.password = secrets.token_urlsafe(16) if auth else None
        self.log_path = self.data_dir / "registry.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _write_config(self) -> Path:
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "info", "fields": {"service": "registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir / "storage")},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {
                "addr": self.host,
                "debug": {"addr": f"127.0.0.1:{self.debug_port}"},
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }
        if self.auth:
            assert self.username is not None and self.password is not None
            htpasswd = self.data_dir / "htpasswd"
            htpasswd.write_text(f"{self.username}:{bcrypt_hash(self.password)}\n")
            htpasswd.chmod(0o600)
            config["auth"] = {"htpasswd": {"realm": "fuseml-test", "path": str(htpasswd)}}
        path = self.data_dir / "config.yml"
        # JSON is YAML: no need for a YAML writer here.
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self) -> Registry:
        """Start the registry and wait until GET /v2/ answers (200, or 401 with auth)."""
        if self._proc is not None:
            return self
        binary = shutil.which(REGISTRY_BINARY) or shutil.which("docker-registry")
        if binary is None:
            raise ServiceStartError("docker-registry not found: apt-get install docker-registry")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        log.info("starting registry on %s (storage %s)", self.host, self.data_dir)
        self._proc = start_process([binary, "serve", str(config)], self.log_path)
        try:
            wait_until(
                self._answers,
                what=f"registry at {self.url}",
                timeout=START_TIMEOUT,
                proc=self._proc,
                log_path=self.log_path,
            )
        except BaseException:
            self.stop()
            raise
        log.info("registry ready at %s", self.url)
        return self

    def _answers(self) -> bool:
        status = requests.get(f"{self.url}/v2/", timeout=2).status_code
        return status == (401 if self.auth else 200)

    def auth_config(self) -> dict[str, str] | None:
        """``auth_config`` for the docker SDK's push/pull, or None without auth."""
        if not self.auth:
            return None
        assert self.username is not None and self.password is not None
        return {"username": self.username, "password": self.password}

    def stop(self) -> None:
        if self._proc is None:
            return
        log.info("stopping registry on %s", self.host)
        stop_process_group(self._proc, timeout=5.0)
        self._proc = None

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
