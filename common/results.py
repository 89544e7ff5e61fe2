"""Writing a step's result the way Tekton reads it.

Tekton reads ``/tekton/results/<name>`` after the step ends. The value is written
last, only on success, with no trailing newline, and atomically (temporary file
then rename) so a reader never sees half a value and a failed step leaves none.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from common.errors import InputError, StepError
from common.names import DEFAULT_RESULTS_DIR, RESULTS_DIR, TASK_RESULT

log = logging.getLogger(__name__)

# Tekton's limit for all results of a step is about 4 KB.
MAX_RESULT_BYTES = 4096
# The result is written through ".<name>.<random>.tmp", which must fit a file name (255 bytes).
MAX_RESULT_NAME_BYTES = 200


def result_path(environ: Mapping[str, str]) -> Path | None:
    """Where the result goes, or None when ``TASK_RESULT`` names no result."""
    name = environ.get(TASK_RESULT, "").strip()
    if not name:
        return None
    if "/" in name or name in (".", ".."):
        raise InputError(f"{TASK_RESULT}={name!r} is not a valid result name: use a plain name")
    if len(name.encode()) > MAX_RESULT_NAME_BYTES:
        raise InputError(
            f"{TASK_RESULT} is {len(name.encode())} bytes long, too long for a file name",
            f"use a result name of at most {MAX_RESULT_NAME_BYTES} bytes",
        )
    folder = Path(environ.get(RESULTS_DIR, "").strip() or DEFAULT_RESULTS_DIR)
    return folder / name


def check_result_folder(environ: Mapping[str, str]) -> None:
    """Fail before the work starts when the result could not be written after it."""
    path = result_path(environ)
    if path is None:
        return
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(
            f"results folder {folder} cannot be created ({e.strerror})",
            f"set {RESULTS_DIR} to a writable folder",
        ) from e
    if not os.access(folder, os.W_OK):
        raise InputError(f"results folder {folder} is not writable", f"set {RESULTS_DIR} to a writable folder")


def write_result(value: str, environ: Mapping[str, str]) -> Path | None:
    """Write ``value`` as the step's result; returns the path, or None if no result is wanted."""
    path = result_path(environ)
    if path is None:
        log.debug("%s is not set: no result file written", TASK_RESULT)
        return None
    data = value.encode()
    if len(data) > MAX_RESULT_BYTES:
        raise StepError(f"result is {len(data)} bytes, more than Tekton's {MAX_RESULT_BYTES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
