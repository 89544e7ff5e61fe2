"""The runtime as real Open Inference Protocol clients see it, none of them ours: both transports.

One runtime per module serves the wine model with REST and gRPC on free
loopback ports. Triton's ``tritonclient.http`` (JSON and binary tensors) and
``tritonclient.grpc``, KServe's ``InferenceRESTClient`` and
``InferenceGRPCClient``, and ``curl`` each check health, metadata (where the
client can ask for it), an inference whose answer equals the model's own
prediction, one bad request and one unknown model. Every REST document a
client gets back is validated against the OIP's OpenAPI schema
(tests/data/oip/). gRPC errors must carry the same message REST sends.
``tritonclient.grpc`` runs in a process of its own (``triton_grpc_client``):
its copy of the OIP proto cannot be loaded beside KServe's.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton_http
from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig
from kserve.protocol.infer_type import InferInput, InferRequest
from tritonclient.utils import InferenceServerException

from tests.fixtures.models import WINE_FEATURES, train_wine_model, wine_feature_rows
from tests.fixtures.serving import assert_oip, free_port, running, serve_argv, triton_grpc_report

pytestmark = pytest.mark.integration

NAME = "wine"
OUTPUT = "output-0"
CURL = shutil.which("curl") or "/usr/bin/curl"


@dataclass(frozen=True)
class Runtime:
    rest: str  # host:port
    grpc: str  # host:port

    @property
    def url(self) -> str:
        return f"http://{self.rest}"


@pytest.fixture(scope="module")
def runtime(wine_model_dir: Path) -> Iterator[Runtime]:
    port, grpc_port = free_port(), free_port()
    served = Runtime(f"127.0.0.1:{port}", f"127.0.0.1:{grpc_port}")
    with running(serve_argv(str(wine_model_dir), port, NAME, grpc_port=grpc_port), served.url):
        yield served


def rows(dtype: Any = np.float32, n: int = 3) -> np.ndarray:
    return np.array(wine_feature_rows(n), dtype=dtype)


def own_prediction(values: np.ndarray) -> np.ndarray:
    """What the model itself predicts for ``values`` (as numbers, columns by name)."""
    model, _ = train_wine_model()
    return model.predict(pd.DataFrame(values.astype(np.float64), columns=WINE_FEATURES))


def rest_message(runtime: Runtime, body: dict[str, Any], model: str = NAME) -> tuple[int, str]:
    """REST's status and error message for ``body``: what gRPC must say too."""
    response = httpx.post(f"{runtime.url}/v2/models/{model}/infer", json=body, timeout=30)
    assert_oip(response.json(), "inference_error_response")
    return response.status_code, response.json()["error"]


TOO_NARROW = np.ones((1, 10), dtype=np.float32)  # the model takes 11 columns
TOO_NARROW_BODY = {"inputs": [{"name": "input-0", "shape": [1, 10], "datatype": "FP32", "data": [[1.0] * 10]}]}


def with_binary_data(result: triton_http.InferResult) -> dict[str, Any]:
    """The response's JSON, with what the binary extension moved out of it put back as ``data``.

    The extension answers ``parameters.binary_data_size`` instead of ``data``
    and sends the bytes after the JSON; put back, the document must be a plain
    OIP inference response.
    """
    document = json.loads(json.dumps(result.get_response()))
    for output in document["outputs"]:
        if "data" not in output:
            array = result.as_numpy(output["name"])
            assert output["parameters"]["binary_data_size"] == array.nbytes
            output["data"] = array.ravel().tolist()
    return document


# -- Triton's HTTP client ----------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_http(runtime: Runtime, binary: bool) -> None:
    client = triton_http.InferenceServerClient(runtime.rest)
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(NAME)
        assert_oip(client.get_server_metadata(), "metadata_server_response")
        metadata = client.get_model_metadata(NAME)
        assert_oip(metadata, "metadata_model_response")
        assert metadata["platform"] == "mlflow_sklearn" and [i["name"] for i in metadata["inputs"]] == WINE_FEATURES

        values = rows()
        tensor = triton_http.InferInput("input-0", list(values.shape), "FP32")
        tensor.set_data_from_numpy(values, binary_data=binary)
        wanted = [triton_http.InferRequestedOutput(OUTPUT, binary_data=binary)]
        result = client.infer(NAME, [tensor], request_id="t-http", outputs=wanted)
        assert_oip(with_binary_data(result), "inference_response")
        assert result.get_response()["id"] == "t-http"
        assert result.as_numpy(OUTPUT) == pytest.approx(own_prediction(values))

        bad = triton_http.InferInput("input-0", [1, 10], "FP32")
        bad.set_data_from_numpy(TOO_NARROW, binary_data=binary)
        with pytest.raises(InferenceServerException) as refused:
            client.infer(NAME, [bad])
        status, message = rest_message(runtime, TOO_NARROW_BODY)
        assert (refused.value.status(), refused.value.message()) == (str(status), message) == ("400", message)
        with pytest.raises(InferenceServerException) as unknown:
            client.infer("nope", [tensor])
        assert unknown.value.status() == "404" and "nope" in unknown.value.message()
    finally:
        client.close()


