"""The local service stack works as the other tests assume: real S3 with real
credentials, an MLflow server writing artifacts to it, a registry, Docker.

If one of these fails, every integration test fails with it; these tests say
which service is at fault.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest
import requests
from botocore.exceptions import ClientError

from runner.services.seaweedfs import SeaweedFS
from tests.fixtures.services import read_result, run_step

pytestmark = pytest.mark.integration


def test_s3_refuses_wrong_secret(s3: SeaweedFS) -> None:
    with pytest.raises(ClientError) as info:
        s3.client(secret_key="not-the-secret").list_objects_v2(Bucket=s3.bucket)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_s3_refuses_unknown_access_key(s3: SeaweedFS) -> None:
    with pytest.raises(ClientError) as info:
        s3.client(access_key="nobody", secret_key="nothing").list_buckets()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_s3_bucket_exists_and_round_trips(s3: SeaweedFS) -> None:
    client = s3.client()
    client.head_bucket(Bucket="mlflow-artifacts")
    key = f"test-services/{uuid.uuid4().hex}.txt"
    client.put_object(Bucket=s3.bucket, Key=key, Body=b"hello")
    try:
        assert client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b"hello"
    finally:
        client.delete_object(Bucket=s3.bucket, Key=key)


def test_s3_env_names_the_server(s3: SeaweedFS) -> None:
    assert s3.env() == {
        "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_two_seaweedfs_instances_run_at_once(tmp_path: Path, s3: SeaweedFS) -> None:
    with SeaweedFS(tmp_path / "a", buckets=("one",)) as a, SeaweedFS(tmp_path / "b", buckets=("two",)) as b:
        assert len({a.s3_port, b.s3_port, s3.s3_port}) == 3
        assert [x["Name"] for x in a.client().list_buckets()["Buckets"]] == ["one"]
        assert [x["Name"] for x in b.client().list_buckets()["Buckets"]] == ["two"]
        with pytest.raises(ClientError):
            a.client(access_key=b.access_key, secret_key=b.secret_key).list_buckets()


def test_mlflow_server_health(mlflow_server) -> None:
    assert requests.get(f"{mlflow_server.tracking_uri}/health", timeout=10).status_code == 200


def test_mlflow_experiment_artifacts_go_to_s3(mlflow_server, s3: SeaweedFS) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    experiment_id = client.create_experiment(f"test-services-{uuid.uuid4().hex[:8]}")
    location = client.get_experiment(experiment_id).artifact_location
    assert location.startswith("s3://mlflow-artifacts/")


def test_step_env_runs_a_step_against_the_services(step_env: dict[str, str], tmp_path: Path) -> None:
    # A tiny "step": log a run with an artifact via the env only, write its id as the result.
    script = tmp_path / "tiny_step.py"
    script.write_text(
        "import os, pathlib, mlflow\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_text('hello', 'hello.txt')\n"
        "folder = pathlib.Path(os.environ['FUSEML_RESULTS_DIR'])\n"
        "folder.mkdir(parents=True, exist_ok=True)\n"
        "(folder / os.environ['TASK_RESULT']).write_text(run.info.artifact_uri)\n"
    )
    assert read_result(step_env) is None
    done = run_step("tiny_step", step_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    artifact_uri = read_result(step_env)
    assert artifact_uri is not None and artifact_uri.startswith("s3://mlflow-artifacts/")


def test_registry_answers_v2(registry) -> None:
    response = requests.get(f"{registry.url}/v2/", timeout=10)
    assert response.status_code == 200
    assert registry.host.startswith("127.0.0.1:")


def test_registry_with_auth_refuses_anonymous(tmp_path: Path) -> None:
    from runner.services.registry import Registry

    with Registry(tmp_path / "registry", auth=True) as secured:
        assert requests.get(f"{secured.url}/v2/", timeout=10).status_code == 401
        assert requests.get(f"{secured.url}/v2/", auth=(secured.username, "wrong"), timeout=10).status_code == 401
        assert requests.get(f"{secured.url}/v2/", auth=(secured.username, secured.password), timeout=10).ok


@pytest.mark.docker
def test_docker_answers(docker_client) -> None:
    assert docker_client.ping()


@pytest.mark.docker
def test_base_image_has_python3_venv_pip_and_cas(docker_client, base_image: str) -> None:
    output = docker_client.containers.run(
        base_image,
        ["python3", "-c", "import sys, venv, ssl; import pip; print(sys.version_info[:2])"],
        remove=True,
    )
    assert output.decode().strip() == "(3, 11)"
    output = docker_client.containers.run(base_image, ["ls", "/etc/ssl/certs/ca-certificates.crt"], remove=True)
    assert output.strip()


@pytest.mark.docker
def test_image_push_to_registry_and_pull_back(docker_client, base_image: str, registry) -> None:
    reference = f"{registry.host}/test-services/base:{uuid.uuid4().hex[:8]}"
    image = docker_client.images.get(base_image)
    assert image.tag(reference)
    try:
        for event in docker_client.api.push(reference, stream=True, decode=True):
            assert "error" not in event, event
        catalog = requests.get(f"{registry.url}/v2/_catalog", timeout=10).json()
        assert "test-services/base" in catalog["repositories"]
        docker_client.images.remove(reference)
        pulled = docker_client.images.pull(reference)
        assert pulled.id == image.id
    finally:
        try:
            docker_client.images.remove(reference)
        except docker.errors.ImageNotFound:
            pass
