"""FuseML workflow YAML: the model, loading it, and checking it before anything runs.

The keys are FuseML's (see CONTRACT.md, "Workflow YAML, key by key", and
fuseml-core's ``design/workflow.go``). Real workflows carry keys we do not use
(``description``, ``labels``, an extension's ``product``, a step's
``resources``): those are accepted. An unknown key that looks like a misspelt
known one (``imgae``) is an error, because FuseML would silently drop it and the
step would run without it; any other unknown key only gets a warning.

Every problem names the file and line, and all problems are reported at once
so a user fixes a workflow in one pass. Line numbers come from a SafeLoader
that keeps the line of each mapping, sequence item and key.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.errors import StepError
from runner.templates import Reference, RefKind, TemplateSyntaxError, references

log = logging.getLogger(__name__)

CODESET = "codeset"
STRING = "string"
INPUT_TYPES = (CODESET, STRING)
DEFAULT_CODESET_PATH = "/project"

# Keys FuseML defines at each level; the ones we do not use are accepted as they are.
_KEYS = {
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


class WorkflowError(StepError):
    """The workflow file is unreadable or wrong, or the run's inputs do not fit it.

    ``problems`` holds one ``file:line: message`` line per problem found.
    """

    def __init__(self, message: str, problems: Iterable[str] = (), hint: str | None = None) -> None:
        self.problems = list(problems)
        if self.problems:
            message = message + ":\n" + "\n".join("  " + p for p in self.problems)
        super().__init__(message, hint)


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


# --- YAML with line numbers -------------------------------------------------------------


class _Map(dict):
    """A mapping that remembers its line and the line of each key (1-based)."""

    line = 0
    key_lines: dict[str, int]


class _Seq(list):
    """A sequence that remembers its line and the line of each item."""

    line = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Map:  # type: ignore[override]
        mapping = _Map(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {}
        for key_node, _ in node.value:
            mapping.key_lines[str(self.construct_object(key_node))] = key_node.start_mark.line + 1
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> _Seq:  # type: ignore[override]
        sequence = _Seq(super().construct_sequence(node, deep=True))
        sequence.line = node.start_mark.line + 1
        sequence.item_lines = [item.start_mark.line + 1 for item in node.value]
        return sequence


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)


def load_workflow(path: str | Path) -> Workflow:
    """Read and check the workflow at ``path``; raises WorkflowError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise WorkflowError(f"cannot read workflow {path}: {e.strerror}", hint="check the path") from e
    return parse_workflow(text, source=path.name)