# -- Triton's gRPC client (in a process of its own: its proto and KServe's clash in one process) -------


@pytest.fixture(scope="module")
def triton_grpc(runtime: Runtime) -> dict[str, Any]:
    """What ``tritonclient.grpc`` got from the runtime (tests/integration/triton_grpc_client.py)."""
    values = rows(np.float64)
    plan = {
        "output": OUTPUT,
        "tensors": {datatype: typed(values, datatype).tolist() for datatype in GRPC_DATATYPES},
        "refused": {"too-narrow": ["FP32", TOO_NARROW.tolist()], "bytes": ["BYTES", [["x"] * 11]]},
        "good": ["FP32", rows(n=1).tolist()],
    }
    return triton_grpc_report(runtime.grpc, NAME, plan)


GRPC_DATATYPES = ("FP32", "FP64", "INT32", "INT64", "BOOL")


def typed(values: np.ndarray, datatype: str) -> np.ndarray:
    """``values`` as a tensor of ``datatype``: integers rounded, booleans above each column's median."""
    if datatype == "BOOL":
        return values > np.median(values, axis=0)
    dtype = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}[datatype]
    return values.astype(dtype) if datatype.startswith("FP") else values.round().astype(dtype)


def test_tritonclient_grpc_health_and_metadata(triton_grpc: dict[str, Any]) -> None:
    assert (triton_grpc["live"], triton_grpc["ready"], triton_grpc["model_ready"]) == (True, True, True)
    assert triton_grpc["server"]["name"] == "kserve" and triton_grpc["server"]["version"]
    metadata = triton_grpc["metadata"]
    assert (metadata["name"], metadata["platform"]) == (NAME, "mlflow_sklearn")
    assert [i["name"] for i in metadata["inputs"]] == WINE_FEATURES
    assert metadata["outputs"] == [{"name": OUTPUT, "datatype": "FP64", "shape": ["-1"]}]  # int64 as JSON text


@pytest.mark.parametrize("datatype", GRPC_DATATYPES)
def test_tritonclient_grpc_infers_each_datatype(triton_grpc: dict[str, Any], datatype: str) -> None:
    answer = triton_grpc["answers"][datatype]
    assert answer["id"] == f"t-{datatype}"
    assert answer["output"] == pytest.approx(own_prediction(typed(rows(np.float64), datatype)).tolist())


def test_tritonclient_grpc_errors_match_rest(runtime: Runtime, triton_grpc: dict[str, Any]) -> None:
    refusals = triton_grpc["refusals"]
    _, narrow = rest_message(runtime, TOO_NARROW_BODY)
    assert refusals["too-narrow"] == ["StatusCode.INVALID_ARGUMENT", narrow]
    text_body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "BYTES", "data": [["x"] * 11]}]}
    assert refusals["bytes"] == ["StatusCode.INVALID_ARGUMENT", rest_message(runtime, text_body)[1]], (
        "a BYTES tensor reaches the same checks over gRPC as over REST"
    )
    assert refusals["unknown-model"] == ["StatusCode.NOT_FOUND", rest_message(runtime, TOO_NARROW_BODY, "nope")[1]]
    assert refusals["versioned"][0] == "StatusCode.NOT_FOUND" and "no version '1'" in refusals["versioned"][1]


# -- KServe's clients --------------------------------------------------------------------------


def kserve_input(values: np.ndarray, binary: bool) -> InferInput:
    tensor = InferInput("input-0", list(values.shape), "FP32")
    tensor.set_data_from_numpy(values, binary_data=binary)
    return tensor


