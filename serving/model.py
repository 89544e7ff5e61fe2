"""The ``kserve.Model`` that serves one MLflow model over V2: decode, predict, encode.

``predict`` is synchronous on purpose: a scikit-learn prediction on a few rows
takes microseconds, less than a hop to a thread pool, so it runs on the event
loop. Errors a client can fix become ``InvalidInput`` (400); everything else is
``InferenceError`` (500) with the cause logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from kserve.errors import InferenceError, InvalidInput
from kserve.model import Model
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse
from kserve.utils.numpy_codec import from_np_dtype

from common.mlmodel import Column
from serving.loader import LoadedModel, load_model
from serving.payload import Batch, PayloadDecoder
from serving.tensor_payload import TensorBatch, TensorDecoder, typed_outputs

log = logging.getLogger(__name__)

OUTPUT_NAME = "output-0"


class MlflowModel(Model):
    """An MLflow model folder (with MLmodel) served under ``name``."""

    def __init__(self, name: str, model_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.environ = dict(environ or {})
        self.loaded: LoadedModel | None = None
        self.decoder: PayloadDecoder | TensorDecoder = PayloadDecoder()
        self._order: tuple[str, ...] = ()
        self._outputs: tuple[Column, ...] = ()

    def load(self) -> bool:
        self.loaded = load_model(self.model_dir, self.environ)
        signature = self.loaded.signature
        columns = signature.columns if signature else ()
        self.decoder = PayloadDecoder(columns, n_features=self.loaded.n_features)
        if signature and signature.inputs and not columns and not self.loaded.direct:
            # Tensor inputs (ONNX, Keras, PyTorch, custom pyfunc): named tensors, typed as the signature says.
            # scikit-learn models keep the 2-D decoder, whose arrays the direct paths take as sent.
            self.decoder = TensorDecoder(signature.inputs)
        self._order = tuple(c.name for c in columns)
        self._outputs = signature.outputs if signature else ()
        self.ready = True
        return self.ready

    # -- metadata -------------------------------------------------------------

    @property
    def platform(self) -> str:
        """The OIP ``platform``: the MLflow flavour that predicts (``mlflow_sklearn``, ``mlflow_xgboost``, ...)."""
        flavor = self.loaded.flavor if self.loaded else "pyfunc"
        return f"mlflow_{flavor.rsplit('.', 1)[-1]}"

    def metadata(self) -> dict[str, Any]:
        """The OIP model metadata, for REST and gRPC alike; the model has no versions, so none are listed."""
        return {
            "name": self.name,
            "platform": self.platform,
            "inputs": self.get_input_types(),
            "outputs": self.get_output_types(),
        }

    def get_input_types(self) -> list[dict[str, Any]]:
        """One entry per signature input: per-column tensors ``[-1]`` (a 2-D tensor is accepted too)."""
        signature = self.loaded.signature if self.loaded else None
        return [_metadata(spec, i, "input") for i, spec in enumerate(signature.inputs)] if signature else []

    def get_output_types(self) -> list[dict[str, Any]]:
        signature = self.loaded.signature if self.loaded else None
        if not signature:
            return []
        return [_metadata(spec, i, "output") for i, spec in enumerate(signature.outputs)]

    # -- inference --------------------------------------------------------------

    def predict(self, payload: InferRequest | dict, headers: dict[str, str] | None = None) -> InferResponse:
        if not isinstance(payload, InferRequest):
            raise InvalidInput("this runtime speaks the Open Inference Protocol (V2): POST /v2/models/<name>/infer")
        if self.loaded is None:
            raise InferenceError("the model is not loaded")
        batch = self.decoder.decode(payload)
        predictions = self._predict(batch)
        outputs = encode_outputs(predictions, batch.rows, raw=bool(payload.from_grpc), specs=self._outputs)
        return InferResponse(
            response_id=payload.id or uuid.uuid4().hex,
            model_name=self.name,
            infer_outputs=outputs,
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )

    def infer_json(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The V2 response for a plain JSON request (see ``fast_lane``): same checks, no pydantic round trips."""
        inputs = [
            InferInput(name=i["name"], shape=i["shape"], datatype=i["datatype"], data=i["data"]) for i in body["inputs"]
        ]
        request = InferRequest(self.name, inputs, request_id=body.get("id"), parameters=body.get("parameters"))
        if self.loaded is None:
            raise InferenceError("the model is not loaded")
        batch = self.decoder.decode(request)
        # Optional fields are left out, never null: the OIP schema types them as string/object.
        return {
            "model_name": self.name,
            "id": request.id or uuid.uuid4().hex,
            "outputs": rest_outputs(self._predict(batch), batch.rows, self._outputs),
        }

    def _predict(self, batch: Batch | TensorBatch) -> Any:
        loaded = self.loaded
        assert loaded is not None
        predict = loaded.predict
        if isinstance(batch, TensorBatch):
            data: Any = batch.model_input()
        elif loaded.direct and not batch.frame and loaded.predict_array is not None:
            data = batch.as_matrix(self._order)
            predict = loaded.predict_array
        elif loaded.direct or self._order or batch.frame or batch.columns is not None:
            data = batch.as_frame(self._order)  # pyfunc enforces a column signature on a DataFrame
        else:
            data = batch.as_matrix(None)  # pyfunc with a tensor signature (or none): the array as is
        try:
            return predict(data)
        except (ValueError, TypeError, KeyError) as e:
            raise InvalidInput(f"the model rejected the input: {e}") from e
        except Exception as e:  # noqa: BLE001 - classify MLflow's schema errors without importing mlflow
            if getattr(e, "error_code", None) == "INVALID_PARAMETER_VALUE":
                raise InvalidInput(f"the model rejected the input: {getattr(e, 'message', e)}") from e
            log.exception("prediction failed")
            raise InferenceError(f"prediction failed: {type(e).__name__}: {e}") from e


