"""The runtime's direct paths for scikit-learn tree models answer exactly as the estimators' own methods.

Every path is compared with the estimator's ``predict`` (and ``predict_proba``
for classifiers) on the whole wine data set: all rows at once, in small
batches, row by row, as float64 and as float32 (what FP32 requests decode
to), with both ways of finding the leaves (the numpy walk and the per-tree
compiled calls). Models the paths do not cover, and internals that moved, get
the estimator's own method.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import ensemble, tree

from serving import tree_fast, tree_walk
from serving.model import MlflowModel
from serving.sklearn_fast import fast_predictor
from tests.fixtures.models import WINE_FEATURES, WINE_TARGET, load_wine_data, train_tree_model, wine_feature_rows

pytestmark = [
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
    pytest.mark.usefixtures("one_openmp_thread"),  # tests/fixtures/fast_paths.py
]

REGRESSORS: dict[str, Callable[[], Any]] = {
    "decision-tree": lambda: tree.DecisionTreeRegressor(random_state=0),
    "extra-tree": lambda: tree.ExtraTreeRegressor(max_depth=12, random_state=0),
    "random-forest": lambda: ensemble.RandomForestRegressor(n_estimators=30, max_depth=6, random_state=0),
    "extra-trees": lambda: ensemble.ExtraTreesRegressor(n_estimators=10, max_depth=14, random_state=0),
    "gradient-boosting": lambda: ensemble.GradientBoostingRegressor(n_estimators=40, random_state=0),
    "hist-gradient-boosting": lambda: ensemble.HistGradientBoostingRegressor(max_iter=30, random_state=0),
}
CLASSIFIERS: dict[str, Callable[[], Any]] = {
    "decision-tree-classifier": lambda: tree.DecisionTreeClassifier(max_depth=10, random_state=0),
    "random-forest-classifier": lambda: ensemble.RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0),
    "extra-trees-classifier": lambda: ensemble.ExtraTreesClassifier(n_estimators=10, random_state=0),
    "gradient-boosting-binary": lambda: ensemble.GradientBoostingClassifier(n_estimators=30, random_state=0),
    "gradient-boosting-multiclass": lambda: ensemble.GradientBoostingClassifier(n_estimators=10, random_state=0),
    "hist-gradient-boosting-binary": lambda: ensemble.HistGradientBoostingClassifier(max_iter=30, random_state=0),
    "hist-gradient-boosting-multiclass": lambda: ensemble.HistGradientBoostingClassifier(max_iter=10, random_state=0),
}
CASES = [(name, "predict") for name in REGRESSORS] + [
    (name, method) for name in CLASSIFIERS for method in ("predict", "predict_proba")
]


@pytest.fixture(scope="module")
def fitted(wine_x: np.ndarray) -> dict[str, Any]:
    """Every estimator fitted on the whole wine set: regressors on quality, classifiers on quality or quality > 5."""
    quality = load_wine_data()[WINE_TARGET].to_numpy()
    models = {name: make().fit(wine_x, quality) for name, make in REGRESSORS.items()}
    for name, make in CLASSIFIERS.items():
        models[name] = make().fit(wine_x, quality > 5 if name.endswith("binary") else quality)
    return models


@pytest.fixture(params=["walk", "per-tree"])
def leaves_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Force one way of finding leaves (``tree_walk`` picks by size otherwise).

    HistGradientBoosting has no per-tree call: it walks every request under "walk",
    and under "per-tree" its own predictor takes batches above ``HIST_WALK_ROWS``.
    """
    if request.param == "walk":
        monkeypatch.setattr(tree_walk, "LEVELS_PER_TREE_CALL", 0)
        monkeypatch.setattr(tree_walk, "SHALLOW", 10**6)
        monkeypatch.setattr(tree_fast, "HIST_WALK_ROWS", 10**9)
    else:
        monkeypatch.setattr(tree_walk, "LEVELS_PER_TREE_CALL", 10**6)
    yield request.param