@pytest.mark.parametrize("binary", [False, True], ids=["contents", "raw"])
def test_kserve_grpc_client(runtime: Runtime, binary: bool) -> None:
    async def session() -> None:
        client = InferenceGRPCClient(runtime.grpc)
        try:
            assert await client.is_server_live() and await client.is_server_ready()
            assert await client.is_model_ready(NAME)
            values = rows()
            answer = await client.infer(InferRequest(NAME, [kserve_input(values, binary)], request_id="k-grpc"))
            assert answer.id == "k-grpc"
            assert answer.outputs[0].as_numpy() == pytest.approx(own_prediction(values))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await client.infer(InferRequest(NAME, [kserve_input(TOO_NARROW, binary)]))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.value.details() == rest_message(runtime, TOO_NARROW_BODY)[1]
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await client.infer(InferRequest("nope", [kserve_input(values, binary)]))
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in (unknown.value.details() or "")
        finally:
            await client.close()

    asyncio.run(session())


def test_kserve_rest_client(runtime: Runtime) -> None:
    async def session() -> None:
        client = InferenceRESTClient(RESTConfig(protocol="v2"))
        try:
            assert await client.is_server_live(runtime.url) and await client.is_server_ready(runtime.url)
            assert await client.is_model_ready(runtime.url, NAME)
            values = rows()
            answer = await client.infer(
                runtime.url, InferRequest(NAME, [kserve_input(values, False)], request_id="k-rest"), model_name=NAME
            )
            assert answer.id == "k-rest"
            assert answer.outputs[0].as_numpy() == pytest.approx(own_prediction(values))
            with pytest.raises(httpx.HTTPStatusError) as refused:
                await client.infer(runtime.url, TOO_NARROW_BODY, model_name=NAME)
            assert refused.value.response.status_code == 400
            assert_oip(refused.value.response.json(), "inference_error_response")
            with pytest.raises(httpx.HTTPStatusError) as unknown:
                await client.infer(runtime.url, TOO_NARROW_BODY, model_name="nope")
            assert unknown.value.response.status_code == 404
        finally:
            await client.close()

    asyncio.run(session())


# -- curl --------------------------------------------------------------------------------------


def curl(url: str, body: Any = None) -> tuple[int, Any]:
    """``curl -s`` (``-d`` with no content type, as people type it); the status and the parsed body."""
    command = [CURL, "-s", "-w", "\n%{http_code}", url]
    if body is not None:
        command += ["-d", json.dumps(body)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    text, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(text) if text else None


def test_curl(runtime: Runtime) -> None:
    assert curl(f"{runtime.url}/v2/health/live") == (200, {"live": True})
    assert curl(f"{runtime.url}/v2/health/ready") == (200, {"ready": True})
    assert curl(f"{runtime.url}/v2/models/{NAME}/ready") == (200, {"name": NAME, "ready": True})
    status, server = curl(f"{runtime.url}/v2")
    assert status == 200
    assert_oip(server, "metadata_server_response")
    status, metadata = curl(f"{runtime.url}/v2/models/{NAME}")
    assert status == 200
    assert_oip(metadata, "metadata_model_response")
    values = rows(np.float64)
    body = {"id": "c1", "inputs": [{"name": "input-0", "shape": [3, 11], "datatype": "FP64", "data": values.tolist()}]}
    status, answer = curl(f"{runtime.url}/v2/models/{NAME}/infer", body)
    assert status == 200
    assert_oip(answer, "inference_response")
    assert answer["id"] == "c1" and answer["outputs"][0]["data"] == pytest.approx(own_prediction(values))
    status, error = curl(f"{runtime.url}/v2/models/{NAME}/infer", TOO_NARROW_BODY)
    assert status == 400 and "takes 11" in error["error"]
    assert_oip(error, "inference_error_response")
    for path in ("nope", "nope/ready", "nope/infer", f"{NAME}/versions/1", f"{NAME}/versions/1/infer"):
        status, error = curl(f"{runtime.url}/v2/models/{path}", body if path.endswith("infer") else None)
        assert status == 404, (path, error)
        assert_oip(error, "metadata_model_error_response")


def test_rest_and_grpc_listen_on_the_given_host_only(runtime: Runtime) -> None:
    ports = [int(runtime.rest.rsplit(":", 1)[1]), int(runtime.grpc.rsplit(":", 1)[1])]
    addresses = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for address in addresses:
        for port in ports:
            with socket.socket() as s:
                s.settimeout(1)
                assert s.connect_ex((address, port)) != 0, f"reachable on {address}:{port}"
