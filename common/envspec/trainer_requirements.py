"""What the trainer itself imports, added to every environment it runs in.

The built image's ``run`` command is the trainer, so mlflow and boto3 must be
installed whatever the codeset asks for. A codeset that names them keeps its
own line (its code may need that version); a line the trainer was not tested
with gets a warning, not an error.
"""

from __future__ import annotations

import logging

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from common.envspec.requirements import requirement_name
from common.envspec.spec import EnvSpec

log = logging.getLogger(__name__)

# Kept equal to the ``trainer`` extra of pyproject.toml (a unit test checks it).
TRAINER_REQUIREMENTS = ("mlflow==3.17.2", "boto3==1.44.8")


def with_trainer_requirements(spec: EnvSpec) -> EnvSpec:
    """``spec`` plus the trainer's requirements it does not name; warns about pins the trainer was not tested with."""
    _warn_on_trainer_pins(spec)
    return spec.with_requirements(TRAINER_REQUIREMENTS)


def _warn_on_trainer_pins(spec: EnvSpec) -> None:
    for ours in TRAINER_REQUIREMENTS:
        pinned = Requirement(ours)
        version = next(iter(pinned.specifier)).version
        for line in spec.requirements:
            if requirement_name(line) != canonicalize_name(pinned.name):
                continue
            try:
                theirs = Requirement(line)
            except InvalidRequirement:
                continue
            if not theirs.specifier.contains(version, prereleases=True):
                log.warning("%s asks for %s; the trainer is tested with %s", spec.source, line, ours)
