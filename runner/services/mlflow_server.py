"""A real ``mlflow server`` (SQLite backend) for tests and local runs, in either artifact mode.

Steps talk to MLflow over REST in production, so tests do too: a tracking server
process with a SQLite store in a folder the caller owns. Two artifact modes,
because users have both:

- ``proxied`` (MLflow's own default since 2.0): runs store ``mlflow-artifacts:/``
  URIs and clients send artifacts through the tracking server, which writes them
  to ``--artifacts-destination`` (an S3 bucket or a folder). Clients need no S3
  credentials at all.
- ``direct`` (``--no-serve-artifacts``, as FuseML core configured it): runs store
  ``s3://`` URIs and clients write to S3 themselves with the S3 variables.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import requests

from common.ports import free_port
from common.processes import stop_process_group
from runner.services import MLFLOW_ARTIFACT_MODES, ServiceStartError, start_process, wait_until

log = logging.getLogger(__name__)

DEFAULT_ARTIFACT_ROOT = "s3://mlflow-artifacts"
# A ceiling, not an expectation: on a loaded 2-core machine the server takes over a minute to import and migrate.
START_TIMEOUT = 180.0


def mlflow_executable() -> str:
    """The ``mlflow`` script installed next to the running Python."""
    candidate = Path(sys.executable).parent / "mlflow"
    if not candidate.exists():
        raise ServiceStartError(f"{candidate} not found: install the trainer extra (mlflow) in this venv")
    return str(candidate)


class MLflowServer:
    """``mlflow server`` on 127.0.0.1 with its store in ``data_dir``.

    ``s3_env`` (see ``SeaweedFS.env()``) is given to the server. In ``direct``
    mode it is repeated in ``env()`` so clients write artifacts to the same S3;
    in ``proxied`` mode ``env()`` is the tracking URI alone, as a user of such a
    server has it. ``artifact_root`` is the S3 URL or local folder artifacts end
    up in, in both modes.
    """

    def __init__(
        self,
        data_dir: Path,
        s3_env: Mapping[str, str],
        artifact_root: str = DEFAULT_ARTIFACT_ROOT,
        port: int | None = None,
        artifacts: str = "direct",
        admin_password: str | None = None,
    ) -> None:
        if artifacts not in MLFLOW_ARTIFACT_MODES:
            raise ValueError(f"artifacts={artifacts!r}: use one of {', '.join(MLFLOW_ARTIFACT_MODES)}")
        self.artifacts = artifacts
        # With a password the server runs MLflow's basic-auth app (user ``admin``), as a guarded server would.
        self.admin_password = admin_password
        self.data_dir = Path(data_dir)
        self.s3_env = dict(s3_env)
        self.artifact_root = artifact_root
        self.port = port or free_port(with_grpc=False)
        self.log_path = self.data_dir / "mlflow-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """MLFLOW_TRACKING_URI, plus the S3 variables when clients write artifacts themselves."""
        if self.artifacts == "proxied":
            return {"MLFLOW_TRACKING_URI": self.tracking_uri}
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, **self.s3_env}

    def _artifact_args(self) -> list[str]:
        if self.artifacts == "proxied":
            return ["--artifacts-destination", self.artifact_root, "--serve-artifacts"]
        return ["--default-artifact-root", self.artifact_root, "--no-serve-artifacts"]

    def _argv(self) -> list[str]:
        return [
            mlflow_executable(),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.data_dir / 'mlflow.db'}",
            *self._artifact_args(),
            *(["--app-name", "basic-auth"] if self.admin_password else []),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]

    def start(self) -> MLflowServer:
        """Start the server and wait until GET /health answers 200."""
        if self._proc is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.s3_env}
        env.pop("MLFLOW_TRACKING_URI", None)
        if self.admin_password:
            env["MLFLOW_AUTH_ADMIN_PASSWORD"] = self.admin_password
            env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_hex(16))  # the auth app's CSRF key
        log.info(
            "starting MLflow server on %s (store %s, %s artifacts in %s)",
            self.tracking_uri,
            self.data_dir,
            self.artifacts,
            self.artifact_root,
        )
        self._proc = start_process(self._argv(), self.log_path, env=env, cwd=self.data_dir)
        try:
            wait_until(
                self._healthy,
                what=f"MLflow server at {self.tracking_uri}",
                timeout=START_TIMEOUT,
                proc=self._proc,
                log_path=self.log_path,
                interval=0.5,
            )
        except BaseException:
            self.stop()
            raise
        log.info("MLflow server ready at %s", self.tracking_uri)
        return self

    def _healthy(self) -> bool:
        return requests.get(f"{self.tracking_uri}/health", timeout=2).status_code == 200

    def stop(self) -> None:
        """Kill the server's process group (uvicorn and its workers)."""
        if self._proc is None:
            return
        log.info("stopping MLflow server on %s", self.tracking_uri)
        stop_process_group(self._proc, timeout=5.0)
        self._proc = None

    def __enter__(self) -> MLflowServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
