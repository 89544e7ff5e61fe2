"""A codeset's Python environment, read from its files and normalised to one spec.

The builder needs one answer to "what must be installed" whatever file the
user wrote, and a canonical text of that answer to hash into the image tag.

Where the environment comes from, first match wins:

1. the file the MLproject names (``python_env:`` or ``conda_env:``), because
   that is what MLflow itself would use for this project;
2. ``python_env.yaml`` (MLflow's own format: ``python``, ``build_dependencies``,
   ``dependencies``);
3. ``conda.yaml`` (FuseML's original format; installed with pip, see
   ``steps.builder.envspec_conda``);
4. ``requirements.txt``.

Normalising drops what does not change the environment: comments, blank lines,
whitespace, the order of lines, the spelling of names (``Scikit_Learn`` ==
``scikit-learn``) and duplicates. ``-r other.txt`` is inlined, ``-c file``
becomes constraints. The trainer's own needs (mlflow, boto3) are always added,
unless the user names them, in which case the user's line wins.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from common.errors import CodesetError

log = logging.getLogger(__name__)

PYTHON_ENV = "python_env.yaml"
CONDA_ENV = "conda.yaml"
REQUIREMENTS = "requirements.txt"
MLPROJECT = "MLproject"
# Precedence of the files looked for at the codeset root (after the MLproject's own reference).
ENVIRONMENT_FILES = (PYTHON_ENV, CONDA_ENV, REQUIREMENTS)

# What the trainer itself imports; kept equal to the ``trainer`` extra of
# pyproject.toml (a unit test checks it).
TRAINER_REQUIREMENTS = ("mlflow==3.17.2", "boto3==1.44.8")

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


def load_envspec(codeset: str | Path) -> EnvSpec:
    """Read and normalise the environment of the codeset at ``codeset``.

    Raises ``CodesetError`` naming the file (and line) when it is missing or wrong.
    """
    root = Path(codeset)
    path = find_environment_file(root)
    log.info("environment: %s", path.relative_to(root) if path.is_relative_to(root) else path)
    if path.name.endswith((".yaml", ".yml")) and _looks_like_conda(path):
        from steps.builder.envspec_conda import load_conda

        spec = load_conda(path, root)
    elif path.name.endswith((".yaml", ".yml")):
        spec = load_python_env(path, root)
    else:
        requirements, constraints, options = read_requirements(path, root)
        spec = EnvSpec(source=path.name, requirements=requirements, constraints=constraints, pip_options=options)
    for note in spec.notes:
        log.info("%s: %s", spec.source, note)
    _warn_on_trainer_pins(spec)
    return spec.with_requirements(TRAINER_REQUIREMENTS)


def find_environment_file(root: Path) -> Path:
    """The file that defines the environment, by the precedence in the module docstring."""
    if not root.is_dir():
        raise CodesetError(f"codeset folder {root} does not exist")
    named = _mlproject_environment(root)
    if named is not None:
        return named
    found = [root / name for name in ENVIRONMENT_FILES if (root / name).is_file()]
    if not found:
        raise CodesetError(
            f"no environment file in the codeset {root}: expected one of {', '.join(ENVIRONMENT_FILES)}",
            "add a requirements.txt listing the packages your entry point imports",
        )
    if len(found) > 1:
        log.info("using %s; also present, not used: %s", found[0].name, ", ".join(p.name for p in found[1:]))
    return found[0]


def _mlproject_environment(root: Path) -> Path | None:
    """The environment file the MLproject names, if it names one."""
    mlproject = next((p for p in (root / MLPROJECT, root / "mlproject") if p.is_file()), None)
    if mlproject is None:
        return None
    data = load_yaml(mlproject)
    if not isinstance(data, dict):
        return None
    for key in ("python_env", "conda_env"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise CodesetError(f"{mlproject.name}: '{key}' must be a file name, got {kind_of(value)}")
        path = (root / value.strip()).resolve()
        if not path.is_relative_to(root.resolve()):
            raise CodesetError(f"{mlproject.name}: '{key}: {value}' points outside the codeset")
        if not path.is_file():
            raise CodesetError(
                f"{mlproject.name}: '{key}: {value}' names a file that does not exist",
                "add the file or remove the key to use python_env.yaml, conda.yaml or requirements.txt",
            )
        return path
    return None


def load_python_env(path: Path, root: Path) -> EnvSpec:
    """MLflow's python_env.yaml: ``python``, ``build_dependencies``, ``dependencies``."""
    data = load_yaml(path)
    name = path.name
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CodesetError(f"{name}: expected a mapping with 'python' and 'dependencies', got {kind_of(data)}")
    python = data.get("python")
    if python is not None and not isinstance(python, str | int | float):
        raise CodesetError(f"{name}: 'python' must be a version such as \"3.11\", got {kind_of(python)}")
    build = string_list(data.get("build_dependencies"), name, "build_dependencies")
    dependencies = string_list(data.get("dependencies"), name, "dependencies")
    requirements, constraints, options = parse_requirement_lines(dependencies, f"{name} 'dependencies'", root)
    return EnvSpec(
        source=name,
        python=normalise_python(str(python), name) if python is not None else None,
        build_dependencies=tuple(sorted({normalise_requirement(b, name) for b in build})),
        requirements=requirements,
        constraints=constraints,
        pip_options=options,
    )


