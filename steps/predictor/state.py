"""What the local and docker targets leave running, remembered between runs.

One JSON file per app in the state folder (input ``state_dir``): the process id
or container, the port and the URL. It is what lets ``python -m
steps.predictor stop <app>`` stop a server started by an earlier step run, and
a second deploy of the same app replace the first.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common.errors import InputError

log = logging.getLogger(__name__)

SERVE_MODULE = "serving"


@dataclass(frozen=True)
class AppState:
    app: str
    kind: str  # "local" or "docker"
    port: int
    url: str
    model: str
    pid: int | None = None
    container: str | None = None
    log_path: str | None = None
    started_at: float = 0.0


class StateStore:
    """The state folder: ``<folder>/<app>.json`` and the server's ``<app>.log``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def ensure(self) -> Path:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(
                f"state folder {self.folder} cannot be created ({e.strerror})", "set FUSEML_STATE_DIR"
            ) from e
        return self.folder

    def path(self, app: str) -> Path:
        return self.folder / f"{app}.json"

    def log_path(self, app: str) -> Path:
        return self.folder / f"{app}.log"

    def load(self, app: str) -> AppState | None:
        try:
            data = json.loads(self.path(app).read_text())
            return AppState(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as e:
            log.warning("ignoring unreadable state %s (%s)", self.path(app), e)
            return None

    def save(self, state: AppState) -> None:
        self.ensure()
        tmp = self.path(state.app).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        os.replace(tmp, self.path(state.app))

    def remove(self, app: str) -> None:
        self.path(app).unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """True when ``pid`` runs and is one of our serving processes (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    if SERVE_MODULE not in cmdline:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has exited already


def stop_process(pid: int, grace_seconds: float = 10.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after ``grace_seconds``."""
    if not process_alive(pid):
        return
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return
        time.sleep(0.2)
    log.warning("server pid %s ignored SIGTERM for %.0fs: killing it", pid, grace_seconds)
    _signal_group(pid, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)
