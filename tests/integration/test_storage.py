"""Artifact storage: s3:// (real SeaweedFS) and local folders answer the same way."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from common.errors import InputError, ServiceUnavailable, StorageError
from common.storage import LocalStore, S3Settings, S3Store, open_store

pytestmark = pytest.mark.integration


@pytest.fixture(params=["s3", "local"])
def root(request, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A fresh folder URL in each kind of store, and the environment that reaches it."""
    if request.param == "local":
        return (tmp_path / "store").as_uri(), {}
    s3 = request.getfixturevalue("s3")
    return f"s3://{s3.bucket}/storage-tests/{uuid.uuid4().hex[:8]}", s3.env()


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "sub" / "model.pkl").write_bytes(b"\x80\x04binary")
    return folder


def test_upload_list_read_exists_download_copy(root, model_folder: Path, tmp_path: Path) -> None:
    url, env = root
    store = open_store(url, env)
    model = url + "/model"
    store.upload(model_folder, model)

    assert store.list(model) == ["MLmodel", "sub/model.pkl"]
    assert store.read(model + "/sub/model.pkl") == b"\x80\x04binary"
    assert store.exists(model) and store.exists(model + "/MLmodel")
    assert not store.exists(model + "/missing") and not store.exists(url + "/mod")  # no prefix matches

    fetched = store.download(model, tmp_path / "fetched")
    assert (fetched / "sub" / "model.pkl").read_bytes() == b"\x80\x04binary"
    single = store.download(model + "/MLmodel", tmp_path / "one" / "MLmodel")
    assert single.read_text() == "flavors: {}\n"

    store.copy(model, url + "/copy")
    assert store.list(url + "/copy") == ["MLmodel", "sub/model.pkl"]
    store.write(url + "/note.txt", b"hi")
    assert store.read(url + "/note.txt") == b"hi"


def test_reading_a_missing_object_names_it(root) -> None:
    url, env = root
    with pytest.raises(StorageError, match="missing.txt"):
        open_store(url, env).read(url + "/missing.txt")


def test_wrong_credentials_say_which_variables_to_check(s3) -> None:
    settings = S3Settings.from_environ({**s3.env(), "AWS_SECRET_ACCESS_KEY": "wrong-" + uuid.uuid4().hex})
    with pytest.raises(StorageError, match="S3 authentication failed.*AWS_SECRET_ACCESS_KEY"):
        S3Store(settings).check_bucket(f"s3://{s3.bucket}")


def test_missing_bucket(s3) -> None:
    with pytest.raises(StorageError, match="bucket does not exist"):
        S3Store(S3Settings.from_environ(s3.env())).check_bucket("s3://no-such-bucket-" + uuid.uuid4().hex[:8])


def test_unreachable_endpoint(s3) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = S3Settings.from_environ({**s3.env(), "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    with pytest.raises(ServiceUnavailable, match="does not answer.*MLFLOW_S3_ENDPOINT_URL"):
        S3Store(settings).exists(f"s3://{s3.bucket}/x")


def test_urls_pick_their_store() -> None:
    assert isinstance(open_store("/tmp/x", {}), LocalStore)
    assert isinstance(open_store("file:///tmp/x", {}), LocalStore)
    with pytest.raises(InputError, match="unsupported artifact URL scheme 'gs'"):
        open_store("gs://bucket/x", {})


def test_s3_settings_from_the_variables_mlflow_users_set() -> None:
    settings = S3Settings.from_environ(
        {"MLFLOW_S3_ENDPOINT_URL": "https://s3.example", "AWS_CA_BUNDLE": "/ca.pem", "AWS_REGION": "eu-west-1"}
    )
    assert (settings.endpoint_url, settings.verify, settings.region) == ("https://s3.example", "/ca.pem", "eu-west-1")
    assert S3Settings.from_environ({"MLFLOW_S3_IGNORE_TLS": "true", "AWS_CA_BUNDLE": "/ca.pem"}).verify is False
