"""Fetch an MLflow model (local path, ``file://``, ``s3://``, MLflow URIs) and load it to predict.

Cold start matters (KServe scales to zero; the local target waits for ready),
so scikit-learn models are loaded straight from the file the ``sklearn``
flavour names, with the serialisation MLmodel records (skops, the MLflow 3.17
default; pickle; cloudpickle), without importing ``mlflow`` at all; a plain
linear regressor saved with skops without importing scikit-learn either (its
weights are read from the file, ``skops_linear``; the estimator loads on the
first request that needs it). XGBoost and LightGBM models are loaded with
their own library (``booster_fast``). Every other flavour, and models that
bring their own code, go through ``mlflow.pyfunc.load_model``.

Loading a pickle (or a skops file whose trusted types the model itself lists)
can run code from the artifact. Serving the model named by ``--model`` is the
operator's decision to trust it, so loading is allowed unless
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is explicitly ``false``, the switch
MLflow users already know.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from common.errors import InputError
from common.mlmodel import MLMODEL, MLmodel, ModelError, Signature, SklearnFlavor, read_mlmodel
from common.storage import LocalStore, open_store
from serving.booster_fast import load_booster
from serving.sklearn_fast import fast_predictor, linear_arithmetic
from serving.skops_linear import read_linear_weights

log = logging.getLogger(__name__)

ALLOW_PICKLE = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
MLFLOW_SCHEMES = ("runs", "models", "mlflow-artifacts")


class ModelLoadError(ModelError):
    """The model was fetched but cannot be loaded (bad MLmodel, untrusted types, missing file)."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to predict, and what the runtime needs to know about it.

    ``direct`` is True for scikit-learn, XGBoost and LightGBM models:
    ``predict_array`` takes a 2-D numpy array as is (the fast path, see
    ``sklearn_fast`` and ``booster_fast``), ``predict`` the model's own
    (DataFrames too).
    Otherwise ``predict`` is a pyfunc's, which wants a DataFrame for column
    signatures.
    """

    path: Path
    flavor: str
    predict: Callable[[Any], Any]
    direct: bool
    signature: Signature | None
    n_features: int | None = None
    predict_array: Callable[[Any], Any] | None = None


def fetch_model(uri: str, environ: Mapping[str, str], workdir: Path | None = None) -> Path:
    """A local folder holding the model's MLmodel; remote models are downloaded into ``workdir``."""
    scheme = urlparse(uri).scheme
    if scheme in MLFLOW_SCHEMES:
        return find_model_dir(_download_with_mlflow(uri, workdir))
    store = open_store(uri, environ)
    if isinstance(store, LocalStore):
        path = store.path(uri)
        if not path.exists():
            raise InputError(f"model {uri!r}: no such file or folder")
        return find_model_dir(path.parent if path.name == MLMODEL else path)
    target = Path(tempfile.mkdtemp(prefix="model-", dir=workdir))
    log.info("downloading the model from %s", uri)
    store.download(uri.rstrip("/"), target)
    return find_model_dir(target)


def _download_with_mlflow(uri: str, workdir: Path | None) -> Path:
    try:
        import mlflow.artifacts
    except ImportError as e:  # pragma: no cover - mlflow is in the serving extra
        raise InputError(f"model {uri!r}: {urlparse(uri).scheme}:/ URIs need mlflow installed") from e
    target = Path(tempfile.mkdtemp(prefix="model-", dir=workdir))
    log.info("downloading the model from %s with MLflow", uri)
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target)))
    except Exception as e:  # noqa: BLE001 - MLflow raises many types; report any as a load error
        raise ModelLoadError(f"model {uri!r}: MLflow could not download it: {e}", "check MLFLOW_TRACKING_URI") from e


def find_model_dir(path: Path) -> Path:
    """The folder with MLmodel: ``path`` itself, or its only subfolder that has one."""
    if (path / MLMODEL).is_file():
        return path
    candidates = [p.parent for p in path.glob(f"*/{MLMODEL}")] if path.is_dir() else []
    if len(candidates) == 1:
        log.info("using the MLflow model in %s", candidates[0])
        return candidates[0]
    raise ModelLoadError(
        f"{path}: no {MLMODEL} file here" + (f" (found {len(candidates)} in subfolders)" if candidates else ""),
        "point --model at the folder that holds the MLmodel file",
    )


