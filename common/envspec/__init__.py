"""A codeset's Python environment, read from its files and normalised to one spec.

Where the environment comes from, first match wins:

1. the file the MLproject names (``python_env:`` or ``conda_env:``), because
   that is what MLflow itself would use for this project;
2. ``python_env.yaml`` (MLflow's own format, ``python_env.py``);
3. ``conda.yaml`` (FuseML's original format; installed with pip, see ``conda.py``);
4. ``requirements.txt`` (``requirements_txt.py``).

Each format is read into one ``EnvSpec`` (``spec.py``) with the requirement
rules of ``requirements.py``; the trainer's own needs (mlflow, boto3) are then
added, unless the user names them, in which case the user's line wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from common.envspec.conda import load_conda
from common.envspec.python_env import load_python_env
from common.envspec.requirements_txt import load_requirements_txt
from common.envspec.spec import EnvSpec, normalise_python, python_satisfies
from common.envspec.trainer_requirements import TRAINER_REQUIREMENTS, with_trainer_requirements
from common.envspec.yaml_file import kind_of, load_yaml
from common.errors import CodesetError

__all__ = [
    "ENVIRONMENT_FILES",
    "TRAINER_REQUIREMENTS",
    "EnvSpec",
    "find_environment_file",
    "load_envspec",
    "normalise_python",
    "python_satisfies",
]

log = logging.getLogger(__name__)

PYTHON_ENV = "python_env.yaml"
CONDA_ENV = "conda.yaml"
REQUIREMENTS = "requirements.txt"
MLPROJECT = "MLproject"
# Precedence of the files looked for at the codeset root (after the MLproject's own reference).
ENVIRONMENT_FILES = (PYTHON_ENV, CONDA_ENV, REQUIREMENTS)

Reader = Callable[[Path, Path], EnvSpec]


def load_envspec(codeset: str | Path) -> EnvSpec:
    """Read and normalise the environment of the codeset at ``codeset``.

    Raises ``CodesetError`` naming the file (and line) when it is missing or wrong.
    """
    root = Path(codeset)
    path = find_environment_file(root)
    log.info("environment: %s", path.relative_to(root) if path.is_relative_to(root) else path)
    spec = reader_for(path)(path, root)
    for note in spec.notes:
        log.info("%s: %s", spec.source, note)
    return with_trainer_requirements(spec)


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


def reader_for(path: Path) -> Reader:
    """The reader of the file's format: YAML is conda or python_env, anything else a requirements file."""
    if not path.name.endswith((".yaml", ".yml")):
        return load_requirements_txt
    return load_conda if _looks_like_conda(path) else load_python_env


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


def _looks_like_conda(path: Path) -> bool:
    """A conda file by name, or (for a file the MLproject names) by its ``channels``/``name`` keys."""
    if path.name == CONDA_ENV:
        return True
    if path.name == PYTHON_ENV:
        return False
    data = load_yaml(path)
    return isinstance(data, dict) and ("channels" in data or "python" not in data and "name" in data)
