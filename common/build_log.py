"""A failed build, and the lines of its log that explain it.

Shared by every way an environment is built (the builder's backends, the
predictor's serving environments): the error keeps the tail of what the tool
printed, so a caller can look at it again (a resolver conflict is reframed by
``common.serving_env``), and the message quotes only the lines that matter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from common.errors import ExecutionError


class BuildError(ExecutionError):
    """A build or push failed; ``build_log`` keeps the tail of what the tool printed."""

    def __init__(self, message: str, hint: str | None = None, build_log: Iterable[str] = ()) -> None:
        super().__init__(message, hint)
        self.build_log = list(build_log)


# Terminal colours: Docker's classic builder paints a RUN's stderr red (ESC[91m ... ESC[0m).
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def error_lines(lines: Iterable[str], limit: int = 15) -> list[str]:
    """The lines of a build log that explain a failure: pip's ERROR lines, else the tail (colours removed)."""
    lines = [_COLOUR.sub("", line).rstrip() for line in lines if line.strip()]
    errors = [line for line in lines if line.lstrip().lower().startswith(("error:", "error ", "fuseml-check:"))]
    return errors[-limit:] if errors else lines[-limit:]
