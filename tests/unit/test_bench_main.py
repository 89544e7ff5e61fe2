"""``make bench`` frames its figures with the machine they were taken on, and a failing part does not stop the rest."""

from __future__ import annotations

import os
import sys
from types import ModuleType

import pytest

from bench import __main__ as bench_main


def test_the_run_starts_and_ends_with_the_machine_line_and_a_failed_part_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise RuntimeError("no server")

    ran: list[str] = []
    for name, main in (("fake_broken", broken), ("fake_fine", lambda: ran.append("fine"))):
        module = ModuleType(f"bench.{name}")
        module.main = main  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"bench.{name}", module)
    assert bench_main.main(["fake_broken", "fake_fine"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    cores = f"{len(os.sched_getaffinity(0))} cores"
    for line in (lines[0], lines[-1]):
        assert line.startswith("machine: ") and cores in line and "GiB memory" in line and "load average" in line
    assert ran == ["fine"]
    assert "RuntimeError: no server" in err and "bench parts failed: fake_broken" in err
