"""Runtime choice: from what the model really contains, and against the runtimes that exist."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from common.errors import InputError
from common.mlmodel import Column
from steps.predictor.model_info import ModelInfo
from steps.predictor.runtime_choice import choose, sklearn_server_problem
from steps.predictor.runtimes import FUSEML_MLFLOW, RUNTIMES

# KServe's own runtime files, copied into the repository (tests/data/kserve/SOURCE.md).
KSERVE_RUNTIMES = Path(__file__).resolve().parents[1] / "data" / "kserve" / "runtimes"
OUR_RUNTIME = Path(__file__).resolve().parents[2] / "deploy" / "kserve" / "fuseml-mlflow-runtime.yaml"
PYFUNC = {"python_function": {"loader_module": "mlflow.sklearn"}}


def sklearn_model(
    model_file: str = "model.pkl", serialization: str = "cloudpickle", extra: tuple = (), version: str = "1.5.2"
) -> ModelInfo:
    """A scikit-learn model; by default saved with the scikit-learn KServe's sklearn server has."""
    flavor = {"pickled_model": model_file, "serialization_format": serialization, "sklearn_version": version}
    files = ("MLmodel", "conda.yaml", "requirements.txt", model_file, *extra)
    return ModelInfo(url="s3://b/m", flavors={**PYFUNC, "sklearn": flavor}, files=files)


def test_skops_sklearn_model_goes_to_our_mlflow_runtime() -> None:
    choice = choose(sklearn_model("model.skops", "skops"))
    assert (choice.engine, choice.runtime, choice.model_format, choice.protocol) == (
        "mlflow", FUSEML_MLFLOW, "mlflow", "v2",
    )  # fmt: skip
    assert choice.format_version is None


@pytest.mark.parametrize("serialization", ["pickle", "cloudpickle"])
def test_pickled_sklearn_model_goes_to_kserve_sklearn_server_as_it_is(serialization: str) -> None:
    choice = choose(sklearn_model("model.pkl", serialization))
    assert (choice.engine, choice.runtime, choice.model_format, choice.format_version) == (
        "sklearn", "kserve-sklearnserver", "sklearn", "1",
    )  # fmt: skip
    assert choice.pin_runtime, "without runtime, KServe would pick kserve-mlserver (priority 2)"
    assert choice.layout == "mlflow-folder"
    assert "loads as it is with scikit-learn 1.5.2" in choice.reason


def test_a_pickle_of_another_scikit_learn_version_goes_to_our_runtime_unless_forced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    info = sklearn_model("model.pkl", "pickle", version="1.9.1")
    choice = choose(info)
    assert choice.runtime == FUSEML_MLFLOW
    assert "saved with scikit-learn 1.9.1 and the server has 1.5.2" in choice.reason
    assert "in the model's own environment" in choice.reason
    with caplog.at_level("WARNING", logger="steps.predictor.runtime_choice"):
        forced = choose(info, "sklearn")
    assert forced.runtime == "kserve-sklearnserver" and "asked for, though" in forced.reason
    assert "1.9.1" in caplog.text


def test_two_model_files_are_not_for_the_sklearn_server() -> None:
    info = sklearn_model("model.pkl", extra=("model.joblib",))
    assert "exactly one model file" in (sklearn_server_problem(info) or "")
    assert choose(info).engine == "mlflow"


def test_sklearn_with_custom_code_goes_to_mlflow() -> None:
    info = sklearn_model()
    info.flavors["sklearn"]["code"] = "code"
    assert choose(info).engine == "mlflow"


def test_asking_sklearn_for_a_skops_model_is_a_clear_error() -> None:
    with pytest.raises(InputError) as raised:
        choose(sklearn_model("model.skops", "skops"), "sklearn")
    message = str(raised.value)
    assert "model.skops" in message and "skops" in message and "predictor=auto or mlflow" in message


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_other_python_flavours_go_to_our_runtime(flavor: str) -> None:
    info = ModelInfo(url="s3://b/m", flavors={**PYFUNC, flavor: {"data": "model.xgb"}}, files=("MLmodel", "model.xgb"))
    assert choose(info).runtime == FUSEML_MLFLOW


