"""LightGBM models of the ``lightgbm`` flavour, loaded with LightGBM itself and predicted on arrays directly.

MLflow's pyfunc wrapper answers ``model.predict(frame)``: a Booster's (from
``model.lgb``) or a scikit-learn API model's (pickled or skops). Both end in
the Booster's C++ predictor on float64 rows, so the runtime calls that
predictor without the per-call Python work, two ways chosen by measurement
(wine data, 50 trees of depth 6, 2 busy cores): one row goes through
LightGBM's single-row C API with a predictor built once at load (~20 us
against ~100 us for ``Booster.predict``, which builds one per call); more
rows through ``Booster.predict`` on the array (~4 ms for 1,000 rows, the C++
work itself; the numpy walk ``xgboost_fast`` uses takes ~90 us for one row of
such trees and more than the C++ loop for many). Same trees, same iteration limit, same transform of
the sums: the answers are the model's own, and ``booster_fast`` checks that
on probe rows before serving.

Numeric inputs are sent as float64, as a DataFrame of numbers reaches the
C++ side through MLflow's wrapper. Classifiers of the scikit-learn API answer
labels, which their own ``predict`` computes on the array.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from common.mlmodel import SklearnFlavor
from serving.internals import lightgbm_c_api

Predict = Callable[[Any], Any]
Unpickle = Callable[[SklearnFlavor], Any]  # the loader's sklearn-file loading, with its pickle rule
BOOSTER_CLASS = "lightgbm.basic.Booster"
NUMERIC_KINDS = frozenset("fiub")


def load_lightgbm(path: Path, conf: dict[str, Any], unpickle: Unpickle) -> Any:
    """The Booster or scikit-learn API model the flavour saved, loaded as MLflow's ``_load_model`` loads it."""
    import lightgbm as lgb

    model_class = str(conf.get("model_class") or BOOSTER_CLASS)
    if model_class == BOOSTER_CLASS:
        return lgb.Booster(model_file=str(path / str(conf["data"])))
    if not model_class.startswith("lightgbm.sklearn."):
        raise ValueError(f"unknown lightgbm model_class {model_class!r}")
    trusted = conf.get("skops_trusted_types")
    model = unpickle(
        SklearnFlavor(
            model_file=str(conf["data"]),
            serialization_format=str(conf.get("serialization_format") or "cloudpickle"),
            sklearn_version=None,
            trusted_types=tuple(str(t) for t in trusted) if isinstance(trusted, list) else (),
        )
    )
    if not isinstance(model, lgb.LGBMModel):
        raise ValueError(f"{conf['data']} holds a {type(model).__name__}, not a LightGBM scikit-learn model")
    return model


def lightgbm_predictor(model: Any) -> tuple[Predict, int]:
    """(``X -> model.predict(X)`` for 2-D numeric arrays, the width), by the fastest exact path (see above)."""
    import lightgbm as lgb

    if isinstance(model, lgb.LGBMModel) and not isinstance(model, lgb.LGBMRegressor):
        return model.predict, int(model.n_features_in_)  # labels: the classifier's own mapping from probabilities
    booster = model if isinstance(model, lgb.Booster) else model.booster_
    width = booster.num_feature()
    one_row = _single_row(booster, width)

    def predict(x: np.ndarray) -> np.ndarray:
        if x.dtype.kind in NUMERIC_KINDS:
            x = x.astype(np.float64, copy=False)
        if one_row is not None and x.shape == (1, width) and x.dtype == np.float64:
            return one_row(x)
        return booster.predict(x)

    return predict, width


def _single_row(booster: Any, width: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """LightGBM's single-row C API for this booster, or None (several outputs per row, or no access to it)."""
    if booster.num_model_per_iteration() != 1 or booster.pandas_categorical:
        return None
    api = lightgbm_c_api(booster)
    return None if api is None else SingleRow(api.lib, booster, width)


class SingleRow:
    """One row of ``width`` float64 features -> its prediction, through a FastConfig LightGBM keeps for it."""

    def __init__(self, lib: Any, booster: Any, width: int) -> None:
        self.lib, self.booster, self.width = lib, booster, width  # the booster must outlive the FastConfig
        self.config = ctypes.c_void_p()
        self.length = ctypes.c_int64()
        normal, float64 = 0, 1  # C_API_PREDICT_NORMAL, C_API_DTYPE_FLOAT64
        # Booster.predict's default iteration limit: the best iteration when there is one (<= 0: all trees).
        self._check(
            lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(normal),
                ctypes.c_int(0),
                ctypes.c_int(int(booster.best_iteration)),
                ctypes.c_int(float64),
                ctypes.c_int32(width),
                ctypes.c_char_p(b""),  # no num_threads: LightGBM would set OpenMP's threads for the whole process
                ctypes.byref(self.config),
            )
        )

    def __call__(self, row: np.ndarray) -> np.ndarray:
        row = np.ascontiguousarray(row, dtype=np.float64)
        out = np.empty(1, dtype=np.float64)
        self._check(
            self.lib.LGBM_BoosterPredictForMatSingleRowFast(
                self.config,
                row.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(self.length),
                out.ctypes.data_as(ctypes.c_void_p),
            )
        )
        return out

    def _check(self, status: int) -> None:
        if status != 0:
            self.lib.LGBM_GetLastError.restype = ctypes.c_char_p
            raise RuntimeError(f"LightGBM: {self.lib.LGBM_GetLastError().decode('utf-8', errors='replace')}")

    def __del__(self) -> None:
        if getattr(self, "config", None) is not None and self.config.value:
            self.lib.LGBM_FastConfigFree(self.config)
