"""The model's MLflow signature, reduced to what the runtime checks and reports.

MLflow stores the signature in MLmodel as JSON strings (``inputs``/``outputs``):
either columns (``{"name", "type", "required"}``) or tensors
(``{"type": "tensor", "tensor-spec": {"dtype", "shape"}}``). Parsing it here,
with only ``json``, keeps ``mlflow`` out of the runtime's start-up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.v2_types import MLFLOW_TO_V2, NUMPY_TO_V2

log = logging.getLogger(__name__)

NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})
INTEGER_TYPES = frozenset({"long", "integer"})


@dataclass(frozen=True)
class Column:
    """One named input or output column of the signature."""

    name: str
    type: str  # MLflow type: double, float, long, integer, boolean, string, binary, datetime
    required: bool = True

    @property
    def datatype(self) -> str:
        return MLFLOW_TO_V2.get(self.type, "BYTES")


@dataclass(frozen=True)
class Tensor:
    """One tensor input or output of the signature (name may be absent)."""

    name: str | None
    dtype: str
    shape: tuple[int, ...]

    @property
    def datatype(self) -> str:
        return NUMPY_TO_V2.get(self.dtype, "BYTES")


@dataclass(frozen=True)
class Signature:
    """Inputs and outputs: all columns or all tensors on each side (MLflow's rule)."""

    inputs: tuple[Column | Tensor, ...] = ()
    outputs: tuple[Column | Tensor, ...] = ()

    @property
    def columns(self) -> tuple[Column, ...]:
        """The input columns in training order; empty for a tensor signature."""
        return tuple(c for c in self.inputs if isinstance(c, Column))

    @property
    def all_double(self) -> bool:
        """True when every input column is ``double``: the common case that needs no per-column checks."""
        return bool(self.columns) and all(c.type == "double" for c in self.columns)


def parse_signature(mlmodel: Mapping[str, Any]) -> Signature | None:
    """The signature of an MLmodel document, or None when it has none (or one we cannot read)."""
    section = mlmodel.get("signature")
    if not isinstance(section, Mapping):
        return None
    try:
        inputs = _specs(section.get("inputs"))
        outputs = _specs(section.get("outputs"))
    except (ValueError, TypeError, KeyError) as e:
        log.warning("ignoring the model's signature, which cannot be read: %s", e)
        return None
    if not inputs and not outputs:
        return None
    return Signature(inputs=inputs, outputs=outputs)


def _specs(text: Any) -> tuple[Column | Tensor, ...]:
    if not text:
        return ()
    items = json.loads(text) if isinstance(text, str) else text
    specs: list[Column | Tensor] = []
    for index, item in enumerate(items):
        if item.get("type") == "tensor":
            spec = item["tensor-spec"]
            shape = tuple(int(d) for d in spec.get("shape", ()))
            specs.append(Tensor(name=item.get("name"), dtype=str(spec["dtype"]), shape=shape))
        else:
            name = item.get("name")
            specs.append(Column(name=str(name if name is not None else index), type=str(item["type"])))
            if item.get("required") is False:
                specs[-1] = Column(name=specs[-1].name, type=specs[-1].type, required=False)
    return tuple(specs)
