"""Direct predictions for scikit-learn Pipelines: numeric scaling steps, then an estimator with a direct path.

A Pipeline's ``predict`` validates the input once per step and again in the
estimator, which costs more than the arithmetic on one row. For Pipelines
whose steps before the last are ``StandardScaler`` or ``MinMaxScaler`` (or
``"passthrough"``), the runtime applies each scaler's arithmetic itself, in
the order and dtype the scaler uses (``X -= mean_; X /= scale_`` with the statistics cast to X's dtype,
``X *= scale_; X += min_``; float32 kept, everything else as float64), then the last
step's direct path. Any other step, or a scaler configured otherwise (clipping,
no fitted statistics), leaves the Pipeline to its own ``predict``; so do
inputs that are not 2-D, finite and numeric of the fitted width.
``sklearn_fast`` checks the composed answers against the Pipeline's own on
probe rows before using them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]
Step = Callable[[np.ndarray], np.ndarray]
NUMERIC_KINDS = frozenset("fiub")


def pipeline_predictor(model: Any, method: str, final_path: Callable[[Any, str], Predict | None]) -> Predict | None:
    """``X -> pipeline.<method>(X)`` by the steps' own arithmetic and ``final_path(last estimator)``; or None."""
    from sklearn.pipeline import Pipeline

    if type(model) is not Pipeline or not model.steps:
        return None
    width = getattr(model, "n_features_in_", None)
    if not isinstance(width, int):
        return None
    steps: list[Step] = []
    for _, transformer in model.steps[:-1]:
        step = _step(transformer)
        if step is None:
            return None
        if step is not _passthrough:
            steps.append(step)
    final = final_path(model.steps[-1][1], method)
    if final is None:
        return None
    own = getattr(model, method)

    def predict(x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != width or x.dtype.kind not in NUMERIC_KINDS:
            return own(x)
        if x.dtype == np.float16:  # the scalers keep float16; the walk does not
            return own(x)
        if not np.isfinite(x).all():
            return own(x)
        for step in steps:
            x = step(x)
        return final(x)

    return predict


def _passthrough(x: np.ndarray) -> np.ndarray:
    return x


def _step(transformer: Any) -> Step | None:
    """One step's ``transform`` as numpy arithmetic, for the scalers reproduced exactly; None for any other."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if transformer is None or (isinstance(transformer, str) and transformer == "passthrough"):
        return _passthrough
    if type(transformer) is StandardScaler:
        return _standard(transformer)
    if type(transformer) is MinMaxScaler and not transformer.clip:
        return _min_max(transformer)
    return None


def _standard(scaler: Any) -> Step | None:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None
    if (scaler.with_mean and mean is None) or (scaler.with_std and scale is None):
        return None

    def transform(x: np.ndarray) -> np.ndarray:
        out = _floating_copy(x)
        if mean is not None:
            out -= mean.astype(out.dtype)  # the scaler casts its statistics to X's dtype
        if scale is not None:
            out /= scale.astype(out.dtype)
        return out

    return transform


def _min_max(scaler: Any) -> Step:
    scale, shift = scaler.scale_, scaler.min_

    def transform(x: np.ndarray) -> np.ndarray:
        out = _floating_copy(x)
        out *= scale
        out += shift
        return out

    return transform


def _floating_copy(x: np.ndarray) -> np.ndarray:
    """A copy in the dtype scikit-learn's scalers work in: float32 and float64 kept, anything else float64."""
    return x.astype(x.dtype if x.dtype in (np.float32, np.float64) else np.float64, copy=True)
