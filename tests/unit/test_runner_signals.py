"""Cancelling ``fuseml-steps run`` (Ctrl-C, SIGTERM) and killing it (SIGKILL), on a real runner process.

The fake step starts a child in a session of its own, as the trainer starts its
entry point, and would write its result after a minute. Cancelling must stop
that child too, leave no result, and record the run Cancelled at that step; a
runner killed outright must not leave its run ``Running`` forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from common.processes import start_time
from runner.cli import cli
from runner.runs import CANCELLED, RUNNER_DIED, RunStore
from tests.fixtures.terminal import default_sigint
from tests.unit.test_runner_engine import fake_step

ROOT = Path(__file__).resolve().parents[2]
# How long the runner may take to start its step before the test gives up on it.
START_TIMEOUT = 60


@pytest.fixture
def started_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    """A running ``fuseml-steps run`` whose step has started its child; (runner, state folder, pid folder)."""
    pids = tmp_path / "pids"
    pids.mkdir()
    image = fake_step(
        tmp_path / "images",
        "slow",
        f"""\
        echo $$ > {pids}/step.tmp && mv {pids}/step.tmp {pids}/step
        setsid sh -c 'echo $$ > {pids}/child.tmp && mv {pids}/child.tmp {pids}/child; sleep 60; \\
            printf late > "$FUSEML_RESULTS_DIR/$TASK_RESULT"' &
        echo started
        wait
        """,
    )
    workflow = tmp_path / "slow.yaml"
    workflow.write_text(
        "name: slow\ninputs:\n  - {name: src, type: codeset}\nsteps:\n  - name: slow\n"
        f"    image: {image}\n"
        '    inputs:\n      - {name: src, codeset: {name: "{{ inputs.src }}", path: /project}}\n'
        "    outputs: [{name: o}]\n"
    )
    codeset = tmp_path / "codeset"
    codeset.mkdir()
    state = tmp_path / "state"
    runner = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "runner", "run", str(workflow), "--codeset", str(codeset), "--state-dir", str(state)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # noqa: PLW1509 - one signal() call, no locks
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (pids / "child").exists() and runner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not (pids / "child").exists():
            runner.kill()
            pytest.fail(f"the step never started its child (runner exit {runner.poll()}): {runner.communicate()}")
        yield runner, state, pids
    finally:
        if runner.poll() is None:
            runner.kill()
        for name in ("child", "step"):  # whatever a test left behind; they may hold the runner's pipes
            pid = int((pids / name).read_text())
            if start_time(pid) is not None:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        runner.communicate()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cancelling_a_run_stops_every_process_of_its_step_and_records_it(started_run, sig) -> None:
    runner, state, pids = started_run
    runner.send_signal(sig)
    _, stderr = runner.communicate(timeout=START_TIMEOUT)
    assert runner.returncode == 130, stderr
    for name in ("step", "child"):
        assert start_time(int((pids / name).read_text())) is None, f"the step's {name} outlived the cancelled run"
    run = RunStore(state).get("last")
    assert run.status == CANCELLED
    assert run.error and "step 'slow'" in run.error, run.error
    assert [s.status for s in run.steps] == [CANCELLED]
    assert list((run.run_dir / "results" / "slow").iterdir()) == [], "no result after cancelling"


def test_a_run_whose_runner_was_killed_reads_failed_runner_died(started_run) -> None:
    runner, state, _ = started_run
    runner.kill()
    runner.wait()
    run = RunStore(state).get("last")
    assert run.status == RUNNER_DIED and [s.status for s in run.steps] == [RUNNER_DIED]
    listed = CliRunner().invoke(cli, ["runs", "--state-dir", str(state)])
    assert listed.exit_code == 0 and "Failed (runner died)" in listed.output, listed.output
    shown = CliRunner().invoke(cli, ["logs", "last", "--state-dir", str(state)])
    assert shown.exit_code == 0 and "=== slow (Failed (runner died)) ===" in shown.output, shown.output
