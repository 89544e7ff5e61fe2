"""XGBoost models of the ``xgboost`` flavour, loaded with XGBoost itself and predicted on arrays directly.

MLflow's pyfunc wrapper answers ``Booster.predict(DMatrix(frame))`` (or the
scikit-learn API model's ``predict(frame)``): float32 values, one per row. The
runtime gets the same numbers on 2-D arrays two ways, chosen by measurement
(wine data, 50 trees of depth 6, one OpenMP thread, 2 busy cores): XGBoost's
``inplace_predict`` costs ~400 us a call whatever the trees (~360 us with one
tree: its fixed cost), 1.7 ms for 1,000 rows, and ``predict(DMatrix)`` more;
the numpy walk of the trees (``tree_walk``) 86 us for one row, 290 us for 64
(``inplace_predict`` 470 us), 2.7 ms for 1,000. So requests of up to
``WALK_ROWS`` rows walk, larger ones call ``inplace_predict``.

The walk reproduces XGBoost's CPU predictor: features as float32, a row goes
left when ``x < split`` (the walk's ``x > threshold`` with the next float32
below the split), leaf values added in float32 one tree after another from
the base score. It is taken only where that is the whole story: a ``gbtree``
booster, one output, numerical splits, no best iteration, the missing value
NaN, and an objective whose output is the raw sum (``reg:squarederror`` and
the like). Everything else, and inputs the walk does not cover, get
``inplace_predict``; ``booster_fast`` checks either against the library's own
predict before serving.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from serving.tree_walk import Node, TreeTable

Predict = Callable[[Any], Any]
NUMERIC_KINDS = frozenset("fiub")
IDENTITY_OBJECTIVES = frozenset(
    {"reg:squarederror", "reg:linear", "reg:absoluteerror", "reg:pseudohubererror", "reg:quantileerror"}
)
XGBOOST_MODULES = frozenset({"xgboost.core", "xgboost.sklearn"})  # where the classes MLflow records live
WALK_ROWS = 64  # above this many rows inplace_predict's fixed cost is paid back


def load_xgboost(path: Path, conf: dict[str, Any]) -> tuple[Any, Predict, Predict]:
    """(the model, its own predict for DataFrames as MLflow calls it, its own predict for arrays)."""
    import xgboost as xgb

    model_class = str(conf.get("model_class") or "xgboost.core.Booster")
    module, _, name = model_class.rpartition(".")
    kind = getattr(xgb, name, None) if module in XGBOOST_MODULES else None
    if not isinstance(kind, type) or not issubclass(kind, (xgb.Booster, xgb.XGBModel)):
        raise ValueError(f"unknown xgboost model_class {model_class!r}")
    model = kind()
    model.load_model(str(path / str(conf["data"])))
    booster = model if isinstance(model, xgb.Booster) else model.get_booster()
    if "c" in (booster.feature_types or ()):
        raise ValueError("the model has categorical features, which arrive as DataFrame columns")
    if isinstance(model, xgb.Booster):

        def own(data: Any) -> Any:
            return booster.predict(xgb.DMatrix(data), validate_features=True)

        def own_array(x: np.ndarray) -> Any:
            return booster.predict(xgb.DMatrix(x), validate_features=False)

        return model, own, own_array

    def own_sklearn(data: Any) -> Any:
        return model.predict(data, validate_features=True)

    def own_sklearn_array(x: np.ndarray) -> Any:
        return model.predict(x, validate_features=False)

    return model, own_sklearn, own_sklearn_array


def xgboost_predictor(model: Any, own_array: Predict) -> tuple[Predict, int]:
    """(``X -> predictions`` for 2-D numeric arrays, the width); the walk where it applies (see above)."""
    import xgboost as xgb

    booster = model if isinstance(model, xgb.Booster) else model.get_booster()
    width = booster.num_features()
    if not isinstance(model, xgb.Booster) and (
        type(model) not in (xgb.XGBRegressor, xgb.XGBRFRegressor)
        or _has_best_iteration(booster)
        or not _missing_is_nan(model)
    ):
        return own_array, width  # labels, fewer trees or another missing value: the model's own predict knows how
    walk = _walk(json.loads(booster.save_raw("json")), width)

    def inplace(x: np.ndarray) -> np.ndarray:
        # The answer is a view of XGBoost's own buffer, which the next call overwrites.
        return booster.inplace_predict(x, validate_features=False).copy()

    if walk is None:
        return inplace, width

    def predict(x: np.ndarray) -> np.ndarray:
        if x.shape[0] > WALK_ROWS or x.dtype.kind not in NUMERIC_KINDS or x.ndim != 2 or x.shape[1] != width:
            return inplace(x)
        with np.errstate(over="ignore"):  # too large for float32 becomes inf, which goes to inplace below
            cast = x.astype(np.float32, copy=False)
        if not np.isfinite(cast).all():
            return inplace(x)
        return walk(cast)

    return predict, width


def _has_best_iteration(booster: Any) -> bool:
    return "best_iteration" in booster.attributes()


def _missing_is_nan(model: Any) -> bool:
    missing = getattr(model, "missing", math.nan)
    return isinstance(missing, float) and math.isnan(missing)


def _walk(document: dict[str, Any], width: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """The walk of the trees in XGBoost's JSON model, or None when the model is not the plain case."""
    learner = document["learner"]
    params = learner["learner_model_param"]
    booster = learner["gradient_booster"]
    if (
        booster.get("name") != "gbtree"
        or learner["objective"].get("name") not in IDENTITY_OBJECTIVES
        or int(params.get("num_class", 0)) > 1
        or int(params.get("num_target", 1)) != 1
    ):
        return None
    base = np.asarray(json.loads(str(params["base_score"]).replace("E", "e")), dtype=np.float32).ravel()
    trees = booster["model"]["trees"]
    if base.size != 1 or not trees or any(int(g) != 0 for g in booster["model"]["tree_info"]):
        return None
    nodes = [_nodes(tree) for tree in trees]
    if any(node is None for node in nodes):
        return None
    table = TreeTable.of([n for n in nodes if n is not None])
    if int(table.feature.max()) >= width:
        return None

    def walk(x: np.ndarray) -> np.ndarray:
        terms = table.values(x)[:, :, 0].astype(np.float32)
        sums = np.empty((x.shape[0], terms.shape[1] + 1), dtype=np.float32)
        sums[:, 0] = base[0]
        sums[:, 1:] = terms
        return np.cumsum(sums, axis=1, dtype=np.float32)[:, -1]  # float32, in tree order, as XGBoost adds

    return walk


def _nodes(tree: dict[str, Any]) -> Node | None:
    """One tree as walkable nodes (right when ``x > threshold``), or None with categorical or vector leaves."""
    if any(int(t) != 0 for t in tree["split_type"]) or int(tree["tree_param"].get("size_leaf_vector", 1)) > 1:
        return None
    left = np.asarray(tree["left_children"], dtype=np.intp)
    right = np.asarray(tree["right_children"], dtype=np.intp)
    split = np.asarray(tree["split_conditions"], dtype=np.float32)
    leaf = left < 0
    # XGBoost goes left when x < split: for float32 x, right when x > the float32 just below split.
    below = np.nextafter(split, np.float32(-np.inf))
    return Node(
        left=left,
        right=right,
        feature=np.asarray(tree["split_indices"], dtype=np.intp),
        threshold=np.where(leaf, 0.0, below.astype(np.float64)),
        value=np.where(leaf, split, 0.0).astype(np.float64)[:, None],
        depth=_depth(left, right),
    )


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    depth, level = 0, np.array([0])
    while True:
        inner = level[left[level] >= 0]
        if inner.size == 0:
            return depth
        level = np.concatenate([left[inner], right[inner]])
        depth += 1
