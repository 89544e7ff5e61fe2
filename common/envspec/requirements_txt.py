"""A plain requirements.txt: pip's own format, no Python constraint."""

from __future__ import annotations

from pathlib import Path

from common.envspec.requirements import read_requirements
from common.envspec.spec import EnvSpec


def load_requirements_txt(path: Path, root: Path) -> EnvSpec:
    """requirements.txt -> EnvSpec, ``-r``/``-c`` files inside the codeset followed."""
    requirements, constraints, options = read_requirements(path, root)
    return EnvSpec(source=path.name, requirements=requirements, constraints=constraints, pip_options=options)
