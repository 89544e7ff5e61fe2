"""The ``{{ ... }}`` expressions of FuseML workflows: parsing and rendering.

FuseML resolves five forms and nothing else, so neither do we:
``{{ inputs.<name> }}``, ``{{ inputs.<name>.name }}`` and
``{{ inputs.<name>.project }}`` (for a codeset input),
``{{ steps.<step>.outputs.<name> }}``, and
``{{ extensions.<extension>.cfg.<VARIABLE> }}``: the value of one variable of
the configuration of an extension the step declares (FuseML's extension
registry gave each service endpoint a ``cfg`` map, the same variables it set on
the step, ``MLFLOW_S3_ENDPOINT_URL`` for an S3 store). Anything else is an error rather than
text left in place: a typo would otherwise reach a step as a literal value and
fail far from its cause. Parsing is separate from rendering so the workflow can
be validated (references exist, steps run earlier) before anything runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

_NAME = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
_EXPRESSION = re.compile(r"\{\{(?P<body>.*?)\}\}", re.S)
_INPUT = re.compile(rf"^inputs\.(?P<name>{_NAME})(?:\.(?P<attr>name|project))?$")
_STEP_OUTPUT = re.compile(rf"^steps\.(?P<step>{_NAME})\.outputs\.(?P<output>{_NAME})$")
_EXTENSION_CFG = re.compile(rf"^extensions\.(?P<extension>{_NAME})\.cfg\.(?P<variable>{_NAME})$")

FORMS = (
    "{{ inputs.<name> }}, {{ inputs.<codeset>.name }}, {{ inputs.<codeset>.project }}"
    ", {{ steps.<step>.outputs.<name> }} or {{ extensions.<extension>.cfg.<VARIABLE> }}"
)


class TemplateSyntaxError(ValueError):
    """A ``{{ ... }}`` expression that is not one of the forms FuseML knows."""


class RefKind(Enum):
    INPUT = "input"
    CODESET_NAME = "codeset name"
    CODESET_PROJECT = "codeset project"
    STEP_OUTPUT = "step output"
    EXTENSION_CFG = "extension configuration"


@dataclass(frozen=True)
class Reference:
    """One ``{{ ... }}`` expression: what it refers to and how it was written."""

    kind: RefKind
    name: str  # the workflow input, the step, or the extension
    output: str | None = None  # the step output (STEP_OUTPUT), or the variable (EXTENSION_CFG)
    text: str = ""  # the expression as written, braces included

    def __str__(self) -> str:
        if self.kind is RefKind.STEP_OUTPUT:
            return f"steps.{self.name}.outputs.{self.output}"
        if self.kind is RefKind.EXTENSION_CFG:
            return f"extensions.{self.name}.cfg.{self.output}"
        suffix = {RefKind.CODESET_NAME: ".name", RefKind.CODESET_PROJECT: ".project"}.get(self.kind, "")
        return f"inputs.{self.name}{suffix}"


def parse_expression(body: str, text: str = "") -> Reference:
    """The reference inside one pair of braces (``body`` without them)."""
    expression = body.strip()
    match = _INPUT.match(expression)
    if match:
        kind = {None: RefKind.INPUT, "name": RefKind.CODESET_NAME, "project": RefKind.CODESET_PROJECT}[
            match.group("attr")
        ]
        return Reference(kind, match.group("name"), None, text)
    match = _STEP_OUTPUT.match(expression)
    if match:
        return Reference(RefKind.STEP_OUTPUT, match.group("step"), match.group("output"), text)
    match = _EXTENSION_CFG.match(expression)
    if match:
        return Reference(RefKind.EXTENSION_CFG, match.group("extension"), match.group("variable"), text)
    raise TemplateSyntaxError(f"unknown template {text or '{{' + body + '}}'}: use {FORMS}")


def references(value: str) -> list[Reference]:
    """Every reference in ``value``, in order; raises TemplateSyntaxError on a bad one."""
    found = [parse_expression(m.group("body"), m.group(0)) for m in _EXPRESSION.finditer(value)]
    rest = _EXPRESSION.sub("", value)
    if "{{" in rest:  # a lone "}}" is text (a JSON value such as {"requests": {"cpu": 1}})
        raise TemplateSyntaxError(f"unbalanced braces in {value!r}: a template is written {{{{ inputs.<name> }}}}")
    return found


def render(value: str, resolve: Callable[[Reference], str]) -> str:
    """``value`` with each expression replaced by ``resolve(reference)``."""
    references(value)  # reject malformed text before substituting anything
    return _EXPRESSION.sub(lambda m: resolve(parse_expression(m.group("body"), m.group(0))), value)


def is_template(value: str) -> bool:
    return "{{" in value


def whole_reference(value: str) -> Reference | None:
    """The reference when ``value`` is exactly one expression (blanks around it aside), else None.

    A whole value can come from somewhere a text cannot be built in (a Secret's key).
    """
    refs = references(value)
    if len(refs) == 1 and refs[0].text == value.strip():
        return refs[0]
    return None
