"""Choosing how to serve a model: engine, KServe model format, protocol and runtime.

``auto`` goes by what the model really contains: a scikit-learn model saved as a
pickle/joblib file goes to KServe's sklearn server; a skops file (MLflow 3.17's
default), custom code, or any other Python flavour goes to our MLflow runtime;
ONNX and TensorFlow SavedModels go to Triton. An explicit ``predictor`` input
overrides the choice; one the model cannot use is an ``InputError`` that says
why and what to pick instead. Every choice is checked against ``runtimes``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.errors import InputError
from steps.predictor.model_info import SKLEARN_SERVER_EXTENSIONS, ModelInfo
from steps.predictor.runtimes import FUSEML_MLFLOW, RUNTIMES

log = logging.getLogger(__name__)

AUTO = "auto"
# Values of the ``predictor`` input, and the runtime each one means.
ENGINES: dict[str, str] = {
    "sklearn": "kserve-sklearnserver",
    "mlflow": FUSEML_MLFLOW,
    "mlserver": "kserve-mlserver",
    "triton": "kserve-tritonserver",
    "tensorflow": "kserve-tensorflow-serving",
}
PREDICTOR_CHOICES = (AUTO, *ENGINES)
PROTOCOL = "v2"  # the step's result is a V2 URL, so every choice must speak V2

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
        version = f" v{self.format_version}" if self.format_version else ""
        return f"{self.engine}: format {self.model_format}{version}, protocol {self.protocol}, runtime {self.runtime}"


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
        choice = _mlflow(info) if own_runtime_only else _auto(info)
    else:
        choice = _BUILDERS[predictor](info)
    _check_supported(choice)
    log.info("serving choice: %s (%s)", choice.describe(), choice.reason)
    return choice


def _auto(info: ModelInfo) -> ServingChoice:
    if info.has("sklearn"):
        problem = sklearn_server_problem(info)
        if problem is None:
            return _sklearn(info)
        log.info("not KServe's sklearn server: %s", problem)
    if info.has("onnx") or _saved_model_dir(info):
        return _triton(info)
    if info.has("python_function"):
        return _mlflow(info)
    raise InputError(
        f"model {info.url} has flavours {', '.join(sorted(info.flavors))}: no runtime serves them",
        "log the model with a python_function flavour (any mlflow.<flavour>.log_model does)",
    )


def sklearn_server_problem(info: ModelInfo) -> str | None:
    """Why KServe's sklearn server cannot load this model, or None when it can."""
    flavor = info.flavor("sklearn")
    if not info.has("sklearn"):
        return "the model has no sklearn flavour"
    model_file = str(flavor.get("pickled_model") or "")
    serialization = flavor.get("serialization_format") or "cloudpickle"
    if not model_file.lower().endswith(SKLEARN_SERVER_EXTENSIONS):
        return (
            f"its model file is {model_file or '?'} (serialization_format {serialization}); the sklearn server "
            f"loads only {'/'.join(SKLEARN_SERVER_EXTENSIONS)} files"
        )
    candidates = info.sklearn_server_files
    if candidates != (model_file,):
        return f"the sklearn server needs exactly one model file at the top of the folder, found {list(candidates)}"
    if flavor.get("code"):
        return "the model needs its own code (code paths), which the sklearn server cannot import"
    if _sklearn_major(info) not in RUNTIMES["kserve-sklearnserver"].formats["sklearn"]:
        return f"it was saved with scikit-learn {flavor.get('sklearn_version')}, the server declares only 1.x"
    return None


def _sklearn(info: ModelInfo) -> ServingChoice:
    problem = sklearn_server_problem(info)
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
        reason=f"scikit-learn model in {pickled}, which KServe's sklearn server loads as it is",
    )


def _mlflow(info: ModelInfo) -> ServingChoice:
    _need_pyfunc(info, "mlflow")
    return ServingChoice(
        engine="mlflow",
        runtime=FUSEML_MLFLOW,
        model_format="mlflow",
        format_version=None,
        protocol=PROTOCOL,
        layout=LAYOUT_AS_IS,
        reason=f"MLflow pyfunc model ({', '.join(sorted(set(info.flavors) - {'python_function'})) or 'pyfunc'})",
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
            reason="ONNX model, served by Triton from a model repository",
            triton_files=((data, "model.onnx"),),
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
    "mlflow": _mlflow,
    "mlserver": _mlserver,
    "triton": _triton,
    "tensorflow": _tensorflow,
}
