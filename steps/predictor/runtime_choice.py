"""Choosing how to serve a model: engine, KServe model format, protocol and runtime.

``auto`` keeps KServe's own servers where they load the model as it was
logged, and otherwise serves it with our MLflow runtime in the model's own
environment (its requirements.txt), which loads any pyfunc model. "As logged"
means: the server reads the file MLflow wrote, alone in the folder, and has the
library version that wrote it (a pickle loaded under another scikit-learn can
load wrongly or not at all; the versions the servers ship are in
``kserve_servers``). So a scikit-learn pickle/joblib goes to KServe's sklearn
server only when its scikit-learn version is the server's; an XGBoost Booster
to the xgbserver likewise; ONNX to Triton when its signature names the graph's
inputs (Triton needs the names in every request); a TensorFlow SavedModel to
Triton. skops files (MLflow 3.17's default), LightGBM (MLflow writes no .bst),
Keras, PyTorch, custom code and every other flavour go to our runtime. Each
choice carries its ``reason``, logged in the plan line.

An explicit ``predictor`` forces an engine; one that cannot load the model at
all is an ``InputError`` that says why and what to pick instead, and one that
can but under another library version is allowed with a warning. Every choice
is checked against ``runtimes``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.errors import InputError
from steps.predictor.kserve_servers import (
    KSERVE_SOURCE,
    LIGHTGBM_SERVER,
    SKLEARN_SERVER,
    XGBOOST_SERVER,
    ServerLibrary,
)
from steps.predictor.model_info import MLFLOW_FILES, ModelInfo
from steps.predictor.runtimes import FUSEML_MLFLOW, RUNTIMES

log = logging.getLogger(__name__)

AUTO = "auto"
# Values of the ``predictor`` input, and the runtime each one means.
ENGINES: dict[str, str] = {
    "sklearn": "kserve-sklearnserver",
    "xgboost": "kserve-xgbserver",
    "mlflow": FUSEML_MLFLOW,
    "mlserver": "kserve-mlserver",
    "triton": "kserve-tritonserver",
    "tensorflow": "kserve-tensorflow-serving",
}
PREDICTOR_CHOICES = (AUTO, *ENGINES)
PROTOCOL = "v2"  # the step's result is a V2 URL, so every choice must speak V2

XGBOOST_BOOSTER = "xgboost.core.Booster"  # MLflow's model_class for a bare Booster (the sklearn API saves others)

# Storage layouts: the MLflow model folder as it is, or a Triton model repository made from it.
LAYOUT_AS_IS = "mlflow-folder"
LAYOUT_TRITON = "triton-repository"


@dataclass(frozen=True)
class ServingChoice:
    """How a model will be served."""

    engine: str
    runtime: str
    model_format: str
    format_version: str | None
    protocol: str
    layout: str
    reason: str
    # Set when the InferenceService must name its runtime (else KServe auto-selects by priority).
    pin_runtime: bool = True
    # Triton: where the model file(s) go inside ``<repository>/<name>/1/``.
    triton_files: tuple[tuple[str, str], ...] = ()

    @property
    def ours(self) -> bool:
        return RUNTIMES[self.runtime].ours

    def describe(self) -> str:
        """The plan line's words for the choice, with why it was made."""
        version = f" v{self.format_version}" if self.format_version else ""
        return (
            f"{self.engine}: format {self.model_format}{version}, protocol {self.protocol}, runtime {self.runtime}: "
            f"{self.reason}"
        )


def choose(info: ModelInfo, predictor: str = AUTO, own_runtime_only: bool = False) -> ServingChoice:
    """The serving choice for ``info``; ``own_runtime_only`` for targets that run only our runtime."""
    predictor = (predictor or AUTO).strip().lower()
    if predictor not in PREDICTOR_CHOICES:
        raise InputError(f"predictor={predictor!r} is not known: use one of {', '.join(PREDICTOR_CHOICES)}")
    if own_runtime_only and predictor not in (AUTO, "mlflow"):
        raise InputError(
            f"predictor={predictor} runs only on KServe; this target serves with the fuseml MLflow runtime",
            "use predictor=auto or mlflow here, or target=kserve",
        )
    if predictor == AUTO:
        choice = _mlflow(info, "this target runs only our runtime") if own_runtime_only else _auto(info)
    else:
        choice = _BUILDERS[predictor](info)
    _check_supported(choice)
    log.info("serving choice: %s", choice.describe())
    return choice


