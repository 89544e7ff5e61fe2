"""Deploy as a Docker container of the serving image, on the host network.

The same runtime as the local target, in its image (input ``serving_image``),
with ``--network host`` so the URL is the same 127.0.0.1 one. Credentials go
in by name (``-e NAME``), never as values on the command line.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

from common import names
from common.errors import ExecutionError, ServiceUnavailable, StepError
from steps.predictor.probe import probe
from steps.predictor.state import AppState, StateStore
from steps.predictor.targets.base import Deployment, DeployPlan, Target
from steps.predictor.targets.local import stop
from steps.predictor.targets.serving_process import HOST, free_port, serve_args, tail, wait_ready

log = logging.getLogger(__name__)

DOCKER = "docker"
# Variables the runtime needs to read the model; passed by name only.
PASSED_VARIABLES = (
    names.AWS_ACCESS_KEY_ID,
    names.AWS_SECRET_ACCESS_KEY,
    names.AWS_SESSION_TOKEN,
    names.AWS_DEFAULT_REGION,
    names.AWS_REGION,
    names.MLFLOW_S3_ENDPOINT_URL,
    names.MLFLOW_S3_IGNORE_TLS,
    names.MLFLOW_TRACKING_URI,
    names.MLFLOW_TRACKING_USERNAME,
    names.MLFLOW_TRACKING_PASSWORD,
    names.MLFLOW_TRACKING_TOKEN,
)
MOUNTED_MODEL = "/mnt/models"


def container_name(app: str) -> str:
    return f"fuseml-predictor-{app}"


def docker_command(plan: DeployPlan, port: int) -> list[str]:
    """The ``docker run`` command line for ``plan`` (pure, for tests and dry runs)."""
    s, model = plan.settings, plan.info.url
    command = [DOCKER, "run", "--detach", "--name", container_name(s.app_name), "--network", "host"]
    command += ["--label", f"fuseml/app-name={s.app_name}"]
    for variable in PASSED_VARIABLES:
        if plan.environ.get(variable):
            command += ["--env", variable]
    if urlparse(model).scheme in ("", "file"):
        local = Path(urlparse(model).path if model.startswith("file:") else model).resolve()
        command += ["--volume", f"{local}:{MOUNTED_MODEL}:ro"]
        model = MOUNTED_MODEL
    command += ["--entrypoint", "python", s.serving_image, *serve_args(model, s.app_name, port)]
    return command


class DockerTarget(Target):
    name = "docker"
    own_runtime_only = True

    def describe(self, plan: DeployPlan) -> tuple[str, str]:
        s = plan.settings
        command = " ".join(docker_command(plan, 0)).replace("--port 0", "--port <free port>")
        text = f"target docker: {plan.choice.describe()}\nreplace container {container_name(s.app_name)}\n{command}"
        return text, f"http://{HOST}:<port>/v2/models/{s.app_name}/infer"

    def deploy(self, plan: DeployPlan) -> Deployment:
        s = plan.settings
        store = StateStore(s.state_dir)
        store.ensure()
        stop(store, s.app_name)
        remove_container(container_name(s.app_name))  # one left by a run whose state was lost
        port = free_port()
        result = _docker(docker_command(plan, port), env=dict(plan.environ))
        container = result.stdout.strip()[:12]
        url = f"http://{HOST}:{port}/v2/models/{s.app_name}/infer"
        store.save(
            AppState(s.app_name, "docker", port, url, plan.info.url, container=container, started_at=time.time())
        )
        log.info("started container %s (%s) for %s on port %s", container, s.serving_image, s.app_name, port)
        try:
            wait_ready(
                port,
                alive=lambda: _running(container),
                logs=lambda: tail(_docker([DOCKER, "logs", container], check=False).stdout),
                timeout=s.timeout,
                what=f"container {container} of {s.app_name}",
            )
            probe([f"http://{HOST}:{port}"], s.app_name, plan.info, per_column=False, timeout=60)
        except StepError:
            stop(store, s.app_name)
            raise
        return Deployment(url=url)


def remove_container(name: str) -> None:
    _docker([DOCKER, "rm", "--force", name], check=False)


def _running(container: str) -> bool:
    result = _docker([DOCKER, "inspect", "--format", "{{.State.Running}}", container], check=False)
    return result.stdout.strip() == "true"


def _docker(command: list[str], env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    except FileNotFoundError as e:
        raise ServiceUnavailable("the docker command is not installed", "use target=local") from e
    except subprocess.TimeoutExpired as e:
        raise ServiceUnavailable(f"{' '.join(command[:3])} did not finish in 120s") from e
    if check and result.returncode != 0:
        raise ExecutionError(f"{' '.join(command[:2])} failed (exit {result.returncode}): {tail(result.stderr, 10)}")
    return result
