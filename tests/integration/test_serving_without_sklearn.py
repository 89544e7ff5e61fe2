"""The runtime serves a non-scikit-learn model where only ``serving/requirements.txt`` is installed.

An ONNX, XGBoost or custom pyfunc model's own environment has no scikit-learn,
skops or scipy (only the runtime's requirements and the model's), so the
runtime must not need them unless the model is a scikit-learn model. Rather
than build such a venv (minutes), the real runtime (``python -m serving``) is
started behind an import hook that makes every other installed package
unimportable (``tests.fixtures.runtime_only``, which checks the hook is in
force), and must load and answer for pyfunc models with tensor signatures
(their code needs only mlflow and numpy). They also exercise V2 tensor inputs
end to end: named tensors in, the output signature's names and datatypes out,
and one unnamed tensor under any name for a single-input model. A plain linear
scikit-learn model saved with skops needs neither either: it is served from the
weights in its file (``serving.skops_linear``).
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.fixtures.runtime_only import launcher
from tests.fixtures.serving import assert_oip, free_port, running

pytestmark = pytest.mark.integration

# The runtime's own __main__, run where only serving/requirements.txt is importable (tests.fixtures.runtime_only).
RUN_SERVING = """
import runpy
sys.argv = ["serving", *sys.argv[1:]]
runpy.run_module("serving", run_name="__main__", alter_sys=True)
"""

TWO_INPUTS = """
import mlflow
import numpy as np


class SumModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        a, b = model_input["a"], model_input["b"]
        assert a.dtype == np.float32 and b.dtype == np.int64, (a.dtype, b.dtype)
        return {"count": np.full(a.shape[0], a.shape[1]), "total": a.sum(axis=1) + b}


mlflow.models.set_model(SumModel())
"""

ONE_INPUT = """
import mlflow
import numpy as np


class ScaleModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        assert isinstance(model_input, np.ndarray) and model_input.dtype == np.float64, type(model_input)
        return model_input * 2.0


mlflow.models.set_model(ScaleModel())
"""


def save_code_model(folder: Path, code: str, inputs: list[Any], outputs: list[Any]) -> Path:
    """A pyfunc model from code (MLflow's models-from-code), with a tensor signature."""
    import mlflow
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema

    folder.mkdir(parents=True)
    source = folder / "model_code.py"
    source.write_text(code)
    model_dir = folder / "model"
    signature = ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))
    # Requirements given: inferring them would load the model in a subprocess, seconds for nothing here.
    with warnings.catch_warnings():  # MLflow's advice (type hints, an input example): not what is tested here
        warnings.simplefilter("ignore", UserWarning)
        mlflow.pyfunc.save_model(
            str(model_dir), python_model=str(source), signature=signature, pip_requirements=["mlflow-skinny", "numpy"]
        )
    return model_dir


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from mlflow.types.schema import TensorSpec

    root = tmp_path_factory.mktemp("tensor-models")
    return {
        "sum": save_code_model(
            root / "sum",
            TWO_INPUTS,
            [TensorSpec(np.dtype("float32"), (-1, 2), "a"), TensorSpec(np.dtype("int64"), (-1,), "b")],
            [TensorSpec(np.dtype("float32"), (-1,), "total"), TensorSpec(np.dtype("int64"), (-1,), "count")],
        ),
        "scale": save_code_model(
            root / "scale",
            ONE_INPUT,
            [TensorSpec(np.dtype("float64"), (-1, 3))],
            [TensorSpec(np.dtype("float32"), (-1, 3))],
        ),
    }


def serve_without_sklearn(model_dir: Path, name: str, grpc_port: int = 0) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-c", launcher(RUN_SERVING), "--model", str(model_dir), "--name", name]
    argv += ["--port", str(port), "--grpc-port", str(grpc_port), "--host", "127.0.0.1"]
    with running(argv, url):
        yield url


@pytest.fixture(scope="module")
def sum_grpc_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def sum_server(models: dict[str, Path], sum_grpc_port: int) -> Iterator[str]:
    yield from serve_without_sklearn(models["sum"], "sum", sum_grpc_port)


@pytest.fixture(scope="module")
def scale_server(models: dict[str, Path]) -> Iterator[str]:
    yield from serve_without_sklearn(models["scale"], "scale")


def infer(url: str, name: str, inputs: list[dict[str, Any]]) -> requests.Response:
    return requests.post(f"{url}/v2/models/{name}/infer", json={"inputs": inputs}, timeout=30)


