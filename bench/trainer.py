"""Trainer benchmark: our trainer step against ``mlflow run . --env-manager local``, same codeset, same store.

Both train the wine codeset (``examples/codesets/wine``, entry point ``main``
with its default parameters) in this venv, one after the other, against the
same tracking store and experiment:

- ``server``: a real ``mlflow server`` (SQLite backend) whose clients write
  artifacts to S3 themselves (``--no-serve-artifacts``, as FuseML's core sets it
  up), on a real SeaweedFS; both tools get the same variables.
- ``sqlite``: a local ``sqlite:///…/mlflow.db``, what ``make demo`` uses.

A third command, the entry point alone (``python train.py …`` with
``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME``), is the floor both tools
add their overhead to: the time of ``train.py`` itself (importing MLflow and
scikit-learn, training, ``log_model`` with its requirement inference) is the
same under either. Each command runs once untimed (page cache, the store's
tables), then ``ROUNDS`` times in an order that rotates each round, so drift on
a shared machine hits all alike; medians are compared. Wall seconds, and CPU
seconds of the command and everything it ran.

Target (issue): our wall time <= ``mlflow run``'s. Printed, not asserted.
Telemetry is off for all three (as our steps set it), so no command waits on
the network.

Tunables (env): BENCH_TRAINER_ROUNDS (3), BENCH_TRAINER_STORES (``server,sqlite``).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common.telemetry import OFF as TELEMETRY_OFF
from runner.services.mlflow_server import MLflowServer
from runner.services.seaweedfs import SeaweedFS

ROOT = Path(__file__).resolve().parents[1]
WINE = ROOT / "examples" / "codesets" / "wine"
VENV_BIN = Path(sys.executable).parent
EXPERIMENT = "bench-trainer"
RUN_TIMEOUT = 900
ROUNDS = int(os.environ.get("BENCH_TRAINER_ROUNDS", "3"))
STORES = os.environ.get("BENCH_TRAINER_STORES", "server,sqlite").split(",")
OURS, MLFLOW_RUN, ALONE = "ours", "mlflow run", "entry point alone"


@dataclass(frozen=True)
class Timed:
    wall: float
    cpu: float  # the command and every process it waited for


def commands(codeset: Path, results: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The three commands to compare, each with the variables it adds to the store's."""
    return {
        OURS: (
            [sys.executable, "-m", "steps.trainer"],
            {"FUSEML_MLFLOW_EXPERIMENT": EXPERIMENT, "TASK_RESULT": "model", "FUSEML_RESULTS_DIR": str(results)},
        ),
        MLFLOW_RUN: (
            [str(VENV_BIN / "mlflow"), "run", str(codeset), "--env-manager", "local", "--experiment-name", EXPERIMENT],
            {},
        ),  # fmt: skip
        ALONE: (
            [sys.executable, "train.py", "--alpha", "0.5", "--l1-ratio", "0.1"],
            {"MLFLOW_EXPERIMENT_NAME": EXPERIMENT},
        ),
    }


def run_timed(argv: list[str], cwd: Path, env: Mapping[str, str]) -> Timed:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return Timed(wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


@contextmanager
def store(kind: str, work: Path) -> Iterator[dict[str, str]]:
    """The tracking variables of a fresh store of ``kind`` (its services started, stopped after)."""
    if kind == "sqlite":
        yield {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'sqlite' / 'mlflow.db'}"}
        return
    if kind != "server":
        raise ValueError(f"BENCH_TRAINER_STORES: unknown store {kind!r} (server, sqlite)")
    with SeaweedFS(work / "seaweedfs") as s3, MLflowServer(work / "mlflow", s3.env()) as server:
        yield server.env()


def compare(kind: str, work: Path) -> dict[str, list[Timed]]:
    """Each command once untimed, then ``ROUNDS`` rotating rounds against a fresh store of ``kind``."""
    codeset = work / "wine"
    shutil.copytree(WINE, codeset, ignore=shutil.ignore_patterns("mlruns", ".fuseml"))
    (work / "sqlite").mkdir()
    results = work / "results"
    runs: dict[str, list[Timed]] = {OURS: [], MLFLOW_RUN: [], ALONE: []}
    with store(kind, work) as variables:
        base = {
            **os.environ,
            **TELEMETRY_OFF,
            **variables,
            # `mlflow run` and the entry point say `python`: this venv's, as our trainer puts first on PATH.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        }
        base.pop("MLFLOW_RUN_ID", None)
        timed = commands(codeset, results)
        for argv, extra in timed.values():
            run_timed(argv, codeset, {**base, **extra})
        order = list(timed)
        for round_ in range(ROUNDS):
            for name in order[round_ % 3 :] + order[: round_ % 3]:
                argv, extra = timed[name]
                runs[name].append(run_timed(argv, codeset, {**base, **extra}))
                print(
                    f"  {kind} round {round_ + 1} {name:18s} {runs[name][-1].wall:6.1f} s wall "
                    f"{runs[name][-1].cpu:6.1f} s CPU",
                    flush=True,
                )
        if not (results / "model").read_text():
            raise RuntimeError("our trainer wrote an empty result")
    return runs


def print_table(figures: dict[str, dict[str, list[Timed]]]) -> None:
    """One line per store: medians of ours, mlflow run's, the entry point's; the ratio and each one's overhead."""
    print(
        f"{'store':7s} {'wall: ours':>10s} {'mlflow run':>10s} {'ratio':>6s} {'entry point':>11s} "
        f"{'overhead: ours':>14s} {'mlflow run':>10s}   {'CPU: ours':>9s} {'mlflow run':>10s} {'ratio':>6s} "
        f"{'entry point':>11s}   target: ours <= mlflow run"
    )
    for kind, runs in figures.items():
        wall = {name: statistics.median(t.wall for t in timed) for name, timed in runs.items()}
        cpu = {name: statistics.median(t.cpu for t in timed) for name, timed in runs.items()}
        ratio = wall[OURS] / wall[MLFLOW_RUN]
        print(
            f"{kind:7s} {wall[OURS]:9.1f}s {wall[MLFLOW_RUN]:9.1f}s {ratio:5.2f}x {wall[ALONE]:10.1f}s "
            f"{wall[OURS] - wall[ALONE]:13.1f}s {wall[MLFLOW_RUN] - wall[ALONE]:9.1f}s   "
            f"{cpu[OURS]:8.1f}s {cpu[MLFLOW_RUN]:9.1f}s {cpu[OURS] / cpu[MLFLOW_RUN]:5.2f}x {cpu[ALONE]:10.1f}s   "
            f"{'met' if ratio <= 1 else 'NOT met'}"
        )


def main() -> None:
    figures: dict[str, dict[str, list[Timed]]] = {}
    for kind in STORES:
        with tempfile.TemporaryDirectory(prefix=f"bench-trainer-{kind}-") as work:
            print(f"{kind}: wine codeset, {ROUNDS} rounds, order rotating", flush=True)
            figures[kind] = compare(kind, Path(work))
    cores = len(os.sched_getaffinity(0))
    print(f"medians of {ROUNDS} rounds on {cores} cores, load average {os.getloadavg()[0]:.1f} at the end:")
    print_table(figures)


if __name__ == "__main__":
    main()
