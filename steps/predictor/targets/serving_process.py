"""Shared by the local and docker targets: the server's command line, the wait for it, and settling it.

Both start our MLflow runtime on 127.0.0.1, record it in the state folder, wait
on its V2 health endpoint (giving up early, with the server's last log lines,
when it dies), prove it with a real inference, and stop it again when any of
that fails, so a failed deployment leaves nothing running. How to stop a
server is each target's own (``RecordedTarget.stop``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from common.errors import ExecutionError, ServiceUnavailable, StepError
from common.polling import wait_until
from steps.predictor.probe import probe
from steps.predictor.state import AppState, StateStore
from steps.predictor.targets.base import Deployment, DeployPlan

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
READY_POLL_SECONDS = 0.5
PROBE_TIMEOUT = 60.0


def serve_args(model: str, app: str, port: int, grpc_port: int = 0, workers: str = "1") -> list[str]:
    """Arguments of ``python -m serving``: REST on ``port``, gRPC on ``grpc_port`` (0: none), ``workers`` processes."""
    return ["-m", "serving", "--model", model, "--name", app, "--port", str(port),
            "--grpc-port", str(grpc_port), "--host", HOST, "--workers", workers]  # fmt: skip


def grpc_address(grpc_port: int) -> str:
    """The OIP gRPC address clients dial (``tritonclient.grpc``, KServe's InferenceGRPCClient)."""
    return f"{HOST}:{grpc_port}"


def wait_ready(port: int, alive: Callable[[], bool], logs: Callable[[], str], timeout: float, what: str) -> None:
    """Poll ``/v2/health/ready`` until 200; ExecutionError if the server dies, ServiceUnavailable on timeout."""
    import requests

    url = f"http://{HOST}:{port}/v2/health/ready"
    last = "no answer yet"

    def ready() -> bool:
        nonlocal last
        if not alive():
            raise ExecutionError(f"{what} exited before it was ready: {last_words(logs())}")
        try:
            status = requests.get(url, timeout=5).status_code
        except requests.RequestException as e:
            last = type(e).__name__
            return False
        last = f"HTTP {status}"
        return status == 200

    if not wait_until(ready, timeout=timeout, interval=READY_POLL_SECONDS):
        raise ServiceUnavailable(
            f"{what} not ready after {timeout:.0f}s ({url}: {last}); its last output: {last_words(logs())}",
            "raise FUSEML_TIMEOUT if the model is large",
        )
    log.info("%s is ready on port %s", what, port)


def model_record(plan: DeployPlan) -> dict[str, str | None]:
    """The ``AppState`` fields naming the model: the URI given, the copy served, the registered version and run."""
    location = plan.location
    return {
        "model": plan.settings.model,
        "served_from": plan.info.url if plan.info.url != plan.settings.model else None,
        "registered_model": location.name if location else None,
        "model_version": location.version if location else None,
        "run_id": location.run_id if location else None,
    }


def preparation(plan: DeployPlan) -> str:
    """The plan's lines about copying the model, each ending with a newline (none when it is served in place)."""
    return "".join(f"{line}\n" for line in plan.preparation)


def environment_line(plan: DeployPlan) -> str:
    """The plan's line saying which environment serves the model and why (none when not decided)."""
    return f"{plan.environment.describe()}\n" if plan.environment is not None else ""


def last_words(output: str) -> str:
    """The server's own error line (``serve: error: ...``), else its last line: one line for the step's error.

    The whole tail goes to the verbose log; the step's error stays one line, as the contract asks.
    """
    log.debug("the server's last output:\n%s", output)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("serve: error:")]
    return (errors or lines or ["(none)"])[-1]


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def settle(
    store: StateStore,
    state: AppState,
    plan: DeployPlan,
    alive: Callable[[], bool],
    logs: Callable[[], str],
    stop: Callable[[AppState], None],
    what: str,
) -> Deployment:
    """Record the started server, then succeed only once it answers a real inference; else stop and forget it."""
    store.save(state)
    try:
        wait_ready(state.port, alive=alive, logs=logs, timeout=plan.settings.timeout, what=what)
        probe([f"http://{HOST}:{state.port}"], state.app, plan.info, per_column=False, timeout=PROBE_TIMEOUT)
    except StepError:
        stop(state)
        store.remove(state.app)
        raise
    return Deployment(url=state.url)
