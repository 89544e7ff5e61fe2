"""XGBoost and LightGBM models loaded with their own library, for the runtime's direct path.

Through ``mlflow.pyfunc`` every request of these flavours becomes a
DataFrame handed to MLflow's wrapper (milliseconds a call), and importing
mlflow is most of a cold start. Here the flavour's file is loaded the way
MLflow's ``_load_model`` loads it, the wrapper's ``predict`` is kept for
DataFrames, and 2-D numeric arrays go to ``xgboost_fast`` / ``lightgbm_fast``.
Before it is served, the array path must give the library's own answers on
probe rows, down each of its ways (one row, a few, many); a model it does not
cover (a class or format it does not know, code of its own, a library that
does not import, any load error) is left to ``mlflow.pyfunc``, with one log
line saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.mlmodel import MLmodel
from serving.sklearn_fast import agrees_exactly

log = logging.getLogger(__name__)

Predict = Callable[[Any], Any]
Unpickle = Callable[[Any], Any]  # the loader's loading of a scikit-learn file (a SklearnFlavor -> the estimator)
LOADER_MODULES = {"xgboost": "mlflow.xgboost", "lightgbm": "mlflow.lightgbm"}
XGBOOST_FORMATS = frozenset({"xgb", "json", "ubj", "deprecated"})
MANY_ROWS = 8  # the probes are repeated this many times to reach the paths for large requests


@dataclass(frozen=True)
class DirectBooster:
    """What the loader serves: the wrapper's ``predict`` (DataFrames), the array path, the width and flavour."""

    flavor: str  # the pyfunc loader module, as the pyfunc path names the flavour (``mlflow.xgboost``)
    predict: Predict
    predict_array: Predict
    n_features: int


def load_booster(path: Path, mlmodel: MLmodel, unpickle: Unpickle) -> DirectBooster | None:
    """The model in ``path`` loaded with XGBoost or LightGBM, or None when ``mlflow.pyfunc`` should load it."""
    name = next((flavor for flavor in LOADER_MODULES if mlmodel.has(flavor)), None)
    if name is None:
        return None
    conf = mlmodel.flavor(name)
    pyfunc = mlmodel.flavor("python_function")
    why, level = _not_covered(name, conf, pyfunc), logging.INFO
    if why is None:
        try:
            return _load(path, name, conf, unpickle)
        except ImportError as e:
            why, level = f"{name} cannot be imported ({e})", logging.WARNING
        except Exception as e:  # noqa: BLE001 - libraries raise anything; pyfunc gets its own chance
            why, level = f"{type(e).__name__}: {e}", logging.WARNING
    log.log(level, "loading the %s model in %s with mlflow.pyfunc: %s", name, path, why)
    return None


def _not_covered(name: str, conf: dict[str, Any], pyfunc: dict[str, Any]) -> str | None:
    if pyfunc.get("loader_module") != LOADER_MODULES[name]:
        return f"its python_function flavour loads with {pyfunc.get('loader_module')!r}"
    if (pyfunc.get("predict_fn") or "predict") != "predict":
        return f"it predicts with {pyfunc.get('predict_fn')!r}"
    if conf.get("code") or pyfunc.get("code"):
        return "it brings code of its own"
    if not conf.get("data"):
        return f"its {name} flavour names no data file"
    if name == "xgboost" and str(conf.get("model_format") or "xgb") not in XGBOOST_FORMATS:
        return f"unknown xgboost model_format {conf.get('model_format')!r}"
    return None


def _load(path: Path, name: str, conf: dict[str, Any], unpickle: Unpickle) -> DirectBooster:
    if name == "xgboost":
        from serving.xgboost_fast import load_xgboost, xgboost_predictor

        model, own, own_array = load_xgboost(path, conf)
        predict_array, width = xgboost_predictor(model, own_array)
    else:
        from serving.lightgbm_fast import lightgbm_predictor, load_lightgbm

        model = load_lightgbm(path, conf, unpickle)
        own = own_array = model.predict
        predict_array, width = lightgbm_predictor(model)
    label = f"{name} {type(model).__name__}"
    if not agrees_exactly(_every_way(own_array), _every_way(predict_array), width, label, "its own predict"):
        predict_array = own_array
    log.info("loaded %s from %s (direct path)", label, path)
    return DirectBooster(flavor=LOADER_MODULES[name], predict=own, predict_array=predict_array, n_features=width)


def _every_way(predict: Predict) -> Callable[[np.ndarray], np.ndarray]:
    """``predict`` on the first probe alone, on the others together, and on them repeated: each of its ways."""

    def probe(x: np.ndarray) -> np.ndarray:
        many = np.asarray(predict(np.tile(x[1:], (MANY_ROWS, 1))))
        return np.concatenate([np.asarray(predict(x[:1])), np.asarray(predict(x[1:])), many])

    return probe