def _auto(info: ModelInfo) -> ServingChoice:
    """KServe's own server where it loads the model as it was saved; otherwise ours, in the model's environment."""
    if info.has("sklearn"):
        problem = sklearn_server_problem(info)
        return _sklearn(info) if problem is None else _mlflow(info, f"not KServe's sklearn server: {problem}")
    if info.has("xgboost"):
        problem = xgboost_server_problem(info)
        return _xgboost(info) if problem is None else _mlflow(info, f"not KServe's xgbserver: {problem}")
    if info.has("lightgbm"):
        return _mlflow(info, f"not KServe's lgbserver: {lightgbm_server_problem(info)}")
    if info.has("onnx"):
        problem = triton_onnx_problem(info)
        return _triton(info) if problem is None else _mlflow(info, f"not Triton: {problem}")
    if _saved_model_dir(info):
        return _triton(info)
    if info.has("python_function"):
        return _mlflow(info, _why_ours(info))
    raise InputError(
        f"model {info.url} has flavours {', '.join(sorted(info.flavors))}: no runtime serves them",
        "log the model with a python_function flavour (any mlflow.<flavour>.log_model does)",
    )


def _why_ours(info: ModelInfo) -> str:
    """Why no KServe server loads this flavour as MLflow saved it."""
    if info.has("tensorflow"):
        return "a Keras model (MLflow saves it as a .keras file); Triton and TF Serving load only SavedModels"
    if info.has("pytorch"):
        return (
            "a PyTorch model (MLflow saves the whole module with torch.save); "
            "Triton needs TorchScript and a config.pbtxt naming its tensors"
        )
    loader = str(info.flavor("python_function").get("loader_module") or "")
    if len(info.flavors) == 1 or loader.startswith("mlflow.pyfunc"):
        return "a custom pyfunc model: only MLflow can run its code"
    return "no KServe server loads this flavour as MLflow saves it"


def library_version(info: ModelInfo, distribution: str, flavor: str, key: str) -> str | None:
    """The version the model was saved with: its requirements.txt pin, else what MLmodel's flavour records."""
    pinned = info.pinned_version(distribution)
    if pinned:
        return pinned
    recorded = info.flavor(flavor).get(key)
    return str(recorded) if recorded else None


def _version_problem(info: ModelInfo, server: ServerLibrary, flavor: str, key: str) -> str | None:
    saved = library_version(info, server.distribution, flavor, key)
    if saved is None:
        return f"neither requirements.txt nor MLmodel says which {server.distribution} saved it"
    if saved != server.version:
        return (
            f"it was saved with {server.distribution} {saved} and the server has {server.version} "
            f"({KSERVE_SOURCE}); a model file is loaded only under the version that wrote it"
        )
    return None


def _single_file_problem(info: ModelInfo, server: ServerLibrary, model_file: str, how: str) -> str | None:
    if not model_file.lower().endswith(server.extensions):
        return (
            f"its model file is {model_file or '?'} ({how}); the server loads only {'/'.join(server.extensions)} files"
        )
    candidates = info.top_level_files_ending(server.extensions)
    if candidates != (model_file,):
        return f"the server needs exactly one model file at the top of the folder, found {list(candidates)}"
    return None


def sklearn_server_problem(info: ModelInfo) -> str | None:
    """Why KServe's sklearn server cannot load this model as it was saved, or None when it can."""
    if not info.has("sklearn"):
        return "the model has no sklearn flavour"
    flavor = info.flavor("sklearn")
    model_file = str(flavor.get("pickled_model") or "")
    serialization = flavor.get("serialization_format") or "cloudpickle"
    problem = _single_file_problem(info, SKLEARN_SERVER, model_file, f"serialization_format {serialization}")
    if problem:
        return problem
    if flavor.get("code"):
        return "the model needs its own code (code paths), which the sklearn server cannot import"
    if _sklearn_major(info) not in RUNTIMES[SKLEARN_SERVER.runtime].formats["sklearn"]:
        return f"it was saved with scikit-learn {flavor.get('sklearn_version')}, the server declares only 1.x"
    return _version_problem(info, SKLEARN_SERVER, "sklearn", "sklearn_version")


