"""The docker executor: each step is a container, as FuseML/Tekton would run it.

- command ``run`` (the contract's), working directory the codeset, bind-mounted
  at the step's codeset path;
- the step's results folder mounted at ``/tekton/results``, Tekton's place;
- ``--network host``, so services on the host's loopback (the local stack, a
  registry on 127.0.0.1) have the same addresses inside;
- the host user's uid:gid, so the step can write the results and the codeset
  copy, and what it writes is ours to clean up (HOME is a temp folder then);
- host folders a local service keeps its data in (the sqlite tracking store)
  mounted at the same path, so the URIs mean the same inside and out;
- for the builder and the predictor (which drive Docker themselves, to build
  an image or start a serving container) the Docker socket;
- for the predictor, the host's predictor state folder (where local and docker
  deployments are recorded) at the same path, so ``python -m steps.predictor
  stop <app>`` on the host finds what a containerised predictor started;
- for the builder, the host's pip CA bundle (``PIP_CERT``, what the process
  executor passes on) mounted read-only as its ``pip_ca`` input, unless the
  step sets one: behind a TLS-intercepting proxy pip needs it to build.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common import names
from common.logs import masker
from runner.executors.base import VENV_SCHEME, Executor, ExecutorError, StepSpec, image_role
from steps.predictor.settings import default_state_dir

log = logging.getLogger(__name__)

RESULTS_MOUNT = "/tekton/results"
DOCKER_SOCKET = Path("/var/run/docker.sock")
CONTAINER_PASSTHROUGH = ("LANG", "LC_ALL", "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
STOP_GRACE_SECONDS = 10
PIP_CERT = "PIP_CERT"
PIP_CA_MOUNT = "/run/fuseml/pip-ca.crt"


class DockerExecutor(Executor):
    name = "docker"
    default_predictor_target = "docker"

    def __init__(
        self,
        client: Any = None,
        environ: Mapping[str, str] | None = None,
        user: str | None = None,
        socket: Path = DOCKER_SOCKET,
    ) -> None:
        self._client = client
        self.environ = dict(os.environ if environ is None else environ)
        self.user = user if user is not None else f"{os.getuid()}:{os.getgid()}"
        self.socket = socket

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import docker

                self._client = docker.from_env()
                self._client.ping()
            except Exception as e:  # noqa: BLE001 - any failure here means "no engine to talk to"
                raise ExecutorError(
                    f"the docker executor needs a Docker engine, and none answered ({e})",
                    hint="start dockerd (or set DOCKER_HOST), or use --executor process",
                ) from e
        return self._client

    def implicit_inputs(self, role: str | None) -> dict[str, str]:
        return {}

    def check(self, spec: StepSpec) -> None:
        if spec.image.startswith(VENV_SCHEME):
            raise ExecutorError(
                f"step '{spec.step}': image {spec.image} is a local venv, which a container cannot run",
                hint="run the workflow with --executor process, or let the builder use a container backend",
            )

    def container_config(self, spec: StepSpec) -> dict[str, Any]:
        """The keyword arguments of ``containers.create`` for ``spec`` (kept apart to be testable)."""
        env = {k: self.environ[k] for k in CONTAINER_PASSTHROUGH if k in self.environ}
        env.update(spec.env)
        env[names.RESULTS_DIR] = RESULTS_MOUNT
        if self.user and not self.user.startswith("0:") and "HOME" not in spec.env:
            env["HOME"] = "/tmp"
        volumes = {
            str(spec.workdir): {"bind": spec.codeset_path, "mode": "rw"},
            str(spec.results_dir): {"bind": RESULTS_MOUNT, "mode": "rw"},
        }
        for path in spec.shared_paths:
            volumes[str(path)] = {"bind": str(path), "mode": "rw"}
        group_add: list[str] = []
        role = spec.role or image_role(spec.image)
        if role in ("builder", "predictor") and self.socket.exists():
            volumes[str(self.socket)] = {"bind": str(DOCKER_SOCKET), "mode": "rw"}
            group_add.append(str(self.socket.stat().st_gid))
        state_input = names.input_variable("state_dir")
        if role == "predictor" and state_input not in env:
            state_dir = default_state_dir(self.environ)
            state_dir.mkdir(parents=True, exist_ok=True)
            volumes[str(state_dir)] = {"bind": str(state_dir), "mode": "rw"}
            env[state_input] = str(state_dir)
        pip_ca_input = names.input_variable("pip_ca")
        host_ca = self.environ.get(PIP_CERT, "")
        if role == "builder" and host_ca and Path(host_ca).is_file() and pip_ca_input not in env:
            volumes[str(Path(host_ca).resolve())] = {"bind": PIP_CA_MOUNT, "mode": "ro"}
            env[pip_ca_input] = PIP_CA_MOUNT
        config: dict[str, Any] = {
            "image": spec.image,
            "entrypoint": ["run"],
            "environment": env,
            "working_dir": spec.codeset_path,
            "volumes": volumes,
            "network_mode": "host",
            "labels": {"fuseml-steps.run": spec.run, "fuseml-steps.step": spec.step, **spec.labels},
            "detach": True,
        }
        if self.user:
            config["user"] = self.user
        if group_add:
            config["group_add"] = group_add
        return config

    def run(self, spec: StepSpec, cancel: threading.Event) -> int:
        self.check(spec)
        self._ensure_image(spec)
        spec.results_dir.mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        container = self.client.containers.create(**self.container_config(spec))
        try:
            container.start()
            follower = threading.Thread(target=_copy_logs, args=(container, spec.log_path), daemon=True)
            follower.start()
            while True:
                try:
                    status = container.wait(timeout=1)
                    break
                except Exception as e:  # noqa: BLE001 - the SDK raises requests' timeout types
                    if "timed out" not in str(e).lower() and "timeout" not in type(e).__name__.lower():
                        raise
                    if cancel.is_set():
                        container.stop(timeout=STOP_GRACE_SECONDS)
            follower.join(timeout=10)
            return int(status.get("StatusCode", 1))
        finally:
            try:
                container.remove(force=True)
            except Exception as e:  # noqa: BLE001 - cleanup must not hide the step's outcome
                log.warning("could not remove container %s of step %s: %s", container.id[:12], spec.step, e)

    def _ensure_image(self, spec: StepSpec) -> None:
        import docker.errors

        try:
            self.client.images.get(spec.image)
            return
        except docker.errors.ImageNotFound:
            pass
        log.info("step %s: pulling %s", spec.step, spec.image)
        try:
            self.client.images.pull(spec.image)
        except docker.errors.APIError as e:
            raise ExecutorError(
                f"step '{spec.step}': image {spec.image} is not on this machine and cannot be pulled "
                f"({e.explanation or e})",
                hint="build it (make images) or push it to a registry this machine can reach",
            ) from e


def _copy_logs(container: Any, log_path: Path) -> None:
    """Append the container's output to the step log as it comes, each line masked.

    Our steps mask their own output; an image that is not ours may not, and the
    log file is kept on disk, so the runner masks it once more on the way in.
    """
    mask = masker().mask
    pending = b""
    with open(log_path, "ab") as out:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            pending += chunk
            cut = pending.rfind(b"\n") + 1
            if cut:
                out.write(mask(pending[:cut].decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape"))
                out.flush()
                pending = pending[cut:]
        if pending:
            out.write(mask(pending.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape"))
