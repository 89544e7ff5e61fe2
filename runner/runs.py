"""Run records in sqlite, in the state folder: what ``runs`` lists and ``logs`` reads.

One row per run and one per step. Run names follow FuseML's habit of
workflow-based names with a counter (``mlflow-e2e-3``), short enough to type.
Each write is its own short transaction, so ``runs`` can still be used while
another run is writing. A run records its runner's pid and start time: a run
still ``Running`` whose runner is gone (killed with SIGKILL, the machine
rebooted) reads back as ``Failed (runner died)``, and so does its running step.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import StepError
from common.processes import start_time

DB_FILE = "runs.db"

# Statuses, spelled as FuseML's workflow list-runs shows them.
PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELLED = "Cancelled"
SKIPPED = "Skipped"
RUNNER_DIED = "Failed (runner died)"
FINISHED = (SUCCEEDED, FAILED, CANCELLED, SKIPPED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    executor TEXT NOT NULL,
    codeset TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    error TEXT,
    runner_pid INTEGER,
    runner_start TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run TEXT NOT NULL REFERENCES runs(name),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    image TEXT NOT NULL,
    started REAL,
    finished REAL,
    output TEXT,
    log_path TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT,
    PRIMARY KEY (run, name)
);
"""


class RunNotFound(StepError):
    """``logs`` or a lookup named a run (or step) that is not recorded."""


@dataclass
class StepRecord:
    name: str
    position: int
    image: str
    log_path: Path
    status: str = PENDING
    started: float | None = None
    finished: float | None = None
    output: str | None = None
    exit_code: int | None = None
    error: str | None = None

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started


@dataclass
class RunRecord:
    name: str
    workflow: str
    executor: str
    codeset: str
    run_dir: Path
    started: float
    status: str = RUNNING
    finished: float | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    error: str | None = None
    runner_pid: int | None = None
    runner_start: str | None = None

    @property
    def duration(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED

    def step(self, name: str) -> StepRecord:
        for step in self.steps:
            if step.name == name:
                return step
        known = ", ".join(s.name for s in self.steps)
        raise RunNotFound(f"run {self.name} has no step '{name}'", hint=f"steps: {known}")


class RunStore:
    """The sqlite file of run records; cheap to open, one connection per operation."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / DB_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)
            columns = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
            for column, kind in (("runner_pid", "INTEGER"), ("runner_start", "TEXT")):
                if column not in columns:  # a state folder from before runner tracking
                    db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def create(
        self, workflow: str, executor: str, codeset: str, inputs: Mapping[str, str], runs_dir: Path
    ) -> RunRecord:
        """A new Running record with the next free name ``<workflow>-<n>``."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            count = db.execute("SELECT COUNT(*) FROM runs WHERE workflow = ?", (workflow,)).fetchone()[0]
            number = count + 1
            while db.execute("SELECT 1 FROM runs WHERE name = ?", (f"{workflow}-{number}",)).fetchone():
                number += 1
            name = f"{workflow}-{number}"
            run = RunRecord(name, workflow, executor, codeset, runs_dir / name, time.time(), inputs=dict(inputs))
            run.runner_pid = os.getpid()
            run.runner_start = start_time(run.runner_pid)
            db.execute(
                "INSERT INTO runs (name, workflow, status, started, finished, executor, codeset, run_dir, inputs,"
                " outputs, error, runner_pid, runner_start) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.name,
                    run.workflow,
                    run.status,
                    run.started,
                    None,
                    run.executor,
                    run.codeset,
                    str(run.run_dir),
                    json.dumps(run.inputs),
                    "{}",
                    None,
                    run.runner_pid,
                    run.runner_start,
                ),
            )
        return run

    def save(self, run: RunRecord) -> None:
        """Write the run's status, outputs and every step."""
        with self._db() as db:
            db.execute(
                "UPDATE runs SET status=?, finished=?, outputs=?, error=? WHERE name=?",
                (run.status, run.finished, json.dumps(run.outputs), run.error, run.name),
            )
            for step in run.steps:
                db.execute(
                    "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        run.name,
                        step.position,
                        step.name,
                        step.status,
                        step.image,
                        step.started,
                        step.finished,
                        step.output,
                        str(step.log_path),
                        step.exit_code,
                        step.error,
                    ),
                )

    def get(self, name: str) -> RunRecord:
        """The run called ``name``; ``last`` (or ``latest``) is the most recent one."""
        with self._db() as db:
            if name in ("last", "latest"):
                row = db.execute("SELECT * FROM runs ORDER BY started DESC LIMIT 1").fetchone()
            else:
                row = db.execute("SELECT * FROM runs WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run '{name}' in {self.path}", hint="'fuseml-steps runs' lists the runs")
            steps = db.execute("SELECT * FROM steps WHERE run = ? ORDER BY position", (row["name"],)).fetchall()
        return _run(row, steps)

    def list(self, workflow: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The most recent runs first."""
        with self._db() as db:
            if workflow:
                rows = db.execute(
                    "SELECT * FROM runs WHERE workflow = ? ORDER BY started DESC LIMIT ?", (workflow, limit)
                ).fetchall()
            else:
                rows = db.execute("SELECT * FROM runs ORDER BY started DESC LIMIT ?", (limit,)).fetchall()
        return [_run(row, []) for row in rows]


def _run(row: sqlite3.Row, steps: list[sqlite3.Row]) -> RunRecord:
    run = RunRecord(
        name=row["name"],
        workflow=row["workflow"],
        executor=row["executor"],
        codeset=row["codeset"],
        run_dir=Path(row["run_dir"]),
        started=row["started"],
        status=row["status"],
        finished=row["finished"],
        inputs=json.loads(row["inputs"]),
        outputs=json.loads(row["outputs"]),
        error=row["error"],
        steps=[
            StepRecord(
                name=s["name"],
                position=s["position"],
                image=s["image"],
                log_path=Path(s["log_path"]),
                status=s["status"],
                started=s["started"],
                finished=s["finished"],
                output=s["output"],
                exit_code=s["exit_code"],
                error=s["error"],
            )
            for s in steps
        ],
        runner_pid=row["runner_pid"],
        runner_start=row["runner_start"],
    )
    if run.status == RUNNING and _runner_gone(run):
        run.status = RUNNER_DIED
        run.error = run.error or f"the runner (pid {run.runner_pid}) ended without finishing the run"
        for step in run.steps:
            if step.status == RUNNING:
                step.status = RUNNER_DIED
    return run


def _runner_gone(run: RunRecord) -> bool:
    """True when the process that ran ``run`` is no longer there (a record from before pids: unknown, False)."""
    if run.runner_pid is None:
        return False
    return start_time(run.runner_pid) != run.runner_start