def xgboost_server_problem(info: ModelInfo) -> str | None:
    """Why KServe's xgbserver cannot load this model and answer as MLflow's model does, or None when it can."""
    flavor = info.flavor("xgboost")
    problem = _single_file_problem(info, XGBOOST_SERVER, str(flavor.get("data") or ""), "MLflow's xgboost flavour")
    if problem:
        return problem
    model_class = str(flavor.get("model_class") or XGBOOST_BOOSTER)
    if model_class != XGBOOST_BOOSTER:
        return f"it is a {model_class}; the server predicts with the bare Booster, whose answers differ (probabilities)"
    if info.inputs and not info.tensor_inputs:
        return "its signature names columns, which the server's Booster checks against unnamed request tensors"
    return _version_problem(info, XGBOOST_SERVER, "xgboost", "xgb_version")


def lightgbm_server_problem(info: ModelInfo) -> str:
    """Why KServe's lgbserver cannot load an MLflow LightGBM model (MLflow never writes the .bst it reads)."""
    model_file = str(info.flavor("lightgbm").get("data") or "")
    return _single_file_problem(info, LIGHTGBM_SERVER, model_file, "MLflow's lightgbm flavour") or (
        _version_problem(info, LIGHTGBM_SERVER, "lightgbm", "lgb_version")
        or "this step does not deploy LightGBM models to it"
    )


def triton_onnx_problem(info: ModelInfo) -> str | None:
    """Why Triton cannot serve this ONNX model as logged, from the repository this step makes, or None when it can.

    Triton feeds the graph's inputs by name, so every request (and the step's
    probe) must name them: only a signature that names every input says what
    they are. Our runtime also takes one unnamed tensor for a one-input model.
    """
    if not info.inputs:
        return "the model has no signature, so neither the probe nor a client knows the ONNX graph's input names"
    if not info.tensor_inputs or any(c.name is None for c in info.inputs):
        return "its signature does not name the ONNX graph's input tensors, which Triton needs in every request"
    return None


def _sklearn(info: ModelInfo) -> ServingChoice:
    problem = sklearn_server_problem(info)
    caveat = None
    if problem and problem == _version_problem(info, SKLEARN_SERVER, "sklearn", "sklearn_version"):
        caveat, problem = problem, None  # forced: the user was told (log line), the server may still load it
        log.warning("predictor=sklearn although %s", caveat)
    if problem:
        raise InputError(
            f"predictor=sklearn cannot serve {info.url}: {problem}",
            "use predictor=auto or mlflow (our MLflow runtime loads any sklearn model), "
            "or log the model with serialization_format='pickle'",
        )
    pickled = info.flavor("sklearn")["pickled_model"]
    return ServingChoice(
        engine="sklearn",
        runtime="kserve-sklearnserver",
        model_format="sklearn",
        format_version=_sklearn_major(info),
        protocol=PROTOCOL,
        layout=LAYOUT_AS_IS,
        reason=f"scikit-learn model in {pickled}, which KServe's sklearn server loads as it is"
        + (f" (asked for, though {caveat})" if caveat else f" with scikit-learn {SKLEARN_SERVER.version}"),
    )


def _mlflow(info: ModelInfo, why: str | None = None) -> ServingChoice:
    _need_pyfunc(info, "mlflow")
    flavours = ", ".join(sorted(set(info.flavors) - {"python_function"})) or "pyfunc"
    return ServingChoice(
        engine="mlflow",
        runtime=FUSEML_MLFLOW,
        model_format="mlflow",
        format_version=None,
        protocol=PROTOCOL,
        layout=LAYOUT_AS_IS,
        reason=f"MLflow {flavours} model, served by our runtime in the model's own environment"
        + (f" ({why})" if why else " (asked for)"),
    )


def _xgboost(info: ModelInfo) -> ServingChoice:
    flavor = info.flavor("xgboost")
    problem = _single_file_problem(info, XGBOOST_SERVER, str(flavor.get("data") or ""), "MLflow's xgboost flavour")
    if not info.has("xgboost") or problem:
        raise InputError(
            f"predictor=xgboost cannot serve {info.url}: {problem or 'it has no xgboost flavour'}",
            "use predictor=auto or mlflow (our runtime loads any xgboost model in its own environment)",
        )
    caveat = xgboost_server_problem(info)
    return ServingChoice(
        engine="xgboost",
        runtime=XGBOOST_SERVER.runtime,
        model_format="xgboost",
        format_version=XGBOOST_SERVER.version.split(".")[0],
        protocol=PROTOCOL,
        layout=LAYOUT_AS_IS,
        reason=f"XGBoost Booster in {flavor['data']}, which KServe's xgbserver loads as it is"
        + (f" (asked for, though {caveat})" if caveat else f" with xgboost {XGBOOST_SERVER.version}"),
    )


