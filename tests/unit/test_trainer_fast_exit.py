"""The trainer leaves without Python's teardown, yet with its exit code, its output and every exit handler."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A main as common.entrypoint's: writes without a newline (still buffered at exit), registers an exit
# handler once inside (as MLflow does when the step imports it), logs, and ends in sys.exit(code).
SCRIPT = textwrap.dedent(
    """
    import atexit, logging, sys
    from steps.trainer.fast_exit import teardown_skipped

    class Teardown:
        def __del__(self):
            sys.__stderr__.write("teardown ran\\n")

    freed_at_teardown = Teardown()
    handler = logging.FileHandler(sys.argv[2], delay=False)
    logging.getLogger().addHandler(handler)

    def main():
        atexit.register(lambda: print("handler ran", file=sys.stderr, flush=True))
        logging.getLogger().warning("logged")
        sys.stdout.write("result, no newline")
        sys.exit(eval(sys.argv[1]))

    with teardown_skipped():
        main()
    """
)


def run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "step.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), code, str(tmp_path / "log")],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_exit_code_output_logs_and_handlers_survive_and_teardown_is_skipped(tmp_path: Path) -> None:
    done = run("3", tmp_path)
    assert done.returncode == 3
    assert done.stdout == "result, no newline"
    assert "handler ran" in done.stderr
    assert (tmp_path / "log").read_text() == "logged\n"
    assert "teardown ran" not in done.stderr


def test_success_is_zero(tmp_path: Path) -> None:
    done = run("0", tmp_path)
    assert done.returncode == 0
    assert done.stdout == "result, no newline"
    assert "handler ran" in done.stderr


def test_a_message_instead_of_a_code_keeps_pythons_own_exit(tmp_path: Path) -> None:
    done = run("'usage: no'", tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == "usage: no"
    assert "handler ran" in done.stderr
    assert "teardown ran" in done.stderr
