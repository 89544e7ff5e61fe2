"""The serving runtime's decoding, validation, prediction and encoding, in process (no server).

Requests are built from JSON-like dicts exactly as KServe's REST layer builds
them (``InferenceRequest`` -> ``InferRequest``), so these tests see what the
model sees behind ``POST /v2/models/<name>/infer``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.v2_datamodels import InferenceRequest

from common.mlmodel import MLMODEL, Column
from serving.loader import ModelLoadError, fetch_model, find_model_dir, load_model
from serving.model import MlflowModel, encode_outputs
from serving.payload import PayloadDecoder
from tests.fixtures.models import WINE_FEATURES, load_wine_data, wine_feature_rows

# The fast path gives sklearn numpy on purpose; the runtime silences this warning, pytest resets filters.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def request(body: dict[str, Any]) -> InferRequest:
    return InferRequest.from_inference_request(InferenceRequest.model_validate(body), "wine")


def tensor(rows: list[list[float]], datatype: str = "FP32", name: str = "input-0", **extra: Any) -> dict[str, Any]:
    return {"inputs": [{"name": name, "shape": [len(rows), len(rows[0])], "datatype": datatype, "data": rows}], **extra}


def per_column(rows: list[list[float]], shape_2d: bool = False, reverse: bool = False) -> dict[str, Any]:
    names = list(reversed(WINE_FEATURES)) if reverse else WINE_FEATURES
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows), 1] if shape_2d else [len(rows)],
                "datatype": "FP64",
                "data": [row[WINE_FEATURES.index(name)] for row in rows],
            }
            for name in names
        ]
    }


@pytest.fixture(scope="module")
def wine(wine_model_dir: Path) -> MlflowModel:
    model = MlflowModel("wine", wine_model_dir, {})
    model.load()
    return model


@pytest.fixture(scope="module")
def expected(wine: MlflowModel) -> np.ndarray:
    """What the estimator itself predicts for the first 5 rows, from a DataFrame."""
    frame = load_wine_data()[WINE_FEATURES].head(5)
    return np.asarray(wine.loaded.predict(frame))


def predictions(model: MlflowModel, body: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
    response = model.predict(request(body))
    rest, _ = response.to_rest()
    output = rest["outputs"][0]
    return output["data"], rest


# -- accepted forms ---------------------------------------------------------------


def test_loads_skops_model_without_pyfunc(wine: MlflowModel) -> None:
    assert wine.ready
    assert wine.loaded.flavor == "sklearn" and wine.loaded.direct
    assert wine.loaded.n_features == 11


def test_real_client_body_gives_one_fp64_number(wine: MlflowModel, expected: np.ndarray) -> None:
    body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": wine_feature_rows(1)}]}
    data, rest = predictions(wine, body)
    output = rest["outputs"][0]
    assert output["datatype"] == "FP64" and output["shape"] == [1]
    assert isinstance(data[0], float)
    assert data[0] == pytest.approx(expected[0], rel=1e-5)  # FP32 input: float32 rounding
    assert rest["model_name"] == "wine"
    assert rest["id"]  # generated: the request had none


def test_request_id_is_echoed(wine: MlflowModel) -> None:
    _, rest = predictions(wine, tensor(wine_feature_rows(1), id="abc-1"))
    assert rest["id"] == "abc-1"


@pytest.mark.parametrize("datatype", ["FP64", "FP32"])
def test_tensor_of_several_rows(wine: MlflowModel, expected: np.ndarray, datatype: str) -> None:
    data, rest = predictions(wine, tensor(wine_feature_rows(5), datatype))
    assert rest["outputs"][0]["shape"] == [5]
    assert data == pytest.approx(expected.tolist(), rel=1e-5)


def test_flat_row_major_data(wine: MlflowModel, expected: np.ndarray) -> None:
    rows = wine_feature_rows(3)
    body = {"inputs": [{"name": "x", "shape": [3, 11], "datatype": "FP64", "data": sum(rows, [])}]}
    data, _ = predictions(wine, body)
    assert data == pytest.approx(expected[:3].tolist())


def test_one_row_as_a_vector(wine: MlflowModel, expected: np.ndarray) -> None:
    body = {"inputs": [{"name": "x", "shape": [11], "datatype": "FP64", "data": wine_feature_rows(1)[0]}]}
    data, _ = predictions(wine, body)
    assert data == pytest.approx(expected[:1].tolist())


def test_integer_tensor(wine: MlflowModel) -> None:
    rows = [[int(v) for v in wine_feature_rows(1)[0]]]
    data, _ = predictions(wine, tensor(rows, "INT64"))
    assert isinstance(data[0], float)


@pytest.mark.parametrize("shape_2d", [False, True])
def test_named_columns_in_any_order(wine: MlflowModel, expected: np.ndarray, shape_2d: bool) -> None:
    data, _ = predictions(wine, per_column(wine_feature_rows(5), shape_2d=shape_2d, reverse=True))
    assert data == pytest.approx(expected.tolist())


def test_pandas_content_type(wine: MlflowModel, expected: np.ndarray) -> None:
    body = per_column(wine_feature_rows(5)) | {"parameters": {"content_type": "pd"}}
    data, _ = predictions(wine, body)
    assert data == pytest.approx(expected.tolist())


def test_pickle_model_predicts_the_same(wine_model_pickle_dir: Path, expected: np.ndarray) -> None:
    model = MlflowModel("wine", wine_model_pickle_dir, {})
    model.load()
    assert model.loaded.direct
    data, _ = predictions(model, tensor(wine_feature_rows(5), "FP64"))
    assert data == pytest.approx(expected.tolist())


def test_metadata_lists_signature_columns(wine: MlflowModel) -> None:
    inputs = wine.get_input_types()
    assert [i["name"] for i in inputs] == WINE_FEATURES
    assert {i["datatype"] for i in inputs} == {"FP64"}
    assert wine.get_output_types() == [{"name": "output-0", "datatype": "FP64", "shape": [-1]}]


# -- rejected payloads: InvalidInput (400) with a message that says what to fix ----------


def rejects(model: MlflowModel, body: dict[str, Any], *words: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        model.predict(request(body))
    message = str(caught.value)
    for word in words:
        assert word in message, message
    return message


def test_wrong_width(wine: MlflowModel) -> None:
    rows = [wine_feature_rows(1)[0][:10]]
    rejects(wine, tensor(rows), "10 columns", "takes 11", "fixed acidity")


def test_three_dimensional_tensor(wine: MlflowModel) -> None:
    body = {"inputs": [{"name": "x", "shape": [1, 1, 11], "datatype": "FP32", "data": [wine_feature_rows(1)]}]}
    rejects(wine, body, "2-D")


def test_shape_does_not_match_data(wine: MlflowModel) -> None:
    body = {"inputs": [{"name": "x", "shape": [2, 11], "datatype": "FP32", "data": wine_feature_rows(1)}]}
    rejects(wine, body, "22 values", "holds 11")


def test_ragged_data(wine: MlflowModel) -> None:
    rows = wine_feature_rows(2)
    rows[1] = rows[1][:5]
    rejects(wine, tensor(rows), "rectangular")


def test_strings_in_a_float_tensor(wine: MlflowModel) -> None:
    rows = [["a"] * 11]
    rejects(wine, tensor(rows), "FP32", "strings")


def test_null_in_a_float_tensor(wine: MlflowModel) -> None:
    rows = wine_feature_rows(1)
    rows[0][3] = None
    rejects(wine, tensor(rows), "FP32")


def test_unsupported_datatype(wine: MlflowModel) -> None:
    rejects(wine, tensor(wine_feature_rows(1), "COMPLEX"), "COMPLEX", "supported")


def test_fractions_in_an_integer_tensor(wine: MlflowModel) -> None:
    rejects(wine, tensor(wine_feature_rows(1), "INT32"), "non-integer")


def test_numbers_in_a_bool_tensor(wine: MlflowModel) -> None:
    rejects(wine, tensor(wine_feature_rows(1), "BOOL"), "BOOL")


def test_out_of_range_unsigned(wine: MlflowModel) -> None:
    rejects(wine, tensor([[-1] * 11], "UINT8"), "range")


def test_unknown_names(wine: MlflowModel) -> None:
    body = per_column(wine_feature_rows(1))
    body["inputs"][0]["name"] = "acidity"
    rejects(wine, body, "'acidity'", "fixed acidity")


def test_missing_column(wine: MlflowModel) -> None:
    body = per_column(wine_feature_rows(1))
    del body["inputs"][-1]
    rejects(wine, body, "missing", "'alcohol'")


def test_duplicate_names(wine: MlflowModel) -> None:
    body = per_column(wine_feature_rows(1))
    body["inputs"].append(dict(body["inputs"][0]))
    rejects(wine, body, "more than once")


def test_columns_of_different_lengths(wine: MlflowModel) -> None:
    body = per_column(wine_feature_rows(2))
    body["inputs"][4] = {**body["inputs"][4], "shape": [1], "data": body["inputs"][4]["data"][:1]}
    rejects(wine, body, "same number of rows")


def test_text_for_a_double_column(wine: MlflowModel) -> None:
    body = per_column(wine_feature_rows(1)) | {"parameters": {"content_type": "pd"}}
    body["inputs"][2] = {"name": "citric acid", "shape": [1], "datatype": "BYTES", "data": ["high"]}
    rejects(wine, body, "citric acid", "double", "BYTES")


def test_no_inputs(wine: MlflowModel) -> None:
    rejects(wine, {"inputs": []}, "no inputs")


def test_no_rows(wine: MlflowModel) -> None:
    body = {"inputs": [{"name": "x", "shape": [0, 11], "datatype": "FP32", "data": []}]}
    rejects(wine, body, "no rows")


def test_v1_payload_is_refused(wine: MlflowModel) -> None:
    with pytest.raises(InvalidInput, match="V2"):
        wine.predict({"instances": wine_feature_rows(1)})


def test_nan_is_refused_by_the_model(wine: MlflowModel) -> None:
    rows = wine_feature_rows(1)
    rows[0][0] = float("nan")
    rejects(wine, tensor(rows, "FP64"), "rejected")


# -- pieces ------------------------------------------------------------------------


def test_decoder_without_signature_takes_any_width() -> None:
    batch = PayloadDecoder().decode(request(tensor([[1.0, 2.0, 3.0]])))
    assert batch.matrix is not None and batch.matrix.shape == (1, 3)


def test_decoder_checks_integer_and_text_columns() -> None:
    decoder = PayloadDecoder([Column("n", "long"), Column("s", "string")])
    ok = {"inputs": [{"name": "n", "shape": [1], "datatype": "FP64", "data": [2.0]}]}
    ok["inputs"].append({"name": "s", "shape": [1], "datatype": "BYTES", "data": ["x"]})
    batch = decoder.decode(request(ok))
    assert batch.frame and batch.as_frame(["n", "s"]).columns.tolist() == ["n", "s"]
    bad = {"inputs": [dict(ok["inputs"][0], data=[2.5]), ok["inputs"][1]]}
    with pytest.raises(InvalidInput, match="fractions"):
        decoder.decode(request(bad))


def test_tensor_signature_metadata(wine_model_dir: Path, tmp_path: Path) -> None:
    model_dir = shutil.copytree(wine_model_dir, tmp_path / "model")
    mlmodel = yaml.safe_load((model_dir / MLMODEL).read_text())
    mlmodel["signature"] = {
        "inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 11]}}]',
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
    }
    (model_dir / MLMODEL).write_text(yaml.safe_dump(mlmodel))
    model = MlflowModel("wine", model_dir, {})
    model.load()
    (tensor_input,) = model.get_input_types()
    assert (tensor_input["datatype"], tensor_input["shape"]) == ("FP64", [-1, 11])
    assert model.get_output_types() == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]
    assert model.decoder.columns == ()  # a tensor signature names no columns to check


def test_unnamed_columns_are_named_by_position(wine_model_dir: Path, tmp_path: Path) -> None:
    model_dir = shutil.copytree(wine_model_dir, tmp_path / "model")
    mlmodel = yaml.safe_load((model_dir / MLMODEL).read_text())
    mlmodel["signature"]["inputs"] = json.dumps([{"type": "double"}] * 11)
    (model_dir / MLMODEL).write_text(yaml.safe_dump(mlmodel))
    model = MlflowModel("wine", model_dir, {})
    model.load()
    assert [i["name"] for i in model.get_input_types()] == [str(i) for i in range(11)]
    row = wine_feature_rows(1)[0]
    body = {"inputs": [{"name": str(i), "shape": [1], "datatype": "FP64", "data": [v]} for i, v in enumerate(row)]}
    data, _ = predictions(model, body)
    assert data == pytest.approx(predictions(model, tensor([row], "FP64"))[0])


def test_a_broken_signature_is_ignored_with_a_warning(
    wine_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model_dir = shutil.copytree(wine_model_dir, tmp_path / "model")
    mlmodel = yaml.safe_load((model_dir / MLMODEL).read_text())
    mlmodel["signature"]["inputs"] = "not json"
    (model_dir / MLMODEL).write_text(yaml.safe_dump(mlmodel))
    model = MlflowModel("wine", model_dir, {})
    with caplog.at_level("WARNING", logger="serving.loader"):
        model.load()
    assert model.loaded.signature is None
    assert "signature.inputs is not valid JSON" in caplog.text
    data, _ = predictions(model, tensor(wine_feature_rows(1), "FP64"))
    assert len(data) == 1


def test_encode_outputs_of_each_kind() -> None:
    frame = pd.DataFrame({"label": ["a", "b"], "score": [0.5, 0.25]})
    outputs = encode_outputs(frame, 2)
    assert [(o.name, o.datatype, o.shape) for o in outputs] == [("label", "BYTES", [2]), ("score", "FP64", [2])]
    outputs = encode_outputs({"p": np.array([[0.1, 0.9]], dtype=np.float32)}, 1)
    assert (outputs[0].name, outputs[0].datatype, outputs[0].shape) == ("p", "FP32", [1, 2])
    outputs = encode_outputs(pd.Series([1, 2]), 2)
    assert (outputs[0].name, outputs[0].datatype) == ("output-0", "INT64")
    assert encode_outputs(np.float64(3.0), 1)[0].shape == [1]


# -- loading ------------------------------------------------------------------------


def test_model_in_a_subfolder_is_found(wine_model_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(wine_model_dir, tmp_path / "artifacts" / "model")
    assert find_model_dir(tmp_path / "artifacts") == tmp_path / "artifacts" / "model"
    assert fetch_model(f"file://{tmp_path}/artifacts/model/MLmodel", {}) == tmp_path / "artifacts" / "model"


def test_folder_without_mlmodel(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no MLmodel"):
        fetch_model(str(tmp_path), {})


def test_pickle_deserialisation_can_be_refused(wine_model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        load_model(wine_model_dir, {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"})


def test_other_flavours_go_through_pyfunc(tmp_path: Path) -> None:
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
            return model_input["a"].to_numpy() * 2

    example = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    path = tmp_path / "doubler"
    mlflow.pyfunc.save_model(
        str(path),
        python_model=Doubler(),
        signature=infer_signature(example, np.array([2.0, 4.0])),
        input_example=example,
    )
    model = MlflowModel("doubler", path, {})
    model.load()
    assert not model.loaded.direct
    data, _ = predictions(
        model, {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1, 3], [5, 7]]}]}
    )
    assert data == [2.0, 10.0]
    data, _ = predictions(
        model,
        {
            "inputs": [
                {"name": "b", "shape": [1], "datatype": "FP64", "data": [1]},
                {"name": "a", "shape": [1], "datatype": "FP64", "data": [4]},
            ]
        },
    )
    assert data == [8.0]


# -- the KServe runtime manifest --------------------------------------------------------


def test_cluster_serving_runtime_manifest() -> None:
    from serving.cli import parse_args

    manifest_path = Path(__file__).resolve().parents[2] / "deploy" / "kserve" / "fuseml-mlflow-runtime.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("serving.kserve.io/v1alpha1", "ClusterServingRuntime")
    spec = manifest["spec"]
    formats = spec["supportedModelFormats"]
    assert {f["name"] for f in formats} == {"mlflow"} and all(f["autoSelect"] for f in formats)
    assert all(f["priority"] > 1 for f in formats), "must win over kserve-mlserver (mlflow priority 1)"
    assert spec["protocolVersions"] == ["v2"]
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"
    assert container["command"] == ["python", "-m", "serving"]
    args = [a.replace("{{.Name}}", "wine") for a in container["args"]]
    parsed = parse_args(args, {})
    assert (parsed.model, parsed.model_name, parsed.http_port, parsed.host) == ("/mnt/models", "wine", 8080, "0.0.0.0")
    assert (parsed.grpc_port, parsed.enable_grpc) == (8081, True)
    assert "--workers=auto" in container["args"], "as many workers as the container's CPU limit"
    ports = {p["containerPort"]: p for p in container["ports"]}
    assert ports[8080]["name"] == "http1" and ports[8081]["name"] == "h2c", "KServe sends gRPC to the h2c port"
