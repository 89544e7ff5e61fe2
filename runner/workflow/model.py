"""A FuseML workflow as the runner uses it: plain frozen values, each with the line it came from.

The lines are kept so that a problem found after parsing (a reference to a
later step, a missing required input) still names ``file:line``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CODESET = "codeset"
STRING = "string"
INPUT_TYPES = (CODESET, STRING)
DEFAULT_CODESET_PATH = "/project"


@dataclass(frozen=True)
class WorkflowInput:
    name: str
    type: str = STRING
    default: str | None = None
    description: str = ""
    line: int = 0

    @property
    def required(self) -> bool:
        return self.default is None and self.type != CODESET


@dataclass(frozen=True)
class WorkflowOutput:
    name: str
    description: str = ""
    type: str = STRING
    line: int = 0


@dataclass(frozen=True)
class CodesetMount:
    """A step input that is a codeset: which one (a template) and where it is mounted."""

    name: str
    path: str = DEFAULT_CODESET_PATH
    line: int = 0


@dataclass(frozen=True)
class StepInput:
    """A ``value`` input (becomes ``FUSEML_<NAME>``) or a codeset input (the working directory)."""

    name: str
    value: str | None = None
    codeset: CodesetMount | None = None
    line: int = 0


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    line: int = 0


@dataclass(frozen=True)
class Extension:
    name: str
    product: str = ""
    service_resource: str = ""
    line: int = 0

    @property
    def kind(self) -> str:
        """What the extension provides: FuseML matches on ``service_resource`` when given
        (the example workflows name the S3 extension ``mlflow-store`` with resource ``s3``)."""
        return self.service_resource or self.name


@dataclass(frozen=True)
class Step:
    name: str
    image: str
    inputs: tuple[StepInput, ...] = ()
    outputs: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    extensions: tuple[Extension, ...] = ()
    resources: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    image_line: int = 0

    @property
    def result_name(self) -> str | None:
        """The output the step writes via ``TASK_RESULT`` (its first)."""
        return self.outputs[0] if self.outputs else None

    @property
    def codeset(self) -> CodesetMount | None:
        return next((i.codeset for i in self.inputs if i.codeset is not None), None)

    @property
    def value_inputs(self) -> tuple[StepInput, ...]:
        return tuple(i for i in self.inputs if i.codeset is None)


@dataclass(frozen=True)
class Workflow:
    name: str
    steps: tuple[Step, ...]
    inputs: tuple[WorkflowInput, ...] = ()
    outputs: tuple[WorkflowOutput, ...] = ()
    description: str = ""
    source: str = "<workflow>"
    warnings: tuple[str, ...] = ()

    def input(self, name: str) -> WorkflowInput | None:
        return next((i for i in self.inputs if i.name == name), None)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def codeset_inputs(self) -> tuple[WorkflowInput, ...]:
        return tuple(i for i in self.inputs if i.type == CODESET)

    def where(self, line: int) -> str:
        return f"{self.source}:{line}" if line else self.source
