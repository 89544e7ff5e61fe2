"""The Winery app's V2 client (examples/webapps/winery/v2_client.py), against a stub HTTP server.

The stub is a real server on a loopback port, so the client's own connection,
timeout and decoding paths run; only the model is fake. Every failure must come
out as a ``PredictionError`` with a message a person can act on.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.winery import Reply, dead_url, stub_server, winery_module

ROW = [7.0, 0.27, 0.36, 20.7, 0.045, 45.0, 170.0, 1.001, 3.0, 0.45, 8.8]


v2 = winery_module("v2_client")


# -- the request -------------------------------------------------------------------------------


def test_request_is_the_real_client_body() -> None:
    assert v2.build_request(ROW) == {
        "inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": [ROW]}]
    }


def test_request_rejects_a_value_that_is_not_finite() -> None:
    with pytest.raises(v2.PredictionError, match="feature 3 is not a finite number"):
        v2.build_request([1.0, 2.0, float("nan")])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:1/v2/models/wine/infer", "http://h:1/v2/models/wine/infer"),
        ("  http://h:1/v2/models/wine/infer \n", "http://h:1/v2/models/wine/infer"),
        ("http://h:1/v2/models/wine", "http://h:1/v2/models/wine/infer"),
        ("https://h/v2/models/wine/", "https://h/v2/models/wine/infer"),
        ("http://h/v2/models/wine/versions/2", "http://h/v2/models/wine/versions/2/infer"),
        ("http://h/custom/path", "http://h/custom/path"),
    ],
)
def test_infer_url(url: str, expected: str) -> None:
    assert v2.infer_url(url) == expected


@pytest.mark.parametrize("url", ["", "   ", "127.0.0.1:8080/v2/models/wine/infer", "ftp://h/x", "http://"])
def test_infer_url_rejects_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(v2.InvalidUrl, match="URL"):
        v2.infer_url(url)


# -- the reply ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "expected"), [([5.5], 5.5), ([[5.5]], 5.5), ([5.5, 6.0], 5.5), ([5], 5.0)])
def test_reply_data_forms(data: list[Any], expected: float) -> None:
    assert v2.parse_response({"outputs": [{"name": "output-0", "data": data}]}) == expected


@pytest.mark.parametrize(
    "body",
    [[], "text", {}, {"outputs": []}, {"outputs": "x"}, {"predictions": [5.5]}, {"outputs": [{"data": []}]},
     {"outputs": [{"data": ["a"]}]}, {"outputs": [{"data": [True]}]}, {"outputs": [{"data": [float("inf")]}]}],
)  # fmt: skip
def test_reply_that_is_not_v2(body: Any) -> None:
    with pytest.raises(v2.NotV2Response):
        v2.parse_response(body)


# -- over HTTP ---------------------------------------------------------------------------------


def test_predict_posts_the_body_and_returns_the_number() -> None:
    reply = Reply()
    with stub_server(reply) as url:
        assert v2.predict(f"{url}/v2/models/wine", ROW) == 5.5
    [(path, raw)] = reply.requests
    assert path == "/v2/models/wine/infer"
    assert json.loads(raw) == v2.build_request(ROW)


def test_dead_url_says_nothing_answered() -> None:
    url = dead_url()
    with pytest.raises(v2.ServerUnreachable) as caught:
        v2.predict(url, ROW)
    message = str(caught.value)
    assert f"could not connect to {url}: connection refused" in message
    assert "model server is running" in message
    assert "HTTPConnection" not in message


def test_slow_server_times_out_with_a_message() -> None:
    with stub_server(Reply(delay=1.0)) as url:
        with pytest.raises(v2.ServerUnreachable, match=r"did not answer within 0\.2s"):
            v2.predict(f"{url}/v2/models/wine/infer", ROW, timeout=(1.0, 0.2))


def test_server_error_quotes_the_v2_error() -> None:
    with stub_server(Reply(status=500, body={"error": "model exploded"})) as url:
        with pytest.raises(v2.ServerError) as caught:
            v2.predict(f"{url}/v2/models/wine/infer", ROW)
    assert caught.value.status == 500
    assert "answered HTTP 500 Internal Server Error: model exploded" in str(caught.value)
    assert "logs" in str(caught.value)


def test_bad_request_quotes_the_v2_error() -> None:
    with stub_server(Reply(status=400, body={"error": "input 'input-0' has 10 columns; the model takes 11"})) as url:
        with pytest.raises(v2.ServerError, match="HTTP 400 Bad Request: input 'input-0' has 10 columns"):
            v2.predict(f"{url}/v2/models/wine/infer", ROW)


def test_unknown_model_hints_at_the_name() -> None:
    with stub_server(Reply(status=404, body={"error": "Model with name nope does not exist."})) as url:
        with pytest.raises(v2.ServerError, match=r"does not exist\. Check the model name in the URL"):
            v2.predict(f"{url}/v2/models/nope/infer", ROW)


def test_html_reply_is_not_v2() -> None:
    page = "<html><body>" + "Welcome " * 100 + "</body></html>"
    with stub_server(Reply(body=page, content_type="text/html")) as url:
        with pytest.raises(v2.NotV2Response) as caught:
            v2.predict(f"{url}/", ROW)
    message = str(caught.value)
    assert "not JSON (text/html)" in message
    assert "/v2/models/NAME/infer" in message
    assert len(message) < 600, "a long reply is quoted, not pasted"


def test_json_reply_without_outputs_is_not_v2() -> None:
    with stub_server(Reply(body={"predictions": [5.5]})) as url:
        with pytest.raises(v2.NotV2Response, match="no 'outputs' list"):
            v2.predict(f"{url}/v1/models/wine:predict", ROW)