def assert_same(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    if theirs.dtype.kind == "f":
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    else:
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(("name", "method"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_the_direct_path_answers_exactly_as_the_estimator_on_the_whole_wine_set(
    name: str, method: str, leaves_by: str, fitted: dict[str, Any], wine_x: np.ndarray
) -> None:
    model = fitted[name]
    fast = fast_predictor(model, method)
    assert fast is not None, f"no direct path for {name}.{method}"
    for x in (wine_x, wine_x.astype(np.float32)):  # FP64 and FP32 requests
        expected = getattr(model, method)(x)  # each row's answer depends on that row only
        assert_same(fast(x), expected)  # every row in one request
        batches = np.array_split(x, len(x) // 7)  # small multi-row requests
        assert_same(np.concatenate([fast(b) for b in batches]), expected)
        for i in range(0, len(x), 97):  # one-row requests
            assert_same(fast(x[i : i + 1]), expected[i : i + 1])


@pytest.mark.parametrize("name", ["hist-gradient-boosting", "hist-gradient-boosting-multiclass"])
def test_hist_gradient_boosting_walks_small_requests_and_hands_big_batches_to_its_own_predictor(
    name: str, fitted: dict[str, Any], wine_x: np.ndarray
) -> None:
    model = copy.deepcopy(fitted[name])
    own = model.predict
    calls: list[int] = []
    model.predict = lambda x: calls.append(len(x)) or own(x)  # the instance's method: what the path captures
    fast = fast_predictor(model)
    assert fast is not None
    calls.clear()  # the probe rows it was checked on
    small = wine_x[: tree_fast.HIST_WALK_ROWS]
    assert_same(fast(small), own(small))
    assert calls == [], "a request of HIST_WALK_ROWS rows is walked"
    big = wine_x[: tree_fast.HIST_WALK_ROWS + 1]
    assert_same(fast(big), own(big))
    assert calls == [len(big)], "a bigger batch is the estimator's own call"


def test_inputs_the_walk_does_not_cover_get_the_estimators_own_answer(
    fitted: dict[str, Any], wine_x: np.ndarray
) -> None:
    with_nan = wine_x[:3].copy()
    with_nan[1, 4] = np.nan
    too_big = wine_x[:2] * np.array([1e300] + [1.0] * 10)  # finite in float64, infinite as float32
    for name in ("random-forest", "hist-gradient-boosting", "gradient-boosting"):
        model = fitted[name]
        fast = fast_predictor(model)
        for x in (with_nan, too_big, wine_x[:2, :10], wine_x[:50].astype(np.int64)):
            try:
                expected = model.predict(x)
            except ValueError as e:  # the same error, word for word
                with pytest.raises(ValueError) as raised:
                    fast(x)
                assert str(raised.value) == str(e)
            else:
                assert_same(fast(x), expected)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fast_predictor(fitted["gradient-boosting"])(with_nan)
    with pytest.raises(ValueError, match="too large for dtype"):
        fast_predictor(fitted["random-forest"])(too_big)


class _OwnPredict(ensemble.RandomForestRegressor):
    def predict(self, X: Any) -> np.ndarray:  # noqa: N803 - scikit-learn's name
        return super().predict(X) + 1


class _OwnTree(tree.DecisionTreeRegressor):
    def predict(self, X: Any, check_input: bool = True) -> np.ndarray:  # noqa: N803 - scikit-learn's name
        return super().predict(X, check_input) * 2


def test_models_without_a_direct_path_answer_with_their_own_predict(fitted: dict[str, Any], wine_x: np.ndarray) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.neighbors import KNeighborsRegressor

    x, y = wine_x[:400], load_wine_data()[WINE_TARGET].to_numpy()[:400]
    assert fast_predictor(KNeighborsRegressor().fit(x, y)) is None  # not a tree model
    assert (
        fast_predictor(_OwnPredict(n_estimators=3, max_depth=3).fit(x, y)) is None
    )  # a subclass that predicts otherwise
    forest = copy.deepcopy(fitted["random-forest"])
    forest.estimators_[0].__class__ = _OwnTree  # a hand-made tree in the forest changes its answers
    assert fast_predictor(forest) is None
    custom_init = ensemble.GradientBoostingRegressor(n_estimators=5, init=LinearRegression()).fit(x, y)
    assert fast_predictor(custom_init) is None  # its start depends on the row
    categorical = ensemble.HistGradientBoostingRegressor(max_iter=5, categorical_features=[10])
    assert fast_predictor(categorical.fit(np.column_stack([x[:, :10], (x[:, 10] > 10).astype(float)]), y)) is None
    assert fast_predictor(fitted["random-forest"], "predict_log_proba") is None
    assert fast_predictor(fitted["random-forest-classifier"], "predict_log_proba") is None
    assert fast_predictor(fitted["hist-gradient-boosting"], "staged_predict") is None


def test_a_direct_path_that_disagrees_with_the_estimator_is_not_used(
    fitted: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import serving.sklearn_fast

    def off_by_a_little(model: Any, method: str) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: getattr(model, method)(x) * (1 + 1e-9)

    monkeypatch.setattr(serving.sklearn_fast, "tree_predictor", off_by_a_little)
    with caplog.at_level("WARNING", logger="serving.sklearn_fast"):
        assert fast_predictor(fitted["random-forest"]) is None
    assert [r.getMessage() for r in caplog.records] == [
        "the direct path disagrees with RandomForestRegressor.predict; using predict"
    ]


def _without_predictors(model: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    moved = copy.copy(model)
    del moved._predictors
    return moved


def _start_per_row(model: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(type(model), "_raw_predict_init", lambda self, x: np.arange(len(x), dtype=float)[:, None])
    return model


def _without_loss(model: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    moved = copy.copy(model)
    del moved._loss
    return moved


class _LossWithoutProba:
    """A loss as a newer scikit-learn might have it: the rest as before, ``predict_proba`` gone."""

    def __init__(self, loss: Any) -> None:
        self.loss = loss

    def __getattr__(self, name: str) -> Any:
        if name == "predict_proba":
            raise AttributeError(name)
        return getattr(self.loss, name)


def _loss_without_proba(model: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    moved = copy.copy(model)
    moved._loss = _LossWithoutProba(model._loss)
    return moved


@pytest.mark.parametrize(
    ("name", "method", "take_away", "why"),
    [
        ("hist-gradient-boosting", "predict", _without_predictors, "_predictors"),
        ("hist-gradient-boosting", "predict", _without_loss, "_loss.link.inverse is gone"),
        ("gradient-boosting", "predict", _start_per_row, "one start per row"),
        ("gradient-boosting-binary", "predict_proba", _loss_without_proba, "_loss.predict_proba is gone"),
    ],
    ids=["hist-predictors-gone", "hist-loss-gone", "gb-init-changed", "gb-loss-gone"],
)
def test_when_boosting_internals_moved_the_path_is_off_with_one_line(
    name: str,
    method: str,
    take_away: Callable[[Any, pytest.MonkeyPatch], Any],
    why: str,
    fitted: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = take_away(fitted[name], monkeypatch)
    with caplog.at_level("WARNING", logger="serving.internals"):
        assert fast_predictor(model, method) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("scikit-learn tree fast path off (") and why in line
    assert line.endswith(f"the estimator's own {method} answers")


# -- through the runtime: an MLflow model saved with skops ------------------------------------------


def test_the_runtime_serves_a_skops_forest_with_the_estimators_answers(wine_forest_model_dir: Path) -> None:
    model = MlflowModel("forest", wine_forest_model_dir, {})
    model.load()
    estimator = model.loaded.predict.__self__
    assert fast_predictor(estimator) is not None  # skops gives back the exact classes the paths cover
    assert model.loaded.predict_array is not model.loaded.predict, "the runtime must use the direct path"
    rows = wine_feature_rows(20)
    expected, _ = train_tree_model("random_forest")
    want = expected.predict(load_wine_data()[WINE_FEATURES].head(20))
    for body, count in (
        ({"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": rows[:1]}]}, 1),
        ({"inputs": [{"name": "x", "shape": [20, 11], "datatype": "FP64", "data": rows}]}, 20),
    ):
        (output,) = model.infer_json(body)["outputs"]
        np.testing.assert_allclose(np.asarray(output["data"]), want[:count], rtol=1e-12, atol=0)
