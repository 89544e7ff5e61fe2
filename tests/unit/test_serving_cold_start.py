"""What the runtime's cold start leaves out, and that it still answers exactly as before.

A plain linear regressor saved with skops is served from the weights in its
file, without importing scikit-learn or skops (seconds of a cold start); its
answers must be the estimator's own ``predict`` on the whole wine set, a
DataFrame request must still reach the estimator (loaded then), and anything
the reader does not know must take the normal load. KServe's server modules
import without its Kubernetes client, and every ``kserve`` name stays the
real one.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import zipfile
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.internals import is_plain_linear
from serving.loader import LazyEstimator, ModelLoadError, load_model
from serving.skops_linear import PLAIN_LINEAR, read_linear_weights
from tests.fixtures.models import ROOT, WINE_FEATURES, WINE_TARGET, load_wine_data, wine_pip_requirements

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

# Loads each model given, in a fresh interpreter, and writes its array predictions on the wine set and what it imported.
LOAD_AND_PREDICT = """
import json, sys
from pathlib import Path
import numpy as np
from serving.loader import load_model
x = np.load(sys.argv[1])
report = {}
for path in sys.argv[3:]:
    loaded = load_model(Path(path), {})
    np.save(Path(path) / "ours.npy", loaded.predict_array(x))
    report[path] = sorted(m for m in ("sklearn", "skops", "scipy") if m in sys.modules)
