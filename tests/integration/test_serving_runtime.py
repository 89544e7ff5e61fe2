"""The serving runtime as a real process (and as a container): what clients and KServe see.

One server per module serves the wine model (skops, MLflow 3.17's default) on
a free loopback port, started with the CLI the local target and the image use:
``python -m serving --model DIR --name wine --port P --grpc-port G --host 127.0.0.1``.
Tests send HTTP as clients do: the exact body from docs/contract.md, every payload
form, every kind of bad payload (a 4xx with a JSON message, never a 500), and
many requests at once. Every answer is validated against the Open Inference
Protocol's OpenAPI schema (tests/data/oip/). Nothing asserts on time.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.images import DOCKER
from tests.fixtures.models import WINE_FEATURES, load_wine_data, train_wine_model, wine_feature_rows
from tests.fixtures.serving import (
    ServerFailed,
    assert_oip,
    build_serving_image,
    free_port,
    kserve_grpc_predict,
    running,
    serve_argv,
    stop,
    triton_grpc_report,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

# What a real client sends (docs/contract.md): one unnamed 2-D FP32 tensor, no id, no parameters.
REAL_CLIENT_BODY = (
    '{"inputs":[{"name":"input-0","shape":[1,11],"datatype":"FP32",'
    '"data":[[7.0,0.27,0.36,20.7,0.045,45.0,170.0,1.001,3.0,0.45,8.8]]}]}'
)
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(wine_model_dir: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(serve_argv(str(wine_model_dir), port), url):
        yield url


@pytest.fixture(scope="module")
def infer_url(server: str) -> str:
    return f"{server}/v2/models/wine/infer"


def expected_predictions(rows: int) -> list[float]:
    model, _ = train_wine_model()
    return model.predict(load_wine_data()[WINE_FEATURES].head(rows)).tolist()


def post(url: str, body: Any, headers: Mapping[str, str] | None = JSON) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(url, data=data, headers=dict(headers or {}), timeout=30)


def assert_client_error(response: requests.Response, *words: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    payload = response.json()
    assert_oip(payload, "inference_error_response")
    message = json.dumps(payload)
    for word in words:
        assert word in message, message


# -- health and metadata --------------------------------------------------------------


def test_health_and_model_ready(server: str) -> None:
    assert requests.get(f"{server}/v2/health/live", timeout=5).json() == {"live": True}
    assert requests.get(f"{server}/v2/health/ready", timeout=5).json() == {"ready": True}
    assert requests.get(f"{server}/v2/models/wine/ready", timeout=5).json() == {"name": "wine", "ready": True}


def test_server_metadata(server: str) -> None:
    assert_oip(requests.get(f"{server}/v2", timeout=5).json(), "metadata_server_response")


def test_model_metadata(server: str) -> None:
    metadata = requests.get(f"{server}/v2/models/wine", timeout=5).json()
    assert_oip(metadata, "metadata_model_response")
    assert "versions" not in metadata, "the model has no versions: none listed, never null"
    assert metadata["name"] == "wine" and metadata["platform"] == "mlflow_sklearn"
    assert [i["name"] for i in metadata["inputs"]] == WINE_FEATURES
    assert metadata["outputs"] == [{"name": "output-0", "datatype": "FP64", "shape": [-1]}]


def test_unknown_model_is_404(server: str) -> None:
    response = post(f"{server}/v2/models/nope/infer", REAL_CLIENT_BODY)
    assert response.status_code == 404 and "nope" in response.json()["error"]
    assert_oip(response.json(), "inference_error_response")
    for path in ("nope", "nope/ready"):
        response = requests.get(f"{server}/v2/models/{path}", timeout=5)
        assert response.status_code == 404, path
        assert_oip(response.json(), "metadata_model_error_response")


@pytest.mark.parametrize("path", ["", "/ready", "/infer"])
def test_model_versions_are_404(server: str, path: str) -> None:
    url = f"{server}/v2/models/wine/versions/1{path}"
    response = post(url, REAL_CLIENT_BODY) if path == "/infer" else requests.get(url, timeout=5)
    assert response.status_code == 404
    assert_oip(response.json(), "metadata_model_error_response")
    assert "no version '1'" in response.json()["error"] and "/v2/models/wine" in response.json()["error"]


def test_unknown_model_logs_one_line(wine_model_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(serve_argv(str(wine_model_dir), port), url) as process:
        assert post(f"{url}/v2/models/nope/infer", REAL_CLIENT_BODY).status_code == 404
        assert requests.get(f"{url}/v2/models/nope", timeout=5).status_code == 404
        stop(process)
        output = process.stdout.read() if process.stdout else ""
    lines = [line for line in output.splitlines() if "nope" in line]
    assert len(lines) == 2 and all("unknown model: Model with name nope does not exist." in x for x in lines), output
    assert "Traceback" not in output


def test_listens_on_the_given_host_only(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    addresses = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for address in addresses:
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((address, port)) != 0, f"reachable on {address}"


# -- accepted payloads ------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [JSON, {}], ids=["json", "no-content-type"])
def test_real_client_body(infer_url: str, headers: Mapping[str, str]) -> None:
    response = post(infer_url, REAL_CLIENT_BODY, headers)
    assert response.status_code == 200, response.text
    assert_oip(response.json(), "inference_response")
    output = response.json()["outputs"][0]
    assert output["datatype"] == "FP64" and output["shape"] == [1]
    assert isinstance(output["data"][0], float)
    assert 3 < output["data"][0] < 9  # a wine quality score


def test_tensor_of_rows(infer_url: str) -> None:
    body = {"id": "r1", "inputs": [{"name": "x", "shape": [4, 11], "datatype": "FP64", "data": wine_feature_rows(4)}]}
    response = post(infer_url, body)
    assert response.status_code == 200, response.text
    assert_oip(response.json(), "inference_response")
    assert response.json()["id"] == "r1"
    assert response.json()["outputs"][0]["data"] == pytest.approx(expected_predictions(4))


@pytest.mark.parametrize("content_type", [None, "pd"])
def test_named_columns(infer_url: str, content_type: str | None) -> None:
    rows = wine_feature_rows(3)
    inputs = [
        {"name": name, "shape": [3], "datatype": "FP32", "data": [row[i] for row in rows]}
        for i, name in enumerate(WINE_FEATURES)
    ]
    body: dict[str, Any] = {"inputs": inputs[::-1]}
    if content_type:
        body["parameters"] = {"content_type": content_type}
    response = post(infer_url, body)
    assert response.status_code == 200, response.text
    assert_oip(response.json(), "inference_response")
    assert response.json()["outputs"][0]["data"] == pytest.approx(expected_predictions(3), rel=1e-5)


def test_kserve_e2e_example_body(infer_url: str) -> None:
    """KServe's test/e2e/data/mlflow_input_v2.json shape: per-column, shape [1], pd content type."""
    row = wine_feature_rows(1)[0]
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": n, "shape": [1], "datatype": "FP32", "data": [v]} for n, v in zip(WINE_FEATURES, row, strict=True)
        ],
    }
    response = post(infer_url, body)
    assert response.status_code == 200, response.text
    assert_oip(response.json(), "inference_response")


