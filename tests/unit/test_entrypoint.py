"""The entrypoint's promises, checked on a real step process: exit code, what stderr says, what is left behind.

Tekton and the local runner see only a process: its exit code, its stderr and
the result file. So each test runs ``tests/fixtures/scripted_step.py`` with
``python -m``, as a step image runs ``python -m steps.<step>``, and looks at
exactly those.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from common.polling import wait_until
from tests.fixtures.services import read_result, run_step
from tests.fixtures.terminal import default_sigint

ROOT = Path(__file__).resolve().parents[2]
STEP = "tests.fixtures.scripted_step"
SECRET = "s3cret-Pa55word"
# How long a step may take to start (import, configure logging) before the interrupt test gives up on it.
START_TIMEOUT = 60


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The contract's environment with nothing else: no FUSEML_VERBOSE, a result wanted in a fresh folder."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TASK_RESULT": "answer",
        "FUSEML_RESULTS_DIR": str(tmp_path / "results"),
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }


def run(env: dict[str, str], outcome: str, value: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    return run_step(STEP, {**env, "FUSEML_OUTCOME": outcome, "FUSEML_VALUE": value, **extra}, cwd=ROOT)


def files_in_results(env: dict[str, str]) -> list[str]:
    """Everything in the results folder, temporary files included (a failed step must leave none)."""
    folder = Path(env["FUSEML_RESULTS_DIR"])
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_success_writes_the_exact_value_and_exits_0(env: dict[str, str]) -> None:
    done = run(env, "result", "127.0.0.1:5000/mlflow/trainer:3f9a0c1d")
    assert done.returncode == 0, done.stderr
    assert Path(env["FUSEML_RESULTS_DIR"], "answer").read_bytes() == b"127.0.0.1:5000/mlflow/trainer:3f9a0c1d"
    assert files_in_results(env) == ["answer"]
    assert "scripted: done in" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (f"http://me:{SECRET}@mlflow.example", "http://me:****@mlflow.example"),
        (SECRET, "****"),
        ("http://someone:another-password@host", "http://someone:****@host"),
    ],
    ids=["secret-in-url", "secret-variable", "any-password-in-url"],
)
def test_user_error_is_one_masked_line_exit_1_and_no_result(env: dict[str, str], value: str, shown: str) -> None:
    done = run(env, "user-error", value)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"scripted: error: cannot use {shown}; set FUSEML_VALUE to something usable"]
    assert done.stdout == ""
    assert read_result(env) is None and files_in_results(env) == []


def test_a_malformed_verbose_input_is_a_user_error(env: dict[str, str]) -> None:
    done = run(env, "result", "never written", FUSEML_VERBOSE="maybe")
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == ['scripted: error: FUSEML_VERBOSE="maybe" is not valid: expected true or false']
    assert read_result(env) is None


def test_an_unusable_results_folder_fails_before_the_work_starts(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env["FUSEML_RESULTS_DIR"] = str(blocker / "results")
    done = run(env, "bug", "unknown")  # exit 1, not the bug's 2: the step function never ran
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"scripted: error: results folder {blocker / 'results'} cannot be created (Not a directory); "
        "set FUSEML_RESULTS_DIR to a writable folder"
    ]


@pytest.mark.parametrize("verbose", ["false", "true"])
def test_a_bug_exits_2_saying_so_with_a_masked_traceback_and_no_result(env: dict[str, str], verbose: str) -> None:
    # Today the traceback is shown in quiet mode too: it is what a bug report needs.
    done = run(env, "bug", f"http://me:{SECRET}@mlflow.example", FUSEML_VERBOSE=verbose)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].endswith("scripted: internal error (a bug; please report it with this log)"), lines[0]
    assert lines[1] == "Traceback (most recent call last):"
    assert any("tests/fixtures/scripted_step.py" in line for line in lines), "the traceback names where it broke"
    assert lines[-1] == "KeyError: 'http://me:****@mlflow.example'"
    assert SECRET not in done.stderr
    assert read_result(env) is None and files_in_results(env) == []


@contextmanager
def started_step(step_env: dict[str, str], marker: Path) -> Iterator[subprocess.Popen[str]]:
    """The scripted step, once it has written ``marker`` (it is at work); killed on the way out if still running."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", STEP],
        env=step_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # noqa: PLW1509 - one signal() call, no locks
    )
    try:
        if not wait_until(lambda: marker.exists() or process.poll() is not None, timeout=START_TIMEOUT, interval=0.05):
            pytest.fail(f"the step did not reach its work within {START_TIMEOUT}s")
        if not marker.exists():
            pytest.fail(f"the step ended before its work (exit {process.poll()}): {process.communicate()[1]}")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_ctrl_c_exits_130_saying_interrupted_and_no_result(env: dict[str, str], tmp_path: Path) -> None:
    started = tmp_path / "started"
    with started_step({**env, "FUSEML_OUTCOME": "wait", "FUSEML_VALUE": str(started)}, started) as process:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=START_TIMEOUT)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1].endswith("scripted: interrupted"), stderr
    assert "Traceback" not in stderr
    assert read_result(env) is None and files_in_results(env) == []


@pytest.mark.parametrize("verbose", ["false", "true"])
def test_nothing_written_anywhere_shows_a_url_password(env: dict[str, str], verbose: str) -> None:
    """MLflow prints its run URL with sys.stdout.write: no logging filter sees it, only the masked descriptors do."""
    url = f"http://user:{SECRET}@mlflow.example:5000/#/experiments/1"
    done = run(env, "leak", url, FUSEML_VERBOSE=verbose)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    for shown in ("View run at:", "cannot reach", "child: ", "child err: ", "no newline"):
        assert shown in output, f"{shown!r} missing from {output!r}"
    assert SECRET not in output, output
    assert "http://user:****@mlflow.example:5000" in done.stdout


def test_telemetry_is_off_for_the_step_and_its_children_unless_asked_for(env: dict[str, str]) -> None:
    assert run(env, "telemetry").returncode == 0
    assert read_result(env) == "true,true true,true"
    assert run(env, "telemetry", MLFLOW_DISABLE_TELEMETRY="false").returncode == 0
    assert read_result(env) == "false,true false,true"


def test_sigterm_stops_the_step_and_the_children_in_their_own_session_exit_143(
    env: dict[str, str], tmp_path: Path
) -> None:
    started = tmp_path / "child-pid"
    with started_step({**env, "FUSEML_OUTCOME": "spawn", "FUSEML_VALUE": str(started)}, started) as process:
        time.sleep(0.1)  # the file may exist a moment before its content is written
        child = int(started.read_text())
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=START_TIMEOUT)
    assert process.returncode == 143, stderr
    assert stderr.splitlines()[-1].endswith("scripted: terminated"), stderr
    assert "Traceback" not in stderr
    assert not Path(f"/proc/{child}").exists(), "the child in its own session outlived the step"
    assert read_result(env) is None and files_in_results(env) == []


def test_a_result_name_too_long_for_a_file_fails_before_the_work(env: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "worked"
    done = run({**env, "TASK_RESULT": "r" * 300}, "wait", str(marker))
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "scripted: error: TASK_RESULT is 300 bytes long, too long for a file name; "
        "use a result name of at most 200 bytes"
    ]
    assert not marker.exists(), "the name is checked before the work starts"
    assert files_in_results(env) == []