def _metadata(spec: Column, index: int, side: str) -> dict[str, Any]:
    """One V2 metadata entry; an unnamed tensor is listed as the name it travels under (``input-0``, ``output-0``)."""
    if not spec.is_tensor:
        return {"name": spec.name, "datatype": spec.datatype, "shape": [-1]}
    name = spec.name or f"{side}-{index}"
    return {"name": name, "datatype": spec.datatype, "shape": list(spec.shape or ())}


def encode_outputs(predictions: Any, rows: int, raw: bool = False, specs: tuple[Column, ...] = ()) -> list[InferOutput]:
    """V2 outputs for what a model returned: arrays, lists, Series, DataFrames or dicts of arrays.

    With ``raw`` (gRPC) the data is binary (``raw_output_contents``, as Triton
    answers): KServe's ``to_grpc`` cannot take a numpy array of more than one
    element as ``data`` (it tests the array's truth value).
    """
    outputs = []
    for name, array, datatype in output_arrays(predictions, rows, specs):
        if raw:
            output = InferOutput(name=name, shape=list(array.shape), datatype=datatype)
            output.set_data_from_numpy(array, binary_data=True)
        else:
            output = InferOutput(name=name, shape=list(array.shape), datatype=datatype, data=array)
        outputs.append(output)
    return outputs


def rest_outputs(predictions: Any, rows: int, specs: tuple[Column, ...] = ()) -> list[dict[str, Any]]:
    """The same outputs as JSON-ready dicts (numeric data stays numpy, for orjson's numpy support)."""
    return [
        {
            "name": name,
            "shape": list(array.shape),
            "datatype": datatype,
            "data": array.ravel().tolist() if datatype == "BYTES" else np.ascontiguousarray(array).ravel(),
        }
        for name, array, datatype in output_arrays(predictions, rows, specs)
    ]


def output_arrays(predictions: Any, rows: int, specs: tuple[Column, ...] = ()) -> list[tuple[str, np.ndarray, str]]:
    """(name, array, V2 datatype) per output; one ``output-0`` for plain arrays, unless a tensor signature names it."""
    if hasattr(predictions, "columns") and hasattr(predictions, "to_numpy"):  # DataFrame
        named = [(str(name), predictions[name].to_numpy()) for name in predictions.columns]
    elif isinstance(predictions, Mapping):
        named = [(str(name), np.asarray(value)) for name, value in predictions.items()]
    else:
        if hasattr(predictions, "to_numpy"):  # Series
            predictions = predictions.to_numpy()
        array = np.asarray(predictions)
        if array.ndim == 0:
            array = array.reshape(1)
        if array.shape[0] != rows:
            log.debug("the model returned %s values for %s rows", array.shape[0], rows)
        named = [(OUTPUT_NAME, array)]
    return [(name, *_typed(array)) for name, array in typed_outputs(specs, named)]


def _typed(array: np.ndarray) -> tuple[np.ndarray, str]:
    if array.ndim == 0:
        array = array.reshape(1)
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    elif array.dtype.kind in "USO" or np.issubdtype(array.dtype, np.datetime64):
        array = np.array([_text(v) for v in array.ravel()], dtype=np.object_).reshape(array.shape)
    datatype = from_np_dtype(array.dtype)
    if datatype is None:
        raise InferenceError(f"the model returned {array.dtype} values, which V2 cannot carry")
    return array, datatype


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
