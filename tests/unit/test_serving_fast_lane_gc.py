"""The fast lane parses and answers with Python's cyclic collector paused, and always turns it back on.

A 50 MB body is ~720,000 row lists; with the collector on, walking them took more than half of the parse.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from serving.fast_lane import InferFastLane
from serving.model import MlflowModel
from tests.fixtures.models import WINE_FEATURES, load_wine_data, train_wine_model, wine_feature_rows

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")

INFER = "/v2/models/wine/infer"


class Watched(MlflowModel):
    """The wine model, noting whether the cyclic collector was on each time it answered."""

    def __init__(self, model_dir: Path) -> None:
        super().__init__("wine", model_dir, {})
        self.collector_on: list[bool] = []

    def infer_json(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.collector_on.append(gc.isenabled())
        return super().infer_json(body)


class Behind:
    """The app behind the lane (KServe's in the runtime): notes whether the collector was on, answers 204."""

    def __init__(self) -> None:
        self.collector_on: list[bool] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.collector_on.append(gc.isenabled())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def model(wine_model_dir: Path) -> Watched:
    watched = Watched(wine_model_dir)
    watched.load()
    return watched


@pytest.fixture
def lane(model: Watched) -> Iterator[tuple[Any, Watched, Behind]]:
    from starlette.testclient import TestClient

    model.collector_on.clear()
    behind = Behind()
    assert gc.isenabled()
    yield TestClient(InferFastLane(behind, {"wine": model})), model, behind
    gc.enable()  # whatever a failing test left


def rows_request(n: int) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [n, 11], "datatype": "FP64", "data": wine_feature_rows(n)}]}


def test_a_plain_request_is_answered_with_the_collector_paused_then_resumed(lane: tuple) -> None:
    client, model, behind = lane
    estimator, _ = train_wine_model()

    response = client.post(INFER, json=rows_request(5))

    assert response.status_code == 200
    expected = estimator.predict(load_wine_data()[WINE_FEATURES].head(5)).tolist()
    assert response.json()["outputs"][0]["data"] == pytest.approx(expected, rel=1e-12)
    assert (model.collector_on, behind.collector_on, gc.isenabled()) == ([False], [], True)


def test_a_rejected_request_resumes_the_collector_too(lane: tuple) -> None:
    client, model, _ = lane
    bad = {"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP64", "data": [[1.0] * 10]}]}

    response = client.post(INFER, json=bad)

    assert response.status_code == 400 and "takes 11" in response.json()["error"]
    assert (model.collector_on, gc.isenabled()) == ([False], True)


def test_a_body_passed_on_finds_the_collector_on(lane: tuple) -> None:
    client, model, behind = lane
    asks_for_outputs = {**rows_request(1), "outputs": [{"name": "output-0"}]}  # not plain: KServe's job

    response = client.post(INFER, json=asks_for_outputs)

    assert response.status_code == 204
    assert (model.collector_on, behind.collector_on, gc.isenabled()) == ([], [True], True)


def test_a_collector_turned_off_elsewhere_stays_off(lane: tuple) -> None:
    client, model, _ = lane
    gc.disable()

    response = client.post(INFER, json=rows_request(1))

    assert response.status_code == 200
    assert (model.collector_on, gc.isenabled()) == ([False], False)
