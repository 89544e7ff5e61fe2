"""Stopping a process and everything it started.

Steps, services, test servers and the predictor's local servers start their
children in their own session (``start_new_session=True``), so a whole tree can
be ended by its process group: SIGTERM first, for a clean exit, then SIGKILL
when it lingers. Two kinds of process get stopped: a ``Popen`` the caller owns
(and must reap), and a pid an earlier run recorded in a file, which may have
exited long ago and had its pid reused by something else, so it is signalled
only while it still runs the module it was started with.

A step may itself start children in sessions of their own (the trainer's entry
point): ``stop_process_tree`` follows the parent links, so a cancelled step's
whole tree ends even when the step dies before it could stop its children.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from common.errors import ExecutionError
from common.polling import wait_until

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
KILL_WAIT_SECONDS = 5.0


def stop_process_group(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL it if it lingers; reaps ``proc``."""
    if proc is None:
        return
    _end_group(proc.pid, running=lambda: proc.poll() is None, timeout=timeout)
    proc.wait()


def stop_process_tree(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """``stop_process_group``, and then SIGKILL every process group its descendants were in.

    The step gets ``timeout`` to stop its own children after SIGTERM (it knows how);
    whatever of its tree is left after that, in any session, is killed.
    """
    if proc is None:
        return
    groups = descendant_groups(proc.pid)  # before SIGTERM: once the step dies, its orphans lose the link

    def running() -> bool:
        groups.update(descendant_groups(proc.pid))
        return proc.poll() is None

    _end_group(proc.pid, running=running, timeout=timeout)
    proc.wait()
    groups.discard(os.getpgrp())
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def descendant_groups(pid: int) -> set[int]:
    """The process groups of every live descendant of ``pid`` (from /proc's parent links)."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append((int(entry.name), int(fields[2])))
    groups: set[int] = set()
    todo = [pid]
    while todo:
        for child, group in children.get(todo.pop(), []):
            groups.add(group)
            todo.append(child)
    return groups


def stop_recorded_process(pid: int, module: str, timeout: float = 10.0) -> bool:
    """``stop_process_group`` for a recorded ``pid`` of ``python -m <module>``; True if it was running.

    A pid that no longer runs ``module`` is someone else's now and is left alone.
    """
    if not runs_module(pid, module):
        return False
    _end_group(pid, running=lambda: runs_module(pid, module), timeout=timeout)
    return True


def start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, from /proc), or None when it does not run.

    A pid and its start time name one process for good: a reused pid has another start time.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def runs_module(pid: int, module: str) -> bool:
    """True when ``pid`` is running (not a zombie) with ``-m <module>`` on its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"  # it has exited already
    return ("-m", module) in itertools.pairwise(argv) and not zombie


def _end_group(pid: int, running: Callable[[], bool], timeout: float) -> None:
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    if not _signal(pid, pgid, signal.SIGTERM):
        return
    if not wait_until(lambda: not running(), timeout=timeout, interval=POLL_SECONDS):
        log.warning("process %s ignored SIGTERM for %.0fs: killing its group", pid, timeout)
        _signal(pid, pgid, signal.SIGKILL)
        wait_until(lambda: not running(), timeout=KILL_WAIT_SECONDS, interval=POLL_SECONDS)
    # The leader may be gone while others of its group linger: end them too.
    _signal(pid, pgid, signal.SIGKILL)


def _signal(pid: int, pgid: int, sig: signal.Signals) -> bool:
    """Signal ``pid``'s group (only ``pid`` if it shares ours); False when nothing is left to signal."""
    try:
        if pgid == os.getpgrp():
            os.kill(pid, sig)
        else:
            os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError as e:
        raise ExecutionError(
            f"not allowed to send {sig.name} to process {pid} (group {pgid})", "stop it as the user that started it"
        ) from e
    return True
