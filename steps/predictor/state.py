"""What the local and docker targets leave running, remembered between runs.

One JSON file per app in the state folder (input ``state_dir``): the process id
or container, the port and the URL, and the model: the URI given and what it
resolved to (registered model, version, run). It is what lets ``fuseml-steps apps`` list
and stop servers started by earlier step runs, and a second deploy of the same
app replace the first. App names become file names, so only DNS labels are
accepted (no ``../``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from common.errors import InputError
from common.processes import runs_module
from steps.predictor.naming import DNS_LABEL, checked_app_name

log = logging.getLogger(__name__)

SERVE_MODULE = "serving"  # our servers run as ``python -m serving``


@dataclass(frozen=True)
class AppState:
    app: str
    kind: str  # the target that made it and knows how to stop it: "local" or "docker"
    port: int
    url: str
    model: str  # the model URI as given (models:/wine@champion, s3://…, a path)
    pid: int | None = None
    container: str | None = None
    log_path: str | None = None
    started_at: float = 0.0
    grpc: str | None = None  # host:port of the OIP gRPC service; None in records made before it existed
    served_from: str | None = None  # what the runtime loads, when not ``model`` (the cached copy)
    registered_model: str | None = None  # what ``model`` resolved to in the Model Registry
    model_version: str | None = None
    run_id: str | None = None


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
        return self.folder / f"{checked_app_name(app)}.json"

    def log_path(self, app: str) -> Path:
        return self.folder / f"{checked_app_name(app)}.log"

    def apps(self) -> list[AppState]:
        """Every recorded app, by name; files that are not an app's state are skipped."""
        if not self.folder.is_dir():
            return []
        names = sorted(p.stem for p in self.folder.glob("*.json") if DNS_LABEL.fullmatch(p.stem))
        return [state for state in map(self.load, names) if state is not None]

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
    return runs_module(pid, SERVE_MODULE)
