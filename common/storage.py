"""Artifact storage behind one small interface: ``s3://`` buckets, local folders, MLflow URIs.

Steps see models and artifacts as URLs. ``open_store(url)`` gives the store
that serves it; every store answers the same six questions (exists, read,
list, download, upload, copy) with the same errors, so a step never cares
where an artifact lives. S3 goes through boto3 and honours the variables
MLflow users already set: ``MLFLOW_S3_ENDPOINT_URL``, ``AWS_*``,
``AWS_CA_BUNDLE`` and ``MLFLOW_S3_IGNORE_TLS``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from common import names
from common.artifact_store import ArtifactStore, join_url
from common.errors import InputError, ServiceUnavailable, StorageError
from common.model_uri import MLFLOW_SCHEMES

log = logging.getLogger(__name__)


class LocalStore(ArtifactStore):
    """Plain paths and ``file://`` URLs."""

    @staticmethod
    def path(url: str) -> Path:
        parsed = urlparse(url)
        if parsed.scheme == "file":
            return Path(unquote(parsed.path))
        return Path(url)

    def exists(self, url: str) -> bool:
        path = self.path(url)
        return path.is_file() or (path.is_dir() and any(p.is_file() for p in path.rglob("*")))

    def read(self, url: str) -> bytes:
        path = self.path(url)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StorageError(f"{url}: no such file") from None
        except OSError as e:
            raise StorageError(f"{url}: cannot read ({e.strerror})") from e

    def list(self, url: str) -> list[str]:
        root = self.path(url)
        if not root.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def download(self, url: str, destination: Path) -> Path:
        source = self.path(url)
        if source.is_dir():
            shutil.copytree(source, destination, dirs_exist_ok=True)
        elif source.is_file():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
        else:
            raise StorageError(f"{url}: no such file or folder")
        return destination

    def upload(self, source: Path, url: str) -> None:
        self.download(str(source), self.path(url))

    def write(self, url: str, data: bytes) -> None:
        path = self.path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@dataclass(frozen=True)
class S3Settings:
    """How to reach S3, from the variables MLflow and boto3 users set."""

    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    region: str | None = None
    verify: bool | str = True

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> S3Settings:
        ignore_tls = environ.get(names.MLFLOW_S3_IGNORE_TLS, "").lower() in ("true", "1")
        verify: bool | str = False if ignore_tls else environ.get(names.AWS_CA_BUNDLE) or True
        return cls(
            endpoint_url=environ.get(names.MLFLOW_S3_ENDPOINT_URL) or None,
            access_key=environ.get(names.AWS_ACCESS_KEY_ID) or None,
            secret_key=environ.get(names.AWS_SECRET_ACCESS_KEY) or None,
            session_token=environ.get(names.AWS_SESSION_TOKEN) or None,
            region=environ.get(names.AWS_DEFAULT_REGION) or environ.get(names.AWS_REGION) or None,
            verify=verify,
        )


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key/path`` -> (``bucket``, ``key/path``)."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InputError(f"{url!r} is not an s3://bucket/path URL")
    return parsed.netloc, parsed.path.lstrip("/")


