"""A minimal Open Inference Protocol (V2) client: one row of features in, one number out.

It sends what real clients send (docs/contract.md): one unnamed 2-D FP32 tensor,
``input-0``, shape ``[1, n]``, columns in the model's training order. Every
failure becomes a ``PredictionError`` whose message a person can act on (which
URL, what came back, what to check), because the page shows it as it is; no
``requests`` exception or traceback leaves this module.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

INPUT_NAME = "input-0"
DATATYPE = "FP32"
# (connect, read) seconds: a dead address fails fast, a cold model may take a while.
TIMEOUT = (5.0, 30.0)
# How much of an unexpected reply a message quotes.
QUOTE_LIMIT = 300
_MODEL_PATH = re.compile(r"/v2/models/[^/]+(/versions/[^/]+)?/?$")


class PredictionError(Exception):
    """Any reason the page has no prediction; ``str(e)`` is the message to show."""


class InvalidUrl(PredictionError):
    """The URL is empty or not an http(s) address."""


class ServerUnreachable(PredictionError):
    """Nothing answered: refused, unknown host, timeout, TLS failure."""


class ServerError(PredictionError):
    """The server answered with an HTTP error (4xx/5xx)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotV2Response(PredictionError):
    """The server answered 200 but not with a V2 inference response holding a number."""


def infer_url(url: str) -> str:
    """The inference URL to POST to: ``url`` trimmed, with ``/infer`` added to a bare model URL.

    People paste ``.../v2/models/wine`` as often as ``.../v2/models/wine/infer``.
    """
    url = url.strip()
    if not url:
        raise InvalidUrl("Enter the prediction URL, e.g. http://127.0.0.1:8080/v2/models/wine/infer.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidUrl(
            f"'{url}' is not an http(s) URL; expected something like http://HOST:PORT/v2/models/NAME/infer."
        )
    if _MODEL_PATH.search(parts.path):
        return url.rstrip("/") + "/infer"
    return url


def build_request(values: Sequence[float]) -> dict[str, Any]:
    """The V2 request body for one row: ``values`` in training order, as one 1 x n FP32 tensor."""
    row = [float(v) for v in values]
    bad = [i for i, v in enumerate(row) if not math.isfinite(v)]
    if bad:
        raise PredictionError(f"feature {bad[0] + 1} is not a finite number ({row[bad[0]]}); enter a number.")
    return {"inputs": [{"name": INPUT_NAME, "shape": [1, len(row)], "datatype": DATATYPE, "data": [row]}]}


def parse_response(body: Any) -> float:
    """The prediction in a V2 response: the first value of the first output, a finite number."""
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outputs, list) or not outputs or not isinstance(outputs[0], dict):
        raise NotV2Response(f"the reply has no 'outputs' list, so it is not a V2 inference response: {_quote(body)}")
    data = outputs[0].get("data")
    while isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, bool) or not isinstance(data, (int, float)) or not math.isfinite(data):
        raise NotV2Response(f"the first output holds no number: {_quote(outputs[0])}")
    return float(data)


def predict(
    url: str,
    values: Sequence[float],
    *,
    session: requests.Session | None = None,
    timeout: tuple[float, float] = TIMEOUT,
) -> float:
    """POST one row to the V2 endpoint at ``url`` and return the model's prediction.

    Raises a ``PredictionError`` subclass for every way this can fail.
    """
    target = infer_url(url)
    body = build_request(values)
    post = session.post if session is not None else requests.post
    try:
        response = post(target, json=body, timeout=timeout)
    except requests.ConnectTimeout as e:
        raise ServerUnreachable(
            f"could not connect to {target} within {timeout[0]:g}s. Check the URL and that the model server is running."
        ) from e
    except requests.Timeout as e:
        raise ServerUnreachable(f"{target} did not answer within {timeout[1]:g}s; is the model still loading?") from e
    except requests.ConnectionError as e:
        raise ServerUnreachable(
            f"could not connect to {target}: {_reason(e)}. Check the URL and that the model server is running."
        ) from e
    except requests.RequestException as e:
        raise ServerUnreachable(f"the request to {target} failed: {_reason(e)}") from e
    if response.status_code >= 400:
        raise ServerError(_http_error(target, response), response.status_code)
    try:
        payload = response.json()
    except ValueError as e:
        raise NotV2Response(
            f"{target} answered HTTP {response.status_code} with something that is not JSON "
            f"({response.headers.get('content-type', 'no content type')}): {_quote(response.text)}. "
            "Is this the model's /v2/models/NAME/infer URL?"
        ) from e
    try:
        return parse_response(payload)
    except NotV2Response as e:
        raise NotV2Response(f"{target}: {e}. Is this the model's /v2/models/NAME/infer URL?") from e


def _http_error(target: str, response: requests.Response) -> str:
    """A message for an HTTP error: the status, the server's own V2 ``error`` text, and a hint."""
    detail = response.text
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error") or payload.get("detail"), str):
        detail = payload.get("error") or payload.get("detail")
    status = f"HTTP {response.status_code} {response.reason or ''}".strip()
    message = f"{target} answered {status}: {_quote(detail).rstrip('.')}"
    if response.status_code == 404:
        message += ". Check the model name in the URL (.../v2/models/NAME/infer)."
    elif response.status_code >= 500:
        message += ". The model server failed; its logs say why."
    return message


def _reason(error: Exception) -> str:
    """The innermost cause of a requests error, without urllib3's object reprs."""
    text = str(error)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip().lower()
    return _quote(text)


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    if not text:
        return "(empty)"
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "..."
