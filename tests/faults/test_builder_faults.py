"""The builder when the machine fails it: the disk of the cache folder fills up during a venv build.

A real 1 MB tmpfs stands for the full disk (the tests run as root, as CI does):
the build must end with one line that names the folder and the way out, exit 1,
no result, no half-built environment and no process left behind.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.codesets import WINE
from tests.fixtures.services import read_result, run_step

pytestmark = pytest.mark.faults

SECRET = "fault-secret-" + "5" * 12


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 1 MB tmpfs: nothing the size of a virtualenv fits."""
    folder = tmp_path / "full"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_cache_disk_is_one_line_naming_the_folder(full_disk: Path, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "FUSEML_BACKEND": "venv",
        "FUSEML_CACHE_DIR": str(full_disk),
        "TASK_RESULT": "image",
        "FUSEML_RESULTS_DIR": str(tmp_path / "results"),
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    done = run_step("steps.builder", env, cwd=WINE)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        # The virtualenv is made without pip (a few KB), so the install is where the disk fills up.
        f"builder: error: install failed (exit 1): the disk of the cache folder {full_disk} is full "
        "(0 MB free); free space there, or set FUSEML_CACHE_DIR to a folder on a disk with a few GB free"
    ), done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stdout + done.stderr
    assert read_result(env) is None
    assert [p.name for p in full_disk.iterdir() if not p.name.endswith(".lock")] == [], "a half-built venv remains"
    leftovers = subprocess.run(["pgrep", "-f", str(full_disk)], capture_output=True, text=True, check=False)
    assert leftovers.stdout == "", f"processes still use the full folder: {leftovers.stdout}"
