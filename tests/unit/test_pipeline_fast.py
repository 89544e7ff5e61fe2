"""Pipelines of scalers and an estimator with a direct path answer exactly as the Pipeline's own methods.

Each is compared with the Pipeline's ``predict`` (and ``predict_proba``) on
the whole wine set, all rows at once and row by row, as float64 and float32;
Pipelines with a step the runtime does not reproduce, and inputs it does not
cover, get the Pipeline's own answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import ensemble, linear_model, preprocessing
from sklearn.pipeline import Pipeline, make_pipeline

from serving.pipeline_fast import pipeline_predictor
from serving.sklearn_fast import fast_predictor
from tests.fixtures.models import WINE_TARGET, load_wine_data

pytestmark = [
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
    pytest.mark.usefixtures("one_openmp_thread"),  # tests/fixtures/fast_paths.py
]

PIPELINES: dict[str, Callable[[], Pipeline]] = {
    "standard-elasticnet": lambda: make_pipeline(preprocessing.StandardScaler(), linear_model.ElasticNet(alpha=0.01)),
    "minmax-linear": lambda: make_pipeline(preprocessing.MinMaxScaler(), linear_model.LinearRegression()),
    "standard-minmax-forest": lambda: make_pipeline(
        preprocessing.StandardScaler(),
        "passthrough",
        preprocessing.MinMaxScaler(feature_range=(-1, 3)),
        ensemble.RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0),
    ),
    "standard-no-mean-hgb": lambda: make_pipeline(
        preprocessing.StandardScaler(with_mean=False),
        ensemble.HistGradientBoostingRegressor(max_iter=20, random_state=0),
    ),
}
CLASSIFIER = "standard-forest-classifier"


@pytest.fixture(scope="module")
def fitted(wine_x: np.ndarray) -> dict[str, Pipeline]:
    quality = load_wine_data()[WINE_TARGET].to_numpy()
    models = {name: make().fit(wine_x, quality) for name, make in PIPELINES.items()}
    models[CLASSIFIER] = make_pipeline(
        preprocessing.StandardScaler(), ensemble.RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0)
    ).fit(wine_x, quality)
    return models


def assert_same(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    if theirs.dtype.kind == "f":
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    else:
        np.testing.assert_array_equal(ours, theirs)


CASES = [(name, "predict") for name in PIPELINES] + [(CLASSIFIER, "predict"), (CLASSIFIER, "predict_proba")]


@pytest.mark.parametrize(("name", "method"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_the_direct_path_answers_exactly_as_the_pipeline_on_the_whole_wine_set(
    name: str, method: str, fitted: dict[str, Pipeline], wine_x: np.ndarray
) -> None:
    model = fitted[name]
    fast = fast_predictor(model, method)
    assert fast is not None, f"no direct path for {name}.{method}"
    assert pipeline_predictor(model, method, lambda _m, _k: None) is None  # the last step's path is required
    for x in (wine_x, wine_x.astype(np.float32)):
        expected = getattr(model, method)(x)
        assert_same(fast(x), expected)
        for i in range(0, len(x), 97):
            assert_same(fast(x[i : i + 1]), expected[i : i + 1])


def test_pipelines_with_a_step_it_does_not_reproduce_have_no_direct_path(
    fitted: dict[str, Pipeline], wine_x: np.ndarray
) -> None:
    quality = load_wine_data()[WINE_TARGET].to_numpy()
    others: list[Any] = [
        make_pipeline(preprocessing.RobustScaler(), linear_model.Ridge()),
        make_pipeline(preprocessing.MinMaxScaler(clip=True), linear_model.Ridge()),
        make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression(max_iter=1000)),
    ]
    for pipeline in others:
        pipeline.fit(wine_x, quality)
        assert fast_predictor(pipeline) is None, pipeline


def test_inputs_it_does_not_cover_get_the_pipelines_own_answer(fitted: dict[str, Pipeline], wine_x: np.ndarray) -> None:
    model = fitted["standard-minmax-forest"]
    fast = fast_predictor(model)
    with_nan = wine_x[:3].copy()
    with_nan[1, 4] = np.nan
    for x in (wine_x[:50].astype(np.int64), wine_x[:5].astype(np.float16), with_nan, wine_x[:2, :10]):
        try:
            expected = model.predict(x)
        except ValueError as e:  # the same error, word for word
            with pytest.raises(ValueError) as raised:
                fast(x)
            assert str(raised.value) == str(e)
        else:
            assert_same(fast(x), expected)
    with pytest.raises(ValueError, match="features"):
        fast(wine_x[:2, :10])
