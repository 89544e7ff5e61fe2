"""Shared by the local and docker targets: a free port, the wait for a fresh server, stopping it.

Both start our MLflow runtime on 127.0.0.1, record it in the state folder, wait
on its V2 health endpoint (giving up early, with the server's last log lines,
when it dies), prove it with a real inference, and stop it again when any of
that fails, so a failed deployment leaves nothing running.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from common.errors import ExecutionError, ServiceUnavailable, StepError
from steps.predictor.probe import probe
from steps.predictor.state import AppState, StateStore, process_alive, stop_process
from steps.predictor.targets.base import Deployment, DeployPlan

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def serve_args(model: str, app: str, port: int) -> list[str]:
    """Arguments of ``python -m serving``."""
    return ["-m", "serving", "--model", model, "--name", app, "--port", str(port), "--host", HOST]


def wait_ready(port: int, alive: Callable[[], bool], logs: Callable[[], str], timeout: float, what: str) -> None:
    """Poll ``/v2/health/ready`` until 200; ExecutionError if the server dies, ServiceUnavailable on timeout."""
    import requests

    url = f"http://{HOST}:{port}/v2/health/ready"
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not alive():
            raise ExecutionError(f"{what} exited before it was ready; its last output:\n{logs()}")
        try:
            response = requests.get(url, timeout=5)
            if response.status_code == 200:
                log.info("%s is ready on port %s", what, port)
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as e:
            last = type(e).__name__
        time.sleep(0.5)
    raise ServiceUnavailable(
        f"{what} not ready after {timeout:.0f}s ({url}: {last}); its last output:\n{logs()}",
        "raise FUSEML_TIMEOUT if the model is large",
    )


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def settle(
    store: StateStore, state: AppState, plan: DeployPlan, alive: Callable[[], bool], logs: Callable[[], str], what: str
) -> Deployment:
    """Record the started server, then succeed only once it answers a real inference; else stop it."""
    store.save(state)
    try:
        wait_ready(state.port, alive=alive, logs=logs, timeout=plan.settings.timeout, what=what)
        probe([f"http://{HOST}:{state.port}"], state.app, plan.info, per_column=False, timeout=60)
    except StepError:
        stop(store, state.app)
        raise
    return Deployment(url=state.url)


def stop(store: StateStore, app: str) -> bool:
    """Stop the app's server (process or container) if one is recorded; True if there was one."""
    state = store.load(app)
    if state is None:
        return False
    if state.kind == "docker" and state.container:
        from steps.predictor.targets.docker import remove_container

        remove_container(state.container)
        log.info("removed container %s of %s", state.container, app)
    elif state.pid and process_alive(state.pid):
        stop_process(state.pid)
        log.info("stopped the server of %s (pid %s, port %s)", app, state.pid, state.port)
    store.remove(app)
    return True
