"""What every builder backend does, and the plan it is handed.

A backend answers three questions: what am I building on (the identity that
goes into the tag), is this environment already built (a cheap check, no
build tools imported), and build it. The step decides the tag; backends only
act on it.
"""

from __future__ import annotations

import platform
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.envspec import EnvSpec
from common.errors import ExecutionError
from steps.builder.settings import BuilderSettings


class BuildError(ExecutionError):
    """A build or push failed; ``build_log`` keeps the tail of what the tool printed."""

    def __init__(self, message: str, hint: str | None = None, build_log: Iterable[str] = ()) -> None:
        super().__init__(message, hint)
        self.build_log = list(build_log)


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
    """One build: the environment, its tag, where it goes and the labels to stamp on it."""

    spec: EnvSpec
    tag: str
    settings: BuilderSettings
    codeset: Path
    labels: Mapping[str, str] = field(default_factory=dict)

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


def error_lines(lines: Iterable[str], limit: int = 15) -> list[str]:
    """The lines of a build log that explain a failure: pip's ERROR lines, else the tail."""
    lines = [line.rstrip() for line in lines if line.strip()]
    errors = [line for line in lines if line.lstrip().lower().startswith(("error:", "error ", "fuseml-check:"))]
    return errors[-limit:] if errors else lines[-limit:]


_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def host_platform() -> str:
    """``linux/amd64``: the platform images built on this machine are for."""
    machine = platform.machine().lower()
    return f"linux/{_ARCH.get(machine, machine)}"
