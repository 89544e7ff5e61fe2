"""``serving.oip_rest``: KServe's REST answers made to fit the Open Inference Protocol's schema, as ASGI.

The wrapped app stands in for KServe's FastAPI app and answers exactly what
KServe 0.21 answers (the null fields, FastAPI's 422, a binary-extension body);
the documents that come out must validate against the vendored OIP spec.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from serving.model import MlflowModel
from serving.oip_rest import OipRest, without_nulls
from steps.predictor.state import StateStore
from tests.fixtures.serving import assert_oip

KSERVE_INFER_ANSWER = {
    "model_name": "wine",
    "model_version": None,
    "id": "a",
    "parameters": None,
    "outputs": [{"name": "output-0", "shape": [1], "datatype": "FP64", "parameters": None, "data": [5.5]}],
}
FASTAPI_422 = {
    "detail": [
        {"type": "missing", "loc": ["body", "InferenceRequest", "inputs"], "msg": "Field required"},
        {"type": "bytes_type", "loc": ["body", "bytes"], "msg": "Input should be a valid bytes"},
    ]
}


def answering(status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        half = len(body) // 2  # in two chunks, as a streaming app may send it
        await send({"type": "http.response.body", "body": body[:half], "more_body": True})
        await send({"type": "http.response.body", "body": body[half:]})

    return app


def call(app: Any, path: str, method: str = "POST") -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def json_app(status: int, document: Any) -> Any:
    return answering(status, orjson.dumps(document), [(b"content-type", b"application/json")])


def test_null_optional_fields_are_dropped() -> None:
    status, headers, body = call(OipRest(json_app(200, KSERVE_INFER_ANSWER), {}), "/v2/models/wine/infer")
    document = json.loads(body)
    assert status == 200 and int(headers[b"content-length"]) == len(body)
    assert document == {
        "model_name": "wine",
        "id": "a",
        "outputs": [{"name": "output-0", "shape": [1], "datatype": "FP64", "data": [5.5]}],
    }
    assert_oip(document, "inference_response")


def test_the_unfixed_answer_fails_the_schema() -> None:
    """The check the runtime's tests rely on does catch KServe's nulls."""
    with pytest.raises(AssertionError, match="model_version"):
        assert_oip(KSERVE_INFER_ANSWER, "inference_response")
    with pytest.raises(AssertionError, match="versions"):
        assert_oip({"name": "wine", "versions": None, "platform": ""}, "metadata_model_response")


def test_fastapi_422_becomes_a_400_error_document() -> None:
    status, _, body = call(OipRest(json_app(422, FASTAPI_422), {}), "/v2/models/wine/infer")
    document = json.loads(body)
    assert status == 400
    assert_oip(document, "inference_error_response")
    assert document["error"] == "the body is not a V2 inference request (InferenceRequest.inputs: Field required)"


def test_binary_extension_answer_keeps_its_tensor_bytes() -> None:
    header = orjson.dumps(
        {**KSERVE_INFER_ANSWER, "outputs": [{"name": "o", "shape": [1], "datatype": "FP64",
                                              "parameters": {"binary_data_size": 8}}]}
    )  # fmt: skip
    tensor = b"\x00" * 7 + b"\x01"
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"inference-header-content-length", str(len(header)).encode()),
        (b"content-length", str(len(header) + 8).encode()),
    ]
    status, got, body = call(OipRest(answering(200, header + tensor, headers), {}), "/v2/models/wine/infer")
    length = int(got[b"inference-header-content-length"])
    assert status == 200 and int(got[b"content-length"]) == len(body) and body[length:] == tensor
    assert json.loads(body[:length]) == {
        "model_name": "wine",
        "id": "a",
        "outputs": [{"name": "o", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}],
    }


def test_versions_of_our_model_are_404_and_other_paths_pass_through() -> None:
    model = MlflowModel("wine", Path("/nowhere"))
    app = OipRest(json_app(200, {"reached": "kserve"}), {"wine": model})
    for path in ("/v2/models/wine/versions/3", "/v2/models/wine/versions/3/ready", "/v2/models/wine/versions/3/infer"):
        status, _, body = call(app, path, "GET")
        assert status == 404, path
        assert "model 'wine' has no version '3'" in json.loads(body)["error"]
        assert_oip(json.loads(body), "metadata_model_error_response")
    for path in ("/v2/models/other/versions/3", "/v2/health/ready", "/v2/models/wine/ready"):
        assert json.loads(call(app, path, "GET")[2]) == {"reached": "kserve"}, path


def test_without_nulls_keeps_required_and_non_null_fields() -> None:
    assert without_nulls({"error": None, "name": "x"}) == {"error": None, "name": "x"}, "only optional fields"
    assert without_nulls([1, None]) == [1, None]


def test_app_records_made_before_grpc_still_load(tmp_path: Path) -> None:
    old = {"app": "wine", "kind": "local", "port": 8080, "url": "http://127.0.0.1:8080/v2/models/wine/infer",
           "model": "/m", "pid": 1, "container": None, "log_path": None, "started_at": 0.0}  # fmt: skip
    (tmp_path / "wine.json").write_text(json.dumps(old))
    state = StateStore(tmp_path).load("wine")
    assert state is not None and state.port == 8080 and state.grpc is None
