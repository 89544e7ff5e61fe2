"""V2 requests for models with a tensor signature (ONNX, Keras, PyTorch, custom pyfunc): named tensors in, as typed.

MLflow's ``TensorSpec`` inputs each have a name (or none, for a single input),
a numpy dtype and a shape with ``-1`` for any size. A request sends one V2
tensor per input, under the input's name; a model with a single input also
takes one tensor under any name (``input-0``, what real clients send). Each
tensor is checked against its spec (rank, fixed dimensions, kind of values)
and converted to the spec's dtype, because pyfunc refuses a float64 array for
a float32 input where a JSON client cannot say which float it sends.

The model then gets what MLflow's own scoring server would give it: a numpy
array for a single unnamed input, a dict of arrays by name otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from kserve.errors import InvalidInput

from common.mlmodel import Column
from serving.payload import tensor_shape, to_array

if TYPE_CHECKING:
    from kserve.protocol.infer_type import InferInput, InferRequest

ANY_SIZE = -1


@dataclass(frozen=True)
class TensorBatch:
    """The decoded tensors, by input name (None for the single unnamed input), and the rows of the first."""

    rows: int
    tensors: dict[str | None, np.ndarray]

    def model_input(self) -> np.ndarray | dict[str, np.ndarray]:
        """A single unnamed input as its array; named inputs as a dict, as pyfunc takes them."""
        if list(self.tensors) == [None]:
            return self.tensors[None]
        return {str(name): array for name, array in self.tensors.items()}


class TensorDecoder:
    """Decodes requests for a model whose signature inputs are tensors."""

    def __init__(self, specs: Sequence[Column]) -> None:
        self.specs = tuple(specs)
        self.by_name = {spec.name: spec for spec in self.specs if spec.name is not None}

    def decode(self, request: InferRequest) -> TensorBatch:
        inputs = list(request.inputs or [])
        if not inputs:
            raise InvalidInput(f"the request has no inputs; send {self._expected()}")
        pairs = self._match(inputs)
        tensors = {spec.name: self._array(tensor, spec) for tensor, spec in pairs}
        first = next(iter(tensors.values()))
        return TensorBatch(rows=int(first.shape[0]) if first.ndim else 1, tensors=tensors)

    def _match(self, inputs: list[InferInput]) -> list[tuple[InferInput, Column]]:
        """Each request tensor with its spec: by name, or the one tensor for the one input."""
        if len(self.specs) == 1 and len(inputs) == 1:
            return [(inputs[0], self.specs[0])]
        names = [t.name for t in inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInput(f"inputs named more than once: {', '.join(map(repr, duplicates))}")
        unknown = [n for n in names if n not in self.by_name]
        if unknown:
            raise InvalidInput(f"unknown input name(s) {', '.join(map(repr, unknown))}; send {self._expected()}")
        missing = [name for name in self.by_name if name not in names]
        if missing:
            raise InvalidInput(f"missing input(s) {', '.join(map(repr, missing))}; send {self._expected()}")
        return [(tensor, self.by_name[tensor.name]) for tensor in inputs]

    def _array(self, tensor: InferInput, spec: Column) -> np.ndarray:
        shape = tensor_shape(tensor)
        expected = spec.shape
        if expected is not None and len(shape) == len(expected) - 1 and _fits(shape, expected[1:]):
            shape = [1, *shape]  # one example sent without its batch axis
        if expected is not None and not (len(shape) == len(expected) and _fits(shape, expected)):
            raise InvalidInput(
                f"input '{tensor.name}' has shape {list(tensor.shape)}; the model's input "
                f"{_label(spec)} takes {_shape_text(expected)} (-1: any size)"
            )
        return _as_dtype(to_array(tensor, shape), spec.dtype, tensor)

    def _expected(self) -> str:
        if len(self.specs) == 1:
            spec = self.specs[0]
            return f"one {spec.datatype} tensor of shape {_shape_text(spec.shape)}"
        described = ", ".join(f"'{s.name}' ({s.datatype} {_shape_text(s.shape)})" for s in self.specs)
        return f"one tensor per model input: {described}"


def _fits(shape: Sequence[int], expected: Sequence[int]) -> bool:
    return all(want in (ANY_SIZE, got) for got, want in zip(shape, expected, strict=True))


def _shape_text(shape: tuple[int, ...] | None) -> str:
    return str(list(shape)) if shape is not None else "of any shape"


def _label(spec: Column) -> str:
    return f"'{spec.name}'" if spec.name else "(unnamed)"


def _as_dtype(array: np.ndarray, dtype_name: str | None, tensor: InferInput) -> np.ndarray:
    """``array`` as the spec's dtype; numbers of another kind only when nothing is lost (no fractions to ints)."""
    if not dtype_name:
        return array
    try:
        dtype = np.dtype(dtype_name)
    except TypeError:
        return array  # a dtype numpy does not know (MLflow's "str"): leave the data as sent
    if array.dtype == dtype:
        return array
    have, want = array.dtype.kind, dtype.kind
    if want in "OUS":
        if have != "O":
            raise InvalidInput(f"input '{tensor.name}' is {tensor.datatype}; the model takes strings (BYTES)")
        return array
    if have == "O" or (want == "b") != (have == "b"):
        raise InvalidInput(f"input '{tensor.name}' is {tensor.datatype}; the model takes {dtype.name}")
    if want in "iu" and have == "f" and not bool(np.all(np.isfinite(array)) and np.all(np.mod(array, 1) == 0)):
        raise InvalidInput(f"input '{tensor.name}' holds fractions; the model takes {dtype.name}")
    if want in "iu" and array.size:
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise InvalidInput(f"input '{tensor.name}' holds values outside the range of {dtype.name}")
    return array.astype(dtype)


def typed_outputs(specs: Sequence[Column], named: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Outputs named and typed as the model's tensor output signature says, where that loses nothing.

    A single unnamed array takes the name of the single named output; a dict's
    entries keep their names, in the signature's order. An array is converted to
    its spec's dtype only within its kind (float to float, integer to integer):
    a regressor's float answers are never truncated to the integers a signature
    claims.
    """
    if not specs or not all(spec.is_tensor for spec in specs):
        return named
    by_name = {spec.name: spec for spec in specs if spec.name}
    if len(named) == 1 and len(specs) == 1 and specs[0].name and named[0][0] not in by_name:
        named = [(specs[0].name, named[0][1])]
    order = {name: index for index, name in enumerate(by_name)}
    named = sorted(named, key=lambda pair: order.get(pair[0], len(order)))
    single = specs[0] if len(specs) == 1 else None
    return [(name, _cast_within_kind(array, by_name.get(name) or single)) for name, array in named]


def _cast_within_kind(array: np.ndarray, spec: Column | None) -> np.ndarray:
    if spec is None or not spec.dtype:
        return array
    try:
        dtype = np.dtype(spec.dtype)
    except TypeError:
        return array
    same_kind = (array.dtype.kind == "f" and dtype.kind == "f") or (array.dtype.kind in "iu" and dtype.kind in "iu")
    if not same_kind or array.dtype == dtype:
        return array
    if dtype.kind in "iu" and array.size:
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            return array
    return array.astype(dtype)
