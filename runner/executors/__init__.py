"""Executors run one workflow step each: as a local process or as a container.

``get_executor(name)`` is the one place that knows the names ``--executor``
accepts; an unknown one is an error listing the known ones.
"""

from __future__ import annotations

from collections.abc import Callable

from runner.executors.base import Executor, ExecutorError, StepSpec, image_role


def _process() -> Executor:
    from runner.executors.process import ProcessExecutor

    return ProcessExecutor()


def _docker() -> Executor:
    from runner.executors.docker import DockerExecutor

    return DockerExecutor()


EXECUTORS: dict[str, Callable[[], Executor]] = {"process": _process, "docker": _docker}


def get_executor(name: str) -> Executor:
    """The executor called ``name`` (``process`` or ``docker``)."""
    try:
        factory = EXECUTORS[name]
    except KeyError:
        raise ExecutorError(f"unknown executor '{name}'", hint="use one of " + ", ".join(EXECUTORS)) from None
    return factory()


__all__ = ["EXECUTORS", "Executor", "ExecutorError", "StepSpec", "get_executor", "image_role"]
