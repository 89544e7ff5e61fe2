"""Workflow YAML to the model: each item checked for its shape, every problem at its ``file:line``.

A broken item is reported and skipped rather than stopping the parse, so the
checks that follow still see the rest of the workflow and all problems are
reported together. YAML numbers and booleans become the strings FuseML would
pass (``true``, ``3``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from runner.workflow.checker import check_keys, check_references
from runner.workflow.errors import Problems, WorkflowError
from runner.workflow.model import (
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
from runner.workflow.yaml_lines import LineMap, LineSeq, load_yaml

log = logging.getLogger(__name__)

_Item = TypeVar("_Item")


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
    document = load_yaml(text, source)
    problems = Problems(source)
    workflow = _Parser(problems).workflow(document)
    check_references(workflow, problems)
    if problems:
        count = len(problems)
        raise WorkflowError(f"{source}: {count} problem{'s' if count > 1 else ''} in the workflow", problems.lines)
    for warning in problems.warnings:
        log.warning("%s", warning)
    return workflow


class _Parser:
    """Builds the model from the loaded YAML, adding what does not fit to ``problems``."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.source = problems.source

    def workflow(self, document: Any) -> Workflow:
        if not isinstance(document, LineMap):
            line = getattr(document, "line", 1)
            self.problems.add(line, "a workflow is a mapping with name, inputs, outputs and steps")
            return Workflow(name="", steps=(), source=self.source)
        check_keys(document, "workflow", "the workflow", self.problems)
        name = self.text(document, "name", "the workflow", required=True)
        inputs = tuple(self.each(document, "inputs", "the workflow", self.input))
        outputs = tuple(self.each(document, "outputs", "the workflow", self.output))
        steps = tuple(self.each(document, "steps", "the workflow", self.step))
        if "steps" in document and not steps and not self.problems:
            self.problems.add(document.key_lines["steps"], "the workflow has no steps")
        elif "steps" not in document:
            self.problems.add(document.line, "the workflow has no 'steps' list")
        self.unique([(i.name, i.line) for i in inputs], "input")
        self.unique([(o.name, o.line) for o in outputs], "output")
        self.unique([(s.name, s.line) for s in steps], "step")
        return Workflow(
            name=name,
            steps=steps,
            inputs=inputs,
            outputs=outputs,
            description=self.text(document, "description", "the workflow"),
            source=self.source,
            warnings=tuple(self.problems.warnings),
        )

    def input(self, item: LineMap, line: int) -> WorkflowInput | None:
        name = self.text(item, "name", "a workflow input", required=True, line=line)
        what = f"input '{name}'"
        check_keys(item, "input", what, self.problems)
        kind = self.text(item, "type", what) or STRING
        if kind not in INPUT_TYPES:
            self.problems.add(item.line_of("type"), f"{what} has type '{kind}': use 'codeset' or 'string'")
        default = self.text(item, "default", what) if "default" in item and item["default"] is not None else None
        return WorkflowInput(name, kind, default, self.text(item, "description", what), line)

    def output(self, item: LineMap, line: int) -> WorkflowOutput | None:
        name = self.text(item, "name", "a workflow output", required=True, line=line)
        what = f"output '{name}'"
        check_keys(item, "output", what, self.problems)
        return WorkflowOutput(name, self.text(item, "description", what), self.text(item, "type", what) or STRING, line)

    def step(self, item: LineMap, line: int) -> Step | None:
        name = self.text(item, "name", "a step", required=True, line=line)
        what = f"step '{name}'"
        check_keys(item, "step", what, self.problems)
        image = self.text(item, "image", what, required=True)
        inputs = tuple(self.each(item, "inputs", what, lambda i, ln: self.step_input(i, ln, what)))
        outputs = tuple(self.each(item, "outputs", what, lambda i, ln: self.step_output(i, ln, what)))
        env = tuple(self.each(item, "env", what, lambda i, ln: self.env(i, ln, what)))
        extensions = tuple(self.each(item, "extensions", what, lambda i, ln: self.extension(i, ln, what)))
        inputs = self.without_repeats(inputs, what)
        self.unique([(i.name, i.line) for i in inputs], f"input of {what}")
        self.unique([(o, line) for o in outputs], f"output of {what}")
        if sum(1 for i in inputs if i.codeset) > 1:
            self.problems.add(line, f"{what} has more than one codeset input: a step has one working directory")
        resources = item.get("resources") or {}
        if not isinstance(resources, dict):
            self.problems.add(item.line_of("resources"), f"{what}: 'resources' must be a mapping (limits/requests)")
            resources = {}
        return Step(name, image, inputs, outputs, env, extensions, dict(resources), line, item.line_of("image"))

    def step_input(self, item: LineMap, line: int, step: str) -> StepInput | None:
        name = self.text(item, "name", f"an input of {step}", required=True, line=line)
        what = f"{step} input '{name}'"
        check_keys(item, "step input", what, self.problems)
        has_value, has_codeset = "value" in item, item.get("codeset") is not None
        if has_value == has_codeset:
            self.problems.add(line, f"{what} needs exactly one of 'value' or 'codeset'")
            return None
        if has_value:
            return StepInput(name, value=self.text(item, "value", what), line=item.line_of("value"))
        codeset = item["codeset"]
        codeset_line = item.line_of("codeset")
        if not isinstance(codeset, LineMap):
            self.problems.add(codeset_line, f"{what}: 'codeset' must be a mapping {{name: ..., path: /project}}")
            return None
        check_keys(codeset, "codeset", f"{what} codeset", self.problems)
        codeset_name = self.text(codeset, "name", f"{what} codeset", required=True, line=codeset_line)
        path = self.text(codeset, "path", f"{what} codeset") or DEFAULT_CODESET_PATH
        if not path.startswith("/"):
            self.problems.add(codeset.line_of("path"), f"{what}: codeset path '{path}' must be absolute (/project)")
        return StepInput(name, codeset=CodesetMount(codeset_name, path, codeset_line), line=line)

    def step_output(self, item: LineMap, line: int, step: str) -> str | None:
        check_keys(item, "step output", f"an output of {step}", self.problems)
        return self.text(item, "name", f"an output of {step}", required=True, line=line) or None

    def env(self, item: LineMap, line: int, step: str) -> EnvVar | None:
        name = self.text(item, "name", f"an env entry of {step}", required=True, line=line)
        check_keys(item, "env", f"{step} env '{name}'", self.problems)
        return EnvVar(name, self.text(item, "value", f"{step} env '{name}'"), item.line_of("value"))

    def extension(self, item: LineMap, line: int, step: str) -> Extension | None:
        name = self.text(item, "name", f"an extension of {step}", required=True, line=line)
        what = f"{step} extension '{name}'"
        check_keys(item, "extension", what, self.problems)
        return Extension(name, self.text(item, "product", what), self.text(item, "service_resource", what), line)

    # Helpers ---------------------------------------------------------------------------

    def each(self, parent: LineMap, key: str, what: str, build: Callable[[LineMap, int], _Item | None]) -> list[_Item]:
        """Build each mapping of the list at ``parent[key]``, skipping the broken ones."""
        items = parent.get(key)
        if items is None:
            return []
        if not isinstance(items, LineSeq):
            self.problems.add(parent.line_of(key), f"{what}: '{key}' must be a list (items start with '- ')")
            return []
        built = []
        for item, line in zip(items, items.item_lines, strict=True):
            if not isinstance(item, LineMap):
                self.problems.add(line, f"{what}: each item of '{key}' must be a mapping with a 'name'")
                continue
            value = build(item, line)
            if value is not None:
                built.append(value)
        return built

    def text(self, item: LineMap, key: str, what: str, required: bool = False, line: int = 0) -> str:
        """``item[key]`` as a string; YAML numbers and booleans become their FuseML spelling."""
        if key not in item or item[key] is None:
            if required:
                self.problems.add(line or item.line, f"{what} has no '{key}'")
            return ""
        value = item[key]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str):
            return value
        self.problems.add(item.line_of(key), f"{what}: '{key}' must be a string, got a {_kind(value)}")
        return ""

    def without_repeats(self, inputs: tuple[StepInput, ...], what: str) -> tuple[StepInput, ...]:
        """The inputs with an exact repeat (same name, same value) dropped with a warning.

        FuseML's own examples repeat an input this way (mlflow-multi-e2e's ``verbose``) and
        FuseML ran them; a repeat with another value stays an error, since which one wins is a guess.
        """
        kept: list[StepInput] = []
        for item in inputs:
            same = next((k for k in kept if k.name == item.name and k.value == item.value and k.codeset is None), None)
            if same is not None and item.codeset is None:
                self.problems.warn(item.line, f"{what} input '{item.name}' repeats line {same.line}; ignored")
                continue
            kept.append(item)
        return tuple(kept)

    def unique(self, names: list[tuple[str, int]], what: str) -> None:
        seen: set[str] = set()
        for name, line in names:
            if name and name in seen:
                self.problems.add(line, f"duplicate {what} name '{name}'")
            seen.add(name)


def _kind(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else type(value).__name__