def test_kserve_path_answers_the_same(infer_url: str) -> None:
    """Requested outputs are KServe's business (not the fast lane's): same model, same answer."""
    body = json.loads(REAL_CLIENT_BODY)
    fast = post(infer_url, body).json()["outputs"][0]
    body["outputs"] = [{"name": "output-0"}]
    slow = post(infer_url, body)
    assert slow.status_code == 200, slow.text
    assert_oip(slow.json(), "inference_response")
    assert slow.json()["outputs"][0]["data"] == pytest.approx(fast["data"])
    assert slow.json()["outputs"][0]["datatype"] == fast["datatype"] == "FP64"
    body["inputs"][0]["shape"] = [1, 12]
    assert_client_error(post(infer_url, body), "12")


def test_concurrent_requests(infer_url: str) -> None:
    rows = wine_feature_rows(8)
    expected = expected_predictions(8)

    def one(i: int) -> tuple[int, int, float]:
        row = rows[i % len(rows)]
        body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP64", "data": [row]}]}
        with requests.Session() as session:
            response = session.post(infer_url, data=json.dumps(body), headers=JSON, timeout=30)
        return i, response.status_code, response.json()["outputs"][0]["data"][0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(200)))
    assert {status for _, status, _ in results} == {200}
    for i, _, value in results:
        assert value == pytest.approx(expected[i % len(rows)])


# -- rejected payloads: 4xx with a JSON message -----------------------------------------------


def tensor_body(rows: Any, shape: list[int], datatype: str = "FP32") -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": rows}]}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (tensor_body([[1.0] * 10], [1, 10]), ["takes 11"]),
        (tensor_body([[1.0] * 11], [2, 11]), ["22 values"]),
        (tensor_body([[[1.0] * 11]], [1, 1, 11]), ["2-D"]),
        (tensor_body([["x"] * 11], [1, 11]), ["strings"]),
        (tensor_body([[1.5] * 11], [1, 11], "INT64"), ["non-integer"]),
        (tensor_body([[1.0] * 11], [1, 11], "FP16"), ["FP16"]),
        (tensor_body([[1.0] * 11], [1, 11], "TEXT"), ["TEXT"]),
        ({"inputs": [{"name": "acidity", "shape": [1], "datatype": "FP32", "data": [1.0]}]}, ["acidity", "pH"]),
        ({"inputs": [{"name": "pH", "shape": [1], "datatype": "FP32", "data": [3.0]}]}, ["missing", "alcohol"]),
        ({"inputs": []}, ["no inputs"]),
        ({"inputs": [{"name": "x", "shape": [1, 11], "datatype": "FP32"}]}, []),  # no data
        ({"instances": [[1.0] * 11]}, []),  # V1 body on the V2 route
        ('{"inputs": [', []),  # not JSON
    ],
    ids=[
        "width",
        "shape-vs-data",
        "3d",
        "strings",
        "fractions-as-int",
        "fp16-json",
        "unknown-datatype",
        "unknown-name",
        "missing-column",
        "no-inputs",
        "no-data",
        "v1-body",
        "broken-json",
    ],
)
def test_bad_payloads_are_client_errors(infer_url: str, body: Any, words: list[str]) -> None:
    assert_client_error(post(infer_url, body), *words)


