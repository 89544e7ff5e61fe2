"""Errors a step reports to its user.

Every error a user can act on is a ``StepError``: the entrypoint wrapper turns it
into one line on stderr and a non-zero exit, with no traceback. Anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations


class StepError(Exception):
    """Root of all errors a step reports as a one-line message.

    ``hint`` says what to do about it; it is appended to the message.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class InputError(StepError):
    """A step input (a ``FUSEML_*`` variable) is missing or malformed."""


class CodesetError(StepError):
    """The codeset (MLproject, .fuseml metadata, environment files) is unusable."""


class StorageError(StepError):
    """An artifact store (S3 or a local folder) refused or failed an operation."""


class ServiceUnavailable(StepError):
    """A service the step needs (tracking server, registry, cluster) did not answer."""


class ExecutionError(StepError):
    """A command the step ran (an entry point, a build) failed."""
