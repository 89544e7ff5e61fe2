"""Model locations without a server: URI forms, what KServe reads, provenance, the host cache and the staging store.

The forms that need the tracking server are resolved against a real one in
tests/integration/test_model_locations.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import InputError, StorageError
from common.model_uri import ModelLocation, kind_of, resolve, split_model_path
from common.storage import LocalStore, open_store
from common.tracking import without_credentials
from steps.predictor import model_cache, model_staging
from steps.predictor.model_placement import provenance

M_ID = "m-" + "0123456789abcdef" * 2


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("/srv/models/wine", "local"),
        ("file:///srv/models/wine", "file"),
        ("s3://bucket/1/models/m-1/artifacts", "s3"),
        ("mlflow-artifacts:/1/models/m-1/artifacts", "mlflow-artifacts"),
        ("runs:/abc/model", "runs"),
        ("models:/wine@champion", "models"),
    ],
)
def test_kinds(uri: str, kind: str) -> None:
    assert kind_of(uri) == kind


@pytest.mark.parametrize(
    ("uri", "split"),
    [
        ("models:/wine@champion/MLmodel", ("models:/wine@champion", "MLmodel")),
        ("models:/wine/3/sub/file.json", ("models:/wine/3", "sub/file.json")),
        ("models:/wine/latest", ("models:/wine/latest", "")),
        (f"models:/{M_ID}/MLmodel", (f"models:/{M_ID}", "MLmodel")),
        ("s3://b/k/MLmodel", ("s3://b/k/MLmodel", "")),
    ],
)
def test_the_model_part_of_a_models_uri(uri: str, split: tuple[str, str]) -> None:
    assert split_model_path(uri) == split


def test_concrete_locations_resolve_to_themselves_without_a_server() -> None:
    location = resolve("s3://b/m", {})
    assert location == ModelLocation("s3://b/m", "s3", "s3://b/m")
    assert location.kserve_readable and not location.through_mlflow
    assert not resolve("/srv/m", {}).kserve_readable


def test_registry_forms_need_the_tracking_uri() -> None:
    with pytest.raises(InputError, match="MLFLOW_TRACKING_URI is not set"):
        resolve("models:/wine@champion", {})


def test_what_kserve_reads_and_what_goes_through_mlflow() -> None:
    proxied = ModelLocation("models:/w/1", "models", "mlflow-artifacts:/1/models/m-1/artifacts", "w", "1", "r")
    assert proxied.through_mlflow and not proxied.kserve_readable
    direct = ModelLocation("models:/w/1", "models", "s3://b/1/models/m-1/artifacts", "w", "1", "r")
    assert direct.kserve_readable and not direct.through_mlflow
    served_by_mlflow_over_http = ModelLocation("runs:/r/model", "runs", "http://mlflow/api/2.0/mlflow-artifacts/x")
    assert served_by_mlflow_over_http.through_mlflow and not served_by_mlflow_over_http.kserve_readable
    plain_https = ModelLocation("https://models.example.com/wine", "https", "https://models.example.com/wine")
    assert plain_https.kserve_readable and not plain_https.through_mlflow


def test_provenance_names_what_the_uri_resolved_to() -> None:
    location = ModelLocation("models:/w@champion", "models", "mlflow-artifacts:/1/m", "w", "3", "run1")
    assert provenance(location, "models:/w@champion") == {
        "fuseml/model": "models:/w@champion",
        "fuseml/model-location": "mlflow-artifacts:/1/m",
        "fuseml/registered-model": "w",
        "fuseml/model-version": "3",
        "fuseml/run-id": "run1",
    }
    assert provenance(ModelLocation("s3://b/m", "s3", "s3://b/m"), "s3://b/m") == {"fuseml/model": "s3://b/m"}


def test_passwords_in_urls_are_masked() -> None:
    assert without_credentials("http://bob:hunter2@mlflow:5000/x") == "http://bob:****@mlflow:5000/x"
    assert "hunter2" not in without_credentials("failed: https://bob:hunter2@h/api (Connection refused)")


def test_unknown_schemes_list_the_forms_that_work() -> None:
    with pytest.raises(InputError, match=r"models:/<name>/<version>"):
        open_store("gs://bucket/model", {})


def test_the_cache_key_follows_location_and_mlmodel() -> None:
    key = model_cache.content_key("mlflow-artifacts:/1/m", b"model_uuid: a\n")
    assert key == model_cache.content_key("mlflow-artifacts:/1/m/", b"model_uuid: a\n")
    assert key != model_cache.content_key("mlflow-artifacts:/1/m", b"model_uuid: b\n")
    assert key != model_cache.content_key("mlflow-artifacts:/2/m", b"model_uuid: a\n")


def test_a_fetch_is_published_whole_and_reused(tmp_path: Path) -> None:
    source = tmp_path / "saved"
    (source / "sub").mkdir(parents=True)
    (source / "MLmodel").write_text("flavors: {}\n")
    (source / "model.skops").write_bytes(b"weights")
    (source / "sub" / "extra.json").write_text("{}")
    destination = tmp_path / "models" / "k1"
    assert model_cache.fetch(LocalStore(), str(source), destination) == destination
    assert (destination / "sub" / "extra.json").is_file()
    assert destination.stat().st_mode & 0o555 == 0o555, "readable by the docker target's non-root server"
    assert (destination / "sub" / "extra.json").stat().st_mode & 0o444 == 0o444
    assert (destination / "MLmodel").is_file() and (destination / "model.skops").is_file()
    inode = destination.stat().st_ino
    model_cache.fetch(LocalStore(), "/nowhere/at/all", destination)  # in the cache: the source is not read
    assert destination.stat().st_ino == inode
    assert sorted(p.name for p in destination.parent.iterdir()) == ["k1"], "no temporary folder left behind"


def test_a_fetch_without_mlmodel_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "not-a-model"
    source.mkdir()
    (source / "data.csv").write_text("1,2\n")
    with pytest.raises(StorageError, match="has no MLmodel file"):
        model_cache.fetch(LocalStore(), str(source), tmp_path / "models" / "k2")
    assert list((tmp_path / "models").iterdir()) == []


def test_the_staging_store_is_the_input_else_the_default_bucket_else_an_error() -> None:
    assert model_staging.model_store("s3://b/p", {}, "models:/w/1") == "s3://b/p"
    s3_env = {"MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:8333"}
    assert model_staging.model_store(None, s3_env, "models:/w/1") == model_staging.DEFAULT_MODEL_STORE
    with pytest.raises(InputError, match="set FUSEML_MODEL_STORE=s3://bucket/prefix"):
        model_staging.model_store(None, {}, "models:/w/1")
