"""Image references as docker spells them, and which registry hosts are loopback.

``python:3.11`` means ``docker.io/library/python:3.11``: the builder needs the
explicit form to ask the right registry for the right manifest. Loopback hosts
get Docker's treatment (plain http allowed), so they are recognised here once.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from common.errors import InputError

DOCKER_HUB = "docker.io"

# The OCI distribution grammar (distribution/reference), one expression per part.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
REGISTRY = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")


def check_repository(value: str, variable: str) -> str:
    """``value`` when it is a repository path a registry accepts; else an InputError naming ``variable``."""
    if not REPOSITORY.fullmatch(value) or len(value) > 255:
        raise InputError(
            f"{variable}={value!r} is not a valid repository",
            "use lower-case letters, digits and . _ - separated by single slashes, e.g. mlflow/trainer",
        )
    return value


def check_registry(value: str, variable: str) -> str:
    """``value`` when it is a registry host (``host``, ``host:port``, ``[::1]:5000``); else an InputError."""
    if not REGISTRY.fullmatch(value):
        raise InputError(
            f"{variable}={value!r} is not a valid registry",
            "give a host name or address with an optional port and nothing else, e.g. registry.example.com:5000",
        )
    return value


def check_tag(value: str, variable: str) -> str:
    """``value`` when it is a valid image tag; else an InputError naming ``variable``."""
    if not TAG.fullmatch(value):
        raise InputError(
            f"{variable}={value!r} is not a valid tag",
            "use at most 128 letters, digits, _ . - (not starting with . or -)",
        )
    return value


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository:tag@digest``, with Docker's defaults made explicit."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse an image reference as docker does (``python:3.11`` is ``docker.io/library/python:3.11``)."""
        ref = text.strip()
        if not ref or any(c.isspace() for c in ref):
            raise InputError(f"{text!r} is not an image reference")
        name, _, digest = ref.partition("@")
        first, slash, rest = name.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, rest
        else:
            registry, path = DOCKER_HUB, name
        tag = None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, tag = path.rsplit(":", 1)
        if registry == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        if not REPOSITORY.fullmatch(path):
            raise InputError(f"{text!r}: repository {path!r} is not valid (lower-case letters, digits, . _ - /)")
        if tag is not None and not TAG.fullmatch(tag):
            raise InputError(f"{text!r}: tag {tag!r} is not valid")
        if digest and not re.fullmatch(r"[a-z0-9]+:[a-f0-9]{32,}", digest):
            raise InputError(f"{text!r}: digest {digest!r} is not valid")
        return cls(registry, path, tag, digest or None)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag (default ``latest``)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_loopback(host: str) -> bool:
    """``127.0.0.1:5000``, ``localhost``, ``[::1]:5000`` -> True."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