def test_named_tensors_in_and_the_output_signature_out(sum_server: str) -> None:
    a = {"name": "a", "shape": [2, 2], "datatype": "FP64", "data": [1.5, 2, 3, 4]}  # FP64 sent, float32 taken
    b = {"name": "b", "shape": [2], "datatype": "INT32", "data": [10, 20]}
    response = infer(sum_server, "sum", [b, a])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_oip(answer, "inference_response")
    outputs = [(o["name"], o["datatype"], o["shape"], o["data"]) for o in answer["outputs"]]
    # The signature's order and dtypes: the model returned count first, total as float64 and count as int64.
    assert outputs == [("total", "FP32", [2], [13.5, 27.0]), ("count", "INT64", [2], [2, 2])]


def test_named_tensors_over_grpc(sum_server: str, sum_grpc_port: int) -> None:
    """The gRPC transport (binary outputs) names and types outputs by the signature too."""
    from kserve import InferenceGRPCClient
    from kserve.protocol.infer_type import InferInput, InferRequest

    a, b = InferInput("a", [1, 2], "FP32"), InferInput("b", [1], "INT64")
    a.set_data_from_numpy(np.array([[0.5, 1.0]], dtype=np.float32))
    b.set_data_from_numpy(np.array([3], dtype=np.int64))

    async def ask() -> dict[str, tuple[str, list[Any]]]:
        client = InferenceGRPCClient(f"127.0.0.1:{sum_grpc_port}")
        try:
            answer = await client.infer(InferRequest("sum", [a, b]))
            return {o.name: (o.datatype, o.as_numpy().tolist()) for o in answer.outputs}
        finally:
            await client.close()

    assert asyncio.run(ask()) == {"total": ("FP32", [4.5]), "count": ("INT64", [2])}


def test_metadata_lists_the_tensor_signature(sum_server: str) -> None:
    metadata = requests.get(f"{sum_server}/v2/models/sum", timeout=5).json()
    assert_oip(metadata, "metadata_model_response")
    assert metadata["inputs"] == [
        {"name": "a", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "b", "datatype": "INT64", "shape": [-1]},
    ]
    assert [o["name"] for o in metadata["outputs"]] == ["total", "count"]


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ([{"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}], ["missing input", "'b'"]),
        ([{"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
          {"name": "b", "shape": [1], "datatype": "INT64", "data": [1]}], ["'a'", "[-1, 2]"]),
        ([{"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]},
          {"name": "b", "shape": [1], "datatype": "FP32", "data": [1.5]}], ["'b'", "fractions"]),
        ([{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], ["unknown input", "'x'", "'a'"]),
    ],
)  # fmt: skip
def test_bad_tensors_are_400_naming_the_input(sum_server: str, inputs: list[dict[str, Any]], words: list[str]) -> None:
    response = infer(sum_server, "sum", inputs)
    assert response.status_code == 400, response.text
    assert_oip(response.json(), "inference_error_response")
    for word in words:
        assert word in response.json()["error"]


@pytest.mark.parametrize("name", ["input-0", "anything"])
def test_single_input_model_takes_one_tensor_under_any_name(scale_server: str, name: str) -> None:
    tensor = {"name": name, "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6.5]]}
    response = infer(scale_server, "scale", [tensor])
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("output-0", "FP32", [2, 3])
    assert output["data"] == [2, 4, 6, 8, 10, 13]


# -- a plain linear scikit-learn model (skops) is served from its weights: no scikit-learn needed ----------


@pytest.fixture(scope="module")
def wine_server(wine_model_dir: Path) -> Iterator[str]:
    yield from serve_without_sklearn(wine_model_dir, "wine")


def test_a_linear_skops_model_is_served_without_scikit_learn(wine_server: str, wine_model_dir: Path) -> None:
    import mlflow.sklearn

    from tests.fixtures.models import WINE_FEATURES, load_wine_data

    rows = load_wine_data()[WINE_FEATURES].head(5)
    tensor = {"name": "input-0", "shape": [5, 11], "datatype": "FP64", "data": rows.to_numpy().ravel().tolist()}
    response = infer(wine_server, "wine", [tensor])
    assert response.status_code == 200, response.text
    assert_oip(response.json(), "inference_response")
    (output,) = response.json()["outputs"]
    expected = mlflow.sklearn.load_model(str(wine_model_dir)).predict(rows)
    assert output["data"] == pytest.approx(expected.tolist(), rel=1e-12)
    # A DataFrame request needs the estimator itself, which needs scikit-learn: a 500 that says what is missing.
    columns = [{"name": name, "shape": [1], "datatype": "FP64", "data": [rows[name].iloc[0]]} for name in WINE_FEATURES]
    body = {"inputs": columns, "parameters": {"content_type": "pd"}}
    response = requests.post(f"{wine_server}/v2/models/wine/infer", json=body, timeout=30)
    assert response.status_code == 500, response.text
    assert "model.skops: cannot load the skops model (ModuleNotFoundError" in response.json()["error"]
