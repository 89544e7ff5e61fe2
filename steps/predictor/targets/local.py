"""Deploy as a local process: our MLflow runtime on 127.0.0.1, detached.

The runtime runs in this Python, or in the model's own venv when this one lacks
what the model needs (``steps.predictor.serving_environment``).

The server outlives the step (it is the deployment), so it starts in its own
session with its output in ``<state_dir>/<app>.log``. Its pid and port go in the
state folder, so ``fuseml-steps apps stop`` (or a deploy replacing the app) can
stop it later, and only while that pid still runs our server.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from common.errors import ExecutionError
from common.ports import free_port
from common.processes import stop_recorded_process
from steps.predictor.state import SERVE_MODULE, AppState, StateStore, process_alive
from steps.predictor.targets.base import Deployment, DeployPlan, RecordedTarget
from steps.predictor.targets.serving_process import (
    HOST,
    environment_line,
    grpc_address,
    model_record,
    preparation,
    serve_args,
    settle,
    tail,
)

log = logging.getLogger(__name__)

# The folder that holds the ``steps`` package, so ``-m serving`` imports from any cwd.
_PROJECT_ROOT = Path(__file__).resolve().parents[3]


class LocalTarget(RecordedTarget):
    name = "local"
    own_runtime_only = True

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python

    def python_for(self, plan: DeployPlan) -> str:
        """The interpreter that runs the runtime: the plan's serving environment's, else this target's."""
        environment = plan.environment
        if _in_model_venv(plan) and environment is not None:
            return environment.python or "<the model's own venv>/bin/python"
        return self.python

    def describe(self, plan: DeployPlan) -> tuple[str, str]:
        s = plan.settings
        command = " ".join([self.python_for(plan), *serve_args(plan.info.url, s.app_name, 0, 0, s.workers)])
        command = command.replace("--port 0", "--port <free port>").replace("--grpc-port 0", "--grpc-port <free port>")
        text = (
            f"target local: {plan.choice.describe()}\n"
            f"{environment_line(plan)}{preparation(plan)}"
            f"stop the server of {s.app_name} recorded in {s.state_dir} (if any)\n"
            f"start: {command}\n"
            f"wait for /v2/health/ready, probe /v2/models/{s.app_name}/infer"
        )
        return text, f"http://{HOST}:<port>/v2/models/{s.app_name}/infer"

    def deploy(self, plan: DeployPlan) -> Deployment:
        s = plan.settings
        store = StateStore(s.state_dir)
        store.ensure()
        port, grpc_port = free_port(with_grpc=False), free_port(with_grpc=False)
        log_path = store.log_path(s.app_name)
        environ = dict(plan.environ)
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), environ.get("PYTHONPATH")) if p)
        if _in_model_venv(plan):
            # That venv is a cache folder of ours, compiled only as far as the runtime's own imports: its
            # first start compiles what the model imports (scikit-learn, ...) for every later start, even
            # where the step runs with PYTHONDONTWRITEBYTECODE (our images, many CI machines).
            environ.pop("PYTHONDONTWRITEBYTECODE", None)
        log.info(
            "starting the MLflow runtime for %s on %s:%s, gRPC %s (log: %s)",
            s.app_name, HOST, port, grpc_address(grpc_port), log_path,
        )  # fmt: skip
        python = self.python_for(plan)
        with open(log_path, "wb") as output:
            try:
                process = subprocess.Popen(
                    [python, *serve_args(plan.info.url, s.app_name, port, grpc_port, s.workers)],
                    stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                    env=environ, start_new_session=True, close_fds=True,
                )  # fmt: skip
            except OSError as e:
                raise ExecutionError(f"cannot start {python}: {e.strerror}") from e
        url = f"http://{HOST}:{port}/v2/models/{s.app_name}/infer"
        state = AppState(s.app_name, "local", port, url, pid=process.pid, log_path=str(log_path),
                         started_at=time.time(), grpc=grpc_address(grpc_port), **model_record(plan))  # fmt: skip
        return settle(
            store,
            state,
            plan,
            alive=lambda: process.poll() is None,
            logs=lambda: tail(log_path.read_text(errors="replace")),
            stop=self.stop,
            what=f"local server of {s.app_name} (pid {process.pid})",
        )

    def alive(self, state: AppState) -> bool:
        return state.pid is not None and process_alive(state.pid)

    def stop(self, state: AppState) -> None:
        if state.pid is not None and stop_recorded_process(state.pid, SERVE_MODULE):
            log.info("stopped the server of %s (pid %s, port %s)", state.app, state.pid, state.port)


def _in_model_venv(plan: DeployPlan) -> bool:
    """Whether the runtime runs in the model's own venv (built from its requirements), not in this Python."""
    return plan.environment is not None and plan.environment.kind != "runtime"
