"""Deploy targets by name: ``kserve``, ``local`` and ``docker``."""

from __future__ import annotations

from common.errors import InputError
from steps.predictor.targets.base import Deployment, DeployPlan, Target


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


def own_runtime_only(name: str) -> bool:
    """True for targets that can serve only with our MLflow runtime."""
    return name in ("local", "docker")


__all__ = ["DeployPlan", "Deployment", "Target", "get_target", "own_runtime_only"]
