"""Direct numpy predictions for scikit-learn models: the runtime's fast paths.

``fast_predictor`` picks one: for linear regressors the arithmetic below, for
tree models the walk in ``tree_fast``, for Pipelines of scalers and one of
those the composition in ``pipeline_fast``. Either must reproduce the estimator's
own answers on probe rows before it is used; if not, the estimator's method is.

scikit-learn 1.9 spends ~300 us per ``predict`` call validating its input
(dataframe-library detection, dtype and finiteness checks), against ~3 us for
the arithmetic of a linear model on one row. The runtime has already checked
the request (2-D, the model's width, numeric), so for the linear models whose
``predict`` is exactly ``X @ coef_.T + intercept_`` (LinearRegression, Ridge,
Lasso, ElasticNet, ...; telling which needs scikit-learn's private classes,
see ``internals.is_plain_linear``) it computes that directly, after a
finiteness check of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from serving.internals import is_plain_linear
from serving.pipeline_fast import pipeline_predictor
from serving.tree_fast import tree_predictor

log = logging.getLogger(__name__)


def fast_predictor(model: Any, method: str = "predict") -> Callable[[np.ndarray], np.ndarray] | None:
    """``X -> model.<method>(X)`` computed directly, the same answers for 2-D numeric X; None if no path applies."""
    linear = linear_predictor(model) if method == "predict" else None
    if linear is not None:
        return linear
    direct = tree_predictor(model, method) or pipeline_predictor(model, method, _unchecked)
    if direct is None or not _agrees_exactly(model, method, direct):
        return None
    return direct


def _unchecked(model: Any, method: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """A Pipeline's last step's direct path; the composed Pipeline is what gets checked."""
    linear = linear_predictor(model) if method == "predict" else None
    return linear if linear is not None else tree_predictor(model, method)


def _agrees_exactly(model: Any, method: str, predict: Callable[[np.ndarray], np.ndarray]) -> bool:
    """True when ``predict`` gives ``model.<method>``'s answers on probe rows, to the bit (floats: 1e-12 relative)."""
    name = f"{type(model).__name__}.{method}"
    return agrees_exactly(getattr(model, method), predict, model.n_features_in_, name, method)


def agrees_exactly(
    own: Callable[[np.ndarray], Any], predict: Callable[[np.ndarray], Any], width: int, name: str, instead: str
) -> bool:
    """True when ``predict`` gives ``own``'s answers on probe rows of ``width`` features; the log names both."""
    rng = np.random.default_rng(0)
    probes = np.vstack(
        [np.zeros(width), np.ones(width), rng.normal(size=(6, width)) * 100, rng.normal(size=(8, width))]
    )
    try:
        ours, theirs = np.asarray(predict(probes)), np.asarray(own(probes))
        same = ours.shape == theirs.shape and ours.dtype == theirs.dtype
        if same and ours.dtype.kind == "f":
            same = np.allclose(ours, theirs, rtol=1e-12, atol=0)
        elif same:
            same = np.array_equal(ours, theirs)
    except Exception as e:  # noqa: BLE001 - any failure just means: do not take the shortcut
        log.warning("no direct path for %s (%s: %s); using it as is", name, type(e).__name__, e)
        return False
    if not same:
        log.warning("the direct path disagrees with %s; using %s", name, instead)
    return bool(same)


def linear_predictor(model: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """``X -> predictions`` equal to ``model.predict(X)`` for dense 2-D numeric X, or None if unsafe."""
    if not is_plain_linear(model):
        return None
    coef = getattr(model, "coef_", None)
    width = getattr(model, "n_features_in_", None)
    if not isinstance(coef, np.ndarray) or coef.ndim not in (1, 2) or not isinstance(width, int):
        return None
    predict = linear_arithmetic(coef, model.intercept_, width, type(model).__name__)
    return predict if _agrees(model, predict, width) else None


def linear_arithmetic(coef: np.ndarray, intercept: Any, width: int, name: str) -> Callable[[np.ndarray], np.ndarray]:
    """``X -> X @ coef.T + intercept`` with the input checks of scikit-learn's ``predict`` (``name`` in messages)."""
    weights = coef if coef.ndim == 1 else coef.T

    def predict(x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"X has {x.shape[-1]} features, but {name} is expecting {width} features")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise ValueError("Input X contains NaN or infinity")
        return x @ weights + intercept

    return predict


def _agrees(model: Any, predict: Callable[[np.ndarray], np.ndarray], width: int) -> bool:
    probes = np.vstack([np.zeros(width), np.ones(width), np.random.default_rng(0).normal(size=(6, width)) * 100])
    try:
        same = np.allclose(predict(probes), model.predict(probes), rtol=1e-9, atol=1e-9)
    except Exception as e:  # noqa: BLE001 - any failure just means: do not take the shortcut
        log.debug("no fast path for %s: %s", type(model).__name__, e)
        return False
    if not same:
        log.warning("the fast path disagrees with %s.predict; using predict", type(model).__name__)
    return bool(same)
