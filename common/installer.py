"""Which uv the builder hands to ``install.sh``: its own, so that no build downloads one.

uv comes with the builder (the ``uv`` wheel on PyPI, a dependency of the
builder extra, puts its binary beside the builder's Python); a ``uv`` on PATH
will do too. Without one, ``install.sh`` installs with pip and says why.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

INSTALLERS = ("auto", "uv", "pip")


def find_uv(environ: Mapping[str, str]) -> Path | None:
    """The uv binary of the builder's environment, else the one on PATH, else None."""
    try:
        import uv

        return Path(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv", path=environ.get("PATH"))
    return Path(found) if found else None


def uv_for(environ: Mapping[str, str], installer: str, same_platform: bool) -> Path | None:
    """The uv to give a build, or None (and why, logged) when the build is to use pip."""
    if installer == "pip":
        return None
    if not same_platform:
        log.info("the build is for another platform than the builder's uv: it installs with pip")
        return None
    uv = find_uv(environ)
    if uv is None:
        log.info("no uv in the builder's environment: the build installs with pip")
    return uv
