"""Building an image with the docker SDK: the build log followed, and the platform images are built for.

The builder's docker backend (which then pushes) and the predictor's serving
environments (local images only) build alike; ``docker`` itself is imported
by their callers, lazily, so a cache hit never loads the SDK.
"""

from __future__ import annotations

import logging
import platform
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from common.build_log import BuildError, error_lines

log = logging.getLogger(__name__)

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def host_platform() -> str:
    """``linux/amd64``: the platform images built on this machine are for."""
    machine = platform.machine().lower()
    return f"linux/{_ARCH.get(machine, machine)}"


def follow_build(chunks: Iterable[Mapping[str, Any]]) -> str | None:
    """Log the build output as it comes; raise BuildError on an error chunk. Returns the image id."""
    tail: deque[str] = deque(maxlen=200)
    image_id = None
    partial = ""
    for chunk in chunks:
        if "stream" in chunk:
            text = partial + str(chunk["stream"])
            *lines, partial = text.split("\n")
            for line in lines:
                if line.strip():
                    tail.append(line)
                    log.info("build: %s", line.rstrip())
        elif "status" in chunk:
            log.info("build: %s %s", chunk.get("id", ""), chunk["status"])
        if "aux" in chunk and isinstance(chunk["aux"], dict):
            image_id = chunk["aux"].get("ID", image_id)
        if "error" in chunk or "errorDetail" in chunk:
            message = str(chunk.get("error") or chunk["errorDetail"].get("message", "")).strip()
            if partial.strip():
                tail.append(partial)
            raise BuildError(
                "image build failed: " + " | ".join([*error_lines(tail), message]),
                "see the build log above",
                build_log=tail,
            )
    return image_id
