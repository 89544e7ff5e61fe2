"""The OCI registry the builder pushes to and looks images up in: references, the client, credentials.

``reference`` parses image references; ``client`` asks a registry whether a
manifest exists (and its digest); ``auth`` finds credentials where ``docker
login`` and Kubernetes put them.
"""

from steps.builder.registry.client import (
    MANIFEST_TYPES,
    RegistryClient,
    RegistryError,
    RegistryUnavailable,
    UntrustedRegistry,
)
from steps.builder.registry.reference import DOCKER_HUB, ImageRef, is_loopback

__all__ = [
    "DOCKER_HUB",
    "MANIFEST_TYPES",
    "ImageRef",
    "RegistryClient",
    "RegistryError",
    "RegistryUnavailable",
    "UntrustedRegistry",
    "is_loopback",
]