def load_model(path: Path, environ: Mapping[str, str]) -> LoadedModel:
    """Load the model in ``path`` (a folder with MLmodel)."""
    mlmodel = read_mlmodel(path)
    signature = _signature(mlmodel)
    _check_allowed(path, environ)
    sklearn = mlmodel.sklearn
    if sklearn is not None and not sklearn.has_code and sklearn.model_file:
        _warn_version(sklearn.sklearn_version)
        linear = _read_linear(path, sklearn, signature) if mlmodel.predict_fn == "predict" else None
        return linear or _load_estimator(path, sklearn, mlmodel.predict_fn, signature)
    booster = load_booster(path, mlmodel, lambda flavor: _load_sklearn(path, flavor))
    if booster is not None:
        return LoadedModel(
            path=path,
            flavor=booster.flavor,
            predict=booster.predict,
            direct=True,
            signature=signature,
            n_features=booster.n_features,
            predict_array=booster.predict_array,
        )
    if not mlmodel.has("python_function"):
        raise ModelLoadError(
            f"{path}: the model has no python_function flavour (flavours: {', '.join(mlmodel.flavors)})",
            "save it with an MLflow flavour that supports pyfunc",
        )
    return _load_pyfunc(path, signature)


def _load_estimator(path: Path, sklearn: SklearnFlavor, predict_fn: str, signature: Signature | None) -> LoadedModel:
    model = _load_sklearn(path, sklearn)
    predict = getattr(model, predict_fn, None)
    if predict is None:
        raise ModelLoadError(f"{path}: the scikit-learn model has no method {predict_fn!r} (MLmodel predict_fn)")
    _quiet_feature_names()
    fast = fast_predictor(model, predict_fn)
    log.info("loaded scikit-learn %s from %s%s", type(model).__name__, path, " (direct path)" if fast else "")
    return LoadedModel(
        path=path,
        flavor="sklearn",
        predict=predict,
        direct=True,
        signature=signature,
        n_features=getattr(model, "n_features_in_", None),
        # Fitted on named columns and no direct path: the model gets a DataFrame (a ColumnTransformer that
        # selects columns by name cannot take an array).
        predict_array=fast or (None if getattr(model, "feature_names_in_", None) is not None else predict),
    )


def _read_linear(path: Path, sklearn: SklearnFlavor, signature: Signature | None) -> LoadedModel | None:
    """A plain linear regressor served from the weights in its skops file, with no scikit-learn import.

    That import (through skops) is most of a cold start; arrays are answered by
    ``sklearn_fast``'s arithmetic from the file's ``coef_`` and ``intercept_``
    (see ``skops_linear``), and the estimator itself is loaded on the first
    request that needs it (a DataFrame). None when the file holds anything else.
    """
    file = path / str(sklearn.model_file)
    if sklearn.serialization_format != "skops" or not file.is_file():
        return None
    weights = read_linear_weights(file)
    if weights is None:
        return None
    log.info("loaded scikit-learn %s from %s (direct path, weights read from its skops file)", weights.class_name, path)
    _quiet_feature_names()
    return LoadedModel(
        path=path,
        flavor="sklearn",
        predict=LazyEstimator(path, sklearn, "predict"),
        direct=True,
        signature=signature,
        n_features=weights.n_features,
        predict_array=linear_arithmetic(weights.coef, weights.intercept, weights.n_features, weights.class_name),
    )


class LazyEstimator:
    """A scikit-learn model's ``predict_fn``, the estimator loaded from its file on the first call."""

    def __init__(self, path: Path, sklearn: SklearnFlavor, predict_fn: str) -> None:
        self.path, self.sklearn, self.predict_fn = path, sklearn, predict_fn
        self._predict: Callable[[Any], Any] | None = None
        self._lock = threading.Lock()

    def __call__(self, data: Any) -> Any:
        if self._predict is None:
            with self._lock:
                if self._predict is None:
                    log.info(
                        "loading the scikit-learn estimator from %s for a request the weights alone cannot answer",
                        self.path,
                    )
                    self._predict = getattr(_load_sklearn(self.path, self.sklearn), self.predict_fn)
        return self._predict(data)


