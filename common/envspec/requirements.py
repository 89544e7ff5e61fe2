"""Requirement lines as pip reads them, normalised to one spelling.

Every environment file ends up as pip requirement lines (python_env.yaml's
``dependencies``, conda.yaml's ``pip:`` list, requirements.txt itself), so the
rules live here once. Normalising drops what does not change the environment:
comments, blank lines, whitespace, the order of lines, the spelling of names
(``Scikit_Learn`` == ``scikit-learn``) and duplicates. ``-r other.txt`` is
inlined, ``-c file`` becomes constraints, and the few pip options that only
say where packages come from are passed on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from common.errors import CodesetError

# pip options that may appear in a requirements file and are passed on as they are.
_PASSED_OPTIONS = (
    "--index-url",
    "-i",
    "--extra-index-url",
    "--find-links",
    "-f",
    "--pre",
    "--no-binary",
    "--only-binary",
)
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+)(\S.*)$")

# (requirements, constraints, pip options), each normalised and sorted.
RequirementSet = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def read_requirements(path: Path, root: Path, seen: frozenset[Path] = frozenset()) -> RequirementSet:
    """A requirements file as (requirements, constraints, pip options), includes followed."""
    path = path.resolve()
    if path in seen:
        raise CodesetError(f"{path.name}: includes itself (through -r)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CodesetError(f"{path.name}: no such file (named by -r or -c)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CodesetError(f"{path.name}: cannot be read ({e})") from e
    return parse_requirement_lines(_logical_lines(text), path.name, root, seen | {path}, path.parent)


def parse_requirement_lines(
    lines: Iterable[str],
    where: str,
    root: Path,
    seen: frozenset[Path] = frozenset(),
    folder: Path | None = None,
) -> RequirementSet:
    """Requirement lines as pip reads them: requirements, ``-r``/``-c`` files, options.

    Included files must stay inside the codeset ``root``: the environment is
    built from the codeset alone.
    """
    folder = folder or root
    requirements: set[str] = set()
    constraints: set[str] = set()
    options: set[str] = set()
    for raw in lines:
        line = _strip_comment(raw)
        if not line:
            continue
        include = _INCLUDE.match(line)
        if include:
            flag, target = include.groups()
            inner = _inside(folder / target.strip(), root, where)
            found, found_constraints, found_options = read_requirements(inner, root, seen)
            if flag in ("-c", "--constraint"):
                constraints.update(found, found_constraints)
            else:
                requirements.update(found)
                constraints.update(found_constraints)
            options.update(found_options)
        elif line.startswith("-"):
            options.add(_normalise_option(line, where))
        else:
            requirements.add(normalise_requirement(line, where))
    return tuple(sorted(requirements)), tuple(sorted(constraints)), tuple(sorted(options))


def normalise_requirement(line: str, where: str) -> str:
    """One requirement in a canonical spelling; lines pip reads but PEP 508 does not stay as they are."""
    line = " ".join(line.split())
    if line.startswith((".", "/")) or line.startswith("file:"):
        raise CodesetError(
            f"{where}: local path requirement {line!r} is not supported: the environment is built without the codeset",
            "publish the package to an index, or use a git+https:// URL",
        )
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        if re.match(r"^[a-z][a-z0-9+.-]*://|^git\+", line, re.I):
            return line
        raise CodesetError(
            f"{where}: {line!r} is not a valid requirement", "use pip's syntax, e.g. numpy>=1.26"
        ) from None
    text = canonicalize_name(requirement.name)
    if requirement.extras:
        text += "[" + ",".join(sorted(canonicalize_name(e) for e in requirement.extras)) + "]"
    if requirement.url:
        text += f" @ {requirement.url}"
        if requirement.marker:
            text += " "
    else:
        text += str(requirement.specifier)
    if requirement.marker:
        text += f"; {requirement.marker}"
    return text


def requirement_name(line: str) -> str | None:
    """The canonical project name a normalised requirement line installs, if it says."""
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    if not match or "://" in line.split(" @ ")[0]:
        return None
    return canonicalize_name(match.group(1))


def _logical_lines(text: str) -> list[str]:
    """Lines as pip sees them: a trailing backslash joins the next line."""
    return text.replace("\\\r\n", "").replace("\\\n", "").splitlines()


def _strip_comment(line: str) -> str:
    """pip's comment rule: ``#`` at the start or after whitespace starts a comment."""
    return re.sub(r"(^|\s+)#.*$", "", line).strip()


def _normalise_option(line: str, where: str) -> str:
    flag, _, value = line.replace("=", " ", 1).partition(" ")
    if flag == "-e" or flag == "--editable":
        raise CodesetError(
            f"{where}: editable requirement {line!r} is not supported in a built environment",
            "install the package from an index or a git+https:// URL",
        )
    if flag not in _PASSED_OPTIONS:
        raise CodesetError(
            f"{where}: pip option {flag!r} is not supported here",
            "supported: -r, -c, " + ", ".join(_PASSED_OPTIONS),
        )
    return f"{flag} {value.strip()}".strip()


def _inside(path: Path, root: Path, where: str) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise CodesetError(f"{where}: {path} is outside the codeset")
    return resolved
