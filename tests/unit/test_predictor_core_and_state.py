"""FuseML core registration, the state folder, stopping what it records, and the moved ``stop`` command.

Stopping is tested on real processes: a fake ``python -m serving`` (a package of
that name in a temporary folder, which ``-m`` finds first) that starts a child
in its group, as the real server's workers are.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common.errors import InputError, ServiceUnavailable
from common.polling import wait_until
from common.processes import runs_module, stop_process_group, stop_recorded_process
from steps.predictor import fuseml_core
from steps.predictor.apps import is_alive, stop_app
from steps.predictor.state import AppState, StateStore, process_alive
from steps.predictor.targets import docker as docker_target
from steps.predictor.targets.base import Deployment

ROOT = Path(__file__).resolve().parents[2]
FAKE_SERVER = """
import signal, subprocess, sys, time
if "--ignore-sigterm" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(worker.pid, flush=True)
time.sleep(600)
"""


@contextmanager
def fake_server(folder: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A running ``python -m serving`` in its own session, and the pid of its worker; ended afterwards, pass or fail."""
    package = folder / "serving"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(FAKE_SERVER)
    server = subprocess.Popen(
        [sys.executable, "-m", "serving", "--name", "wine", *args],
        cwd=folder, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        worker = int(server.stdout.readline())  # also: the SIGTERM disposition is set
        yield server, worker
    finally:
        stop_process_group(server, timeout=1)
        server.stdout.close()


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs; waits for it a little, since a killed process is reaped by its parent."""

    def ended() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
        except OSError:
            return True

    return wait_until(ended, timeout=10, interval=0.05)


def finished_pid() -> int:
    """The pid of a process that has exited: what a record holds after its server died."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def local_record(pid: int, app: str = "wine") -> AppState:
    return AppState(app, "local", 8080, f"http://127.0.0.1:8080/v2/models/{app}/infer", "s3://b/m", pid=pid)


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


def test_app_names_must_be_dns_labels_before_they_become_file_names(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    for name in ("../wine", "a/b", "Wine", "wine.json", "-wine", "", "x" * 64):
        with pytest.raises(InputError, match="not an application name"):
            store.path(name)
    with pytest.raises(InputError):
        store.load("../../etc/passwd")


def test_the_store_lists_its_apps_by_name_and_skips_other_files(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.apps() == [] and StateStore(tmp_path / "missing").apps() == []
    store.save(local_record(1, "wine-b"))
    store.save(local_record(2, "wine-a"))
    (tmp_path / "Notes.json").write_text("{}")
    (tmp_path / "broken.json").write_text("{broken")
    (tmp_path / "wine-a.log").write_text("log")
    assert [s.app for s in store.apps()] == ["wine-a", "wine-b"]


def test_the_pid_check_wants_exactly_python_dash_m_serving(tmp_path: Path) -> None:
    lookalike = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "serving", "-m", "servings"])
    try:
        assert not runs_module(lookalike.pid, "serving") and not process_alive(lookalike.pid)
        assert not stop_recorded_process(lookalike.pid, "serving"), "a pid reused by another program is not ours"
        assert lookalike.poll() is None, "and is left running"
    finally:
        stop_process_group(lookalike, timeout=1)
    with fake_server(tmp_path) as (server, _):
        assert runs_module(server.pid, "serving") and process_alive(server.pid)
        assert not runs_module(server.pid, "servin")


def test_stopping_a_recorded_server_ends_its_whole_group_and_forgets_it(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    with fake_server(tmp_path) as (server, worker):
        store.save(local_record(server.pid))
        assert is_alive(store.load("wine"))
        assert stop_app(store, "wine") is True
        assert server.wait(timeout=30) == -signal.SIGTERM
        assert gone(worker), "the server's worker outlived it"
    assert store.load("wine") is None
    assert stop_app(store, "wine") is False


def test_a_server_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    with fake_server(tmp_path, "--ignore-sigterm") as (server, worker):
        assert stop_recorded_process(server.pid, "serving", timeout=0.2) is True
        assert server.wait(timeout=30) == -signal.SIGKILL
        assert gone(worker)


def test_a_child_in_our_own_process_group_is_stopped_alone() -> None:
    """Signalling its group would signal the test run itself."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert os.getpgid(child.pid) == os.getpgrp()
        stop_process_group(child, timeout=10)
        assert child.returncode == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()


def test_a_record_whose_server_is_gone_is_just_forgotten(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.save(local_record(finished_pid()))
    assert not is_alive(store.load("wine"))
    assert stop_app(store, "wine") is True and store.load("wine") is None


def test_each_record_is_stopped_by_the_target_that_made_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    removed: list[str] = []
    monkeypatch.setattr(docker_target, "remove_container", removed.append)
    store = StateStore(tmp_path)
    store.save(AppState("wine", "docker", 8080, "http://127.0.0.1:8080/v2/models/wine/infer", "m", container="c0ffee"))
    assert stop_app(store, "wine") is True
    assert removed == ["c0ffee"] and store.load("wine") is None

    store.save(AppState("wine", "kserve", 80, "http://wine.example.com/v2/models/wine/infer", "m"))
    with pytest.raises(InputError, match="'kserve', which keeps no deployments on this machine"):
        stop_app(store, "wine")
    assert store.load("wine") is not None, "a record that cannot be acted on is kept"


def test_a_docker_record_is_not_alive_when_its_container_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    class Containers:
        def get(self, name: str) -> None:
            import docker.errors

            raise docker.errors.NotFound(f"no container {name}")

    monkeypatch.setattr(docker_target, "docker_client", lambda: type("Client", (), {"containers": Containers()})())
    assert not is_alive(AppState("wine", "docker", 8080, "u", "m", container="c0ffee"))


def test_the_old_stop_command_points_to_fuseml_steps_apps(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FUSEML_STATE_DIR": str(tmp_path),
           "TASK_RESULT": "r", "FUSEML_RESULTS_DIR": str(tmp_path / "results")}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "steps.predictor", "stop", "wine"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "use `fuseml-steps apps stop wine`" in done.stderr
    assert done.stdout == "" and not (tmp_path / "results" / "r").exists()
