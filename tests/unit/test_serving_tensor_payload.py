"""V2 requests for tensor signatures (ONNX, Keras, custom pyfunc), with signatures built by hand.

Requests are built as KServe's REST layer builds them, so the decoder sees
what a model behind ``POST /v2/models/<name>/infer`` sees.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.v2_datamodels import InferenceRequest

from common.mlmodel import Column, parse_signature
from serving.model import output_arrays
from serving.tensor_payload import TensorDecoder, typed_outputs

IMAGE = Column(name=None, type="tensor", dtype="float32", shape=(-1, 2, 2))
IDS = Column(name="ids", type="tensor", dtype="int64", shape=(-1, 3))
MASK = Column(name="mask", type="tensor", dtype="bool", shape=(-1, 3))


def request(*inputs: dict[str, Any]) -> InferRequest:
    return InferRequest.from_inference_request(InferenceRequest.model_validate({"inputs": list(inputs)}), "m")


def tensor(name: str, shape: list[int], datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_signature_from_mlmodel_gives_the_specs_the_decoder_uses() -> None:
    document = {
        "signature": {
            "inputs": '[{"name": "ids", "type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1, 3]}}]',
            "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1]}}]',
        }
    }
    signature = parse_signature(document)
    assert signature is not None and signature.inputs == (IDS,)


@pytest.mark.parametrize("name", ["input-0", "pixels", ""])
def test_single_unnamed_input_takes_one_tensor_under_any_name_as_an_array(name: str) -> None:
    batch = TensorDecoder([IMAGE]).decode(request(tensor(name or "x", [2, 2, 2], "FP64", list(range(8)))))
    data = batch.model_input()
    assert isinstance(data, np.ndarray) and data.dtype == np.float32 and data.shape == (2, 2, 2)
    assert batch.rows == 2


def test_one_example_without_its_batch_axis() -> None:
    batch = TensorDecoder([IMAGE]).decode(request(tensor("input-0", [2, 2], "FP32", [1, 2, 3, 4])))
    assert batch.model_input().shape == (1, 2, 2)


def test_single_named_input_is_given_by_name() -> None:
    data = TensorDecoder([IDS]).decode(request(tensor("anything", [1, 3], "INT32", [1, 2, 3]))).model_input()
    assert isinstance(data, dict) and list(data) == ["ids"] and data["ids"].dtype == np.int64


def test_named_inputs_in_any_order_become_a_dict() -> None:
    decoder = TensorDecoder([IDS, MASK])
    batch = decoder.decode(
        request(tensor("mask", [1, 3], "BOOL", [True, False, True]), tensor("ids", [1, 3], "FP64", [7, 8, 9]))
    )
    data = batch.model_input()
    assert set(data) == {"ids", "mask"}
    assert data["ids"].tolist() == [[7, 8, 9]] and data["ids"].dtype == np.int64  # whole FP64 numbers: taken
    assert data["mask"].dtype == np.bool_


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ([tensor("ids", [1, 3], "INT64", [1, 2, 3])], ["missing input", "'mask'", "'ids' (INT64 [-1, 3])"]),
        ([tensor("ids", [1, 3], "INT64", [1, 2, 3]), tensor("x", [1, 3], "BOOL", [True] * 3)], ["unknown", "'x'"]),
        ([tensor("ids", [1, 3], "INT64", [1, 2, 3])] * 2, ["more than once", "'ids'"]),
        ([tensor("ids", [1, 4], "INT64", [1, 2, 3, 4]), tensor("mask", [1, 3], "BOOL", [True] * 3)], ["[-1, 3]"]),
        ([tensor("ids", [1, 3], "FP32", [1.5, 2, 3]), tensor("mask", [1, 3], "BOOL", [True] * 3)], ["fractions"]),
        ([tensor("ids", [1, 3], "INT64", [1, 2, 3]), tensor("mask", [1, 3], "INT64", [1, 0, 1])], ["'mask'", "bool"]),
        ([tensor("ids", [1, 3], "BYTES", ["a", "b", "c"]), tensor("mask", [1, 3], "BOOL", [True] * 3)], ["int64"]),
        ([tensor("ids", [1, 3], "INT64", [1, 2, 3]), tensor("mask", [2, 3], "BOOL", [True] * 3)], ["6 values"]),
    ],
)  # fmt: skip
def test_bad_requests_name_the_input_and_what_it_takes(inputs: list[dict[str, Any]], words: list[str]) -> None:
    with pytest.raises(InvalidInput) as raised:
        TensorDecoder([IDS, MASK]).decode(request(*inputs))
    for word in words:
        assert word in str(raised.value)


def test_wrong_rank_for_a_single_input() -> None:
    with pytest.raises(InvalidInput, match=r"takes \[-1, 2, 2\]"):
        TensorDecoder([IMAGE]).decode(request(tensor("input-0", [1, 4], "FP32", [1, 2, 3, 4])))


def test_values_out_of_the_input_range_are_refused() -> None:
    small = Column(name=None, type="tensor", dtype="uint8", shape=(-1,))
    with pytest.raises(InvalidInput, match="outside the range of uint8"):
        TensorDecoder([small]).decode(request(tensor("input-0", [2], "INT64", [1, 300])))


def test_text_inputs_stay_text() -> None:
    text = Column(name=None, type="tensor", dtype="object", shape=(-1,))
    data = TensorDecoder([text]).decode(request(tensor("input-0", [2], "BYTES", ["a", "b"]))).model_input()
    assert data.tolist() == ["a", "b"]
    with pytest.raises(InvalidInput, match="strings"):
        TensorDecoder([text]).decode(request(tensor("input-0", [1], "FP32", [1.0])))


def test_spec_without_shape_takes_any_shape() -> None:
    free = Column(name=None, type="tensor", dtype="float64", shape=None)
    assert TensorDecoder([free]).decode(request(tensor("x", [2, 1, 1], "FP32", [1, 2]))).model_input().shape == (
        2,
        1,
        1,
    )


# -- outputs ------------------------------------------------------------------------


def test_dict_outputs_follow_the_signature_names_order_and_dtypes() -> None:
    specs = (
        Column(name="label", type="tensor", dtype="int32", shape=(-1,)),
        Column(name="probabilities", type="tensor", dtype="float32", shape=(-1, 2)),
    )
    predictions = {"probabilities": np.array([[0.25, 0.75]]), "label": np.array([1], dtype=np.int64)}
    outputs = [(name, array.shape, datatype) for name, array, datatype in output_arrays(predictions, 1, specs)]
    assert outputs == [("label", (1,), "INT32"), ("probabilities", (1, 2), "FP32")]


def test_a_single_array_takes_the_name_of_the_single_named_output() -> None:
    spec = (Column(name="score", type="tensor", dtype="float32", shape=(-1,)),)
    ((name, array, datatype),) = output_arrays(np.array([1.5, 2.5]), 2, spec)
    assert (name, datatype, array.tolist()) == ("score", "FP32", [1.5, 2.5])


def test_an_unnamed_output_spec_keeps_output_0() -> None:
    spec = (Column(name=None, type="tensor", dtype="float64", shape=(-1,)),)
    assert output_arrays(np.array([1.0]), 1, spec)[0][0] == "output-0"


def test_outputs_are_never_truncated_to_another_kind() -> None:
    spec = (Column(name=None, type="tensor", dtype="int64", shape=(-1,)),)
    ((_, array, datatype),) = output_arrays(np.array([5.58]), 1, spec)
    assert (datatype, array.tolist()) == ("FP64", [5.58])  # a regressor whose signature says int64 keeps its floats
    small = (Column(name=None, type="tensor", dtype="int8", shape=(-1,)),)
    assert output_arrays(np.array([1000]), 1, small)[0][2] == "INT64"  # would overflow int8: kept as it is


def test_column_output_signatures_keep_todays_outputs() -> None:
    columns = (Column(name="0", type="double"),)
    named = [("output-0", np.array([1.0]))]
    assert typed_outputs(columns, named) == named