def parse_workflow(text: str, source: str = "<workflow>") -> Workflow:
    """The workflow in ``text``; ``source`` names it in messages (usually the file name)."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(e, "problem", None) or str(e)
        hint = "fix the indentation or quoting"
        lines = text.splitlines()
        if mark and mark.line < len(lines) and "{{" in lines[mark.line]:
            hint = 'put a template in quotes: value: "{{ inputs.x }}"'
        raise WorkflowError(f"{where}: not valid YAML: {problem}", hint=hint) from e
    parser = _Parser(source)
    workflow = parser.workflow(document)
    if parser.problems:
        count = len(parser.problems)
        raise WorkflowError(f"{source}: {count} problem{'s' if count > 1 else ''} in the workflow", parser.problems)
    for warning in parser.warnings:
        log.warning("%s", warning)
    return workflow


# --- Parsing: YAML values -> model, collecting problems --------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self._problems: list[tuple[int, str]] = []
        self.warnings: list[str] = []

    @property
    def problems(self) -> list[str]:
        """The problems found, in file order."""
        ordered = sorted(self._problems, key=lambda p: p[0])
        return [
            f"{self.source}:{line}: {message}" if line else f"{self.source}: {message}" for line, message in ordered
        ]

    def problem(self, line: int, message: str) -> None:
        self._problems.append((line, message))

    def workflow(self, document: Any) -> Workflow:
        if not isinstance(document, _Map):
            self.problem(getattr(document, "line", 1), "a workflow is a mapping with name, inputs, outputs and steps")
            return Workflow(name="", steps=(), source=self.source)
        self.keys(document, "workflow", "the workflow")
        name = self.text(document, "name", "the workflow", required=True)
        inputs = tuple(self.each(document, "inputs", "the workflow", self.input))
        outputs = tuple(self.each(document, "outputs", "the workflow", self.output))
        steps = tuple(self.each(document, "steps", "the workflow", self.step))
        if "steps" in document and not steps and not self.problems:
            self.problem(document.key_lines["steps"], "the workflow has no steps")
        elif "steps" not in document:
            self.problem(document.line, "the workflow has no 'steps' list")
        self.unique([(i.name, i.line) for i in inputs], "input")
        self.unique([(o.name, o.line) for o in outputs], "output")
        self.unique([(s.name, s.line) for s in steps], "step")
        workflow = Workflow(
            name=name,
            steps=steps,
            inputs=inputs,
            outputs=outputs,
            description=self.text(document, "description", "the workflow"),
            source=self.source,
            warnings=tuple(self.warnings),
        )
        _Checker(workflow, self).check()
        return workflow

    def input(self, item: _Map, line: int) -> WorkflowInput | None:
        name = self.text(item, "name", "a workflow input", required=True, line=line)
        what = f"input '{name}'"
        self.keys(item, "input", what)
        kind = self.text(item, "type", what) or STRING
        if kind not in INPUT_TYPES:
            self.problem(self.line_of(item, "type"), f"{what} has type '{kind}': use 'codeset' or 'string'")
        default = self.text(item, "default", what) if "default" in item and item["default"] is not None else None
        return WorkflowInput(name, kind, default, self.text(item, "description", what), line)

    def output(self, item: _Map, line: int) -> WorkflowOutput | None:
        name = self.text(item, "name", "a workflow output", required=True, line=line)
        what = f"output '{name}'"
        self.keys(item, "output", what)
        return WorkflowOutput(name, self.text(item, "description", what), self.text(item, "type", what) or STRING, line)

    def step(self, item: _Map, line: int) -> Step | None:
        name = self.text(item, "name", "a step", required=True, line=line)
        what = f"step '{name}'"
        self.keys(item, "step", what)
        image = self.text(item, "image", what, required=True)
        inputs = tuple(self.each(item, "inputs", what, lambda i, ln: self.step_input(i, ln, what)))
        outputs = tuple(self.each(item, "outputs", what, lambda i, ln: self.step_output(i, ln, what)))
        env = tuple(self.each(item, "env", what, lambda i, ln: self.env(i, ln, what)))
        extensions = tuple(self.each(item, "extensions", what, lambda i, ln: self.extension(i, ln, what)))
        self.unique([(i.name, i.line) for i in inputs], f"input of {what}")
        self.unique([(o, line) for o in outputs], f"output of {what}")
        if sum(1 for i in inputs if i.codeset) > 1:
            self.problem(line, f"{what} has more than one codeset input: a step has one working directory")
        resources = item.get("resources") or {}
        if not isinstance(resources, dict):
            self.problem(self.line_of(item, "resources"), f"{what}: 'resources' must be a mapping (limits/requests)")
            resources = {}
        return Step(name, image, inputs, outputs, env, extensions, dict(resources), line, self.line_of(item, "image"))

    def step_input(self, item: _Map, line: int, step: str) -> StepInput | None:
        name = self.text(item, "name", f"an input of {step}", required=True, line=line)
        what = f"{step} input '{name}'"
        self.keys(item, "step input", what)
        has_value, has_codeset = "value" in item, item.get("codeset") is not None
        if has_value == has_codeset:
            self.problem(line, f"{what} needs exactly one of 'value' or 'codeset'")
            return None
        if has_value:
            return StepInput(name, value=self.text(item, "value", what), line=self.line_of(item, "value"))
        codeset = item["codeset"]
        codeset_line = self.line_of(item, "codeset")
        if not isinstance(codeset, _Map):
            self.problem(codeset_line, f"{what}: 'codeset' must be a mapping {{name: ..., path: /project}}")
            return None
        self.keys(codeset, "codeset", f"{what} codeset")
        codeset_name = self.text(codeset, "name", f"{what} codeset", required=True, line=codeset_line)
        path = self.text(codeset, "path", f"{what} codeset") or DEFAULT_CODESET_PATH
        if not path.startswith("/"):
            self.problem(self.line_of(codeset, "path"), f"{what}: codeset path '{path}' must be absolute (/project)")
        return StepInput(name, codeset=CodesetMount(codeset_name, path, codeset_line), line=line)

    def step_output(self, item: _Map, line: int, step: str) -> str | None:
        self.keys(item, "step output", f"an output of {step}")
        return self.text(item, "name", f"an output of {step}", required=True, line=line) or None

    def env(self, item: _Map, line: int, step: str) -> EnvVar | None:
        name = self.text(item, "name", f"an env entry of {step}", required=True, line=line)
        self.keys(item, "env", f"{step} env '{name}'")
        return EnvVar(name, self.text(item, "value", f"{step} env '{name}'"), self.line_of(item, "value"))

    def extension(self, item: _Map, line: int, step: str) -> Extension | None:
        name = self.text(item, "name", f"an extension of {step}", required=True, line=line)
        what = f"{step} extension '{name}'"
        self.keys(item, "extension", what)
        return Extension(name, self.text(item, "product", what), self.text(item, "service_resource", what), line)

    # Helpers ---------------------------------------------------------------------------

    def each(self, parent: _Map, key: str, what: str, build: Any) -> list[Any]:
        """Build each mapping of the list at ``parent[key]``, skipping the broken ones."""
        items = parent.get(key)
        if items is None:
            return []
        if not isinstance(items, _Seq):
            self.problem(self.line_of(parent, key), f"{what}: '{key}' must be a list (items start with '- ')")
            return []
        built = []
        for item, line in zip(items, items.item_lines, strict=True):
            if not isinstance(item, _Map):
                self.problem(line, f"{what}: each item of '{key}' must be a mapping with a 'name'")
                continue
            value = build(item, line)
            if value is not None:
                built.append(value)
        return built

    def text(self, item: _Map, key: str, what: str, required: bool = False, line: int = 0) -> str:
        """``item[key]`` as a string; YAML numbers and booleans become their FuseML spelling."""
        if key not in item or item[key] is None:
            if required:
                self.problem(line or item.line, f"{what} has no '{key}'")
            return ""
        value = item[key]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            return value
        self.problem(self.line_of(item, key), f"{what}: '{key}' must be a string, got a {_kind(value)}")
        return ""

    def keys(self, item: _Map, level: str, what: str) -> None:
        known = _KEYS[level]
        for key in item:
            if key in known:
                continue
            line = self.line_of(item, key)
            close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.75)
            if close:
                self.problem(line, f"{what}: unknown key '{key}'; did you mean '{close[0]}'?")
            else:
                self.warnings.append(f"{self.source}:{line}: {what}: key '{key}' is not a FuseML key; ignored")

    def unique(self, names: list[tuple[str, int]], what: str) -> None:
        seen: set[str] = set()
        for name, line in names:
            if name and name in seen:
                self.problem(line, f"duplicate {what} name '{name}'")
            seen.add(name)

    @staticmethod
    def line_of(item: _Map, key: str) -> int:
        return item.key_lines.get(key, item.line)


def _kind(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else type(value).__name__


# --- Checking references between inputs, steps and outputs ----------------------------


class _Checker:
    """Checks what the parser cannot see item by item: templates and their targets."""

    def __init__(self, workflow: Workflow, parser: _Parser) -> None:
        self.workflow = workflow
        self.parser = parser

    def check(self) -> None:
        positions = {step.name: index for index, step in enumerate(self.workflow.steps)}
        for index, step in enumerate(self.workflow.steps):
            what = f"step '{step.name}'"
            self.templated(step.image, step.image_line, f"{what} image", step, index, positions)
            for item in step.inputs:
                if item.value is not None:
                    self.templated(item.value, item.line, f"{what} input '{item.name}'", step, index, positions)
                elif item.codeset is not None:
                    self.codeset(item, step, index, positions)
            for env in step.env:
                self.templated(env.value, env.line, f"{what} env '{env.name}'", step, index, positions)
        produced = {o for s in self.workflow.steps for o in s.outputs}
        for output in self.workflow.outputs:
            if output.name not in produced:
                self.parser.problem(
                    output.line,
                    f"workflow output '{output.name}' is produced by no step: "
                    f"add '- name: {output.name}' to the outputs of the step that makes it",
                )

    def codeset(self, item: StepInput, step: Step, index: int, positions: dict[str, int]) -> None:
        assert item.codeset is not None
        what = f"step '{step.name}' input '{item.name}' codeset"
        refs = self.templated(item.codeset.name, item.codeset.line, what, step, index, positions)
        codesets = [i.name for i in self.workflow.codeset_inputs]
        example = "{{ inputs.%s }}" % (codesets[0] if codesets else "codeset")  # noqa: UP031 - braces
        if len(refs) != 1 or refs[0].kind is not RefKind.INPUT or refs[0].text.strip() != item.codeset.name.strip():
            self.parser.problem(
                item.codeset.line,
                f'{what}: name must be one template such as "{example}"',
            )
            return
        target = self.workflow.input(refs[0].name)
        if target is not None and target.type != CODESET:
            self.parser.problem(
                item.codeset.line, f"{what}: input '{target.name}' is a {target.type}: give it 'type: codeset'"
            )

    def templated(
        self, value: str, line: int, what: str, step: Step, index: int, positions: dict[str, int]
    ) -> list[Reference]:
        try:
            refs = references(value)
        except TemplateSyntaxError as e:
            self.parser.problem(line, f"{what}: {e}")
            return []
        for ref in refs:
            self.reference(ref, line, what, step, index, positions)
        return refs

    def reference(
        self, ref: Reference, line: int, what: str, step: Step, index: int, positions: dict[str, int]
    ) -> None:
        problem = self.parser.problem
        if ref.kind is RefKind.STEP_OUTPUT:
            where = positions.get(ref.name)
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
        target = self.workflow.input(ref.name)
        if target is None:
            known = ", ".join(i.name for i in self.workflow.inputs) or "none"
            problem(line, f"{what} refers to {ref}, but the workflow has no input '{ref.name}' (inputs: {known})")
        elif ref.kind in (RefKind.CODESET_NAME, RefKind.CODESET_PROJECT) and target.type != CODESET:
            problem(line, f"{what} refers to {ref}, but input '{ref.name}' is a {target.type}, not a codeset")
