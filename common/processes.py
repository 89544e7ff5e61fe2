"""Stopping a child process and everything it started.

Steps, services and test servers start children in their own session
(``start_new_session=True``), so a whole tree can be ended by its process
group: SIGTERM first, for a clean exit, then SIGKILL when it lingers.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess

log = logging.getLogger(__name__)


def stop_process_group(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL it if it lingers; reaps ``proc``."""
    if proc is None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        proc.wait()
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            log.warning("process group %s ignored %s", pgid, sig.name)
    # The leader may be gone while others of its group linger: end them too.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
