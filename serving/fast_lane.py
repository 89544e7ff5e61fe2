"""An ASGI fast lane for plain V2 JSON infer requests, in front of KServe's FastAPI app.

Through FastAPI, a 1-row request costs more in generic plumbing (stdlib JSON
parsing, pydantic validation of the request and again of the response,
``jsonable_encoder``, route-name timing middleware) than in the model. The
lane takes ``POST /v2/models/<name>/infer`` for our models when the body is
plain V2 JSON (``id``, ``parameters``, ``inputs`` of ``name``/``shape``/
``datatype``/``data``), parses it with orjson, runs the same ``MlflowModel``
decoding, validation and prediction (with Python's cyclic collector paused:
a big body's row lists made it walk them over and over), and writes the same
response document KServe would. Errors keep KServe's contract:
``InvalidInput`` -> 400, ``InferenceError`` -> 500, both ``{"error": message}``.

Everything else passes through to KServe untouched (health, metadata, V1,
the binary tensor extension, CloudEvents, requested ``outputs``, bodies that
are not plain V2 JSON, which then get FastAPI's own 422). One fix is applied
to what passes through: ``curl -d`` and many small clients send JSON with no
content type (or ``x-www-form-urlencoded``), which KServe takes for the binary
extension and answers with a puzzling 400; such bodies are labelled JSON.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import orjson
from kserve.errors import InferenceError, InvalidInput

from serving.model import MlflowModel

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PREFIX, SUFFIX = "/v2/models/", "/infer"
BINARY_HEADER = b"inference-header-content-length"
NOT_LABELLED_JSON = (b"", b"application/x-www-form-urlencoded", b"text/plain")
JSON_HEADERS = [(b"content-type", b"application/json")]
REQUEST_KEYS = frozenset({"id", "parameters", "inputs"})
INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class InferFastLane:
    """ASGI app: plain V2 infer requests for ``models`` here, everything else to ``app``."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], models: Mapping[str, MlflowModel]):
        self.app = app
        self.models = dict(models)
        self._observe = {name: _predict_histogram(name) for name in self.models}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            return await self.app(scope, receive, send)
        content_type, special = _inspect(scope["headers"])
        if special:  # binary extension or CloudEvent: KServe's job
            return await self.app(scope, receive, send)
        if content_type in NOT_LABELLED_JSON:
            scope = _labelled_json(scope)
        elif content_type != b"application/json":
            return await self.app(scope, receive, send)
        model = self.models.get(path[len(PREFIX) : -len(SUFFIX)])
        if model is None or not model.ready:
            return await self.app(scope, receive, send)  # 404 / 503 as KServe words them
        body = await _read_body(receive)
        outcome = _answered(model, body)
        if outcome is None:
            return await self.app(scope, _replay(body, receive), send)
        status, answer, seconds = outcome
        observe = self._observe.get(model.name)
        if observe is not None:
            observe(seconds)
        payload = orjson.dumps(answer, option=ORJSON_OPTIONS)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _answered(model: MlflowModel, body: bytes) -> tuple[int, dict[str, Any], float] | None:
    """Status, answer and predict seconds for a plain V2 body (None if it is not one), the cyclic GC paused."""
    with _collector_paused():
        document = _plain_request(body)
        if document is None:
            return None
        started = time.perf_counter()
        try:
            status, answer = 200, model.infer_json(document)
        except InvalidInput as e:
            log.warning("bad request: %s", e)
            status, answer = 400, {"error": str(e)}
        except InferenceError as e:
            status, answer = 500, {"error": str(e)}
        return status, answer, time.perf_counter() - started


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic collector off for the duration, back on after unless something else had turned it off.

    Parsing makes a Python list per row and a float per value, none of them in a cycle: for a 50 MB body
    (720,000 rows) the collector walked them again and again, 1.1-1.5 s of the parse's 1.7-2.1 s. Reference
    counting frees them all before the collector is back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _inspect(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bool]:
    content_type = b""
    for key, value in headers:
        if key == b"content-type":
            content_type = value.split(b";", 1)[0].strip().lower()
        elif key == BINARY_HEADER or key.startswith(b"ce-"):
            return content_type, True
    return content_type, content_type.startswith(b"application/cloudevents")


def _labelled_json(scope: Scope) -> Scope:
    scope = dict(scope)
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"] + JSON_HEADERS
    return scope


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _plain_request(body: bytes) -> dict[str, Any] | None:
    """The parsed body if it is plain V2 JSON this lane answers exactly like KServe, else None."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not REQUEST_KEYS.issuperset(document):
        return None
    request_id, parameters, inputs = document.get("id"), document.get("parameters"), document.get("inputs")
    if request_id is not None and not isinstance(request_id, str):
        return None
    if parameters is not None and (not isinstance(parameters, dict) or "binary_data_output" in parameters):
        return None
    if not isinstance(inputs, list):
        return None
    for item in inputs:
        if not isinstance(item, dict) or not INPUT_KEYS.issuperset(item):
            return None
        shape = item.get("shape")
        if not (
            isinstance(item.get("name"), str)
            and isinstance(item.get("datatype"), str)
            and isinstance(item.get("data"), list)
            and isinstance(shape, list)
            and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        ):
            return None
        if item.get("parameters") is not None and not isinstance(item["parameters"], dict):
            return None
        item["datatype"] = item["datatype"].upper()
    return document


def _predict_histogram(name: str) -> Callable[[float], None] | None:
    """KServe's predict-latency histogram for ``name``, so /metrics still counts fast-lane requests."""
    try:
        from kserve.metrics import PREDICT_HIST_TIME, get_labels

        return PREDICT_HIST_TIME.labels(**get_labels(name)).observe
    except (ImportError, AttributeError, TypeError, ValueError):  # pragma: no cover - metrics are optional
        return None
