"""What every fault test asserts about a failed step, in one place.

A step that meets a fault must end with one line ``<step>: error: <what>; <what to do>``
as the last line of stderr (and no other error line, no traceback), leave no
result, write no secret anywhere, and leave nothing running.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path


def the_error_line(stderr: str, prefix: str, relays_user_code: bool = False) -> str:
    """The one error line a failed step printed; AssertionError (showing stderr) when there is not exactly one.

    No traceback either, unless the step relays the output of the user's code (the trainer's
    entry point), whose traceback the user needs: then none of the step's own.
    """
    lines = stderr.rstrip("\n").splitlines()
    assert lines, "the step printed nothing on stderr"
    errors = [line for line in lines if line.startswith(prefix)]
    assert len(errors) == 1 and lines[-1] == errors[0], f"not one {prefix!r} line at the end:\n{stderr}"
    assert "internal error (a bug" not in stderr, stderr
    assert relays_user_code or "Traceback" not in stderr, stderr
    return errors[0]


def assert_no_secret(secret: str, outputs: Iterable[str], folders: Iterable[Path] = ()) -> None:
    """``secret`` appears in none of ``outputs`` and in no file under ``folders``."""
    for output in outputs:
        assert secret not in output, "a secret was printed"
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert secret.encode() not in path.read_bytes(), f"a secret was written to {path}"


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that mention ``text`` (a unique folder or name of the test)."""
    found = subprocess.run(["pgrep", "-af", text], capture_output=True, text=True, check=False)
    return found.stdout.splitlines()


def processes_in(folder: Path) -> list[str]:
    """Command lines of running processes whose working directory is ``folder`` (a step's codeset)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == folder.resolve():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # gone meanwhile, or not ours to look at
    return found