def _mlserver(info: ModelInfo) -> ServingChoice:
    _need_pyfunc(info, "mlserver")
    # No version: MLServer declares mlflow "1" and "2" only; a version is matched exactly.
    return ServingChoice(
        engine="mlserver",
        runtime="kserve-mlserver",
        model_format="mlflow",
        format_version=None,
        protocol=PROTOCOL,
        layout=LAYOUT_AS_IS,
        reason="asked for MLServer's MLflow runtime (it does not install the model's requirements)",
    )


def _triton(info: ModelInfo) -> ServingChoice:
    if info.has("onnx"):
        data = str(info.flavor("onnx").get("data") or "model.onnx")
        return ServingChoice(
            engine="triton",
            runtime="kserve-tritonserver",
            model_format="onnx",
            format_version="1",
            protocol=PROTOCOL,
            layout=LAYOUT_TRITON,
            reason="ONNX model whose signature names its inputs, served by Triton from a model repository",
            triton_files=((data, "model.onnx"), *((f, f) for f in _beside_onnx(info, data))),
        )
    saved = _saved_model_dir(info)
    if saved:
        return ServingChoice(
            engine="triton",
            runtime="kserve-tritonserver",
            model_format="tensorflow",
            format_version="2",
            protocol=PROTOCOL,
            layout=LAYOUT_TRITON,
            reason="TensorFlow SavedModel, served by Triton from a model repository",
            triton_files=((saved, "model.savedmodel"),),
        )
    raise InputError(
        f"predictor=triton cannot serve {info.url}: it is neither an ONNX model nor a TensorFlow SavedModel",
        "use predictor=auto or mlflow",
    )


def _tensorflow(info: ModelInfo) -> ServingChoice:
    if not _saved_model_dir(info):
        raise InputError(
            f"predictor=tensorflow cannot serve {info.url}: it holds no TensorFlow SavedModel",
            "use predictor=auto or mlflow",
        )
    return ServingChoice(
        engine="tensorflow",
        runtime="kserve-tensorflow-serving",
        model_format="tensorflow",
        format_version="2",
        protocol=PROTOCOL,
        layout=LAYOUT_TRITON,
        reason="asked for TensorFlow Serving",
    )


def _need_pyfunc(info: ModelInfo, engine: str) -> None:
    if not info.has("python_function"):
        raise InputError(
            f"predictor={engine} cannot serve {info.url}: it has no python_function flavour "
            f"(flavours: {', '.join(sorted(info.flavors))})",
            "use predictor=auto",
        )


def _check_supported(choice: ServingChoice) -> None:
    runtime = RUNTIMES[choice.runtime]
    problem = runtime.supports(choice.model_format, choice.format_version, choice.protocol)
    if problem:
        hint = "use predictor=triton (the default for TensorFlow models)" if choice.engine == "tensorflow" else None
        raise InputError(
            f"predictor={choice.engine}: {problem}, and the step's result is a {choice.protocol.upper()} URL",
            hint or "use predictor=auto",
        )


def _beside_onnx(info: ModelInfo, data: str) -> tuple[str, ...]:
    """Top-level files MLflow did not write beside the ONNX file: its external tensor data, kept beside it."""
    return tuple(f for f in info.top_level_files if f != data and f not in MLFLOW_FILES)


def _saved_model_dir(info: ModelInfo) -> str | None:
    flavor = info.flavor("tensorflow")
    saved = flavor.get("saved_model_dir")
    if saved and any(f.startswith(f"{saved}/") and f.endswith("saved_model.pb") for f in info.files):
        return str(saved)
    return None


def _sklearn_major(info: ModelInfo) -> str | None:
    version = str(info.flavor("sklearn").get("sklearn_version") or "")
    return version.split(".")[0] if version else None


_BUILDERS = {
    "sklearn": _sklearn,
    "xgboost": _xgboost,
    "mlflow": _mlflow,
    "mlserver": _mlserver,
    "triton": _triton,
    "tensorflow": _tensorflow,
}
