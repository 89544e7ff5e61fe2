"""The entry point's parameters, from the step inputs, checked before anything runs.

Two sources, as FuseML has them: ``mlflow_entrypoint_args`` (``name=value``
pairs, space or comma separated) and one input per declared parameter
(``FUSEML_<PARAM>``). Explicit args win. MLflow itself passes an undeclared
argument on as ``--name value`` and never checks types; we refuse both, since a
typo in a workflow should fail before a long training run, not after it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING

from common.errors import InputError
from common.inputs import Inputs

if TYPE_CHECKING:
    from mlflow.projects._project_spec import EntryPoint

ARGS_INPUT = "mlflow_entrypoint_args"

_NUMBER_CHECKS = {
    "float": (float, "a number"),
    "double": (float, "a number"),
    "int": (int, "a whole number"),
    "integer": (int, "a whole number"),
    "long": (int, "a whole number"),
}


def parse_args(text: str) -> dict[str, str]:
    """``"a=1 b=2"``, ``"a=1,b=2"`` or ``"-P a=1 -P b=2"`` -> ``{"a": "1", "b": "2"}``.

    Quoting follows the shell, so a value may hold spaces: ``msg='a b'``.
    """
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace += ","
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError as e:
        raise InputError(f"FUSEML_MLFLOW_ENTRYPOINT_ARGS: {e}", "check the quotes") from e
    parsed: dict[str, str] = {}
    for word in words:
        if word in ("-P", "--param"):
            continue
        name, sep, value = word.removeprefix("--").partition("=")
        if not sep or not name:
            raise InputError(
                f"FUSEML_MLFLOW_ENTRYPOINT_ARGS: {word!r} is not a name=value pair",
                "give arguments as name=value, separated by spaces or commas",
            )
        parsed[name] = value
    return parsed


def resolve_parameters(entry_point: EntryPoint, inputs: Inputs, entry_name: str) -> dict[str, str]:
    """The parameter values to run ``entry_point`` with, validated against its declaration."""
    declared = entry_point.parameters
    explicit = parse_args(inputs.raw(ARGS_INPUT) or "")
    unknown = sorted(set(explicit) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none"
        raise InputError(
            f"entry point {entry_name!r} has no parameter {', '.join(map(repr, unknown))} (parameters: {known})",
            "fix FUSEML_MLFLOW_ENTRYPOINT_ARGS or declare the parameter in MLproject",
        )
    values: dict[str, str] = {}
    for name in declared:
        if name in explicit:
            values[name] = explicit[name]
        elif inputs.is_set(name):
            values[name] = inputs.str(name)
    _check_types(entry_point, values, entry_name, inputs)
    missing = [n for n, p in declared.items() if p.default is None and n not in values]
    if missing:
        raise InputError(
            f"entry point {entry_name!r} needs a value for {', '.join(map(repr, missing))}",
            f"pass it in FUSEML_MLFLOW_ENTRYPOINT_ARGS as name=value or as input {missing[0]}",
        )
    return values


def _check_types(entry_point: EntryPoint, values: Mapping[str, str], entry_name: str, inputs: Inputs) -> None:
    for name, value in values.items():
        kind = str(entry_point.parameters[name].type).lower()
        check = _NUMBER_CHECKS.get(kind)
        if check is None:
            continue
        convert, expected = check
        try:
            convert(value)
        except ValueError:
            raise InputError(
                f"parameter {name!r} of entry point {entry_name!r} is declared {kind} but got {value!r}",
                f"give {expected} (in FUSEML_MLFLOW_ENTRYPOINT_ARGS or {inputs.variable(name)})",
            ) from None
