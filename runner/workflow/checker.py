"""What makes a workflow wrong beyond the shape of each item, found before anything runs.

- Keys: FuseML's keys at each level are accepted, also the ones we do not use.
  An unknown key that looks like a misspelt known one (``imgae``) is an error
  with a "did you mean", because FuseML would silently drop it and the step
  would run without it; any other unknown key only gets a warning.
- References: every ``{{ inputs.x }}`` and ``{{ steps.s.outputs.o }}`` must
  name an input or an earlier step's output, every
  ``{{ extensions.e.cfg.VAR }}`` an extension of its own step (and not its
  image: an image is no secret), codesets must be codeset inputs, and every
  workflow output must be produced by a step.
- Inputs of a run: each required input has a value and each codeset input a
  codeset, and no unknown input is given.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from runner.templates import Reference, RefKind, TemplateSyntaxError, references
from runner.workflow.errors import Problems, WorkflowError
from runner.workflow.model import CODESET, Step, StepInput, Workflow
from runner.workflow.yaml_lines import LineMap

# An extension's configuration is its variables: a name an environment variable can have.
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Keys FuseML defines at each level; the ones we do not use are accepted as they are.
FUSEML_KEYS = {
    "workflow": {"name", "description", "inputs", "outputs", "steps", "created", "labels"},
    "input": {"name", "description", "type", "default", "labels"},
    "output": {"name", "description", "type"},
    "step": {"name", "image", "inputs", "outputs", "env", "extensions", "resources", "description"},
    "step input": {"name", "value", "codeset", "description"},
    "codeset": {"name", "path"},
    "step output": {"name", "image", "description"},
    "env": {"name", "value"},
    "extension": {
        "name",
        "extension_id",
        "product",
        "version",
        "zone",
        "service_id",
        "service_resource",
        "global",
        "description",
    },
}


def check_keys(item: LineMap, level: str, what: str, problems: Problems) -> None:
    """Refuse keys of ``item`` that look like misspelt FuseML keys of ``level``; warn about other unknown ones."""
    known = FUSEML_KEYS[level]
    for key in item:
        if key in known:
            continue
        line = item.line_of(key)
        close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.75)
        if close:
            problems.add(line, f"{what}: unknown key '{key}'; did you mean '{close[0]}'?")
        else:
            problems.warn(line, f"{what}: key '{key}' is not a FuseML key; ignored")


def check_references(workflow: Workflow, problems: Problems) -> None:
    """Check every template of ``workflow`` against its inputs and steps, and that its outputs are produced."""
    _ReferenceChecker(workflow, problems).check()


def bind_inputs(workflow: Workflow, values: Mapping[str, str], codeset_names: Mapping[str, str]) -> dict[str, str]:
    """The value of every workflow input: given, else its default; errors list what is missing.

    ``codeset_names`` maps each codeset input that has a codeset to that codeset's name.
    """
    problems = []
    known = {i.name for i in workflow.inputs}
    for name in values:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            problems.append(f"unknown input '{name}' (the workflow's inputs: {listed})")
    bound: dict[str, str] = {}
    for item in workflow.inputs:
        where = workflow.where(item.line)
        if item.type == CODESET:
            if item.name not in codeset_names:
                problems.append(f"{where}: codeset input '{item.name}' has no codeset: pass --codeset DIR")
            else:
                bound[item.name] = codeset_names[item.name]
        elif item.name in values:
            bound[item.name] = values[item.name]
        elif item.default is not None:
            bound[item.name] = item.default
        else:
            problems.append(f"{where}: missing required input '{item.name}': pass --input {item.name}=VALUE")
    if problems:
        raise WorkflowError(f"the inputs do not fit workflow {workflow.name}", problems)
    return bound


class _ReferenceChecker:
    """Checks what the parser cannot see item by item: templates and their targets."""

    def __init__(self, workflow: Workflow, problems: Problems) -> None:
        self.workflow = workflow
        self.problems = problems
        self.positions = {step.name: index for index, step in enumerate(workflow.steps)}

    def check(self) -> None:
        for index, step in enumerate(self.workflow.steps):
            what = f"step '{step.name}'"
            for ref in self.templated(step.image, step.image_line, f"{what} image", step, index):
                if ref.kind is RefKind.EXTENSION_CFG:
                    self.problems.add(
                        step.image_line,
                        f"{what} image refers to {ref}: an image comes from an input or an earlier step's output",
                    )
            for item in step.inputs:
                if item.value is not None:
                    self.templated(item.value, item.line, f"{what} input '{item.name}'", step, index)
                elif item.codeset is not None:
                    self.codeset(item, step, index)
            for env in step.env:
                self.templated(env.value, env.line, f"{what} env '{env.name}'", step, index)
        produced = {o for s in self.workflow.steps for o in s.outputs}
        for output in self.workflow.outputs:
            if output.name not in produced:
                self.problems.add(
                    output.line,
                    f"workflow output '{output.name}' is produced by no step: "
                    f"add '- name: {output.name}' to the outputs of the step that makes it",
                )

    def codeset(self, item: StepInput, step: Step, index: int) -> None:
        assert item.codeset is not None
        what = f"step '{step.name}' input '{item.name}' codeset"
        refs = self.templated(item.codeset.name, item.codeset.line, what, step, index)
        codesets = [i.name for i in self.workflow.codeset_inputs]
        example = "{{ inputs.%s }}" % (codesets[0] if codesets else "codeset")  # noqa: UP031 - braces
        if len(refs) != 1 or refs[0].kind is not RefKind.INPUT or refs[0].text.strip() != item.codeset.name.strip():
            self.problems.add(item.codeset.line, f'{what}: name must be one template such as "{example}"')
            return
        target = self.workflow.input(refs[0].name)
        if target is not None and target.type != CODESET:
            self.problems.add(
                item.codeset.line, f"{what}: input '{target.name}' is a {target.type}: give it 'type: codeset'"
            )

    def templated(self, value: str, line: int, what: str, step: Step, index: int) -> list[Reference]:
        try:
            refs = references(value)
        except TemplateSyntaxError as e:
            self.problems.add(line, f"{what}: {e}")
            return []
        for ref in refs:
            self.reference(ref, line, what, step, index)
        return refs

    def reference(self, ref: Reference, line: int, what: str, step: Step, index: int) -> None:
        problem = self.problems.add
        if ref.kind is RefKind.STEP_OUTPUT:
            where = self.positions.get(ref.name)
            if where is None:
                known = ", ".join(s.name for s in self.workflow.steps)
                problem(line, f"{what} refers to {ref}, but there is no step '{ref.name}' (steps: {known})")
            elif where == index:
                problem(line, f"{what} refers to {ref}, its own output: a step sees only earlier steps' outputs")
            elif where > index:
                problem(line, f"{what} refers to {ref}, which runs later: move step '{ref.name}' before '{step.name}'")
            else:
                outputs = self.workflow.steps[where].outputs
                if ref.output not in outputs:
                    listed = ", ".join(outputs) or "none"
                    problem(line, f"{what} refers to {ref}, but step '{ref.name}' has no such output (has: {listed})")
            return
        if ref.kind is RefKind.EXTENSION_CFG:
            self.extension(ref, line, what, step)
            return
        target = self.workflow.input(ref.name)
        if target is None:
            known = ", ".join(i.name for i in self.workflow.inputs) or "none"
            problem(line, f"{what} refers to {ref}, but the workflow has no input '{ref.name}' (inputs: {known})")
        elif ref.kind in (RefKind.CODESET_NAME, RefKind.CODESET_PROJECT) and target.type != CODESET:
            problem(line, f"{what} refers to {ref}, but input '{ref.name}' is a {target.type}, not a codeset")

    def extension(self, ref: Reference, line: int, what: str, step: Step) -> None:
        declared = [e.name for e in step.extensions]
        if ref.name not in declared:
            listed = ", ".join(declared) or "none"
            self.problems.add(
                line,
                f"{what} refers to {ref}, but step '{step.name}' has no extension '{ref.name}' "
                f"(its extensions: {listed}): add it under the step's 'extensions'",
            )
        elif not _VARIABLE.match(ref.output or ""):
            self.problems.add(line, f"{what} refers to {ref}: '{ref.output}' is not a variable name (A-Z, 0-9, _)")
