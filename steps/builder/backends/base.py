"""What every builder backend does, and the plan it is handed.

A backend answers three questions: what am I building on (the identity that
goes into the tag), is this environment already built (a cheap check, no
build tools imported), and build it. The step decides the tag; backends only
act on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.build_log import BuildError, error_lines
from common.build_payload import TRAINER
from common.docker_build import host_platform
from common.envspec import EnvSpec
from steps.builder.settings import BuilderSettings

# Shared with common/ (serving environments); imported from here by the backends.
__all__ = ["Backend", "BaseIdentity", "BuildError", "BuildPlan", "error_lines", "host_platform"]


@dataclass(frozen=True)
class BaseIdentity:
    """What the environment is built on, as far as the backend knows it.

    ``digest`` is the base image's content digest (or local image id, or the
    interpreter's identity for venv); None when unknown, and the step then asks
    the base image's registry.
    """

    platform: str
    digest: str | None = None
    python_version: str | None = None


@dataclass(frozen=True)
class BuildPlan:
    """One build: the environment, its tag, where it goes and the labels to stamp on it.

    ``kind`` is what the environment runs (``common.build_payload.KINDS``): the trainer, or
    the serving runtime for a model's serving environment.
    """

    spec: EnvSpec
    tag: str
    settings: BuilderSettings
    codeset: Path
    labels: Mapping[str, str] = field(default_factory=dict)
    kind: str = TRAINER

    @property
    def push_reference(self) -> str:
        return self.settings.push_reference(self.tag)

    @property
    def pull_reference(self) -> str:
        return self.settings.pull_reference(self.tag)


class Backend(ABC):
    """A way of building environments (container engine or virtualenv)."""

    name: str = ""

    def __init__(self, environ: Mapping[str, str], settings: BuilderSettings) -> None:
        self.environ = dict(environ)
        self.settings = settings

    @abstractmethod
    def identity(self) -> BaseIdentity:
        """The platform and base this backend builds on (cheap: runs on the cache-hit path)."""

    @abstractmethod
    def find(self, plan: BuildPlan) -> str | None:
        """The step result if ``plan.tag`` is already built, else None (cheap)."""

    @abstractmethod
    def build(self, plan: BuildPlan) -> str:
        """Build (and publish) the environment; returns the step result."""
