"""The one MLmodel reader (common.mlmodel): real saved models, and the broken files it must explain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.mlmodel import (
    Column,
    ModelError,
    Signature,
    parse_input_example,
    parse_mlmodel,
    parse_signature,
    read_mlmodel,
)
from tests.fixtures.models import WINE_FEATURES

ROOT = Path(__file__).resolve().parents[2]


def test_default_wine_model(wine_model_dir: Path) -> None:
    mlmodel = read_mlmodel(wine_model_dir)
    assert set(mlmodel.flavors) == {"python_function", "sklearn"}
    sklearn = mlmodel.sklearn
    assert sklearn is not None and (sklearn.model_file, sklearn.serialization_format) == ("model.skops", "skops")
    assert sklearn.sklearn_version and not sklearn.has_code
    assert mlmodel.predict_fn == "predict"
    assert mlmodel.mlflow_version
    signature = mlmodel.signature()
    assert signature is not None
    assert [c.name for c in signature.columns] == WINE_FEATURES
    assert {(c.type, c.datatype) for c in signature.inputs} == {("double", "FP64")}
    (output,) = signature.outputs
    assert output.is_tensor and (output.dtype, output.shape, output.datatype) == ("float64", (-1,), "FP64")
    example_file = mlmodel.example_file
    assert example_file is not None
    example = parse_input_example((wine_model_dir / example_file.path).read_bytes(), example_file.path)
    assert example is not None and example.columns == tuple(WINE_FEATURES) and len(example.rows) == 3


def test_pickle_wine_model(wine_model_pickle_dir: Path) -> None:
    sklearn = read_mlmodel(wine_model_pickle_dir).sklearn
    assert sklearn is not None and (sklearn.model_file, sklearn.serialization_format) == ("model.pkl", "cloudpickle")


def test_tensor_signature() -> None:
    signature = parse_signature(
        {
            "signature": {
                "inputs": '[{"name": "x", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]',
                "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
            }
        }
    )
    assert signature == Signature(
        inputs=(Column("x", "tensor", "float32", (-1, 4)),), outputs=(Column(None, "tensor", "int64", (-1,)),)
    )
    assert signature.columns == () and signature.inputs[0].datatype == "FP32"
    assert signature.named() == signature  # tensors keep their names, or none


def test_columns_optional_and_unnamed() -> None:
    inputs = [{"name": "n", "type": "long"}, {"name": "s", "type": "string", "required": False}, {"type": "double"}]
    signature = parse_signature({"signature": {"inputs": json.dumps(inputs)}})
    assert signature is not None and signature.outputs == ()
    assert signature.inputs == (Column("n", "long"), Column("s", "string", required=False), Column(None, "double"))
    assert [c.datatype for c in signature.inputs] == ["INT64", "BYTES", "FP64"]
    assert [c.name for c in signature.named().inputs] == ["n", "s", "2"]


def test_no_signature() -> None:
    assert parse_signature({}) is None
    assert parse_signature({"signature": {"inputs": "", "outputs": None}}) is None


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("not json", "signature.inputs is not valid JSON"),
        ('[{"name": "a"}]', "signature.inputs is not an MLflow schema"),
        ('[{"type": "tensor"}]', "signature.inputs is not an MLflow schema"),
        ("42", "signature.inputs is not an MLflow schema"),
    ],
)
def test_broken_signature_says_where(inputs: str, message: str) -> None:
    mlmodel = parse_mlmodel(f"flavors: {{python_function: {{}}}}\nsignature: {{inputs: '{inputs}'}}\n", "m/MLmodel")
    with pytest.raises(ModelError, match=f"m/MLmodel: {message}"):
        mlmodel.signature()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flavors: [unclosed", "is not valid YAML"),
        ("- a list", "is not a YAML mapping"),
        ("flavors: {}", "'flavors' is missing or empty"),
        ("signature: {}", "'flavors' is missing or empty"),
    ],
)
def test_broken_mlmodel(text: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        parse_mlmodel(text, "s3://b/m/MLmodel")


def test_unreadable_mlmodel(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read it"):
        read_mlmodel(tmp_path)


def test_flavour_defaults() -> None:
    mlmodel = parse_mlmodel("flavors:\n  sklearn: {pickled_model: model.pkl}\n  python_function: null\n", "MLmodel")
    sklearn = mlmodel.sklearn
    assert sklearn is not None and sklearn.serialization_format == "pickle"  # what MLflow's loader assumes
    assert sklearn.trusted_types == () and sklearn.sklearn_version is None
    assert mlmodel.flavor("python_function") == {} and mlmodel.predict_fn == "predict"
    assert mlmodel.example_file is None and mlmodel.mlflow_version is None
    assert parse_mlmodel("flavors: {onnx: {data: model.onnx}}", "MLmodel").sklearn is None


def test_input_examples() -> None:
    split = parse_input_example(b'{"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}', "x")
    assert split is not None and split.columns == ("a", "b") and split.rows == ((1, 2), (3, 4))
    wrapped = parse_input_example('{"dataframe_split": {"data": [5, 6]}}', "x")
    assert wrapped is not None and wrapped.columns is None and wrapped.rows == ((5,), (6,))
    assert parse_input_example("[[1, 2]]", "x") is None  # an ndarray example: not columns and rows
    with pytest.raises(ModelError, match="input_example.json: the input example is not JSON"):
        parse_input_example("{not json", "input_example.json")


def test_the_predictor_imports_no_serving_stack() -> None:
    """The deploy-only predictor image has no mlflow, kserve or scikit-learn: reading MLmodel must not need them."""
    code = (
        "import importlib, pkgutil, sys, steps.predictor\n"
        "for module in pkgutil.walk_packages(steps.predictor.__path__, 'steps.predictor.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(sorted(m for m in ('mlflow', 'kserve', 'sklearn', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
