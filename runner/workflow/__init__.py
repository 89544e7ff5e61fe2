"""FuseML workflow YAML: the model, loading it, and checking it before anything runs.

The keys are FuseML's (see docs/contract.md, "Workflow YAML, key by key", and
fuseml-core's ``design/workflow.go``). Real workflows carry keys we do not use
(``description``, ``labels``, an extension's ``product``, a step's
``resources``): those are accepted. Every problem names the file and line, and
all problems are reported at once so a user fixes a workflow in one pass.

- ``model``: the workflow as frozen values;
- ``yaml_lines``: a YAML loader that keeps the line of everything it reads;
- ``parser``: YAML to the model, each item checked for its shape;
- ``checker``: keys (misspellings get a "did you mean"), references between
  inputs, steps and outputs, and a run's inputs against the workflow's;
- ``errors``: ``WorkflowError`` and the problems collected for it.
"""

from runner.workflow.checker import bind_inputs
from runner.workflow.errors import WorkflowError
from runner.workflow.model import (
    CODESET,
    DEFAULT_CODESET_PATH,
    INPUT_TYPES,
    STRING,
    CodesetMount,
    EnvVar,
    Extension,
    Step,
    StepInput,
    Workflow,
    WorkflowInput,
    WorkflowOutput,
)
from runner.workflow.parser import load_workflow, parse_workflow

__all__ = [
    "CODESET",
    "DEFAULT_CODESET_PATH",
    "INPUT_TYPES",
    "STRING",
    "CodesetMount",
    "EnvVar",
    "Extension",
    "Step",
    "StepInput",
    "Workflow",
    "WorkflowError",
    "WorkflowInput",
    "WorkflowOutput",
    "bind_inputs",
    "load_workflow",
    "parse_workflow",
]
