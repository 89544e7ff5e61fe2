"""The embedded executor: each step is a local process, no container engine needed.

Images map to commands: our own images run their step module with the runner's
Python (``mlflow-builder`` -> ``python -m steps.builder``), and ``venv://PATH``
(what the builder's venv backend outputs) runs ``PATH/bin/run``, the venv's
trainer entrypoint. Any other image needs containers.

The step runs in its own session with output to the log file, not a pipe: the
predictor's local target leaves a serving process behind on purpose, and a
pipe it inherited would keep the step "running" until that server died. For
the same reason a finished step's process group is left alone; only a
cancelled step is stopped: SIGTERM to its group (our steps forward it to their
children), then SIGKILL to every group of its process tree after the grace period.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from common import names
from common.processes import stop_process_tree
from runner.executors.base import VENV_SCHEME, Executor, ExecutorError, StepSpec, image_role

log = logging.getLogger(__name__)

# Host variables a step process inherits (the contract's PATH/HOME/LANG plus what
# makes networks, locales, temp folders, Docker and Kubernetes clients work).
PASSTHROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "USER",
    "XDG_CACHE_HOME",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "DOCKER_HOST",
    "KUBECONFIG",
)
# Whole families passed through: the user's pip settings (mirrors, CA) for the builder's venvs.
PASSTHROUGH_PREFIXES = ("PIP_",)
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_SECONDS = 10.0


class ProcessExecutor(Executor):
    name = "process"
    default_predictor_target = "local"

    def __init__(self, environ: Mapping[str, str] | None = None, python: str = sys.executable) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.python = python

    def implicit_inputs(self, role: str | None) -> dict[str, str]:
        if role == "builder":
            return {names.input_variable("backend"): "venv"}
        return {}

    def command(self, spec: StepSpec) -> list[str]:
        """The command line that stands in for ``spec.image``."""
        if spec.image.startswith(VENV_SCHEME):
            venv = Path(spec.image[len(VENV_SCHEME) :])
            run = venv / "bin" / "run"
            if not os.access(run, os.X_OK):
                raise ExecutorError(
                    f"step '{spec.step}': image {spec.image} has no executable {run}",
                    hint="rebuild it (delete the venv and rerun) or check the builder's output",
                )
            return [str(run)]
        role = spec.role or image_role(spec.image)
        if role is None:
            raise ExecutorError(
                f"step '{spec.step}': image {spec.image} cannot run without containers",
                hint="use --executor docker, or one of our images (mlflow-builder, mlflow-trainer, "
                "kserve-predictor) or venv://PATH",
            )
        return [self.python, "-m", f"steps.{role}"]

    def environment(self, spec: StepSpec) -> dict[str, str]:
        env = {k: v for k, v in self.environ.items() if k in PASSTHROUGH or k.startswith(PASSTHROUGH_PREFIXES)}
        if not spec.image.startswith(VENV_SCHEME) and (_PROJECT_ROOT / "steps").is_dir():
            # Our step modules from this checkout, even when the runner is not installed.
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), self.environ.get("PYTHONPATH")) if p)
        env.update(spec.env)
        env[names.RESULTS_DIR] = str(spec.results_dir)
        return env

    def check(self, spec: StepSpec) -> None:
        self.command(spec)

    def run(self, spec: StepSpec, cancel: threading.Event) -> int:
        argv = self.command(spec)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.debug("step %s: %s (cwd %s)", spec.step, " ".join(argv), spec.workdir)
        with open(spec.log_path, "ab") as out:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=spec.workdir,
                    env=self.environment(spec),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as e:
                raise ExecutorError(f"step '{spec.step}': cannot start {argv[0]}: {e.strerror}") from e
        while True:
            try:
                return proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                if cancel.is_set():
                    _stop(proc)
                    return proc.wait()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the step's process group; after the grace period, SIGKILL all that is left of its tree."""
    stop_process_tree(proc, STOP_GRACE_SECONDS)
