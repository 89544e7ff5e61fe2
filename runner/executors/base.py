"""What an executor is given and must do: run one step, its output going to a log file.

The engine prepares everything the contract fixes (variables, working
directory, results folder); an executor only decides *how* the step runs, as
a process or a container. Executors write the step's output to
``spec.log_path`` and nothing else, so the engine can follow any of them the
same way and keep the log for ``fuseml-steps logs``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import StepError

VENV_SCHEME = "venv://"

# Our images, matched on the last part of the repository name, and the step each runs.
OUR_IMAGES = {
    "mlflow-builder": "builder",
    "mlflow-trainer": "trainer",
    "kserve-predictor": "predictor",
}


class ExecutorError(StepError):
    """An executor cannot run a step at all (unknown image, no container engine...)."""


@dataclass(frozen=True)
class StepSpec:
    """One step, ready to run.

    ``env`` holds the contract's variables only (inputs, TASK_RESULT,
    extensions, ...); each executor adds what its world needs (PATH for a
    process, the results mount for a container). ``workdir`` is the host folder
    of the codeset; a container sees it at ``codeset_path``.
    """

    run: str
    step: str
    image: str
    env: dict[str, str]
    workdir: Path
    results_dir: Path
    log_path: Path
    codeset_path: str = "/project"
    shared_paths: tuple[Path, ...] = ()
    role: str | None = None  # builder / trainer / predictor when the image is one of ours
    labels: dict[str, str] = field(default_factory=dict)


class Executor(ABC):
    """Runs steps; ``name`` is what ``--executor`` selects."""

    name: str = ""
    # The predictor target that works without further setup under this executor.
    default_predictor_target: str = "local"

    def implicit_inputs(self, role: str | None) -> dict[str, str]:
        """Inputs our own steps need under this executor, unless the workflow sets them
        (e.g. the builder's venv backend when there are no containers)."""
        return {}

    def check(self, spec: StepSpec) -> None:  # noqa: B027 - optional hook
        """Fail early, before the step starts, when it cannot run here."""

    @abstractmethod
    def run(self, spec: StepSpec, cancel: threading.Event) -> int:
        """Run the step to its end and return its exit code; stop it early when ``cancel`` is set."""


def image_role(image: str) -> str | None:
    """``builder``/``trainer``/``predictor`` when ``image`` is one of our images, else None.

    ``ghcr.io/fuseml-steps/mlflow-builder:0.1`` -> ``builder``; a registry port,
    a tag or a digest do not matter.
    """
    if image.startswith(VENV_SCHEME):
        return None
    reference = image.split("@", 1)[0]
    repository = reference.rsplit("/", 1)[-1].split(":", 1)[0]
    return OUR_IMAGES.get(repository)