class S3Store(ArtifactStore):
    """``s3://bucket/key`` URLs through boto3, errors translated once, here."""

    def __init__(self, settings: S3Settings) -> None:
        import boto3
        from botocore.config import Config

        self.settings = settings
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            aws_session_token=settings.session_token,
            region_name=settings.region or "us-east-1",
            verify=settings.verify,
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def exists(self, url: str) -> bool:
        bucket, key = split_s3_url(url)
        if key and not key.endswith("/") and self._head(bucket, key):
            return True
        return bool(self._keys(bucket, key.rstrip("/") + "/" if key else "", limit=1))

    def read(self, url: str) -> bytes:
        bucket, key = split_s3_url(url)
        with self._errors(url):
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def list(self, url: str) -> list[str]:
        bucket, key = split_s3_url(url)
        prefix = key.rstrip("/") + "/" if key else ""
        return sorted(k[len(prefix) :] for k in self._keys(bucket, prefix))

    def download(self, url: str, destination: Path) -> Path:
        bucket, key = split_s3_url(url)
        keys = self.list(url)
        if not keys:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with self._errors(url):
                self.client.download_file(bucket, key, str(destination))
            return destination
        for relative in keys:
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._errors(join_url(url, relative)):
                self.client.download_file(bucket, join_url(key, relative), str(target))
        return destination

    def upload(self, source: Path, url: str) -> None:
        bucket, key = split_s3_url(url)
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        for path in files:
            relative = "" if path == source else str(path.relative_to(source))
            with self._errors(url):
                self.client.upload_file(str(path), bucket, join_url(key, relative))

    def write(self, url: str, data: bytes) -> None:
        bucket, key = split_s3_url(url)
        with self._errors(url):
            self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def check_bucket(self, url: str) -> None:
        """Fail early, with the cause, when the bucket cannot be used with these credentials."""
        bucket, _ = split_s3_url(url)
        with self._errors(f"s3://{bucket}"):
            self.client.head_bucket(Bucket=bucket)

    def _head(self, bucket: str, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            with self._errors(f"s3://{bucket}/{key}", missing_ok=True):
                self.client.head_object(Bucket=bucket, Key=key)
                return True
        except _Missing:
            return False
        except ClientError:  # pragma: no cover - translated by _errors
            raise
        return False

    def _keys(self, bucket: str, prefix: str, limit: int | None = None) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(f"s3://{bucket}/{prefix}"):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
                if limit and len(keys) >= limit:
                    break
        return keys

    def _errors(self, url: str, missing_ok: bool = False) -> _S3ErrorTranslator:
        return _S3ErrorTranslator(url, self.settings, missing_ok)


class _Missing(Exception):
    pass


class _S3ErrorTranslator:
    """Turns boto errors into StorageError messages that say what to set."""

    def __init__(self, url: str, settings: S3Settings, missing_ok: bool) -> None:
        self.url = url
        self.settings = settings
        self.missing_ok = missing_ok

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:  # type: ignore[no-untyped-def]
        if error is None:
            return False
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        endpoint = self.settings.endpoint_url or "AWS S3"
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            bucket_only = not urlparse(self.url).path.strip("/")
            if code in ("404", "NoSuchKey", "NotFound") and self.missing_ok:
                raise _Missing() from error
            if code in ("404", "NoSuchKey", "NotFound") and not bucket_only:
                raise StorageError(f"{self.url}: no such object") from error
            if code in ("NoSuchBucket", "404", "NotFound"):
                raise StorageError(f"{self.url}: bucket does not exist at {endpoint}") from error
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
                raise StorageError(
                    f"S3 authentication failed for {self.url} at {endpoint} ({code})",
                    f"check {names.AWS_ACCESS_KEY_ID} and {names.AWS_SECRET_ACCESS_KEY}",
                ) from error
            raise StorageError(f"S3 error for {self.url} at {endpoint}: {code} {error}") from error
        if isinstance(error, NoCredentialsError):
            raise StorageError(
                f"no S3 credentials for {self.url}",
                f"set {names.AWS_ACCESS_KEY_ID} and {names.AWS_SECRET_ACCESS_KEY}",
            ) from error
        if isinstance(error, EndpointConnectionError):
            raise ServiceUnavailable(
                f"S3 endpoint {endpoint} does not answer ({self.url})",
                f"check {names.MLFLOW_S3_ENDPOINT_URL}",
            ) from error
        if isinstance(error, BotoCoreError):
            raise StorageError(f"S3 error for {self.url} at {endpoint}: {error}") from error
        return False


def open_store(url: str, environ: Mapping[str, str]) -> ArtifactStore:
    """The store for ``url``: S3, local paths and ``file://``, or MLflow's URIs through the tracking server."""
    scheme = urlparse(url).scheme
    if scheme == "s3":
        return S3Store(S3Settings.from_environ(environ))
    if scheme in ("", "file") or (len(scheme) == 1 and url[1:3] in (":/", ":\\")):
        return LocalStore()
    if scheme in MLFLOW_SCHEMES:
        from common.mlflow_store import MlflowStore

        return MlflowStore(environ, concrete=open_store)
    raise InputError(
        f"{url!r}: unsupported artifact URL scheme {scheme!r}",
        "use s3://, file://, a local path, mlflow-artifacts:/, runs:/<run_id>/<path> or models:/<name>/<version>",
    )
