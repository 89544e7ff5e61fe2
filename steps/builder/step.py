"""The builder step: read the codeset's environment, tag it, and build it unless it exists.

With input ``model`` it builds that model's serving environment instead (a
``serving-builder`` step between trainer and predictor): the spec comes from
the files MLflow wrote beside the model's MLmodel plus the serving runtime's
needs (``common.serving_env``), the codeset is not read, and the result is the
image (or ``venv://``) the predictor's ``serving_image`` takes.

Order matters for speed: the cheap questions (spec, tag, "is it there?") come
first and import nothing heavy; only a miss loads the build tools.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from common.build_log import BuildError
from common.build_payload import builder_version
from common.envspec import load_envspec
from common.envspec.tag import environment_tag
from common.errors import StepError
from steps.builder.backends import choose_backend
from steps.builder.backends.base import Backend, BuildPlan
from steps.builder.backends.image import ImageBackend
from steps.builder.model_files import serving_environment
from steps.builder.registry import ImageRef
from steps.builder.settings import BuilderSettings

log = logging.getLogger(__name__)

BASE_DIGEST_TIMEOUT = 5.0


def build(environ: Mapping[str, str]) -> str:
    """Step function: the reference of the environment (image or venv) for this codeset, or for input model."""
    settings = BuilderSettings.from_environ(environ)
    codeset = Path.cwd()
    serving = serving_environment(settings.model, environ) if settings.model else None
    spec = serving.spec if serving else load_envspec(codeset)
    log.info(
        "environment from %s: python %s, %d requirements",
        spec.source,
        spec.python or "any",
        len(spec.requirements),
    )
    backend = choose_backend(environ, settings)
    identity = backend.identity()
    base = identity.digest or base_digest(backend, settings) or settings.base_image
    version = builder_version(settings.kind)
    tag = environment_tag(spec, base, version, identity.platform)
    log.info("%s tag %s (base %s, builder %s, %s)", settings.kind, tag, base, version, identity.platform)
    plan = BuildPlan(spec=spec, tag=tag, settings=settings, codeset=codeset, kind=settings.kind)
    found = backend.find(plan)
    if found:
        return found
    try:
        return backend.build(replace(plan, labels=oci_labels(codeset)))
    except BuildError as e:
        explained = serving.explain(e) if serving else e
        if explained is e:
            raise
        raise explained from e


def base_digest(backend: Backend, settings: BuilderSettings) -> str | None:
    """The base image's digest from its registry, when the backend does not know it locally."""
    if not isinstance(backend, ImageBackend):
        return None
    ref = ImageRef.parse(settings.base_image)
    if ref.digest:
        return ref.digest
    try:
        digest = backend.registry_client(ref.registry, timeout=BASE_DIGEST_TIMEOUT).manifest_digest(
            ref.repository, ref.reference
        )
    except StepError as e:
        log.info("digest of base image %s unknown (%s): the tag uses its name", settings.base_image, e)
        return None
    if digest is None:
        log.info("base image %s not found in its registry: the tag uses its name", settings.base_image)
    return digest


def oci_labels(codeset: Path) -> dict[str, str]:
    """OCI labels: the codeset's git remote and commit (when it is a git checkout), build time."""
    labels = {"org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    git = shutil.which("git")
    if git and (codeset / ".git").exists():
        for label, argv in (
            ("org.opencontainers.image.source", ["config", "--get", "remote.origin.url"]),
            ("org.opencontainers.image.revision", ["rev-parse", "HEAD"]),
        ):
            done = subprocess.run([git, "-C", str(codeset), *argv], capture_output=True, text=True, check=False)
            if done.returncode == 0 and done.stdout.strip():
                labels[label] = done.stdout.strip()
    return labels
