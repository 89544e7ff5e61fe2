"""What the image backends (docker, buildah) share: the registry is the cache.

An image is "already built" when the push registry has the tag; the step then
returns the pull reference without building anything.
"""

from __future__ import annotations

import logging

from steps.builder.backends.base import Backend, BuildPlan
from steps.builder.registry import RegistryClient

log = logging.getLogger(__name__)


class ImageBackend(Backend):
    """A backend whose result is an image in a registry."""

    def registry_client(self, host: str, timeout: float = 10.0) -> RegistryClient:
        return RegistryClient(
            host,
            self.environ,
            ca_file=str(self.settings.registry_ca) if self.settings.registry_ca else None,
            insecure_registries=self.settings.insecure_registries,
            timeout=timeout,
        )

    def find(self, plan: BuildPlan) -> str | None:
        client = self.registry_client(self.settings.registry)
        digest = client.manifest_digest(self.settings.repository, plan.tag)
        if digest is None:
            log.info("%s is not in the registry: building it", plan.push_reference)
            return None
        log.info("%s already exists (%s): nothing to build", plan.push_reference, digest)
        return plan.pull_reference

    def build_args(self, plan: BuildPlan) -> dict[str, str]:
        return {
            "BASE_IMAGE": self.settings.base_image,
            "SOURCE": plan.labels.get("org.opencontainers.image.source", ""),
            "REVISION": plan.labels.get("org.opencontainers.image.revision", ""),
            "CREATED": plan.labels.get("org.opencontainers.image.created", ""),
            "ENVIRONMENT": plan.tag,
        }
