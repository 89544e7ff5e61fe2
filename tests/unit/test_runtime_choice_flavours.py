"""``predictor=auto`` for every MLflow flavour, read from model folders as MLflow writes them.

Each model here is an MLmodel and a requirements.txt written by hand (the
flavour sections MLflow 3.17 writes, with the libraries' real file names), read
through ``inspect_model`` as the step reads a model, so the choice is made from
the same facts: the model file, the other files beside it, the signature, and
the library versions. For flavours too large to install here (TensorFlow,
PyTorch) the InferenceService each choice produces is checked against
KServe's schema too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.errors import InputError
from common.storage import LocalStore
from steps.predictor.kserve_servers import SKLEARN_SERVER, XGBOOST_SERVER
from steps.predictor.model_info import inspect_model
from steps.predictor.runtime_choice import ServingChoice, choose
from steps.predictor.runtimes import FUSEML_MLFLOW
from steps.predictor.targets.kserve import manifests
from tests.fixtures.kube_api import schema_errors

OURS = "in the model's own environment"
ONE_TENSOR = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]
NAMED_TENSOR = [{"name": "float_input", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]
COLUMNS = [{"name": f"f{i}", "type": "double", "required": True} for i in range(4)]


def write_model(
    folder: Path,
    flavor: str,
    conf: dict[str, Any],
    files: dict[str, str],
    requirements: list[str] | None,
    inputs: list[dict[str, Any]] | None = None,
    loader: str | None = None,
) -> Path:
    """A model folder: MLmodel with ``flavor`` and pyfunc, the model's own ``files``, and requirements.txt."""
    folder.mkdir(parents=True)
    mlmodel: dict[str, Any] = {
        "flavors": {
            "python_function": {
                "loader_module": loader or f"mlflow.{flavor}",
                "env": {"virtualenv": "python_env.yaml"},
            },
            flavor: conf,
        },
        "mlflow_version": "3.17.2",
    }
    if inputs is not None:
        mlmodel["signature"] = {"inputs": json.dumps(inputs), "outputs": None}
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    (folder / "python_env.yaml").write_text("python: 3.11.7\ndependencies:\n- -r requirements.txt\n")
    if requirements is not None:
        (folder / "requirements.txt").write_text("\n".join(["mlflow==3.17.2", *requirements]) + "\n")
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def auto(folder: Path, predictor: str = "auto") -> ServingChoice:
    return choose(inspect_model(str(folder), LocalStore()), predictor)


def sklearn(tmp_path: Path, version: str, pickled: str = "model.pkl", **extra: Any) -> Path:
    serialization = "skops" if pickled.endswith(".skops") else "cloudpickle"
    conf = {"pickled_model": pickled, "serialization_format": serialization, "sklearn_version": version, "code": None}
    files = {pickled: "binary", **extra.pop("files", {})}
    requirements = extra.pop("requirements", [f"scikit-learn=={version}", "cloudpickle==3.1.3"])
    return write_model(tmp_path / "sk", "sklearn", conf, files, requirements, inputs=COLUMNS)


def xgboost(tmp_path: Path, version: str = XGBOOST_SERVER.version, **changes: Any) -> Path:
    conf = {"xgb_version": version, "data": "model.ubj", "model_class": "xgboost.core.Booster", "model_format": "ubj"}
    conf.update(changes.pop("conf", {}))
    files = {conf["data"]: "binary", **changes.pop("files", {})}
    return write_model(
        tmp_path / "xgb", "xgboost", conf, files, [f"xgboost=={version}"], inputs=changes.pop("inputs", ONE_TENSOR)
    )


# -- scikit-learn: the version in requirements.txt decides ---------------------------------------------------


def test_sklearn_pickle_of_the_servers_version_goes_to_kserves_sklearn_server(tmp_path: Path) -> None:
    choice = auto(sklearn(tmp_path, SKLEARN_SERVER.version))
    assert (choice.runtime, choice.model_format, choice.format_version) == ("kserve-sklearnserver", "sklearn", "1")
    assert "loads as it is with scikit-learn 1.5.2" in choice.describe()


def test_sklearn_pickle_of_another_version_goes_to_our_runtime_in_its_environment(tmp_path: Path) -> None:
    choice = auto(sklearn(tmp_path, "1.6.1"))
    assert choice.runtime == FUSEML_MLFLOW and OURS in choice.reason
    assert "saved with scikit-learn 1.6.1 and the server has 1.5.2" in choice.describe()


