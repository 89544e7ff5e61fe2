"""Direct predictions for scikit-learn tree models: single trees, forests, gradient boosting.

``RandomForestRegressor.predict`` on one row spends milliseconds in
per-call work (input validation, a joblib dispatch, then validation again in
each of its trees) for microseconds of tree walking. For the estimators below,
the runtime walks all the trees at once (``tree_walk``) and combines their
leaves exactly as the estimator does: same input cast (float32 for trees and
GradientBoosting, float64 for HistGradientBoosting), same order of additions,
same final step (mean, argmax, link, probabilities); HistGradientBoosting
batches above ``HIST_WALK_ROWS`` rows go to its own compiled predictor, which
beats the walk there. Answers are the
estimator's own, bit for bit; ``sklearn_fast`` checks that on probe rows
before using a path.

Only the plain cases are taken: the exact scikit-learn class (a subclass may
predict otherwise), one output, numeric features; GradientBoosting with its
default (Dummy) or zero ``init``; HistGradientBoosting without categorical
features. Inputs the walk does not cover (NaN or infinity, other dtypes,
another width) go to the estimator's own method, so its answers and errors
are unchanged. Forest and tree internals used are the public ``tree_``
arrays; the boosting ones live in ``internals``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from serving import internals
from serving.tree_walk import Node, TreeTable, running_sum

Predict = Callable[[np.ndarray], np.ndarray]
NUMERIC_KINDS = frozenset("fiub")
# Above this many rows, HistGradientBoosting's own compiled predictor (OpenMP threads) beats the walk.
# Wine, 100 iterations, 2 cores, quiet: 150 rows 2.2 vs 2.9 ms, 200 rows 2.8 vs 2.8, 1,000 rows 14 vs 6 ms.
HIST_WALK_ROWS = 200


def tree_predictor(model: Any, method: str) -> Predict | None:
    """``X -> model.<method>(X)`` by a direct walk, for the estimators listed above; None when none applies."""
    build = _builders().get(type(model))
    if build is None or not isinstance(getattr(model, "n_features_in_", None), int):
        return None
    if getattr(model, "n_outputs_", 1) != 1:
        return None
    built = build(model, method)
    if built is None:
        return None
    compute, dtype = built
    return _guarded(getattr(model, method), compute, model.n_features_in_, dtype)


def _guarded(own: Predict, compute: Predict, width: int, dtype: type) -> Predict:
    """``compute`` on inputs it covers, cast as the estimator casts them; everything else to ``own``."""

    def predict(x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != width or x.dtype.kind not in NUMERIC_KINDS:
            return own(x)
        with np.errstate(over="ignore"):  # too large for float32 becomes inf, which goes to own below
            cast = x.astype(dtype, copy=False)
        if not np.isfinite(cast).all():
            return own(x)
        return compute(cast)

    return predict


Built = tuple[Predict, type] | None


# -- single trees and forests: the public tree_ arrays ---------------------------------------------------


def _tree_nodes(tree: Any) -> Node:
    """A fitted ``sklearn.tree._tree.Tree`` (single output) as walkable nodes; values are its ``value[:, 0, :]``."""
    return Node(
        left=tree.children_left,
        right=tree.children_right,
        feature=tree.feature,
        threshold=tree.threshold,
        value=tree.value[:, 0, :],
        depth=int(tree.max_depth),
        apply=tree.apply,
    )


def _single_tree(model: Any, method: str) -> Built:
    table = TreeTable.of([_tree_nodes(model.tree_)])
    if is_classifier(model):
        classes, n_classes = model.classes_, model.n_classes_

        def proba(x: np.ndarray) -> np.ndarray:
            return table.values(x)[:, 0, :n_classes]

        return _classifier_methods(method, proba, lambda p: classes.take(np.argmax(p, axis=1), axis=0))
    if method != "predict":
        return None
    return (lambda x: table.values(x)[:, 0, 0]), np.float32


def _forest(model: Any, method: str) -> Built:
    trees = model.estimators_
    if not trees or any(type(t) is not type(model.estimator_) for t in trees):
        return None  # hand-made trees may predict otherwise
    table = TreeTable.of([_tree_nodes(t.tree_) for t in trees])
    count = len(trees)
    zeros = np.zeros(table.value.shape[1])
    if is_classifier(model):
        classes = model.classes_

        def proba(x: np.ndarray) -> np.ndarray:
            return running_sum(zeros, table.values(x)) / count

        return _classifier_methods(method, proba, lambda p: classes.take(np.argmax(p, axis=1), axis=0))
    if method != "predict":
        return None
    return (lambda x: running_sum(zeros, table.values(x))[:, 0] / count), np.float32


# -- boosting: the trees added stage by stage onto a start value -------------------------------------


def _gradient_boosting(model: Any, method: str) -> Built:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if not (isinstance(model.init_, str) and model.init_ == "zero") and type(model.init_) not in (
        DummyClassifier,
        DummyRegressor,
    ):
        return None  # a custom init estimator answers per row
    start = internals.gradient_boosting_start(model, method)
    if start is None:
        return None
    stages = model.estimators_
    scale = model.learning_rate
    # predict_stages adds scale * value[leaf]: the product is the same computed now or then.
    nodes = [_tree_nodes(t.tree_) for t in stages.ravel()]
    table = TreeTable.of([replace(n, value=scale * n.value) for n in nodes])
    shape = stages.shape

    def raw(x: np.ndarray) -> np.ndarray:
        return running_sum(start, table.values(x).reshape(x.shape[0], *shape))

    if not is_classifier(model):
        return ((lambda x: raw(x).ravel()), np.float32) if method == "predict" else None
    classes = model.classes_
    if method == "predict":

        def predict(x: np.ndarray) -> np.ndarray:
            decision = _squeezed(raw(x))
            encoded = (decision >= 0).astype(int) if decision.ndim == 1 else np.argmax(decision, axis=1)
            return classes[encoded]

        return predict, np.float32
    to_proba = internals.loss_function(model, "predict_proba", method) if method == "predict_proba" else None
    if to_proba is None:
        return None
    return (lambda x: to_proba(_squeezed(raw(x)))), np.float32


def _hist_gradient_boosting(model: Any, method: str) -> Built:
    trees = internals.hist_trees(model, method)
    if trees is None or trees.categorical:
        return None
    table = TreeTable.of([tree for stage in trees.stages for tree in stage])
    shape = (len(trees.stages), len(trees.stages[0]))

    def raw(x: np.ndarray) -> np.ndarray:
        return running_sum(trees.baseline, table.values(x).reshape(x.shape[0], *shape))

    compute: Predict | None = None
    if not is_classifier(model):
        inverse = internals.loss_function(model, "link.inverse", method) if method == "predict" else None
        compute = (lambda x: inverse(raw(x).ravel())) if inverse is not None else None
    elif method == "predict":
        classes = model.classes_

        def compute(x: np.ndarray) -> np.ndarray:
            sums = raw(x)
            encoded = (sums.ravel() > 0).astype(int) if sums.shape[1] == 1 else np.argmax(sums, axis=1)
            return classes[encoded]

    elif method == "predict_proba":
        to_proba = internals.loss_function(model, "predict_proba", method)
        compute = (lambda x: to_proba(raw(x))) if to_proba is not None else None
    return (_small_batches(compute, getattr(model, method)), np.float64) if compute is not None else None


def _small_batches(walk: Predict, own: Predict) -> Predict:
    """``walk`` up to ``HIST_WALK_ROWS`` rows, the estimator's own method above (its per-call cost amortised)."""
    return lambda x: walk(x) if x.shape[0] <= HIST_WALK_ROWS else own(x)


