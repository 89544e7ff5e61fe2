"""Running the entry point's command and relaying its output, masked.

MLflow's local backend starts the command with the step's own stdout and
stderr, so whatever the training code prints bypasses our secret masking and
is lost to our error message. We start it ourselves, relay each line through
the masker as it comes, and keep the last lines for the error.
"""

from __future__ import annotations

import collections
import logging
import os
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


@dataclass(frozen=True)
class Finished:
    returncode: int
    tail: list[str]

    @property
    def last_line(self) -> str:
        return next((line for line in reversed(self.tail) if line.strip()), "")


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
