"""The private KServe and scikit-learn names behind the fast paths: each one taken away or changed in turn,
the runtime must take the public path, say so in one line, and answer exactly as the fast path does."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import uvicorn
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.server import RESTServer
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from sklearn.linear_model._base import LinearModel

from serving.fast_lane import InferFastLane
from serving.internals import HostUnavailable, model_server_problem
from serving.model import MlflowModel
from serving.oip_rest import OipRest
from serving.server import make_server
from serving.sklearn_fast import linear_predictor
from tests.fixtures.models import WINE_FEATURES, load_wine_data, wine_feature_rows

pytestmark = [
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
    # Said by FastAPI and Starlette about KServe's app and the test client; the runtime silences the first too.
    pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated"),
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]

OPTIONS = {"http_port": 8080, "workers": 1, "enable_grpc": False}
SKLEARN_OFF = "scikit-learn linear fast path off"
FAST_LANE_OFF = "fast lane off"


def loaded(model_dir: Path) -> MlflowModel:
    model = MlflowModel("wine", model_dir, {})
    model.load()
    return model


def answer(model: MlflowModel, body: dict[str, Any]) -> list[float]:
    response = model.predict(InferRequest.from_inference_request(InferenceRequest.model_validate(body), "wine"))
    return response.to_rest()[0]["outputs"][0]["data"]


def bodies() -> list[dict[str, Any]]:
    rows = wine_feature_rows(5)
    per_column = [
        {"name": name, "shape": [5], "datatype": "FP64", "data": [row[i] for row in rows]}
        for i, name in enumerate(WINE_FEATURES)
    ]
    return [
        {"id": "one", "inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": rows[:1]}]},
        {"id": "rows", "inputs": [{"name": "x", "shape": [5, 11], "datatype": "FP64", "data": rows}]},
        {"id": "columns", "inputs": per_column[::-1]},
    ]


def warnings_about(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


@pytest.fixture(scope="module")
def fast(wine_model_dir: Path) -> MlflowModel:
    """The wine model (ElasticNet) with every fast path on."""
    return loaded(wine_model_dir)


@pytest.fixture(scope="module")
def estimator_predictions() -> np.ndarray:
    """What the estimator's own predict says for the first 5 rows, from a DataFrame as it was trained."""
    from tests.fixtures.models import train_wine_model

    estimator, _ = train_wine_model()
    return np.asarray(estimator.predict(load_wine_data()[WINE_FEATURES].head(5)))


# -- scikit-learn: LinearModel and _decision_function ----------------------------------------------


def test_the_linear_fast_path_is_on_by_default(fast: MlflowModel) -> None:
    assert fast.loaded.predict_array is not None and fast.loaded.predict_array != fast.loaded.predict


def _changed_decision_function(monkeypatch: pytest.MonkeyPatch) -> None:
    original = LinearModel._decision_function

    def _decision_function(self: Any, X: Any, *, dense: bool = True) -> Any:  # noqa: N803 - sklearn's name
        return original(self, X)

    monkeypatch.setattr(LinearModel, "_decision_function", _decision_function)


def _private_module_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.linear_model._base", None)  # import fails as if it moved


