"""The normalised environment of a codeset, whatever file it came from.

The builder needs one answer to "what must be installed" and a canonical text
of that answer to hash into the image tag; every file format is read into an
``EnvSpec``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from common.envspec.requirements import requirement_name
from common.errors import CodesetError

_PYTHON_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


@dataclass(frozen=True)
class EnvSpec:
    """The normalised environment of a codeset.

    ``python`` is ``None`` (any), a ``major.minor`` version, or a PEP 440
    specifier such as ``>=3.9``. ``requirements`` and ``constraints`` are pip
    requirement lines, normalised and sorted; ``pip_options`` are the global
    pip options found in requirement files (``--extra-index-url ...``).
    """

    source: str
    python: str | None = None
    build_dependencies: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    pip_options: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    def canonical(self) -> str:
        """The text that identifies this environment: same environment, same text.

        ``source`` and ``notes`` are left out: the same requirements written in
        requirements.txt or in python_env.yaml make the same environment.
        """
        data = {
            "python": self.python,
            "build_dependencies": sorted(self.build_dependencies),
            "requirements": sorted(self.requirements),
            "constraints": sorted(self.constraints),
            "pip_options": sorted(self.pip_options),
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def requirements_text(self) -> str:
        """A requirements.txt for pip: options first, then one requirement a line."""
        return "".join(f"{line}\n" for line in (*self.pip_options, *self.requirements))

    def constraints_text(self) -> str:
        return "".join(f"{line}\n" for line in self.constraints)

    def with_requirements(self, extra: Iterable[str]) -> EnvSpec:
        """Add requirements for packages the spec does not already name."""
        named = {requirement_name(line) for line in self.requirements}
        added = [line for line in extra if requirement_name(line) not in named]
        if not added:
            return self
        return replace(self, requirements=tuple(sorted({*self.requirements, *added})))


def normalise_python(value: str, where: str) -> str | None:
    """``3.11``/``3.11.4`` -> ``3.11`` (we match on major.minor); a specifier stays a specifier."""
    value = value.strip().strip("\"'")
    exact = re.fullmatch(r"==\s*(\d+\.\d+)(\.\d+)?(\.\*)?", value)
    if exact:
        value = exact.group(1)
    if value in ("", "*"):
        return None
    if _PYTHON_VERSION.match(value):
        parts = value.split(".")
        return ".".join(parts[:2])
    try:
        return str(SpecifierSet(value))
    except InvalidSpecifier:
        raise CodesetError(
            f"{where}: python version {value!r} is neither a version (3.11) nor a range (>=3.10)"
        ) from None


def python_satisfies(constraint: str | None, version: str) -> bool:
    """Whether Python ``version`` (``3.11.2``) meets a normalised ``python`` constraint."""
    if constraint is None:
        return True
    if _PYTHON_VERSION.match(constraint):
        return version.split(".")[:2] == constraint.split(".")[:2]
    return SpecifierSet(constraint).contains(version, prereleases=True)