def test_requirements_txt_wins_over_the_version_mlmodel_records(tmp_path: Path) -> None:
    folder = sklearn(tmp_path, SKLEARN_SERVER.version, requirements=["scikit-learn==1.7.0"])
    choice = auto(folder)
    assert choice.runtime == FUSEML_MLFLOW and "scikit-learn 1.7.0" in choice.reason


def test_without_requirements_txt_mlmodels_version_decides(tmp_path: Path) -> None:
    assert auto(sklearn(tmp_path, SKLEARN_SERVER.version, requirements=None)).runtime == "kserve-sklearnserver"


def test_sklearn_requirement_spelt_another_way_is_still_found(tmp_path: Path) -> None:
    folder = sklearn(tmp_path, SKLEARN_SERVER.version, requirements=["Scikit_Learn[alldeps] == 1.5.2  # pinned"])
    assert auto(folder).runtime == "kserve-sklearnserver"


def test_sklearn_skops_goes_to_our_runtime(tmp_path: Path) -> None:
    choice = auto(sklearn(tmp_path, SKLEARN_SERVER.version, pickled="model.skops"))
    assert choice.runtime == FUSEML_MLFLOW and "model.skops" in choice.reason


# -- XGBoost and LightGBM -----------------------------------------------------------------------------------


def test_xgboost_booster_of_the_servers_version_goes_to_kserves_xgbserver(tmp_path: Path) -> None:
    choice = auto(xgboost(tmp_path))
    assert (choice.engine, choice.runtime, choice.model_format, choice.format_version) == (
        "xgboost", "kserve-xgbserver", "xgboost", "2",
    )  # fmt: skip
    assert "model.ubj" in choice.reason and "2.1.4" in choice.reason
    model = isvc_for(choice)
    assert (model["modelFormat"], model["runtime"]) == ({"name": "xgboost", "version": "2"}, "kserve-xgbserver")


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"version": "3.1.0"}, "saved with xgboost 3.1.0 and the server has 2.1.4"),
        ({"files": {"input_example.json": "{}"}}, "exactly one model file"),  # MLflow's example is a .json too
        ({"conf": {"data": "model.xgb", "model_format": "xgb"}}, "model.xgb"),
        ({"conf": {"model_class": "xgboost.sklearn.XGBClassifier"}}, "XGBClassifier"),
        ({"inputs": COLUMNS}, "names columns"),
    ],
)
def test_xgboost_models_the_xgbserver_would_not_answer_for_as_logged_go_to_ours(
    tmp_path: Path, changes: dict[str, Any], why: str
) -> None:
    choice = auto(xgboost(tmp_path, **changes))
    assert choice.runtime == FUSEML_MLFLOW and OURS in choice.reason
    assert why in choice.reason


def test_xgbserver_can_be_forced_unless_it_cannot_read_the_file(tmp_path: Path) -> None:
    forced = auto(xgboost(tmp_path / "a", version="3.1.0"), "xgboost")
    assert forced.runtime == "kserve-xgbserver" and "asked for, though" in forced.reason
    with pytest.raises(InputError, match=r"predictor=xgboost cannot serve .*model\.xgb.*predictor=auto or mlflow"):
        auto(xgboost(tmp_path / "b", conf={"data": "model.xgb"}), "xgboost")


@pytest.mark.parametrize(("data", "model_class"), [("model.lgb", "lightgbm.basic.Booster"),
                                                   ("model.pkl", "lightgbm.sklearn.LGBMRegressor")])  # fmt: skip
def test_lightgbm_goes_to_ours_since_mlflow_never_writes_the_bst_lgbserver_reads(
    tmp_path: Path, data: str, model_class: str
) -> None:
    conf = {"lgb_version": "4.6.0", "data": data, "model_class": model_class}
    folder = write_model(tmp_path / "lgb", "lightgbm", conf, {data: "binary"}, ["lightgbm==4.6.0"], ONE_TENSOR)
    choice = auto(folder)
    assert choice.runtime == FUSEML_MLFLOW and data in choice.reason and ".bst" in choice.reason


# -- ONNX ----------------------------------------------------------------------------------------------------


def onnx(tmp_path: Path, inputs: list[dict[str, Any]] | None, files: dict[str, str] | None = None) -> Path:
    conf = {"onnx_version": "1.19.0", "data": "model.onnx", "providers": ["CPUExecutionProvider"]}
    requirements = ["onnx==1.19.0", "onnxruntime==1.23.2"]
    return write_model(tmp_path / "onnx", "onnx", conf, {"model.onnx": "graph", **(files or {})}, requirements, inputs)


