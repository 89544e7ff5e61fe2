"""Check that this Python meets the codeset's constraint; runs inside image builds.

Standalone (standard library, plus pip's vendored ``packaging`` for ranges)
because it runs in the base image before anything is installed.
Usage: ``python check_python.py <file>``, the file holding the constraint
(``3.11``, ``>=3.9``, or empty) on its first line and its source on the second.
"""

from __future__ import annotations

import platform
import re
import sys


def satisfied(constraint: str, version: str) -> bool:
    if not constraint:
        return True
    if re.fullmatch(r"\d+\.\d+", constraint):
        return version.split(".")[:2] == constraint.split(".")
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        from pip._vendor.packaging.specifiers import SpecifierSet
    return SpecifierSet(constraint).contains(version, prereleases=True)


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        lines = f.read().splitlines() + ["", ""]
    constraint, source = lines[0].strip(), lines[1].strip() or "the environment file"
    version = platform.python_version()
    if satisfied(constraint, version):
        print(f"fuseml: Python {version} meets {constraint or 'any version'} ({source})")
        return 0
    print(
        f"fuseml-check: the base image has Python {version}, but {source} asks for python {constraint}: "
        "use a base image with that Python (input base_image) or change the python version in "
        f"{source}",
        file=sys.stderr,
    )
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
