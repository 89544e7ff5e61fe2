"""The Winery page, run by Streamlit's AppTest (no browser): fields, Predict, answer or message.

A stub V2 server stands in for the model; the browser test
(tests/integration/test_winery_browser.py) does the same against the real runtime.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures.winery import WINERY, Reply, dead_url, stub_server, winery_module

features = winery_module("features")
APP = WINERY / "app.py"
URL_ENV = "WINERY_PREDICTION_URL"


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.delenv(URL_ENV, raising=False)
    yield AppTest.from_file(str(APP), default_timeout=30)


def run_predict(app: AppTest, url: str | None = None, **values: float) -> AppTest:
    app.run()
    if url is not None:
        app.text_input[0].input(url)
    for feature in features.FEATURES:
        if feature.name in values:
            app.number_input(key=f"feature-{feature.name}").set_value(values[feature.name])
    app.button[0].click()
    return app.run()


def test_page_has_a_field_per_feature_at_the_median(page: AppTest) -> None:
    page.run()
    assert not page.exception
    assert len(page.number_input) == len(features.FEATURES) == 11
    for feature in features.FEATURES:
        field = page.number_input(key=f"feature-{feature.name}")
        assert field.label == feature.label
        assert (field.value, field.min, field.max) == (feature.median, feature.minimum, feature.maximum)
    assert page.text_input[0].label == "Prediction URL"
    assert page.text_input[0].value == ""
    assert not page.metric and not page.error, "nothing is asked before Predict"


def test_url_is_prefilled_from_the_environment(page: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, "http://10.0.0.1:8080/v2/models/wine/infer")
    page.run()
    assert page.text_input[0].value == "http://10.0.0.1:8080/v2/models/wine/infer"


def test_predict_shows_the_score_and_sends_the_fields(page: AppTest) -> None:
    reply = Reply(body={"outputs": [{"name": "output-0", "shape": [1], "datatype": "FP64", "data": [6.28149]}]})
    with stub_server(reply) as base:
        run_predict(page, f"{base}/v2/models/wine/infer", alcohol=12.5, pH=3.3)
    assert not page.exception and not page.error
    assert page.metric[0].label == "Predicted quality"
    assert page.metric[0].value == "6.281"
    assert any("an average wine, better than 78%" in m.value for m in page.markdown)
    [(_, raw)] = reply.requests
    expected = {**{f.name: f.median for f in features.FEATURES}, "alcohol": 12.5, "pH": 3.3}
    assert json.loads(raw)["inputs"][0]["data"] == [[expected[name] for name in features.FEATURE_NAMES]]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(status=500, body={"error": "model exploded"}), "HTTP 500 Internal Server Error: model exploded"),
        (Reply(body="<html>hello</html>", content_type="text/html"), "not JSON (text/html)"),
        (Reply(body={"predictions": [1]}), "no 'outputs' list"),
    ],
)
def test_server_problems_are_messages(page: AppTest, reply: Reply, message: str) -> None:
    with stub_server(reply) as base:
        run_predict(page, f"{base}/v2/models/wine/infer")
    assert not page.exception
    assert not page.metric
    assert len(page.error) == 1
    assert page.error[0].value.startswith("No prediction: ")
    assert message in page.error[0].value


@pytest.mark.parametrize(
    ("url", "message"),
    [("", "Enter the prediction URL"), ("localhost:8080", "is not an http(s) URL")],
)
def test_bad_urls_are_messages(page: AppTest, url: str, message: str) -> None:
    run_predict(page, url)
    assert not page.exception
    assert message in page.error[0].value


def test_dead_url_is_a_message(page: AppTest) -> None:
    url = dead_url()
    run_predict(page, url)
    assert not page.exception
    assert f"could not connect to {url}: connection refused" in page.error[0].value
