"""Run every benchmark part, or those named: ``python -m bench [builder e2e serving trainer]``.

Each part is a module ``bench/<part>.py`` with ``main() -> None`` that prints
its figures and ratios. A part that fails is reported and the others still run.
The run starts and ends with the machine line (date, cores, memory, load):
absolute figures move with a shared machine's load, the ratios much less, so a
figure is only read beside the line it was taken under.
"""

from __future__ import annotations

import datetime
import importlib
import os
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def parts() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def machine() -> str:
    """Date, usable cores, memory and load average: what the figures of a run were taken on."""
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"machine: {now}, {len(os.sched_getaffinity(0))} cores, {pages * page_size / 2**30:.0f} GiB memory,"
        f" load average {load}"
    )


def main(argv: list[str]) -> int:
    chosen = argv or parts()
    failed = []
    print(machine(), flush=True)
    for name in chosen:
        print(f"=== bench: {name} ===", flush=True)
        started = time.monotonic()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception:  # noqa: BLE001 - report and go on with the other parts
            traceback.print_exc()
            failed.append(name)
        print(f"=== bench: {name} took {time.monotonic() - started:.1f}s ===", flush=True)
    print(machine(), flush=True)
    if failed:
        print("bench parts failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
