"""The builder's inputs, read once at the start and passed down as one value.

FuseML's builder inputs keep their names and defaults (see docs/contract.md); a few
of them only meant something to FuseML's conda/kaniko builder and are accepted
and logged as ignored, so existing workflows run unchanged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.build_payload import SERVING, TRAINER
from common.errors import InputError
from common.inputs import Inputs
from common.installer import INSTALLERS
from steps.builder.registry.reference import check_registry, check_repository

log = logging.getLogger(__name__)

DEFAULT_REGISTRY = "registry.fuseml-registry"
DEFAULT_PULL_REGISTRY = "127.0.0.1:30500"
DEFAULT_REPOSITORY = "mlflow/trainer"
# With input model, the builder builds that model's serving environment instead of the codeset's.
DEFAULT_SERVING_REPOSITORY = "mlflow/serving"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
BACKEND_NAMES = ("auto", "docker", "buildah", "venv")
PIP_CERT = "PIP_CERT"

# FuseML inputs that have no effect here, and why.
IGNORED_INPUTS = {
    "miniconda_version": "environments are installed with pip into a virtualenv, not with conda",
    "intel_optimized": "no Intel conda channel is used; list intel-optimized PyPI packages in the requirements instead",
    "compressed_caching": "layer caching is the container engine's own",
}


@dataclass(frozen=True)
class BuilderSettings:
    """Everything the builder was asked to do."""

    registry: str = DEFAULT_REGISTRY
    pull_registry: str = DEFAULT_PULL_REGISTRY
    repository: str = DEFAULT_REPOSITORY
    base_image: str = DEFAULT_BASE_IMAGE
    base_image_given: bool = False
    backend: str = "auto"
    cache_dir: Path = Path("~/.cache/fuseml/venvs")
    pip_ca: Path | None = None
    registry_ca: Path | None = None
    insecure_registries: tuple[str, ...] = ()
    no_cache: bool = False
    installer: str = "auto"
    model: str | None = None  # a model URI: build its serving environment, not the codeset's

    @property
    def kind(self) -> str:
        """What is built: the codeset's ``trainer`` environment, or a model's ``serving`` environment."""
        return SERVING if self.model else TRAINER

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BuilderSettings:
        inputs = Inputs(environ)
        for name, why in IGNORED_INPUTS.items():
            if inputs.is_set(name):
                log.info("input %s=%s is accepted and ignored: %s", name, inputs.raw(name), why)
        registry = inputs.str("registry", DEFAULT_REGISTRY).rstrip("/")
        pull_registry = inputs.str("pull_registry", DEFAULT_PULL_REGISTRY).rstrip("/")
        if _given_empty(inputs, environ, "pull_registry"):
            pull_registry = registry
        model = (inputs.raw("model") or "").strip() or None
        repository = inputs.str("repository", DEFAULT_SERVING_REPOSITORY if model else DEFAULT_REPOSITORY).strip("/")
        check_registry(registry, inputs.variable("registry"))
        check_registry(pull_registry, inputs.variable("pull_registry"))
        check_repository(repository, inputs.variable("repository"))
        return cls(
            registry=registry,
            pull_registry=pull_registry,
            repository=repository,
            base_image=inputs.str("base_image", DEFAULT_BASE_IMAGE),
            base_image_given=inputs.is_set("base_image"),
            backend=inputs.choice("backend", BACKEND_NAMES, "auto"),
            cache_dir=_cache_dir(inputs, environ),
            pip_ca=_existing_file(inputs, environ, "pip_ca", environ.get(PIP_CERT)),
            registry_ca=_existing_file(inputs, environ, "registry_ca", None),
            insecure_registries=tuple(inputs.list("insecure_registries", [])),
            no_cache=inputs.bool("no_cache", False),
            installer=inputs.choice("installer", INSTALLERS, "auto"),
            model=model,
        )

    def push_reference(self, tag: str) -> str:
        return f"{self.registry}/{self.repository}:{tag}"

    def pull_reference(self, tag: str) -> str:
        """What the step returns: where the cluster's nodes pull the image from."""
        return f"{self.pull_registry}/{self.repository}:{tag}"


def _given_empty(inputs: Inputs, environ: Mapping[str, str], name: str) -> bool:
    """True when the input is present but empty: the contract's "empty = registry"."""
    return not inputs.is_set(name) and inputs.variable(name) in environ


def _cache_dir(inputs: Inputs, environ: Mapping[str, str]) -> Path:
    given = inputs.raw("cache_dir")
    if given:
        return Path(os.path.expanduser(given.strip()))
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "fuseml" / "venvs"


def _existing_file(inputs: Inputs, environ: Mapping[str, str], name: str, fallback: str | None) -> Path | None:
    value = inputs.raw(name) or fallback
    if not value:
        return None
    path = Path(value.strip())
    where = inputs.variable(name) if inputs.is_set(name) else PIP_CERT
    if not path.is_file():
        raise InputError(f"{where}={value} is not a file", f"give the path of a PEM CA bundle, or unset {where}")
    return path
