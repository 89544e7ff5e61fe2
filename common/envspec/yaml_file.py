"""Reading the YAML environment files (and the MLproject) with errors a user can act on.

A syntax error names the file, line and column; a field of the wrong type
names the field and what it holds instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from common.errors import CodesetError


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; a syntax error names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CodesetError(f"{path.name}: cannot be read ({e})") from e
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "invalid YAML"
        raise CodesetError(f"{path.name}{at}: {problem}", f"fix the YAML in {path.name}") from e
    except yaml.YAMLError as e:
        raise CodesetError(f"{path.name}: invalid YAML ({e})", f"fix the YAML in {path.name}") from e


def string_list(value: Any, name: str, key: str) -> list[str]:
    """Field ``key`` of file ``name`` as a list of strings (numbers accepted: ``- 3.11``); absent = empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise CodesetError(f"{name}: '{key}' must be a list, got {kind_of(value)}", f"fix '{key}' in {name}")
    for item in value:
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise CodesetError(f"{name}: '{key}' must list strings, got {kind_of(item)} ({item!r})")
    return [str(item) for item in value]


def kind_of(value: Any) -> str:
    """'a string', 'a list', ... for error messages."""
    kinds = {str: "a string", list: "a list", dict: "a mapping", bool: "a boolean", int: "a number", float: "a number"}
    return "nothing" if value is None else kinds.get(type(value), type(value).__name__)