# -- shared ------------------------------------------------------------------------------------------


def _classifier_methods(method: str, proba: Predict, label: Callable[[np.ndarray], np.ndarray]) -> Built:
    if method == "predict_proba":
        return proba, np.float32
    if method == "predict":
        return (lambda x: label(proba(x))), np.float32
    return None


def _squeezed(raw: np.ndarray) -> np.ndarray:
    """GradientBoostingClassifier.decision_function's shape: 1-D for two classes."""
    return raw.ravel() if raw.shape[1] == 1 else raw


def is_classifier(model: Any) -> bool:
    from sklearn.base import is_classifier as sklearn_says

    return bool(sklearn_says(model))


def _builders() -> dict[type, Callable[[Any, str], Built]]:
    from sklearn import ensemble, tree

    return {
        tree.DecisionTreeRegressor: _single_tree,
        tree.DecisionTreeClassifier: _single_tree,
        tree.ExtraTreeRegressor: _single_tree,
        tree.ExtraTreeClassifier: _single_tree,
        ensemble.RandomForestRegressor: _forest,
        ensemble.RandomForestClassifier: _forest,
        ensemble.ExtraTreesRegressor: _forest,
        ensemble.ExtraTreesClassifier: _forest,
        ensemble.GradientBoostingRegressor: _gradient_boosting,
        ensemble.GradientBoostingClassifier: _gradient_boosting,
        ensemble.HistGradientBoostingRegressor: _hist_gradient_boosting,
        ensemble.HistGradientBoostingClassifier: _hist_gradient_boosting,
    }
