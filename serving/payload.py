"""V2 request decoding and validation: a kserve ``InferRequest`` -> a ``Batch`` of rows.

Three request forms reach an MLflow model, and all are accepted:

- one unnamed 2-D tensor, shape ``[rows, features]``, columns in signature
  order: what real clients send (docs/contract.md), and what MLServer rejects;
- named per-column tensors, shape ``[rows]`` or ``[rows, 1]``, one per
  signature column (MLServer's style, KServe's e2e examples);
- ``"parameters": {"content_type": "pd"}``: named columns that become a
  ``pandas.DataFrame`` as they are (any names; the model decides).

Every problem with a payload raises kserve's ``InvalidInput``, which the server
answers with 400 and ``{"error": message}``; messages say which input is wrong
and what was expected, so a client can fix its request without reading code.
Decoding stays in numpy: the scikit-learn fast path predicts on the 2-D array
with no DataFrame round trip.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from kserve.errors import InvalidInput

from common.mlmodel import Column
from common.v2_types import V2_TO_NUMPY
from serving.internals import has_raw_data

if TYPE_CHECKING:
    import pandas as pd
    from kserve.protocol.infer_type import InferInput, InferRequest

log = logging.getLogger(__name__)

# MLflow column types a request's values are checked against.
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})
INTEGER_TYPES = frozenset({"long", "integer"})
_KIND_NAMES = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers", "U": "strings", "S": "bytes"}
PANDAS = "pd"


def _json_kinds(dtype: np.dtype) -> str:
    """The numpy kinds JSON data may hold for ``dtype``: numbers for any number (integral ones checked later)."""
    if dtype.kind == "b":
        return "b"
    return "USO" if dtype.kind == "O" else "iuf"


# V2 datatype -> (numpy dtype, numpy kinds accepted in the JSON data); FP16 travels only in binary form.
DATATYPES: dict[str, tuple[Any, str]] = {
    name: (np.dtype(dtype).type, _json_kinds(np.dtype(dtype))) for name, dtype in V2_TO_NUMPY.items() if name != "FP16"
}


@dataclass(frozen=True)
class Batch:
    """Decoded rows: either one 2-D ``matrix`` or named 1-D ``columns`` (never both).

    ``frame`` marks a request that asked for a DataFrame (``content_type: pd``)
    or that holds strings, which a numpy matrix of floats cannot carry.
    """

    rows: int
    matrix: np.ndarray | None = None
    columns: dict[str, np.ndarray] | None = None
    frame: bool = False

    def as_matrix(self, order: Sequence[str] | None) -> np.ndarray:
        """A 2-D array, columns in ``order`` (the signature's) when the batch is per-column."""
        if self.matrix is not None:
            return self.matrix
        assert self.columns is not None
        names = list(order) if order else list(self.columns)
        return np.column_stack([self.columns[name] for name in names])

    def as_frame(self, order: Sequence[str] | None) -> pd.DataFrame:
        """A DataFrame; a matrix gets the signature's column names (or 0..n-1 without one)."""
        import pandas as pd

        if self.matrix is not None:
            names = list(order) if order and len(order) == self.matrix.shape[1] else None
            return pd.DataFrame(self.matrix, columns=names)
        assert self.columns is not None
        names = [n for n in order if n in self.columns] if order else []
        names += [n for n in self.columns if n not in names]
        return pd.DataFrame({name: self.columns[name] for name in names})


class PayloadDecoder:
    """Decodes requests for one model, checking them against its input columns.

    ``columns`` are the signature's input columns in training order (empty when
    the model has no column signature); ``n_features`` is how many columns a
    tensor must have when there is no signature to say it (scikit-learn's
    ``n_features_in_``), or None to accept any width.
    """

    def __init__(self, columns: Sequence[Column] = (), n_features: int | None = None) -> None:
        self.columns = tuple(columns)
        self.names = tuple(c.name for c in self.columns)
        self.by_name = {c.name: c for c in self.columns}
        self.n_features = len(self.columns) or n_features
        # Per-column type checks are skipped in the common all-double case (the fast path).
        self._check_types = any(c.type != "double" for c in self.columns)

    def decode(self, request: InferRequest) -> Batch:
        inputs = list(request.inputs or [])
        if not inputs:
            raise InvalidInput(
                "the request has no inputs; send one 2-D tensor with a row per example, "
                f"or one tensor per column{self._expected()}"
            )
        if _content_type(request) == PANDAS:
            return self._columns(inputs, frame=True)
        if len(inputs) == 1 and not self._is_column(inputs[0]):
            return self._tensor(inputs[0])
        return self._columns(inputs, frame=False)

    # -- one 2-D tensor -------------------------------------------------------

    def _is_column(self, tensor: InferInput) -> bool:
        """A single input is a column when it is named like one and shaped like one; names win."""
        shape = list(tensor.shape or ())
        return tensor.name in self.by_name and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))

    def _tensor(self, tensor: InferInput) -> Batch:
        shape = tensor_shape(tensor)
        width = self.n_features
        if len(shape) == 1 and width and width > 1 and shape[0] == width:
            shape = [1, width]  # one row sent as a flat vector of the model's features
        if len(shape) != 2:
            raise InvalidInput(
                f"input '{tensor.name}' has shape {list(tensor.shape)}; a single tensor must be 2-D, "
                f"[rows, {width or 'features'}], one row per example{self._expected()}"
            )
        if width is not None and shape[1] != width:
            raise InvalidInput(
                f"input '{tensor.name}' has {shape[1]} columns (shape {list(tensor.shape)}); "
                f"the model takes {width}{self._expected()}"
            )
        array = to_array(tensor, shape)
        if shape[0] == 0:
            raise InvalidInput(f"input '{tensor.name}' has no rows")
        if array.dtype == np.object_:
            return Batch(rows=shape[0], matrix=array, frame=True)
        if self._check_types:
            for index, column in enumerate(self.columns):
                _check_column_type(column, tensor, array[:, index])
        return Batch(rows=shape[0], matrix=array)

    # -- named columns --------------------------------------------------------

    def _columns(self, inputs: list[InferInput], frame: bool) -> Batch:
        names = [t.name for t in inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInput(f"inputs named more than once: {', '.join(map(repr, duplicates))}")
        if self.columns:
            unknown = [n for n in names if n not in self.by_name]
            if unknown:
                raise InvalidInput(
                    f"unknown input name(s) {', '.join(map(repr, unknown))}; "
                    f"the model's columns are {', '.join(map(repr, self.names))} "
                    "(or send one unnamed 2-D tensor with the columns in that order)"
                )
            missing = [c.name for c in self.columns if c.required and c.name not in names]
            if missing:
                raise InvalidInput(f"missing input column(s) {', '.join(map(repr, missing))}{self._expected()}")
        columns: dict[str, np.ndarray] = {}
        rows: int | None = None
        for tensor in inputs:
            shape = tensor_shape(tensor)
            if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
                raise InvalidInput(
                    f"input '{tensor.name}' has shape {list(tensor.shape)}; a column must be [rows] or [rows, 1]"
                )
            array = to_array(tensor, shape).reshape(shape[0])
            if rows is None:
                rows = shape[0]
            elif shape[0] != rows:
                raise InvalidInput(
                    f"input '{tensor.name}' has {shape[0]} rows but '{inputs[0].name}' has {rows}; "
                    "every column needs the same number of rows"
                )
            column = self.by_name.get(tensor.name)
            if column is not None:
                _check_column_type(column, tensor, array)
            columns[tensor.name] = array
            frame = frame or array.dtype == np.object_
        if not rows:
            raise InvalidInput("the request has no rows")
        return Batch(rows=rows, columns=columns, frame=frame)

    def _expected(self) -> str:
        if not self.names:
            return ""
        return f" (columns, in order: {', '.join(map(repr, self.names))})"


def _content_type(request: InferRequest) -> str | None:
    parameters = request.parameters
    if not parameters:
        return None
    value = parameters.get("content_type")
    return value if isinstance(value, str) else getattr(value, "string_param", None)


def tensor_shape(tensor: InferInput) -> list[int]:
    """The tensor's sizes; a client's malformed shape is InvalidInput, never a crash deeper down."""
    shape = tensor.shape
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidInput(f"input '{tensor.name}' has an invalid shape {shape!r}; use a list of non-negative sizes")
    return list(shape)


def to_array(tensor: InferInput, shape: Sequence[int]) -> np.ndarray:
    """The tensor's data as a numpy array of its datatype and ``shape``, or InvalidInput.

    JSON data may be flat (row-major, the V2 rule) or nested like the shape.
    """
    datatype = tensor.datatype
    if datatype not in DATATYPES:
        raise InvalidInput(
            f"input '{tensor.name}' has datatype {datatype!r}; supported: {', '.join(DATATYPES)} "
            "(FP16 only in binary form)"
        )
    dtype, kinds = DATATYPES[datatype]
    if has_raw_data(tensor):
        array = _raw_array(tensor)
    else:
        data = tensor.data
        if data is None:
            raise InvalidInput(f"input '{tensor.name}' has no 'data'")
        try:
            array = np.asarray(data)
        except (ValueError, TypeError) as e:
            raise InvalidInput(f"input '{tensor.name}': 'data' is not a rectangular list of values ({e})") from e
    size = math.prod(shape)
    if array.size != size:
        raise InvalidInput(
            f"input '{tensor.name}' has shape {list(shape)} ({size} values) but its data holds {array.size}"
        )
    if array.dtype.kind not in kinds:
        found = _KIND_NAMES.get(array.dtype.kind, "mixed or null values")
        raise InvalidInput(f"input '{tensor.name}' is {datatype} but its data holds {found}")
    if datatype == "BYTES":
        array = array.astype(np.object_)
        if any(not isinstance(v, (str, bytes)) for v in array.flat):
            raise InvalidInput(f"input '{tensor.name}' is BYTES but its data holds values that are not strings")
        return array.reshape(shape)
    if array.dtype.kind == "f" and dtype not in (np.float32, np.float64) and not _integral(array):
        raise InvalidInput(f"input '{tensor.name}' is {datatype} but its data holds non-integer numbers")
    if array.dtype.kind in "iuf" and np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise InvalidInput(f"input '{tensor.name}' holds values outside the range of {datatype}")
    return array.astype(dtype, copy=False).reshape(shape)


def _raw_array(tensor: InferInput) -> np.ndarray:
    """Binary tensor data (gRPC ``raw_input_contents``), decoded by KServe; BYTES elements become text."""
    try:
        array = tensor.as_numpy()
    except (ValueError, TypeError, IndexError, InvalidInput) as e:
        raise InvalidInput(
            f"input '{tensor.name}': its binary data does not hold a {tensor.datatype} tensor ({e})"
        ) from e
    if tensor.datatype == "BYTES":
        text = [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in array.ravel()]
        array = np.array(text, dtype=np.object_)
    return array.ravel()


def _integral(array: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(array)) and np.all(np.mod(array, 1) == 0))


def _check_column_type(column: Column, tensor: InferInput, values: np.ndarray) -> None:
    """Reject data the column cannot take: strings for numbers, fractions for integers, numbers for text."""
    kind = values.dtype.kind
    if column.type in NUMERIC_TYPES and kind not in "iufb":
        raise InvalidInput(f"column '{column.name}' is {column.type} but input '{tensor.name}' sends {tensor.datatype}")
    if column.type in INTEGER_TYPES and kind == "f" and not _integral(values):
        raise InvalidInput(f"column '{column.name}' is {column.type} but input '{tensor.name}' holds fractions")
    if column.type in ("string", "binary") and kind != "O":
        raise InvalidInput(f"column '{column.name}' is {column.type} but input '{tensor.name}' sends {tensor.datatype}")
    if column.type == "boolean" and kind != "b":
        raise InvalidInput(f"column '{column.name}' is boolean but input '{tensor.name}' sends {tensor.datatype}")
