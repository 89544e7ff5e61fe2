"""The serving bench's peer plumbing: MLServer's named request, and when a peer's answer counts as ours."""

from __future__ import annotations

import struct

import pytest

from bench._mlserver import named_request
from bench.serving import Answer, same_answers


def test_mlserver_gets_one_named_fp64_column_tensor_per_signature_column() -> None:
    request = named_request([[7.0, 0.27, 0.36], [6.3, 0.3, 0.34]], ["fixed acidity", "volatile acidity", "citric acid"])

    assert request == {
        "inputs": [
            {"name": "fixed acidity", "shape": [2, 1], "datatype": "FP64", "data": [7.0, 6.3]},
            {"name": "volatile acidity", "shape": [2, 1], "datatype": "FP64", "data": [0.27, 0.3]},
            {"name": "citric acid", "shape": [2, 1], "datatype": "FP64", "data": [0.36, 0.34]},
        ]
    }


def test_an_fp32_answer_spelled_widened_by_a_peer_is_the_same_float32() -> None:
    same_answers(Answer([5.851664], fp32=True), Answer([5.851664066314697]), "mlserver")


def test_an_fp32_answer_one_float32_step_away_differs() -> None:
    (bits,) = struct.unpack("<I", struct.pack("<f", 5.851664))
    (next_up,) = struct.unpack("<f", struct.pack("<I", bits + 1))

    with pytest.raises(RuntimeError, match="mlserver answered .* for row 1"):
        same_answers(Answer([1.0, 5.851664], fp32=True), Answer([1.0, next_up]), "mlserver")


def test_fp64_answers_agree_to_1e_12_relative_and_no_further() -> None:
    same_answers(Answer([5.645793700434726]), Answer([5.645793700434726 * (1 + 1e-13)]), "mlflow")

    with pytest.raises(RuntimeError, match="mlflow answered"):
        same_answers(Answer([5.645793700434726]), Answer([5.645793700434726 * (1 + 1e-10)]), "mlflow")


def test_a_peer_answering_another_number_of_rows_differs() -> None:
    with pytest.raises(RuntimeError, match="mlserver answered 1 predictions, ours 2"):
        same_answers(Answer([1.0, 2.0]), Answer([1.0]), "mlserver")
