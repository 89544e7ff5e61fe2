"""Deploy targets by name: ``kserve``, ``local`` and ``docker``.

The name is also what a recorded deployment (``AppState.kind``) carries, so the
target that made a deployment is the one found to check or stop it.
"""

from __future__ import annotations

from common.errors import InputError
from steps.predictor.targets.base import Deployment, DeployPlan, RecordedTarget, Target


def get_target(name: str) -> Target:
    """The target called ``name``; imports lazily so a deploy-only image needs only its target's libraries."""
    if name == "kserve":
        from steps.predictor.targets.kserve import KServeTarget

        return KServeTarget()
    if name == "local":
        from steps.predictor.targets.local import LocalTarget

        return LocalTarget()
    if name == "docker":
        from steps.predictor.targets.docker import DockerTarget

        return DockerTarget()
    raise InputError(f"target={name!r} is not known: use kserve, local or docker")


__all__ = ["DeployPlan", "Deployment", "RecordedTarget", "Target", "get_target"]
