"""The REST answers KServe's app gives that the Open Inference Protocol's schema does not allow, made to fit.

Measured against the protocol's OpenAPI document (``open_inference_rest.yaml``),
KServe's FastAPI app answers a few things its own way: model metadata with
``"versions": null`` and ``"platform": ""``, inference responses with
``"model_version": null`` and ``"parameters": null`` (the schema has an array,
an object, or nothing), 501 for any ``/versions/{v}`` path, and FastAPI's 422
``{"detail": [...]}`` for a body that is not an inference request. Strictly typed
clients reject nulls. This ASGI wrapper sits between the fast lane and KServe's
app and

- answers model metadata itself (``MlflowModel.metadata``: the flavour as
  ``platform``, no versions);
- answers every ``/v2/models/<ours>/versions/<v>[/ready|/infer]`` with 404: the
  runtime serves one unversioned model, and the message says which URL to use;
- drops null optional fields from KServe's JSON answers (also from the JSON
  header of a binary-extension answer) and turns 422 into a 400 ``{"error": ...}``.

Only public ASGI is used: requests and responses are messages, nothing of
KServe's is patched.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from serving.model import MlflowModel

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MODEL_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<rest>/ready|/infer)?/?$")
BINARY_HEADER = b"inference-header-content-length"
OPTIONAL_KEYS = ("model_version", "id", "parameters", "versions", "platform")


class OipRest:
    """ASGI app: KServe's ``app`` with the answers above made to fit the OIP REST schema."""

    def __init__(self, app: AsgiApp, models: Mapping[str, MlflowModel]) -> None:
        self.app = app
        self.models = dict(models)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2"):
            return await self.app(scope, receive, send)
        match = MODEL_PATH.match(scope["path"])
        model = self.models.get(match["name"]) if match else None
        if match and model is not None:
            if match["version"] is not None:
                return await _answer(send, 404, {"error": _no_versions(model.name, match["version"])})
            if match["rest"] is None and scope["method"] == "GET" and model.ready:
                return await _answer(send, 200, model.metadata())
        await self.app(scope, receive, _Reshaping(send))


def _no_versions(name: str, version: str) -> str:
    return (
        f"model '{name}' has no version '{version}': it is served without versions; "
        f"use /v2/models/{name}, /v2/models/{name}/ready or /v2/models/{name}/infer"
    )


async def _answer(send: Send, status: int, document: Mapping[str, Any]) -> None:
    body = orjson.dumps(document)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Reshaping:
    """A ``send`` that holds a JSON (or binary-extension) answer back until it is whole, then reshapes it."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if _reshapable(message["headers"]):
                self.start = message
                return
            return await self.send(message)
        if message["type"] != "http.response.body" or self.start is None:
            return await self.send(message)
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        status, headers, body = _reshape(self.start["status"], self.start["headers"], b"".join(self.chunks))
        await self.send({**self.start, "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})


def _reshapable(headers: list[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key == BINARY_HEADER or (key == b"content-type" and value.startswith(b"application/json")):
            return True
    return False


def _reshape(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, list, bytes]:
    header_length = next((int(v) for k, v in headers if k == BINARY_HEADER), None)
    json_part, binary_part = (body, b"") if header_length is None else (body[:header_length], body[header_length:])
    try:
        document = orjson.loads(json_part)
    except orjson.JSONDecodeError:
        return status, headers, body
    if status == 422 and isinstance(document, dict) and "detail" in document:
        status, document = 400, {"error": _validation_message(document["detail"])}
    json_part = orjson.dumps(without_nulls(document))
    kept = [(k, v) for k, v in headers if k not in (b"content-length", BINARY_HEADER)]
    if header_length is not None:
        kept.append((BINARY_HEADER, str(len(json_part)).encode()))
    body = json_part + binary_part
    return status, [*kept, (b"content-length", str(len(body)).encode())], body


def without_nulls(document: Any) -> Any:
    """``document`` without the null optional fields the OIP schema types as string, object or array."""
    if not isinstance(document, dict):
        return document
    cleaned = {k: v for k, v in document.items() if not (v is None and k in OPTIONAL_KEYS)}
    for key in ("outputs", "inputs"):
        if isinstance(cleaned.get(key), list):
            cleaned[key] = [without_nulls(item) for item in cleaned[key]]
    return cleaned


def _validation_message(detail: Any) -> str:
    """FastAPI's validation detail as one line: where in the body, and what is wrong."""
    if not isinstance(detail, list):
        return f"the body is not a V2 inference request: {detail}"
    # The body may be JSON or bytes (the binary extension): the bytes alternative's complaint says nothing.
    items = [i for i in detail if isinstance(i, dict) and "bytes" not in i.get("loc", ())] or detail
    problems = []
    for item in items[:3]:
        if isinstance(item, dict):
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where or 'body'}: {item.get('msg', 'invalid')}")
    return "the body is not a V2 inference request (" + "; ".join(problems) + ")"
