"""XGBoost and LightGBM models are served by their own library, with exactly MLflow's pyfunc answers.

Each model is saved by MLflow's own flavour (``mlflow.xgboost.save_model``,
``mlflow.lightgbm.save_model``) and loaded twice: by the runtime (which must
take its direct path) and by ``mlflow.pyfunc.load_model``, whose ``predict``
on a DataFrame defines the model's answers. The array path must give the same
values, dtype and shape on the whole wine set: all rows at once, in batches of
each size the paths switch at, row by row, as float64 and as float32 (FP32
requests). Models the direct path does not cover go to ``mlflow.pyfunc``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow.lightgbm
import mlflow.pyfunc
import mlflow.xgboost
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml

from serving import xgboost_fast
from serving.loader import load_model
from serving.model import MlflowModel
from tests.fixtures.models import WINE_FEATURES, WINE_TARGET, load_wine_data

pytestmark = [
    pytest.mark.usefixtures("one_openmp_thread"),  # tests/fixtures/fast_paths.py
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
    pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer"),
]

TREES = {"n_estimators": 30, "max_depth": 5}


class CustomRegressor(xgb.XGBRegressor):
    """A class of the user's own, which MLflow can load (it imports it) but the direct path does not know."""


def _xgb_regressor(x: pd.DataFrame, y: pd.Series) -> Any:
    return xgb.XGBRegressor(**TREES, random_state=0).fit(x, y)


def _xgb_booster(x: pd.DataFrame, y: pd.Series) -> Any:
    return xgb.train({"max_depth": 5, "eta": 0.3, "seed": 0}, xgb.DMatrix(x, label=y), num_boost_round=30)


def _xgb_classifier(x: pd.DataFrame, y: pd.Series) -> Any:
    return xgb.XGBClassifier(n_estimators=20, max_depth=4, random_state=0).fit(x, (y > 5).astype(int))


def _lgb_regressor(x: pd.DataFrame, y: pd.Series) -> Any:
    return lgb.LGBMRegressor(**TREES, random_state=0, verbose=-1).fit(x, y)


def _lgb_booster(x: pd.DataFrame, y: pd.Series) -> Any:
    params = {"max_depth": 5, "num_leaves": 24, "seed": 0, "verbose": -1}
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=30)


def _lgb_classifier(x: pd.DataFrame, y: pd.Series) -> Any:
    return lgb.LGBMClassifier(n_estimators=20, max_depth=4, random_state=0, verbose=-1).fit(x, y)


# name: (train, save, options for save_model)
MODELS: dict[str, tuple[Callable[[pd.DataFrame, pd.Series], Any], Callable[..., Any], dict[str, Any]]] = {
    "xgb-regressor": (_xgb_regressor, mlflow.xgboost.save_model, {}),
    "xgb-regressor-json": (_xgb_regressor, mlflow.xgboost.save_model, {"model_format": "json"}),
    "xgb-booster": (_xgb_booster, mlflow.xgboost.save_model, {}),
    "xgb-classifier": (_xgb_classifier, mlflow.xgboost.save_model, {}),
    "lgb-regressor-pickle": (_lgb_regressor, mlflow.lightgbm.save_model, {"serialization_format": "cloudpickle"}),
    "lgb-regressor-skops": (_lgb_regressor, mlflow.lightgbm.save_model, {}),
    "lgb-booster": (_lgb_booster, mlflow.lightgbm.save_model, {}),
    "lgb-classifier": (_lgb_classifier, mlflow.lightgbm.save_model, {"serialization_format": "cloudpickle"}),
}


@pytest.fixture(scope="module")
def wine_frame() -> pd.DataFrame:
    return load_wine_data()[WINE_FEATURES]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, wine_frame: pd.DataFrame) -> dict[str, Path]:
    """Every model of MODELS trained on the whole wine set and saved by its MLflow flavour."""
    quality = load_wine_data()[WINE_TARGET]
    paths = {}
    for name, (train, save, options) in MODELS.items():
        path = tmp_path_factory.mktemp("boosters") / name
        # Requirements given: MLflow would otherwise infer them in a subprocess, seconds per model.
        library = "xgboost" if name.startswith("xgb") else "lightgbm"
        save(
            train(wine_frame, quality),
            str(path),
            input_example=wine_frame.head(2),
            pip_requirements=[library],
            **options,
        )
        paths[name] = path
    return paths


