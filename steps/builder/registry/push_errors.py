"""What a failed push means for the user: the registry went away, or it refused the image.

Docker and buildah report a push failure as one error string from the Go
network stack or from the registry. A registry that stops or becomes
unreachable in the middle of a push ("connection refused", "EOF", "broken
pipe", ...) needs a different action (is it running? can the engine reach
it?) from one that answered and refused (permissions, credentials, a
read-only registry), so both backends word the error through here.
"""

from __future__ import annotations

import re

from steps.builder.registry.client import RegistryError, RegistryUnavailable
from steps.builder.registry.reference import ImageRef

# Go's net/http and net errors when the other side is gone or never answers.
_GONE = re.compile(
    r"connection refused|connection reset|broken pipe|\bEOF\b|i/o timeout|no such host|no route to host"
    r"|network is unreachable|TLS handshake timeout|context deadline exceeded|server closed idle connection",
    re.IGNORECASE,
)
# Who talks to the registry during the push: the network to check is theirs.
_PUSHERS = {"docker": "the Docker daemon", "buildah": "the builder (buildah)"}


def push_error(reference: str, message: str, engine: str) -> RegistryError | RegistryUnavailable:
    """The error for a push of ``reference`` that ``engine`` (docker, buildah) reported as ``message``."""
    message = " ".join(message.split())
    registry = ImageRef.parse(reference).registry
    if _GONE.search(message):
        return RegistryUnavailable(
            f"registry {registry} went away during the push of {reference}: {message}",
            f"check that the registry runs and {_PUSHERS.get(engine, engine)} can reach it, then run the builder again",
        )
    return RegistryError(
        f"push of {reference} was refused: {message}",
        "check the registry input, that the registry accepts pushes, and its credentials"
        + (" (docker login)" if engine == "docker" else ""),
    )