def _quiet_feature_names() -> None:
    """Fitted on a DataFrame, sklearn warns on every numpy input; the fast path sends numpy on purpose."""
    warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)


def _signature(mlmodel: MLmodel) -> Signature | None:
    """The signature with every column named; a broken one is ignored (requests are then checked less)."""
    try:
        signature = mlmodel.signature()
    except ModelError as e:
        log.warning("ignoring the model's signature, which cannot be read: %s", e)
        return None
    return signature.named() if signature else None


def _check_allowed(path: Path, environ: Mapping[str, str]) -> None:
    if environ.get(ALLOW_PICKLE, "").strip().lower() in ("false", "0"):
        raise ModelLoadError(
            f"{path}: loading the model would deserialise its artifact, and {ALLOW_PICKLE} is false",
            f"serve only models you trust, and unset {ALLOW_PICKLE} (or set it to true) to allow it",
        )


def _load_sklearn(path: Path, sklearn: SklearnFlavor) -> Any:
    file = path / str(sklearn.model_file)
    if not file.is_file():
        raise ModelLoadError(f"{file}: missing, though MLmodel's sklearn flavour names it")
    serialization = sklearn.serialization_format
    try:
        if serialization == "skops":
            return _load_skops(file, sklearn.trusted_types)
        with file.open("rb") as stream:
            if serialization == "cloudpickle":
                import cloudpickle

                return cloudpickle.load(stream)
            if serialization == "pickle":
                return pickle.load(stream)  # noqa: S301 - the operator chose to serve this model
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - unpickling can raise anything; report it with the file
        raise ModelLoadError(
            f"{file}: cannot load the {serialization} model ({type(e).__name__}: {e})",
            "the model may need other scikit-learn/Python versions than this runtime has, or its files are damaged "
            "(log it again with MLflow)",
        ) from e
    raise ModelLoadError(f"{path / MLMODEL}: unknown sklearn serialization_format {serialization!r}")


def _load_skops(file: Path, trusted: tuple[str, ...]) -> Any:
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return skops.io.load(file, trusted=list(trusted) if trusted else None)
    except UntrustedTypesFoundException as e:
        raise ModelLoadError(
            f"{file}: the skops file holds types that are not trusted ({e})",
            "save the model with skops_trusted_types listing them",
        ) from e


def _warn_version(saved: str | None) -> None:
    """Says when the model's scikit-learn is not this runtime's (read from metadata: no scikit-learn import)."""
    if not saved:
        return
    try:
        installed = version("scikit-learn")
    except PackageNotFoundError:
        log.warning("the model was saved with scikit-learn %s; this runtime has none", saved)
        return
    if saved != installed:
        log.warning("the model was saved with scikit-learn %s; this runtime has %s", saved, installed)


def _load_pyfunc(path: Path, signature: Signature | None) -> LoadedModel:
    # MLflow refuses to deserialise unless this is true; _check_allowed already applied the operator's choice.
    os.environ.setdefault(ALLOW_PICKLE, "true")
    import mlflow.pyfunc

    try:
        model = mlflow.pyfunc.load_model(str(path))
    except Exception as e:  # noqa: BLE001 - flavours raise anything; report it with the model
        raise ModelLoadError(
            f"{path}: mlflow.pyfunc cannot load the model ({type(e).__name__}: {e})",
            "the model may need other library versions than this runtime has, or its files are damaged "
            "(log it again with MLflow)",
        ) from e
    flavor = model.metadata.flavors.get("python_function", {}).get("loader_module", "pyfunc")
    log.info("loaded %s model from %s with mlflow.pyfunc", flavor, path)
    return LoadedModel(path=path, flavor=str(flavor), predict=model.predict, direct=False, signature=signature)
