"""What goes wrong with a workflow, and the problems collected on the way to saying so.

A workflow is checked in one pass and every problem is reported at once, in
file order, so a user fixes the file in one go instead of one error per run.
"""

from __future__ import annotations

from collections.abc import Iterable

from common.errors import StepError


class WorkflowError(StepError):
    """The workflow file is unreadable or wrong, or the run's inputs do not fit it.

    ``problems`` holds one ``file:line: message`` line per problem found.
    """

    def __init__(self, message: str, problems: Iterable[str] = (), hint: str | None = None) -> None:
        self.problems = list(problems)
        if self.problems:
            message = message + ":\n" + "\n".join("  " + p for p in self.problems)
        super().__init__(message, hint)


class Problems:
    """The problems and warnings found in one workflow file, each at its line (0: the whole file)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._found: list[tuple[int, str]] = []
        self.warnings: list[str] = []

    def add(self, line: int, message: str) -> None:
        self._found.append((line, message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.source}:{line}: {message}")

    @property
    def lines(self) -> list[str]:
        """The problems in file order, as ``file:line: message``."""
        ordered = sorted(self._found, key=lambda p: p[0])
        return [
            f"{self.source}:{line}: {message}" if line else f"{self.source}: {message}" for line, message in ordered
        ]

    def __len__(self) -> int:
        return len(self._found)