@pytest.mark.parametrize(
    ("take_away", "why"),
    [(_changed_decision_function, "_decision_function"), (_private_module_gone, "cannot be imported")],
    ids=["decision-function-changed", "private-module-gone"],
)
def test_without_sklearn_internals_the_estimators_predict_answers_the_same(
    take_away: Callable[[pytest.MonkeyPatch], None],
    why: str,
    fast: MlflowModel,
    estimator_predictions: np.ndarray,
    wine_model_pickle_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    take_away(monkeypatch)
    # The pickled model: a skops one is served from its weights without scikit-learn (test_serving_cold_start).
    with caplog.at_level("WARNING", logger="serving.internals"):
        fallback = loaded(wine_model_pickle_dir)
    (line,) = warnings_about(caplog, SKLEARN_OFF)
    assert why in line
    # No direct path: the estimator's own, public predict serves, given a DataFrame (it was fitted on named columns).
    assert fallback.loaded.predict_array is None
    assert (
        fallback.loaded.predict.__name__ == "predict"
        and type(fallback.loaded.predict.__self__).__name__ == "ElasticNet"
    )
    for body in bodies():
        assert answer(fallback, body) == pytest.approx(answer(fast, body), rel=1e-12, abs=1e-12)
    float64_rows = {"inputs": [{"name": "x", "shape": [5, 11], "datatype": "FP64", "data": wine_feature_rows(5)}]}
    assert answer(fallback, float64_rows) == pytest.approx(estimator_predictions.tolist(), rel=1e-12)


def test_models_that_are_not_plain_linear_take_their_own_predict() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeRegressor

    x = np.random.default_rng(1).normal(size=(20, 3))
    assert linear_predictor(DecisionTreeRegressor().fit(x, x[:, 0])) is None
    assert linear_predictor(LogisticRegression().fit(x, x[:, 0] > 0)) is None  # predict is not X @ coef_ + b


# -- KServe: ModelServer._serve and _rest_server -------------------------------------------------


def test_the_kserve_hook_sets_host_and_app(fast: MlflowModel) -> None:
    assert model_server_problem() is None
    server = make_server(fast, "127.0.0.1", OPTIONS)
    config = uvicorn.Config(app=FASTAPI_APP_IMPORT_STRING, host="0.0.0.0", port=8080)
    server._rest_server = SimpleNamespace(config=config)  # what start() builds, minus the socket
    server.servers = []
    asyncio.run(server._serve())
    assert config.host == "127.0.0.1"
    assert isinstance(config.app, InferFastLane) and config.app.models == {"wine": fast}


async def _serve_with_an_argument(self: Any, sockets: Any) -> None:
    return None


def _serve_plain_function(self: Any) -> None:
    return None


def _without_rest_server(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ModelServer.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        del self._rest_server

    monkeypatch.setattr(ModelServer, "__init__", init)


@pytest.mark.parametrize(
    ("take_away", "why"),
    [
        (lambda m: m.delattr(ModelServer, "_serve"), "_serve is gone"),
        (lambda m: m.setattr(ModelServer, "_serve", _serve_with_an_argument), "no longer takes only self"),
        (lambda m: m.setattr(ModelServer, "_serve", _serve_plain_function), "no longer a coroutine"),
        (_without_rest_server, "no longer has _rest_server"),
    ],
    ids=["serve-gone", "serve-signature", "serve-not-async", "rest-server-gone"],
)
def test_without_the_kserve_hook_kserve_serves_everything(
    take_away: Callable[[pytest.MonkeyPatch], None],
    why: str,
    fast: MlflowModel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    take_away(monkeypatch)
    with caplog.at_level("WARNING", logger="serving.internals"):
        server = make_server(fast, "0.0.0.0", OPTIONS)
    (line,) = warnings_about(caplog, FAST_LANE_OFF)
    assert why in line
    assert isinstance(server, ModelServer) and server.http_port == 8080
    with pytest.raises(HostUnavailable, match=r"cannot listen on 127.0.0.1 only.*--host 0.0.0.0"):
        make_server(fast, "127.0.0.1", OPTIONS)


def test_a_rest_server_without_uvicorn_config_is_a_fallback_too(
    fast: MlflowModel, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(fast, "0.0.0.0", OPTIONS)
    server._rest_server, server.servers = SimpleNamespace(), []
    with caplog.at_level("WARNING", logger="serving.internals"):
        asyncio.run(server._serve())
    (line,) = warnings_about(caplog, FAST_LANE_OFF)
    assert "no uvicorn config" in line
    narrow = make_server(fast, "127.0.0.1", OPTIONS)
    narrow._rest_server, narrow.servers = SimpleNamespace(), []
    with pytest.raises(HostUnavailable):
        asyncio.run(narrow._serve())


@pytest.fixture(scope="module")
def kserve_app(fast: MlflowModel) -> Any:
    """KServe's own FastAPI app serving the wine model: what answers every request when the fast lane is off."""
    server = ModelServer(**OPTIONS)
    server.register_model(fast)
    RESTServer(
        FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, 8080
    ).create_application()
    from kserve.model_server import app

    return app


def test_kserve_app_answers_exactly_as_the_fast_lane(
    fast: MlflowModel, kserve_app: Any, estimator_predictions: np.ndarray
) -> None:
    from starlette.testclient import TestClient

    passed_on: list[str] = []

    async def kserve_behind_the_lane(scope: Any, receive: Any, send: Any) -> None:
        passed_on.append(scope["path"])
        await kserve_app(scope, receive, send)

    # The public path as the runtime serves it: KServe's app with its answers fitted to the OIP schema.
    public = TestClient(OipRest(kserve_app, {"wine": fast}))
    lane = TestClient(InferFastLane(kserve_behind_the_lane, {"wine": fast}))
    for body in bodies():
        expected = public.post("/v2/models/wine/infer", json=body)
        got = lane.post("/v2/models/wine/infer", json=body)
        assert (got.status_code, got.json()) == (expected.status_code, expected.json()) == (200, got.json())
    bad = {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP32", "data": [[1.0] * 10]}]}
    expected, got = public.post("/v2/models/wine/infer", json=bad), lane.post("/v2/models/wine/infer", json=bad)
    assert (got.status_code, got.json()) == (expected.status_code, expected.json())
    assert got.status_code == 400 and "takes 11" in got.json()["error"]
    assert passed_on == []  # the lane answered every one of them itself
    rows = {"inputs": [{"name": "x", "shape": [5, 11], "datatype": "FP64", "data": wine_feature_rows(5)}]}
    data = public.post("/v2/models/wine/infer", json=rows).json()["outputs"][0]["data"]
    assert data == pytest.approx(estimator_predictions.tolist(), rel=1e-12)