def test_server_still_answers_after_bad_payloads(infer_url: str) -> None:
    for _ in range(3):
        post(infer_url, tensor_body([["x"] * 11], [1, 11]))
    assert post(infer_url, REAL_CLIENT_BODY).status_code == 200


# -- model sources and start-up failures --------------------------------------------------------


def test_serves_a_pickle_model_from_s3(s3: Any, wine_model_pickle_dir: Path) -> None:
    prefix = f"serving-test/{uuid.uuid4().hex}/model"
    client = s3.client()
    for path in wine_model_pickle_dir.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), s3.bucket, f"{prefix}/{path.relative_to(wine_model_pickle_dir)}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(serve_argv(f"s3://{s3.bucket}/{prefix}", port), url, env=s3.env()):
        response = post(f"{url}/v2/models/wine/infer", REAL_CLIENT_BODY)
        assert response.status_code == 200, response.text


def test_missing_model_exits_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        serve_argv(str(tmp_path / "nothing"), free_port()), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr


# -- the serving image ---------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_serving_image_runs_the_runtime(base_image: str, wine_model_dir: Path, tmp_path: Path) -> None:
    tag = f"fuseml-local/serving-test:{uuid.uuid4().hex[:8]}"
    build_serving_image(base_image, tag)
    # The container runs as a non-root user: give it a model folder it may read.
    models = tmp_path / "models"
    shutil.copytree(wine_model_dir, models)
    for path in [tmp_path, *models.rglob("*"), models]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    port, grpc_port = free_port(), free_port()
    name = f"fuseml-serving-test-{uuid.uuid4().hex[:8]}"
    run = [
        DOCKER, "run", "-d", "--rm", "--name", name, "--network", "host",
        "-v", f"{models}:/mnt/models:ro", tag,
        "--model", "/mnt/models", "--name", "wine", "--port", str(port), "--grpc-port", str(grpc_port),
        "--host", "127.0.0.1",
    ]  # fmt: skip
    try:
        started = subprocess.run(run, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        try:
            wait_ready(f"http://127.0.0.1:{port}")
        except ServerFailed as e:
            logs = subprocess.run([DOCKER, "logs", name], capture_output=True, text=True, timeout=30)
            raise ServerFailed(f"{e}\ncontainer logs:\n{logs.stdout}{logs.stderr}") from e
        user = subprocess.run([DOCKER, "exec", name, "id", "-u"], capture_output=True, text=True, timeout=30)
        assert user.stdout.strip() not in ("", "0"), "the runtime must not run as root"
        response = post(f"http://127.0.0.1:{port}/v2/models/wine/infer", REAL_CLIENT_BODY)
        assert response.status_code == 200, response.text
        assert_oip(response.json(), "inference_response")
        assert isinstance(response.json()["outputs"][0]["data"][0], float)
        # gRPC from the image, with KServe's client and Triton's: the model's own predictions.
        rows, expected = wine_feature_rows(3), expected_predictions(3)
        assert kserve_grpc_predict(f"127.0.0.1:{grpc_port}", "wine", rows) == pytest.approx(expected, rel=1e-5)
        plan = {"output": "output-0", "tensors": {"FP64": rows}, "refused": {}, "good": ["FP64", rows]}
        report = triton_grpc_report(f"127.0.0.1:{grpc_port}", "wine", plan)
        assert report["metadata"]["platform"] == "mlflow_sklearn"
        assert report["answers"]["FP64"]["output"] == pytest.approx(expected)
    finally:
        subprocess.run([DOCKER, "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run([DOCKER, "rmi", "-f", tag], capture_output=True, timeout=120)


# -- several workers -----------------------------------------------------------------------------


def test_two_workers_serve_rest_and_grpc_and_stop_together(wine_model_dir: Path) -> None:
    port, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [*serve_argv(str(wine_model_dir), port, grpc_port=grpc_port), "--workers", "2"]
    with running(argv, url) as process:
        workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(workers) == 2, "one supervisor, two workers"
        expected = expected_predictions(4)
        body = {"inputs": [{"name": "x", "shape": [4, 11], "datatype": "FP64", "data": wine_feature_rows(4)}]}
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: post(f"{url}/v2/models/wine/infer", body), range(40)))
        assert {a.status_code for a in answers} == {200}
        for answer in answers:
            assert_oip(answer.json(), "inference_response")
            assert answer.json()["outputs"][0]["data"] == pytest.approx(expected)
        for _ in range(4):
            got = kserve_grpc_predict(f"127.0.0.1:{grpc_port}", "wine", wine_feature_rows(4))
            assert got == pytest.approx(expected, rel=1e-5)
        stop(process)
        assert process.returncode == 0, process.stdout.read() if process.stdout else ""
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), pid
