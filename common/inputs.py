"""Typed access to a step's inputs, the ``FUSEML_*`` variables of the contract.

FuseML upper-cases an input name and keeps a ``-`` as it is (``model-format`` ->
``FUSEML_MODEL-FORMAT``); our own inputs use ``_``. A lookup tries the exact
spelling first, then the other one, so either works. The mapping is passed in,
never read from ``os.environ`` deep down, so tests hand in a plain dict.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from common.errors import InputError
from common.names import INPUT_PREFIX

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_UNSET = object()


class Inputs:
    """The step inputs found in an environment mapping.

    An empty value counts as unset: FuseML passes an input it has no value for
    as an empty string.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ

    def variable(self, name: str) -> str:
        """The variable that carries input ``name`` (the one set, else the canonical one)."""
        canonical = INPUT_PREFIX + name.upper()
        for candidate in _spellings(name):
            if self.environ.get(candidate, "") != "":
                return candidate
        return canonical

    def raw(self, name: str) -> str | None:
        """The input's value as given, or None when unset or empty."""
        value = self.environ.get(self.variable(name), "")
        return value if value != "" else None

    def is_set(self, name: str) -> bool:
        return self.raw(name) is not None

    def str(self, name: str, default: Any = _UNSET) -> str:
        value = self.raw(name)
        if value is None:
            return self._default(name, default, "a string")
        return value.strip()

    def bool(self, name: str, default: Any = _UNSET) -> bool:
        value = self.raw(name)
        if value is None:
            return self._default(name, default, "true or false")
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise self._bad(name, value, "true or false")

    def int(self, name: str, default: Any = _UNSET, minimum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return self._default(name, default, "a whole number")
        try:
            number = int(value.strip())
        except ValueError:
            raise self._bad(name, value, "a whole number") from None
        if minimum is not None and number < minimum:
            raise self._bad(name, value, f"a whole number >= {minimum}")
        return number

    def float(self, name: str, default: Any = _UNSET) -> float:
        value = self.raw(name)
        if value is None:
            return self._default(name, default, "a number")
        try:
            return float(value.strip())
        except ValueError:
            raise self._bad(name, value, "a number") from None

    def list(self, name: str, default: Any = _UNSET) -> list[str]:
        """A list given as space or comma separated words."""
        value = self.raw(name)
        if value is None:
            return self._default(name, default, "a list")
        return split_words(value)

    def map(self, name: str, default: Any = _UNSET) -> dict[str, Any]:
        """A mapping given as YAML or JSON (``{nvidia.com/gpu: 1}``)."""
        value = self.raw(name)
        if value is None:
            return self._default(name, default, "a YAML or JSON map")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise self._bad(name, value, f"a YAML or JSON map ({_first_line(e)})") from e
        if parsed is None:
            return {}
        if not isinstance(parsed, dict):
            raise self._bad(name, value, "a YAML or JSON map such as {key: value}")
        return parsed

    def choice(self, name: str, choices: list[str] | tuple[str, ...], default: Any = _UNSET) -> str:
        value = self.str(name, default)
        if value not in choices:
            raise self._bad(name, value, "one of " + ", ".join(choices))
        return value

    def _default(self, name: str, default: Any, expected: str) -> Any:
        if default is _UNSET:
            raise InputError(
                f"missing input {name}: set {self.variable(name)} to {expected}",
            )
        return default

    def _bad(self, name: str, value: str, expected: str) -> InputError:
        shown = json.dumps(value if len(value) <= 80 else value[:77] + "...")
        return InputError(f"{self.variable(name)}={shown} is not valid: expected {expected}")


def split_words(value: str) -> list[str]:
    """Split a space or comma separated list, dropping empty items."""
    return [word for word in re.split(r"[\s,]+", value.strip()) if word]


def _spellings(name: str) -> list[str]:
    upper = name.upper()
    spellings = [INPUT_PREFIX + upper]
    for alternative in (upper.replace("-", "_"), upper.replace("_", "-")):
        if INPUT_PREFIX + alternative not in spellings:
            spellings.append(INPUT_PREFIX + alternative)
    return spellings


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
