"""Local services for tests and the local runner: S3, MLflow, a registry, Docker.

Each service is a real process on loopback with its data in a folder the caller
owns, so tests exercise the same protocols FuseML steps meet in production and
several test sessions can run side by side. The process helpers live here
because every service starts, waits and stops the same way: in its own process
group (so a server's workers die with it), logging to a file whose tail goes
into the error when it does not come up.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from common import polling

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
# How an MLflow server keeps artifacts (mlflow_server.py): through itself (MLflow's default) or in S3 clients write to.
MLFLOW_ARTIFACT_MODES = ("proxied", "direct")


class ServiceStartError(RuntimeError):
    """A local service did not start or did not answer in time."""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, for error messages ('' if unreadable)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_process(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group, stdout and stderr to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.debug("starting %s (log %s)", " ".join(argv), log_path)
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    interval: float = 0.25,
) -> None:
    """Poll ``ready`` until it returns True; raise ServiceStartError with the log tail otherwise.

    Fails early when ``proc`` exits, since waiting for a dead server only hides why it died;
    an exception from ``ready`` only means "not yet" (a server that is starting refuses connections).
    """
    last_error = ""

    def answered() -> bool:
        nonlocal last_error
        if proc is not None and proc.poll() is not None:
            raise ServiceStartError(_failure(f"{what} exited with code {proc.returncode}", log_path))
        try:
            return bool(ready())
        except Exception as e:  # noqa: BLE001 - any failure of the probe means "not yet"
            last_error = f"{type(e).__name__}: {e}"
            return False

    if not polling.wait_until(answered, timeout=timeout, interval=interval):
        detail = f" (last probe error: {last_error})" if last_error else ""
        raise ServiceStartError(_failure(f"{what} did not answer within {timeout:.0f}s{detail}", log_path))


def _failure(message: str, log_path: Path | None) -> str:
    if log_path is None:
        return message
    tail = log_tail(log_path)
    return f"{message}; log {log_path}:\n{tail}" if tail else f"{message}; log {log_path} is empty"