Path(sys.argv[2]).write_text(json.dumps(report))
"""


def fitted(kind: str) -> tuple[Any, Any]:
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, MultiTaskElasticNet, Ridge

    data = load_wine_data()
    x, y = data[WINE_FEATURES], data[WINE_TARGET]
    estimators = {
        "elastic_net": lambda: ElasticNet(alpha=0.5, l1_ratio=0.1, random_state=42).fit(x, y),
        "linear_regression": lambda: LinearRegression().fit(x, y),
        "no_intercept": lambda: LinearRegression(fit_intercept=False).fit(x, y),  # intercept_ is a JSON 0.0
        "lasso": lambda: Lasso(alpha=0.01).fit(x, y),
        "two_targets": lambda: MultiTaskElasticNet(alpha=0.1).fit(x, np.c_[y, data["alcohol"]]),
        "ridge": lambda: Ridge().fit(x, y),  # its own predict: not X @ coef_ + b by scikit-learn's classes
    }
    return estimators[kind](), x


LINEAR = ("elastic_net", "linear_regression", "no_intercept", "lasso", "two_targets")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    """Each estimator and its MLflow model folder (skops, MLflow's default)."""
    import mlflow.sklearn

    root = tmp_path_factory.mktemp("linear-models")
    models = {}
    for kind in (*LINEAR, "ridge"):
        model, x = fitted(kind)
        # Requirements given: inferring them loads the model in a subprocess, seconds a model for nothing here.
        mlflow.sklearn.save_model(model, str(root / kind), pip_requirements=wine_pip_requirements())
        models[kind] = (model, root / kind)
    return models


@pytest.fixture(scope="module")
def loaded_apart(saved: dict[str, tuple[Any, Path]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Loads every linear model in one fresh interpreter; which of scikit-learn, skops, SciPy each load imported."""
    folder = tmp_path_factory.mktemp("load-apart")
    x, report = folder / "x.npy", folder / "report.json"
    np.save(x, load_wine_data()[WINE_FEATURES].to_numpy(dtype=np.float64))
    paths = [str(saved[kind][1]) for kind in LINEAR]
    subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(x), str(report), *paths], cwd=ROOT, check=True)
    return json.loads(report.read_text())


@pytest.mark.parametrize("kind", LINEAR)
def test_linear_skops_models_load_without_sklearn_and_predict_exactly(
    kind: str, saved: dict[str, tuple[Any, Path]], loaded_apart: dict[str, list[str]]
) -> None:
    model, path = saved[kind]
    assert loaded_apart[str(path)] == [], f"loading {kind} imported {loaded_apart[str(path)]}"
    ours = np.load(path / "ours.npy")
    theirs = model.predict(load_wine_data()[WINE_FEATURES])
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_a_dataframe_request_loads_the_estimator_on_first_use(
    saved: dict[str, tuple[Any, Path]], caplog: pytest.LogCaptureFixture
) -> None:
    model, path = saved["elastic_net"]
    loaded = load_model(path, {})
    assert isinstance(loaded.predict, LazyEstimator)
    frame = load_wine_data()[WINE_FEATURES].head(50)
    with caplog.at_level(logging.INFO, logger="serving.loader"):
        first, second = loaded.predict(frame), loaded.predict(frame)
    assert [r.message for r in caplog.records].count(
        f"loading the scikit-learn estimator from {path} for a request the weights alone cannot answer"
    ) == 1
    np.testing.assert_array_equal(first, model.predict(frame))
    np.testing.assert_array_equal(second, first)
    with pytest.raises(ValueError, match="is expecting 11 features"):
        loaded.predict_array(np.ones((1, 3)))  # the same check, and message, as the estimator's


def test_a_class_the_reader_does_not_handle_is_loaded_normally(saved: dict[str, tuple[Any, Path]]) -> None:
    model, path = saved["ridge"]
    assert read_linear_weights(path / "model.skops") is None
    loaded = load_model(path, {})
    assert type(loaded.predict.__self__).__name__ == "Ridge"
    frame = load_wine_data()[WINE_FEATURES]
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def rewritten(source: Path, target: Path, change: Any) -> Path:
    """A copy of the skops file ``source`` whose schema is ``change(schema)``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            new.writestr(item, json.dumps(change(json.loads(data))) if item.filename == "schema.json" else data)
    return target


def _random_state(schema: dict[str, Any]) -> dict[str, Any]:
    """random_state given as a numpy RandomState: a type the reader leaves to skops' own check."""
    schema["content"]["content"]["random_state"] = {
        "__class__": "RandomState",
        "__module__": "numpy.random.mtrand",
        "__loader__": "ObjectNode",
        "content": {},
    }
    return schema


def _no_coef(schema: dict[str, Any]) -> dict[str, Any]:
    del schema["content"]["content"]["coef_"]
    return schema


@pytest.mark.parametrize(
    "change",
    [
        lambda s: {**s, "protocol": 99},
        lambda s: {**s, "__class__": "Ridge", "__module__": "sklearn.linear_model._ridge"},
        _random_state,
        _no_coef,
    ],
    ids=["unknown-protocol", "other-class", "untrusted-type-inside", "no-coef"],
)
def test_anything_the_reader_does_not_know_is_left_to_skops(
    change: Any, saved: dict[str, tuple[Any, Path]], tmp_path: Path
) -> None:
    source = saved["elastic_net"][1] / "model.skops"
    assert read_linear_weights(source) is not None
    assert read_linear_weights(rewritten(source, tmp_path / "model.skops", change)) is None


def test_a_damaged_file_is_left_to_the_normal_load(saved: dict[str, tuple[Any, Path]], tmp_path: Path) -> None:
    model_dir = shutil.copytree(saved["elastic_net"][1], tmp_path / "model")
    (model_dir / "model.skops").write_bytes(b"not a zip")
    assert read_linear_weights(model_dir / "model.skops") is None
    with pytest.raises(ModelLoadError, match="model.skops: cannot load the skops model"):
        load_model(model_dir, {})


@pytest.mark.parametrize(("module", "name"), sorted(PLAIN_LINEAR))
def test_every_class_read_from_skops_is_plain_linear_for_this_scikit_learn(module: str, name: str) -> None:
    assert is_plain_linear(getattr(import_module(module), name)())


KSERVE_NAMES = """
import sys
import serving.internals  # what python -m serving imports first
import serving.server, serving.grpc_server, serving.cli
assert "kubernetes" not in sys.modules and "kserve.api.kserve_client" not in sys.modules, "the client was imported"
import skops.io  # its whichmodule asks every module in sys.modules for names kserve never had
assert getattr(sys.modules["kserve"], "agm", None) is None
assert "kubernetes" not in sys.modules and "kserve.api.kserve_client" not in sys.modules, "a probe imported the client"
import kserve.model, kserve.model_server, kserve.errors, serving.model
from kserve import InferenceRESTClient, KServeClient, Model, ModelServer
assert Model is kserve.model.Model is serving.model.Model
assert ModelServer is kserve.model_server.ModelServer is serving.internals.ModelServer
assert KServeClient.__module__ == "kserve.api.kserve_client" and "kubernetes" in sys.modules
print("ok")
"""


def test_kserve_imports_without_its_client_and_every_name_is_the_real_one() -> None:
    result = subprocess.run([sys.executable, "-c", KSERVE_NAMES], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
