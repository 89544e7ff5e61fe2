"""Several worker processes for one runtime: ``--workers N`` (or ``auto``), REST and gRPC in each.

KServe's own multi-worker path (``RESTServerMultiProcess``) starts uvicorn
workers that import KServe's app by name: they listen on all interfaces and
never see the fast lane. So the runtime forks its own workers instead, once the
model is loaded (each worker then holds the loaded model, copied on write;
nothing loads twice). The parent binds the REST socket (on ``--host``) before
forking and every worker's uvicorn listens on and serves that one socket, so the kernel
spreads connections over the workers; each worker runs its own gRPC server on
the same port (gRPC sets ``SO_REUSEPORT``). The parent only forwards SIGTERM
and SIGINT and waits: when one worker dies, the others are stopped and the
runtime exits with that worker's code, so a supervisor (KServe, the local
target) sees one process that lives or dies as a whole.

``auto`` is the CPU limit of the container (cgroup v2 ``cpu.max``, or v1's
CFS quota), else the cores this process may run on.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from common.errors import InputError

log = logging.getLogger(__name__)

AUTO = "auto"
CGROUP = Path("/sys/fs/cgroup")


def worker_count(value: str, cgroup: Path = CGROUP) -> int:
    """``value`` (a number, or ``auto``) as a number of workers; InputError when it is neither."""
    text = str(value).strip().lower()
    if text == AUTO:
        return cpu_limit(cgroup)
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise InputError(f"--workers {value!r} is not valid", "give a number of worker processes (1 or more) or auto")
    return count


def cpu_limit(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may use: the cgroup's quota when one is set, else its CPU affinity."""
    cores = len(os.sched_getaffinity(0))
    quota = _cgroup_quota(cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cgroup_quota(cgroup: Path) -> float | None:
    try:
        text = (cgroup / "cpu.max").read_text().split()  # v2: "<quota> <period>" or "max <period>"
        if len(text) == 2 and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError):
        pass
    try:  # v1
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def listening_socket(host: str, port: int) -> socket.socket:
    """The REST socket every worker serves, bound (OSError when the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # uvicorn takes a socket given by fd for a Unix one and never sets TCP_NODELAY on its connections
        # (each answer would then wait ~40 ms for a delayed ACK); Linux hands the listener's to each accepted one.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host or "0.0.0.0", port))
        # Not listening yet: asyncio listens when the first worker serves, so until then a client is refused
        # (as with one worker) rather than left waiting in the backlog.
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def run_workers(count: int, serve_one: Callable[[int], None]) -> int:
    """Fork ``count`` workers that each run ``serve_one(index)``; wait for them; the exit code of the runtime."""
    children: dict[int, int] = {}
    for index in range(count):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                serve_one(index)
            except KeyboardInterrupt:
                code = 0
            except BaseException:  # noqa: BLE001 - a worker's failure is its exit code; the parent reports it
                log.exception("worker %s failed", index)
                code = 2
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = index
    log.info("%s workers: pids %s", count, ", ".join(map(str, children)))
    return _supervise(children)


def _supervise(children: dict[int, int]) -> int:
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(children, signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is None:
            continue
        exit_code = os.waitstatus_to_exitcode(status)
        if not stopping:
            log.error("worker %s (pid %s) exited with %s; stopping the others", index, pid, exit_code)
            stopping, code = True, exit_code if exit_code > 0 else 1
            _signal_all(children, signal.SIGTERM)
    return code


def _signal_all(children: dict[int, int], signum: int) -> None:
    for pid in list(children):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
