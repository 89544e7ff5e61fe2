"""Docker Engine backend: build with the docker SDK, stream the log, push with progress.

The SDK drives the classic builder, which has no ``RUN --mount`` secrets: the
PyPI CA bundle therefore travels in the build context to the template's
throwaway ``environment`` stage, where pip uses it; the final stage copies only
the finished virtualenv, so the CA never lands in the pushed image. The
builder's own uv binary travels the same way (no download in the build) when
the image is for the builder's platform; the image is installed with it, or
with pip where it cannot be (see ``install.sh``), and uv stays behind too.

The daemon decides which registries may be plain http (loopback ones always
are); other insecure registries must be in the daemon's ``insecure-registries``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from common.build_payload import write_context
from common.docker_build import follow_build
from common.installer import uv_for
from steps.builder.backends.base import BaseIdentity, BuildError, BuildPlan, host_platform
from steps.builder.backends.docker_probe import DockerProbe
from steps.builder.backends.image import ImageBackend
from steps.builder.registry import ImageRef
from steps.builder.registry.auth import credentials_for, load_config
from steps.builder.registry.push_errors import push_error
from steps.builder.settings import BuilderSettings

log = logging.getLogger(__name__)

BUILD_TIMEOUT = 3600


class DockerBackend(ImageBackend):
    name = "docker"

    def __init__(self, environ: Mapping[str, str], settings: BuilderSettings) -> None:
        super().__init__(environ, settings)
        self.probe = DockerProbe(self.environ)

    def identity(self) -> BaseIdentity:
        image = self.probe.image(self.settings.base_image)
        digest = python = None
        if image:
            digests = [d.split("@", 1)[1] for d in image.get("RepoDigests") or [] if "@" in d]
            digest = digests[0] if digests else image.get("Id")
            env = dict(e.split("=", 1) for e in (image.get("Config") or {}).get("Env") or [] if "=" in e)
            python = env.get("PYTHON_VERSION")
        return BaseIdentity(platform=self.probe.platform() or host_platform(), digest=digest, python_version=python)

    def build(self, plan: BuildPlan) -> str:
        import docker

        client = docker.from_env(environment=self.environ, timeout=BUILD_TIMEOUT)
        try:
            with tempfile.TemporaryDirectory(prefix="fuseml-build-") as folder:
                uv = uv_for(self.environ, self.settings.installer, self.identity().platform == host_platform())
                context = write_context(
                    Path(folder), plan.spec, self.settings.pip_ca, self.settings.installer, uv, plan.kind
                )
                log.info("=== Building %s from %s (docker) ===", plan.push_reference, self.settings.base_image)
                started = time.monotonic()
                chunks = client.api.build(
                    path=str(context),
                    tag=plan.push_reference,
                    buildargs=self.build_args(plan),
                    rm=True,
                    forcerm=True,
                    nocache=self.settings.no_cache,
                    decode=True,
                )
                image_id = follow_build(chunks)
                log.info("built %s (%s) in %.0fs", plan.push_reference, image_id, time.monotonic() - started)
            self.push(client, plan.push_reference)
        except docker.errors.APIError as e:
            raise BuildError(f"docker refused the build of {plan.push_reference}: {e.explanation or e}") from e
        except docker.errors.DockerException as e:
            raise BuildError(f"docker is not usable: {e}", "check DOCKER_HOST, or use input backend=venv") from e
        finally:
            client.close()
        return plan.pull_reference

    def push(self, client: Any, reference: str) -> None:
        ref = ImageRef.parse(reference)
        repository = f"{ref.registry}/{ref.repository}"
        credentials = credentials_for(ref.registry, load_config(self.environ))
        auth = None
        if credentials and credentials.password is not None:
            auth = {"username": credentials.username or "", "password": credentials.password}
        log.info("=== Pushing %s ===", reference)
        started = time.monotonic()
        chunks = client.api.push(repository, tag=ref.tag, stream=True, decode=True, auth_config=auth)
        digest = follow_push(chunks, reference)
        log.info("pushed %s (%s) in %.0fs", reference, digest or "digest unknown", time.monotonic() - started)


def follow_push(chunks: Iterable[Mapping[str, Any]], reference: str) -> str | None:
    """Log each layer's progress (status changes and every quarter); raise on an error chunk."""
    last: dict[str, tuple[str, int]] = {}
    digest = None
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            message = str(chunk.get("error") or chunk["errorDetail"].get("message", "")).strip()
            raise push_error(reference, message, "docker")
        if isinstance(chunk.get("aux"), dict):
            digest = chunk["aux"].get("Digest", digest)
        status, layer = str(chunk.get("status", "")), str(chunk.get("id", ""))
        if not status:
            continue
        detail = chunk.get("progressDetail") or {}
        quarter = min(4, int(4 * detail["current"] / detail["total"])) if detail.get("total") else -1
        if last.get(layer) == (status, quarter):
            continue
        last[layer] = (status, quarter)
        if quarter >= 0:
            log.info("push: %s %s %d%% of %.1f MB", layer, status, 25 * quarter, detail["total"] / 1e6)
        else:
            log.info("push: %s %s", layer, status)
    return digest