def test_onnx_with_named_inputs_goes_to_triton_with_its_external_data_beside_it(tmp_path: Path) -> None:
    choice = auto(onnx(tmp_path, NAMED_TENSOR, {"model.onnx.data": "tensors", "input_example.json": "{}"}))
    assert (choice.runtime, choice.model_format, choice.layout) == ("kserve-tritonserver", "onnx", "triton-repository")
    assert choice.triton_files == (("model.onnx", "model.onnx"), ("model.onnx.data", "model.onnx.data"))


@pytest.mark.parametrize("inputs", [ONE_TENSOR, None])
def test_onnx_whose_input_names_are_unknown_goes_to_ours(tmp_path: Path, inputs: list[dict[str, Any]] | None) -> None:
    choice = auto(onnx(tmp_path, inputs))
    assert choice.runtime == FUSEML_MLFLOW and "input" in choice.reason and OURS in choice.reason
    assert auto(tmp_path / "onnx", "triton").runtime == "kserve-tritonserver"  # forcing Triton still works


# -- TensorFlow, PyTorch, custom pyfunc: choices and their manifests ----------------------------------------


def isvc_for(choice: ServingChoice) -> dict[str, Any]:
    isvc = manifests.inference_service("m", "fuseml-workloads", choice, "s3://b/m", {"fuseml/app-name": "m"})
    assert schema_errors(isvc) == []
    return isvc["spec"]["predictor"]["model"]


def test_tensorflow_saved_model_goes_to_triton(tmp_path: Path) -> None:
    conf = {
        "saved_model_dir": "tf2model",
        "model_type": "tf2-module",
        "saved_model_signature_def_key": "serving_default",
    }
    files = {"tf2model/saved_model.pb": "pb", "tf2model/variables/variables.index": "index"}
    choice = auto(write_model(tmp_path / "tf", "tensorflow", conf, files, ["tensorflow==2.20.0"], NAMED_TENSOR))
    assert (choice.runtime, choice.model_format, choice.triton_files) == (
        "kserve-tritonserver", "tensorflow", (("tf2model", "model.savedmodel"),),
    )  # fmt: skip
    model = isvc_for(choice)
    assert (model["modelFormat"], model["runtime"]) == ({"name": "tensorflow", "version": "2"}, "kserve-tritonserver")


def test_keras_model_goes_to_ours(tmp_path: Path) -> None:
    conf = {"model_type": "keras", "keras_version": "3.11.3", "save_exported_model": False, "data": "data"}
    files = {"data/model.keras": "keras"}
    choice = auto(write_model(tmp_path / "keras", "tensorflow", conf, files, ["tensorflow==2.20.0"], ONE_TENSOR))
    assert choice.runtime == FUSEML_MLFLOW and "Keras" in choice.reason and OURS in choice.reason
    model = isvc_for(choice)
    assert (model["modelFormat"], model["runtime"]) == ({"name": "mlflow"}, FUSEML_MLFLOW)


def test_pytorch_model_goes_to_ours(tmp_path: Path) -> None:
    conf = {"model_data": "data", "pytorch_version": "2.9.0", "serialization_format": "pickle"}
    files = {"data/model.pth": "pickled module", "data/pickle_module_info.txt": "mlflow.pytorch.pickle_module"}
    choice = auto(write_model(tmp_path / "torch", "pytorch", conf, files, ["torch==2.9.0"], ONE_TENSOR))
    assert choice.runtime == FUSEML_MLFLOW and "PyTorch" in choice.reason and "TorchScript" in choice.reason
    assert isvc_for(choice)["runtime"] == FUSEML_MLFLOW
    with pytest.raises(InputError, match="neither an ONNX model nor a TensorFlow SavedModel"):
        auto(tmp_path / "torch", "triton")


def test_custom_pyfunc_goes_to_ours(tmp_path: Path) -> None:
    mlmodel_conf = {"cloudpickle_version": "3.1.3", "python_model": "python_model.pkl"}
    folder = tmp_path / "pyfunc"
    folder.mkdir()
    document = {"flavors": {"python_function": {"loader_module": "mlflow.pyfunc.model", **mlmodel_conf}}}
    (folder / "MLmodel").write_text(yaml.safe_dump(document))
    (folder / "python_model.pkl").write_text("pickled")
    (folder / "requirements.txt").write_text("mlflow==3.17.2\nmy-tokenizer==0.3\n")
    choice = auto(folder)
    assert choice.runtime == FUSEML_MLFLOW and "custom pyfunc" in choice.reason and OURS in choice.reason


def test_local_targets_say_why_they_use_our_runtime(tmp_path: Path) -> None:
    info = inspect_model(str(sklearn(tmp_path, SKLEARN_SERVER.version)), LocalStore())
    assert "this target runs only our runtime" in choose(info, own_runtime_only=True).reason
