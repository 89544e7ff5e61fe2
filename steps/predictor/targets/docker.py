"""Deploy as a Docker container of the serving image, on the host network.

The same runtime as the local target, in its image (input ``serving_image``, or
the model's own serving image: ``steps.predictor.serving_environment``), with
``--network host`` so the URL is the same 127.0.0.1 one. The container is
started through the Docker Engine API (``steps.predictor.docker_engine``), so
the step works from its own image, which has no docker command: a mounted
socket is enough. Credentials reach the container as
its environment, never on a command line; ``docker_command`` shows the
equivalent ``docker run`` (credentials by name) for dry runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from common import names
from common.errors import ExecutionError
from common.ports import free_port
from steps.predictor.docker_engine import docker_client, explain
from steps.predictor.state import AppState, StateStore
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

DOCKER = "docker"
# Variables the runtime needs to read the model; passed on when set.
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


@dataclass(frozen=True)
class ContainerSpec:
    """The serving container of a plan: one description for the API call and the dry run's command line."""

    name: str
    image: str
    command: list[str]
    labels: dict[str, str]
    env_names: list[str]
    volumes: dict[str, str] = field(default_factory=dict)  # host path -> container path, read-only

    def cli(self) -> list[str]:
        command = [DOCKER, "run", "--detach", "--name", self.name, "--network", "host"]
        for key, value in self.labels.items():
            command += ["--label", f"{key}={value}"]
        for variable in self.env_names:
            command += ["--env", variable]
        for host, inside in self.volumes.items():
            command += ["--volume", f"{host}:{inside}:ro"]
        return [*command, "--entrypoint", "python", self.image, *self.command]


def container_spec(plan: DeployPlan, port: int, grpc_port: int = 0) -> ContainerSpec:
    """The container for ``plan`` serving REST on ``port``, gRPC on ``grpc_port`` (pure, for tests and dry runs)."""
    s, model = plan.settings, plan.info.url
    volumes = {}
    if urlparse(model).scheme in ("", "file"):
        local = Path(urlparse(model).path if model.startswith("file:") else model).resolve()
        volumes[str(local)] = MOUNTED_MODEL
        model = MOUNTED_MODEL
    return ContainerSpec(
        name=container_name(s.app_name),
        image=serving_image(plan),
        command=serve_args(model, s.app_name, port, grpc_port, s.workers),
        labels={"fuseml/app-name": s.app_name, **plan.provenance},
        env_names=[v for v in PASSED_VARIABLES if plan.environ.get(v)],
        volumes=volumes,
    )


def serving_image(plan: DeployPlan) -> str:
    """The image the container runs: the plan's serving environment, else input ``serving_image``."""
    environment = plan.environment
    if environment is not None and environment.kind != "runtime":
        return environment.image or "<the model's own serving image>"
    return plan.settings.serving_image


def docker_command(plan: DeployPlan, port: int, grpc_port: int = 0) -> list[str]:
    """The ``docker run`` command line equivalent to the deployment (credentials by name only)."""
    return container_spec(plan, port, grpc_port).cli()


class DockerTarget(RecordedTarget):
    name = "docker"
    own_runtime_only = True

    def describe(self, plan: DeployPlan) -> tuple[str, str]:
        s = plan.settings
        command = " ".join(docker_command(plan, 0, 0)).replace("--port 0", "--port <free port>")
        command = command.replace("--grpc-port 0", "--grpc-port <free port>")
        text = (
            f"target docker: {plan.choice.describe()}\n{environment_line(plan)}{preparation(plan)}"
            f"replace container {container_name(s.app_name)}\n{command}"
        )
        return text, f"http://{HOST}:<port>/v2/models/{s.app_name}/infer"

    def deploy(self, plan: DeployPlan) -> Deployment:
        s = plan.settings
        store = StateStore(s.state_dir)
        store.ensure()
        remove_container(container_name(s.app_name))  # one left by a run whose state was lost
        port, grpc_port = free_port(with_grpc=False), free_port(with_grpc=False)
        container = start_container(container_spec(plan, port, grpc_port), plan.environ)
        url = f"http://{HOST}:{port}/v2/models/{s.app_name}/infer"
        log.info(
            "started container %s (%s) for %s on port %s, gRPC %s",
            container, serving_image(plan), s.app_name, port, grpc_address(grpc_port),
        )  # fmt: skip
        state = AppState(s.app_name, "docker", port, url, container=container, started_at=time.time(),
                         grpc=grpc_address(grpc_port), **model_record(plan))  # fmt: skip
        return settle(
            store,
            state,
            plan,
            alive=lambda: _running(container),
            logs=lambda: _logs(container),
            stop=self.stop,
            what=f"container {container} of {s.app_name}",
        )

    def alive(self, state: AppState) -> bool:
        return state.container is not None and _running(state.container)

    def stop(self, state: AppState) -> None:
        if state.container:
            remove_container(state.container)
            log.info("removed container %s of %s", state.container, state.app)


def start_container(spec: ContainerSpec, environ: Any) -> str:
    """Start ``spec`` detached (pulling its image if needed); returns the short container id."""
    import docker.errors

    try:
        container = docker_client().containers.run(
            spec.image,
            spec.command,
            entrypoint=["python"],
            name=spec.name,
            network_mode="host",
            labels=spec.labels,
            environment={v: environ[v] for v in spec.env_names},
            volumes={host: {"bind": inside, "mode": "ro"} for host, inside in spec.volumes.items()},
            detach=True,
        )
    except docker.errors.ImageNotFound as e:
        raise ExecutionError(
            f"serving image {spec.image} is not on this machine and cannot be pulled",
            "build it (make images) or set FUSEML_SERVING_IMAGE",
        ) from e
    except docker.errors.DockerException as e:
        raise ExecutionError(f"docker run {spec.image} failed: {explain(e)}") from e
    return str(container.id)[:12]


def remove_container(name: str) -> None:
    """Remove the container ``name`` (an id or a name), running or not; nothing if there is none."""
    import docker.errors

    try:
        docker_client().containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.DockerException as e:
        log.warning("could not remove container %s: %s", name, explain(e))


def _running(container: str) -> bool:
    import docker.errors

    try:
        return bool(docker_client().containers.get(container).status == "running")
    except docker.errors.NotFound:
        return False


def _logs(container: str) -> str:
    import docker.errors

    try:
        return tail(docker_client().containers.get(container).logs(tail=200).decode(errors="replace"))
    except docker.errors.DockerException as e:
        return f"(no logs: {explain(e)})"
