"""MLflow and numpy type names as Open Inference Protocol (V2) datatypes, and back.

The deploy step (building a probe request), the MLmodel reader (the datatype
of each signature input) and the serving runtime (reporting model metadata,
decoding payloads) must agree on these, so they live once here, as plain names:
no numpy import, so the deploy-only predictor image can use them.
"""

from __future__ import annotations

# MLflow column types -> V2 datatypes.
MLFLOW_TO_V2 = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
# numpy dtype names (MLflow tensor specs) -> V2 datatypes.
NUMPY_TO_V2 = {
    "float64": "FP64",
    "float32": "FP32",
    "float16": "FP16",
    "int64": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "uint64": "UINT64",
    "uint32": "UINT32",
    "uint16": "UINT16",
    "uint8": "UINT8",
    "bool": "BOOL",
    "object": "BYTES",
    "str": "BYTES",
}
# V2 datatypes -> the numpy dtype name a payload of that datatype decodes to (BYTES: Python objects).
V2_TO_NUMPY = {
    "BOOL": "bool",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
NUMERIC_V2 = frozenset(
    {"FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8"}
)
