"""Running the entry point's command and relaying its output, masked.

MLflow's local backend starts the command with the step's own stdout and
stderr, so whatever the training code prints bypasses our secret masking and
is lost to our error message. We start it ourselves, relay each line through
the masker as it comes, and keep the last lines for the error.

When the training code fails because a service went away under it (S3 in the
middle of an upload, the tracking server), its last line is a library's
exception; the error then also says which service and which setting to check.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.logs import masker
from common.processes import stop_process_group

log = logging.getLogger(__name__)

TAIL_LINES = 20
# How long the entry point gets to exit after SIGTERM before it is killed: well within
# the runner's grace for the whole step (runner/executors), so nothing outlives a cancelled step.
STOP_GRACE_SECONDS = 5.0
AGAIN = "then run the step again"
# How botocore and MLflow's REST client name the server that did not answer, and what to check then.
SERVICE_FAILURES = (
    (
        re.compile(r'endpoint URL: "(?P<url>[a-z0-9+.-]+://[^/"?]+)'),
        f"the S3 endpoint {{url}} does not answer; check MLFLOW_S3_ENDPOINT_URL and that the S3 service runs, {AGAIN}",
    ),
    (
        re.compile(r"API request to (?P<url>[a-z0-9+.-]+://[^/\s]+)\S* failed with exception"),
        f"the MLflow tracking server {{url}} is unavailable; check MLFLOW_TRACKING_URI and that it runs, {AGAIN}",
    ),
)


@dataclass(frozen=True)
class Finished:
    returncode: int
    tail: list[str]

    @property
    def last_line(self) -> str:
        """The last line of output, and what to check when the output shows a service that went away."""
        last = next((line for line in reversed(self.tail) if line.strip()), "")
        advice = next(filter(None, map(service_failure, reversed(self.tail))), None)
        return f"{last}; {advice}" if advice else last


def service_failure(line: str) -> str | None:
    """What to check when ``line`` is a library saying that a service did not answer, else None."""
    for pattern, advice in SERVICE_FAILURES:
        found = pattern.search(line)
        if found:
            return advice.format(url=found["url"])
    return None


def run_command(command: str, cwd: Path, env: Mapping[str, str]) -> Finished:
    """Run ``command`` with bash in ``cwd``; stream its output; return its exit status."""
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    mask = masker().mask
    try:
        assert process.stdout is not None
        for line in process.stdout:
            line = mask(line.rstrip("\n"))
            tail.append(line)
            print(line, file=sys.stderr, flush=True)
        returncode = process.wait()
    except BaseException:
        _kill_group(process)
        raise
    return Finished(returncode, list(tail))


def with_python_on_path(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with this interpreter's folder first on PATH.

    An MLproject command says ``python train.py``: it must find the Python the
    step runs in (the environment the builder made), not whatever is first on PATH.
    """
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", os.defpath)
    if path.split(os.pathsep)[0] != bindir:
        path = os.pathsep.join([bindir, path])
    return {**env, "PATH": path}


def _kill_group(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        log.warning("stopping the entry point (pid %s)", process.pid)
    stop_process_group(process, STOP_GRACE_SECONDS)
