"""Run every benchmark part, or those named: ``python -m bench [builder e2e serving trainer]``.

Each part is a module ``bench/<part>.py`` with ``main() -> None`` that prints
its figures and ratios. A part that fails is reported and the others still run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def parts() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    chosen = argv or parts()
    failed = []
    for name in chosen:
        print(f"=== bench: {name} ===", flush=True)
        started = time.monotonic()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception:  # noqa: BLE001 - report and go on with the other parts
            traceback.print_exc()
            failed.append(name)
        print(f"=== bench: {name} took {time.monotonic() - started:.1f}s ===", flush=True)
    if failed:
        print("bench parts failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