def read_requirements(
    path: Path, root: Path, seen: frozenset[Path] = frozenset()
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
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
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Requirement lines as pip reads them: requirements, ``-r``/``-c`` files, options."""
    folder = folder or root
    requirements: set[str] = set()
    constraints: set[str] = set()
    options: set[str] = set()
    for raw in lines:
        line = _strip_comment(raw)
        if not line:
            continue
        include = re.match(r"^(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+)(\S.*)$", line)
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
    from packaging.requirements import InvalidRequirement, Requirement

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
    text = _canonical_name(requirement.name)
    if requirement.extras:
        text += "[" + ",".join(sorted(_canonical_name(e) for e in requirement.extras)) + "]"
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
    return _canonical_name(match.group(1))


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
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

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
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(constraint).contains(version, prereleases=True)


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


def _looks_like_conda(path: Path) -> bool:
    """A conda file by name, or (for a file the MLproject names) by its ``channels``/``name`` keys."""
    if path.name == CONDA_ENV:
        return True
    if path.name == PYTHON_ENV:
        return False
    data = load_yaml(path)
    return isinstance(data, dict) and ("channels" in data or "python" not in data and "name" in data)


def _warn_on_trainer_pins(spec: EnvSpec) -> None:
    from packaging.requirements import InvalidRequirement, Requirement

    for ours in TRAINER_REQUIREMENTS:
        pinned = Requirement(ours)
        version = next(iter(pinned.specifier)).version
        for line in spec.requirements:
            if requirement_name(line) != _canonical_name(pinned.name):
                continue
            try:
                theirs = Requirement(line)
            except InvalidRequirement:
                continue
            if not theirs.specifier.contains(version, prereleases=True):
                log.warning("%s asks for %s; the trainer is tested with %s", spec.source, line, ours)


def string_list(value: Any, name: str, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CodesetError(f"{name}: '{key}' must be a list, got {kind_of(value)}", f"fix '{key}' in {name}")
    for item in value:
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise CodesetError(f"{name}: '{key}' must list strings, got {kind_of(item)} ({item!r})")
    return [str(item) for item in value]


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


def _canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def kind_of(value: Any) -> str:
    """'a string', 'a list', ... for error messages."""
    kinds = {str: "a string", list: "a list", dict: "a mapping", bool: "a boolean", int: "a number", float: "a number"}
    return "nothing" if value is None else kinds.get(type(value), type(value).__name__)
