"""MLflow's own environment file, python_env.yaml: ``python``, ``build_dependencies``, ``dependencies``."""

from __future__ import annotations

from pathlib import Path

from common.envspec.requirements import normalise_requirement, parse_requirement_lines
from common.envspec.spec import EnvSpec, normalise_python
from common.envspec.yaml_file import kind_of, load_yaml, string_list
from common.errors import CodesetError


def load_python_env(path: Path, root: Path) -> EnvSpec:
    """python_env.yaml -> EnvSpec; ``dependencies`` are requirement lines (``-r file`` included)."""
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
