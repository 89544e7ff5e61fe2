"""Fetch an MLflow model (local path, ``file://``, ``s3://``, MLflow URIs) and load it to predict.

Cold start matters (KServe scales to zero; the local target waits for ready),
so scikit-learn models are loaded straight from the file the ``sklearn``
flavour names, with the serialisation MLmodel records (skops, the MLflow 3.17
default; pickle; cloudpickle), without importing ``mlflow`` at all. Every other
flavour, and sklearn models that bring their own code, go through
``mlflow.pyfunc.load_model``.

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
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from common.errors import InputError
from common.mlmodel import MLMODEL, MLmodel, ModelError, Signature, SklearnFlavor, read_mlmodel
from common.storage import LocalStore, open_store
from serving.sklearn_fast import fast_predictor

log = logging.getLogger(__name__)

ALLOW_PICKLE = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
MLFLOW_SCHEMES = ("runs", "models", "mlflow-artifacts")


class ModelLoadError(ModelError):
    """The model was fetched but cannot be loaded (bad MLmodel, untrusted types, missing file)."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to predict, and what the runtime needs to know about it.

    ``direct`` is True for scikit-learn models: ``predict_array`` takes a 2-D
    numpy array as is (the fast path; for linear models a direct computation,
    see ``sklearn_fast``), ``predict`` the estimator's own (DataFrames too).
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
        predict_fn = mlmodel.predict_fn
        model = _load_sklearn(path, sklearn)
        predict = getattr(model, predict_fn, None)
        if predict is None:
            raise ModelLoadError(f"{path}: the scikit-learn model has no method {predict_fn!r} (MLmodel predict_fn)")
        # Fitted on a DataFrame, sklearn warns on every numpy input; the fast path sends numpy on purpose.
        warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
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
    if not mlmodel.has("python_function"):
        raise ModelLoadError(
            f"{path}: the model has no python_function flavour (flavours: {', '.join(mlmodel.flavors)})",
            "save it with an MLflow flavour that supports pyfunc",
        )
    return _load_pyfunc(path, signature)


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
    _warn_version(sklearn.sklearn_version)
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
    if not saved:
        return
    import sklearn

    installed = sklearn.__version__
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