@pytest.fixture(scope="module")
def pyfunc_answers(saved: dict[str, Path], wine_frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """What ``mlflow.pyfunc`` answers for the whole wine set: the answers to reproduce."""
    return {name: np.asarray(mlflow.pyfunc.load_model(str(path)).predict(wine_frame)) for name, path in saved.items()}


@pytest.fixture(scope="module")
def pyfunc_answers_fp32(saved: dict[str, Path], wine_frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The same for the wine set as float32 columns (what an FP32 request becomes on the pyfunc path)."""
    frame = wine_frame.astype(np.float32)
    return {name: np.asarray(mlflow.pyfunc.load_model(str(path)).predict(frame)) for name, path in saved.items()}


def assert_same(ours: Any, theirs: np.ndarray) -> None:
    ours = np.asarray(ours)
    assert (ours.shape, ours.dtype) == (theirs.shape, theirs.dtype)
    if theirs.dtype.kind == "f":
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    else:
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_direct_path_answers_exactly_as_mlflow_pyfunc_on_the_whole_wine_set(
    name: str,
    saved: dict[str, Path],
    pyfunc_answers: dict[str, np.ndarray],
    pyfunc_answers_fp32: dict[str, np.ndarray],
    wine_x: np.ndarray,
) -> None:
    loaded = load_model(saved[name], {})
    assert loaded.direct and loaded.predict_array is not None, f"{name} was loaded with mlflow.pyfunc"
    assert loaded.flavor == ("mlflow.xgboost" if name.startswith("xgb") else "mlflow.lightgbm")
    assert loaded.n_features == len(WINE_FEATURES)
    for x, want in ((wine_x, pyfunc_answers[name]), (wine_x.astype(np.float32), pyfunc_answers_fp32[name])):
        assert_same(loaded.predict_array(x), want)
        for size in (7, xgboost_fast.WALK_ROWS, xgboost_fast.WALK_ROWS + 1):
            chunks = [loaded.predict_array(x[i : i + size]) for i in range(0, 260, size)]
            assert_same(np.concatenate(chunks)[:260], want[:260])
    # One row at a time (XGBoost's walk, LightGBM's single-row C API); the classifiers' own predict on 50 rows.
    count = 50 if "classifier" in name else len(wine_x)
    for x, want in ((wine_x, pyfunc_answers[name]), (wine_x.astype(np.float32), pyfunc_answers_fp32[name])):
        rows = np.concatenate([loaded.predict_array(x[i : i + 1]) for i in range(count)])
        assert_same(rows, want[:count])
    # DataFrames: the model's own predict.
    assert_same(loaded.predict(load_wine_data()[WINE_FEATURES]), pyfunc_answers[name])


def test_the_fast_paths_are_the_ones_taken(saved: dict[str, Path]) -> None:
    """The regressors and boosters really go the fast ways (not the library's predict that the check fell back to)."""
    for name in ("xgb-regressor", "xgb-booster"):
        assert load_model(saved[name], {}).predict_array.__name__ == "predict", name  # walk or inplace_predict
    for name in ("lgb-regressor-pickle", "lgb-regressor-skops", "lgb-booster"):
        assert load_model(saved[name], {}).predict_array.__qualname__ == "lightgbm_predictor.<locals>.predict", name


def test_the_runtime_answers_fp32_for_xgboost_and_fp64_for_lightgbm_as_before(
    saved: dict[str, Path], pyfunc_answers: dict[str, np.ndarray]
) -> None:
    rows = load_wine_data()[WINE_FEATURES].head(20).to_numpy().tolist()
    for name, datatype in (("xgb-regressor", "FP32"), ("xgb-booster", "FP32"), ("lgb-booster", "FP64")):
        model = MlflowModel(name, saved[name], {})
        model.load()
        for count in (1, 20):
            body = {"inputs": [{"name": "input-0", "shape": [count, 11], "datatype": "FP64", "data": rows[:count]}]}
            (output,) = model.infer_json(body)["outputs"]
            assert (output["datatype"], output["shape"]) == (datatype, [count])
            assert_same(np.asarray(output["data"]), pyfunc_answers[name][:count])


def test_an_unknown_model_class_is_loaded_by_mlflow_pyfunc(
    saved: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "model"
    path.mkdir()
    for file in saved["xgb-regressor"].iterdir():
        (path / file.name).write_bytes(file.read_bytes())
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    mlmodel["flavors"]["xgboost"]["model_class"] = f"{__name__}.{CustomRegressor.__qualname__}"
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with caplog.at_level(logging.INFO, logger="serving.booster_fast"):
        loaded = load_model(path, {})
    assert not loaded.direct and loaded.flavor == "mlflow.xgboost"
    assert f"unknown xgboost model_class '{__name__}.CustomRegressor'" in caplog.text
