"""The readiness probe: requests shaped like real clients', and a failure that says what it tried."""

from __future__ import annotations

import pytest

from steps.predictor.model_info import Column, ModelInfo
from steps.predictor.probe import ProbeFailed, build_request, probe
from tests.fixtures.kube_api import FakeKubeApi

FLAVORS = {"python_function": {}}


def tabular(types: list[str], example: tuple | None = None) -> ModelInfo:
    columns = tuple(Column(f"c{i}", t) for i, t in enumerate(types))
    return ModelInfo(
        "m", FLAVORS, ("MLmodel",), inputs=columns,
        example_columns=tuple(c.name for c in columns) if example else None,
        example_rows=(example,) if example else (),
    )  # fmt: skip


def test_numeric_example_becomes_one_fp32_2d_tensor_like_the_contract_client() -> None:
    request = build_request(tabular(["double", "double"], (7.4, 0.7)))
    assert request.body == {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP32", "data": [[7.4, 0.7]]}]}
    assert "input example" in request.source


def test_signature_without_example_gives_zeros_and_ints_stay_ints() -> None:
    request = build_request(tabular(["long", "integer"]))
    assert request.body["inputs"][0] == {"name": "input-0", "shape": [1, 2], "datatype": "INT64", "data": [[0, 0]]}


def test_mixed_types_or_mlserver_go_per_column_with_pandas_content_type() -> None:
    request = build_request(tabular(["double", "string"], (1.5, "red")))
    assert request.body["parameters"] == {"content_type": "pd"}
    assert request.body["inputs"][1] == {"name": "c1", "shape": [1], "datatype": "BYTES", "data": ["red"]}
    per_column = build_request(tabular(["double"], (1.5,)), per_column=True)
    assert per_column.body["inputs"] == [{"name": "c0", "shape": [1], "datatype": "FP64", "data": [1.5]}]


def test_tensor_signature_gives_named_tensors() -> None:
    info = ModelInfo("m", FLAVORS, (), inputs=(Column("x", "tensor", "float32", (-1, 2, 2)),))
    assert build_request(info).body == {
        "inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP32", "data": [0, 0, 0, 0]}]
    }


def test_no_signature_no_example_means_only_a_readiness_check() -> None:
    assert build_request(ModelInfo("m", FLAVORS, ())).body is None


def test_probe_uses_the_first_url_that_answers() -> None:
    with FakeKubeApi() as api:
        url = probe(["http://127.0.0.1:9", api.url], "wine", tabular(["double"], (1.0,)), per_column=False, timeout=0)
    assert url == f"{api.url}/v2/models/wine/infer"


def test_probe_failure_names_each_url_and_its_answer() -> None:
    with FakeKubeApi() as api:
        api.infer_status["wine"] = 503
        with pytest.raises(ProbeFailed) as raised:
            probe([api.url], "wine", tabular(["double"], (1.0,)), per_column=False, timeout=0)
    assert f"{api.url}: HTTP 503" in str(raised.value) and "input example" in str(raised.value)
