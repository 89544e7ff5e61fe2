"""A real inference request, to prove a deployment answers before we say it does.

Readiness flags can turn green before the model answers (KServe #1658, #1859),
so every target ends with one V2 inference built from the model's input
example (else zeros shaped by its signature). The request has the shape real
clients send: one 2-D tensor of the feature columns in order for numeric
tabular models; per-column inputs (with ``content_type: pd``) for MLServer or
mixed types; named tensors for tensor signatures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from common.errors import ServiceUnavailable
from common.polling import wait_until
from common.v2_types import MLFLOW_TO_V2, NUMERIC_V2, NUMPY_TO_V2
from steps.predictor.model_info import Column, ModelInfo

log = logging.getLogger(__name__)

_ZERO = {"BOOL": False, "BYTES": ""}
RETRY_SECONDS = 2.0


class ProbeFailed(ServiceUnavailable):
    """The deployment did not answer a real inference."""


@dataclass(frozen=True)
class ProbeRequest:
    """What to send: a V2 body, or None when the model gives nothing to build one from."""

    body: dict[str, Any] | None
    source: str


def build_request(info: ModelInfo, per_column: bool = False) -> ProbeRequest:
    """A one-row V2 request for ``info``; ``per_column`` for runtimes that want named columns."""
    if info.tensor_inputs:
        return ProbeRequest({"inputs": [_tensor_input(i, c) for i, c in enumerate(info.inputs)]}, "signature tensors")
    columns, row, source = _tabular_row(info)
    if columns is None or row is None:
        return ProbeRequest(None, "no signature and no input example")
    types = _column_types(info, columns, row)
    if per_column or not all(t in NUMERIC_V2 for t in types):
        inputs = [
            {"name": name, "shape": [1], "datatype": dtype, "data": [value]}
            for name, dtype, value in zip(columns, types, row, strict=True)
        ]
        return ProbeRequest({"parameters": {"content_type": "pd"}, "inputs": inputs}, source + ", per column")
    tensor = {"name": "input-0", "shape": [1, len(row)], "datatype": _tensor_datatype(types), "data": [list(row)]}
    return ProbeRequest({"inputs": [tensor]}, source + ", one 2-D tensor")


def probe(base_urls: list[str], model_name: str, info: ModelInfo, per_column: bool, timeout: float = 60.0) -> str:
    """Send the probe to the first URL that answers; returns that URL's infer endpoint.

    Retries for up to ``timeout`` seconds: a fresh endpoint may 404 or 503 for a moment.
    """
    request = build_request(info, per_column)
    errors: dict[str, str] = {}

    def first_answering() -> str | None:
        for base in (b.rstrip("/") for b in base_urls):
            problem = _ask(base, model_name, request)
            if problem is None:
                return base
            errors[base] = problem
        return None

    base = wait_until(first_answering, timeout=timeout, interval=RETRY_SECONDS)
    if base is None:
        details = "; ".join(f"{url}: {error}" for url, error in errors.items())
        raise ProbeFailed(
            f"the deployed model did not answer a V2 inference within {timeout:.0f}s ({details})",
            "check the runtime's logs; the request was built from the model's " + request.source,
        )
    if request.body is None:
        log.warning("model has no signature or input example: checked %s only", _endpoint(base, model_name, request))
    else:
        log.info("probe answered: %s (%s)", _endpoint(base, model_name, request), request.source)
    return f"{base}/v2/models/{model_name}/infer"


def _endpoint(base: str, model_name: str, request: ProbeRequest) -> str:
    """The inference endpoint, or only the readiness one when there is nothing to send."""
    return f"{base}/v2/models/{model_name}/{'ready' if request.body is None else 'infer'}"


def _ask(base: str, model_name: str, request: ProbeRequest) -> str | None:
    """What is wrong with ``base``'s answer to ``request``, or None when it answered."""
    import requests

    url = _endpoint(base, model_name, request)
    try:
        if request.body is None:
            response = requests.get(url, timeout=10)
        else:
            response = requests.post(url, json=request.body, timeout=30)
    except requests.RequestException as e:
        return f"{type(e).__name__}: {e}"
    return _check_response(response, request.body is not None)


def _check_response(response: Any, inference: bool) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code} {response.text[:300]!r}"
    if not inference:
        return None
    try:
        outputs = response.json().get("outputs")
    except ValueError:
        return f"answer is not JSON: {response.text[:200]!r}"
    if not outputs:
        return f"answer has no outputs: {response.text[:200]!r}"
    return None


def _tabular_row(info: ModelInfo) -> tuple[list[str] | None, list[Any] | None, str]:
    if info.example_rows:
        row = list(info.example_rows[0])
        columns = list(info.example_columns) if info.example_columns else [c.name or "" for c in info.inputs]
        if len(columns) != len(row):
            columns = [f"input-{i}" for i in range(len(row))]
        return columns, row, "input example"
    if info.inputs:
        columns = [c.name or f"input-{i}" for i, c in enumerate(info.inputs)]
        row = [_ZERO.get(MLFLOW_TO_V2.get(c.type, "FP64"), 0) for c in info.inputs]
        return columns, row, "signature"
    return None, None, ""


def _column_types(info: ModelInfo, columns: list[str], row: list[Any]) -> list[str]:
    by_name = {c.name: c for c in info.inputs}
    types = []
    for name, value in zip(columns, row, strict=True):
        column = by_name.get(name)
        if column is not None and column.type in MLFLOW_TO_V2:
            types.append(MLFLOW_TO_V2[column.type])
        elif isinstance(value, bool):
            types.append("BOOL")
        elif isinstance(value, int):
            types.append("INT64")
        elif isinstance(value, float):
            types.append("FP64")
        else:
            types.append("BYTES")
    return types


def _tensor_datatype(types: list[str]) -> str:
    """FP32 for float features (what clients send, docs/contract.md), INT64 for integers, FP64 when mixed."""
    floats = [t.startswith("FP") for t in types]
    if all(floats):
        return "FP32"
    return "FP64" if any(floats) else "INT64"


def _tensor_input(index: int, column: Column) -> dict[str, Any]:
    shape = [1 if n < 0 else n for n in (column.shape or (1,))]
    datatype = NUMPY_TO_V2.get(column.dtype or "float32", "FP32")
    count = 1
    for n in shape:
        count *= n
    return {
        "name": column.name or f"input-{index}",
        "shape": shape,
        "datatype": datatype,
        "data": [_ZERO.get(datatype, 0)] * count,
    }
