"""FuseML core registration, the state folder, and the step's CLI for a stop."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common.errors import ServiceUnavailable
from steps.predictor import fuseml_core
from steps.predictor.state import AppState, StateStore, process_alive
from steps.predictor.targets.base import Deployment

ROOT = Path(__file__).resolve().parents[2]


class _Core(BaseHTTPRequestHandler):
    received: list = []
    answer = 201

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(type(self).answer)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def core():
    handler = type("Core", (_Core,), {"received": [], "answer": 201})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_register_posts_the_application(core) -> None:
    handler, url = core
    deployment = Deployment("http://wine.ns.example.com/v2/models/wine/infer", "ns", [{"kind": "Secret", "name": "s"}])
    fuseml_core.register(url + "/", fuseml_core.application("wine", "mlflow-e2e", deployment, "s3://b/m"))
    path, body = handler.received[0]
    assert path == "/applications"
    assert body["name"] == "wine" and body["type"] == "predictor" and body["workflow"] == "mlflow-e2e"
    assert body["url"] == deployment.url and body["k8s_namespace"] == "ns"
    assert body["k8s_resources"] == [{"kind": "Secret", "name": "s"}] and "s3://b/m" in body["description"]


def test_register_refused_is_an_error(core) -> None:
    handler, url = core
    handler.answer = 500
    with pytest.raises(ServiceUnavailable, match="HTTP 500"):
        fuseml_core.register(url, fuseml_core.application("wine", "w", Deployment("u"), "m"))
    with pytest.raises(ServiceUnavailable, match="does not answer"):
        fuseml_core.register("http://127.0.0.1:9", {"name": "wine"}, timeout=2)


def test_state_round_trip_and_unknown_pids_are_not_ours(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert store.load("wine") is None
    store.save(AppState("wine", "local", 8080, "http://127.0.0.1:8080/v2/models/wine/infer", "m", pid=1))
    assert store.load("wine").port == 8080
    assert not process_alive(1), "pid 1 is not a serving process: never signal it"
    store.path("wine").write_text("{broken")
    assert store.load("wine") is None


def test_stop_cli_for_an_unknown_app(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FUSEML_STATE_DIR": str(tmp_path),
           "TASK_RESULT": "r", "FUSEML_RESULTS_DIR": str(tmp_path / "results")}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "steps.predictor", "stop", "wine"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wine: not running" in done.stdout
    assert not (tmp_path / "results" / "r").exists()