def test_mlserver_when_asked_uses_format_mlflow_without_version() -> None:
    choice = choose(sklearn_model("model.skops", "skops"), "mlserver")
    assert (choice.runtime, choice.model_format, choice.format_version, choice.protocol) == (
        "kserve-mlserver", "mlflow", None, "v2",
    )  # fmt: skip


def test_onnx_goes_to_triton_through_a_model_repository() -> None:
    info = ModelInfo(
        url="s3://b/m", flavors={**PYFUNC, "onnx": {"data": "model.onnx"}}, files=("MLmodel", "model.onnx"),
        inputs=(Column("float_input", "tensor", "float32", (-1, 11)),),
    )  # fmt: skip
    choice = choose(info)
    assert (choice.runtime, choice.model_format, choice.format_version) == ("kserve-tritonserver", "onnx", "1")
    assert choice.triton_files == (("model.onnx", "model.onnx"),)


def test_tensorflow_saved_model_goes_to_triton_and_tf_serving_is_refused_for_v2() -> None:
    files = ("MLmodel", "tf2model/saved_model.pb", "tf2model/variables/variables.index")
    info = ModelInfo(
        url="s3://b/m", flavors={**PYFUNC, "tensorflow": {"saved_model_dir": "tf2model", "model_type": "tf2-module"}},
        files=files,
    )  # fmt: skip
    choice = choose(info)
    assert (choice.runtime, choice.model_format, choice.format_version) == ("kserve-tritonserver", "tensorflow", "2")
    with pytest.raises(InputError, match="protocol v1, grpc-v1 only.*predictor=triton"):
        choose(info, "tensorflow")


def test_unknown_predictor_lists_the_choices() -> None:
    with pytest.raises(InputError, match="use one of auto, sklearn, xgboost, mlflow, mlserver, triton, tensorflow"):
        choose(sklearn_model(), "pytorch")


def test_model_without_pyfunc_cannot_go_to_mlflow() -> None:
    info = ModelInfo(url="s3://b/m", flavors={"spark": {}}, files=("MLmodel",))
    with pytest.raises(InputError, match="no runtime serves them"):
        choose(info)
    with pytest.raises(InputError, match="no python_function flavour"):
        choose(info, "mlflow")


def test_local_targets_serve_everything_with_our_runtime_and_refuse_kserve_engines() -> None:
    assert choose(sklearn_model(), own_runtime_only=True).runtime == FUSEML_MLFLOW
    with pytest.raises(InputError, match="target=kserve"):
        choose(sklearn_model(), "sklearn", own_runtime_only=True)


@pytest.mark.parametrize("name", [n for n, r in RUNTIMES.items() if not r.ours])
def test_runtime_table_matches_kserve_runtime_files(name: str) -> None:
    manifest = yaml.safe_load((KSERVE_RUNTIMES / f"{name}.yaml").read_text())
    formats: dict[str, list[str]] = {}
    for entry in manifest["spec"]["supportedModelFormats"]:
        formats.setdefault(entry["name"], []).append(str(entry["version"]))
    runtime = RUNTIMES[name]
    assert {k: tuple(v) for k, v in formats.items()} == runtime.formats
    assert tuple(manifest["spec"]["protocolVersions"]) == runtime.protocols


def test_our_runtime_manifest_serves_format_mlflow_over_v2() -> None:
    manifest = yaml.safe_load(OUR_RUNTIME.read_text())
    assert manifest["metadata"]["name"] == FUSEML_MLFLOW
    assert "mlflow" in [f["name"] for f in manifest["spec"]["supportedModelFormats"]]
    assert "v2" in manifest["spec"]["protocolVersions"]
