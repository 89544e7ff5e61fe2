"""A model's serving environment: the model's own requirements plus our runtime's, built once per content.

MLflow writes a model's exact requirements beside its ``MLmodel``
(``python_env.yaml``, whose ``dependencies`` are ``-r requirements.txt``;
``requirements.txt``; ``conda.yaml``). They are read with the builder's own
readers, the model's ``mlflow`` becomes ``mlflow-skinny`` of the same version
(serving needs MLflow's model loading, not its server or UI), and the runtime's
requirements (``serving/requirements.txt``) are added: a package the model
names keeps the model's line (the runtime's line goes to the constraints, so
both hold), and the runtime's ``mlflow-skinny`` yields to the model's MLflow
version. A direct clash between the two is refused before anything is built;
a deeper one (through a dependency) is the installer's, reframed the same way
(``serving_env_conflicts``).

The environment is then built like the builder builds a codeset's, with the
same tag rules (the spec, the base, ``builder_version("serving")``, the
platform): a virtualenv under ``<cache_dir>/<tag>`` for the local target, a
local image ``fuseml/serving-env:<tag>`` for the docker target. Its ``run``
(and ``python -m serving``) is our serving runtime. A second model with the
same requirements finds it: the hit costs the hash and one lookup.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from common.build_log import BuildError
from common.build_payload import SERVING, builder_version, source_file, write_context
from common.docker_build import follow_build, host_platform
from common.envspec import EnvSpec, python_satisfies
from common.envspec.conda import load_conda
from common.envspec.python_env import load_python_env
from common.envspec.requirements import read_requirements, requirement_name
from common.envspec.requirements_txt import load_requirements_txt
from common.envspec.tag import environment_tag
from common.errors import InputError, ServiceUnavailable
from common.installer import uv_for
from common.serving_env_conflicts import direct_conflicts, reframe_build_error
from common.venv_build import VenvJob, build_venv, interpreter_identity, is_built

log = logging.getLogger(__name__)

RUNTIME_REQUIREMENTS = "serving/requirements.txt"
SERVING_REPOSITORY = "fuseml/serving-env"
# What MLflow writes beside MLmodel, in the order they are read (python_env.yaml names requirements.txt).
MODEL_ENVIRONMENT_FILES = ("python_env.yaml", "requirements.txt", "conda.yaml")
MLFLOW, MLFLOW_SKINNY = "mlflow", "mlflow-skinny"
BUILD_TIMEOUT = 3600
FIX_MODEL = "the model's requirements are the ones MLflow recorded when it was logged: fix them and log it again"


def serving_spec(model_dir: Path) -> EnvSpec:
    """The environment that serves the model in ``model_dir`` (a folder holding MLmodel and its environment files).

    Raises ``InputError`` naming both sides when a model pin and a runtime requirement cannot both hold.
    """
    model = skinny(model_spec(model_dir))
    runtime = runtime_requirements()
    clash = direct_conflicts(model, runtime, requirements_origin(model_dir))
    if clash:
        raise InputError(clash, FIX_MODEL)
    return with_runtime(model, runtime)


def model_spec(model_dir: Path) -> EnvSpec:
    """The model's own environment, from the first of MLflow's files present (none: an empty spec, logged)."""
    path = next((model_dir / n for n in MODEL_ENVIRONMENT_FILES if (model_dir / n).is_file()), None)
    if path is None:
        log.warning(
            "no %s beside the model's MLmodel: only the runtime's requirements", "/".join(MODEL_ENVIRONMENT_FILES)
        )
        return EnvSpec(source="the model's MLmodel")
    reader = {"python_env.yaml": load_python_env, "requirements.txt": load_requirements_txt}.get(path.name, load_conda)
    spec = reader(path, model_dir)
    log.info("model environment: %s (%d requirements)", path.name, len(spec.requirements))
    return replace(spec, source=f"the model's {path.name}")


def skinny(spec: EnvSpec) -> EnvSpec:
    """``mlflow`` lines become ``mlflow-skinny`` with the same version: MLflow's model loading without its server."""
    renamed = tuple(sorted(_skinny_line(line) for line in spec.requirements))
    constraints = tuple(sorted(_skinny_line(line) for line in spec.constraints))
    if renamed != spec.requirements:
        before = next(line for line in spec.requirements if requirement_name(line) == MLFLOW)
        log.info("%s asks for %s: served with %s (the runtime needs no MLflow server or UI)",
                 spec.source, before, _skinny_line(before))  # fmt: skip
    return replace(spec, requirements=renamed, constraints=constraints)


def runtime_requirements() -> tuple[str, ...]:
    """The serving runtime's own requirements (``serving/requirements.txt``), normalised."""
    path = source_file(RUNTIME_REQUIREMENTS)
    requirements, _, _ = read_requirements(path, path.parent)
    return requirements


def with_runtime(model: EnvSpec, runtime: tuple[str, ...]) -> EnvSpec:
    """The model's spec plus the runtime's lines: new packages as requirements, the model's packages as
    constraints (the model's line wins, the runtime's still holds), and no second MLflow."""
    named = {requirement_name(line) for line in model.requirements}
    added = [line for line in runtime if requirement_name(line) not in named]
    constrained = [
        line for line in runtime if requirement_name(line) in named and requirement_name(line) != MLFLOW_SKINNY
    ]
    yielded = [line for line in runtime if requirement_name(line) == MLFLOW_SKINNY and MLFLOW_SKINNY in named]
    if yielded:
        log.info("the runtime's %s yields to the model's MLflow version", yielded[0])
    return replace(
        model,
        requirements=tuple(sorted({*model.requirements, *added})),
        constraints=tuple(sorted({*model.constraints, *constrained})),
    )


def serving_tag(spec: EnvSpec, base: str, platform: str) -> str:
    """The environment's tag: the builder's rules, with the serving kind's payload as the builder's version."""
    return environment_tag(spec, base, builder_version(SERVING), platform)


def ensure_serving_venv(
    model_dir: Path,
    environ: Mapping[str, str],
    *,
    cache_dir: Path,
    pip_ca: Path | None = None,
    installer: str = "auto",
    python: str | None = None,
) -> Path:
    """The virtualenv (``<cache_dir>/<tag>``) whose ``bin/python -m serving`` serves the model; built if missing.

    ``python`` is the interpreter the venv is made from (default: this one); ``pip_ca`` defaults to
    ``$PIP_CERT`` when that names a file.
    """
    spec = serving_spec(model_dir)
    interpreter = python or sys.executable
    platform, base, version = interpreter_identity(interpreter)
    tag = serving_tag(spec, base, platform)
    folder = cache_dir / tag
    if is_built(folder):
        log.info("serving environment %s found (cache hit): %s", tag, folder)
        return folder
    if not python_satisfies(spec.python, version):
        raise InputError(
            f"{spec.source} asks for python {spec.python} (the Python the model was saved with), "
            f"but {interpreter} is Python {version}",
            f"serve it with a Python {spec.python} interpreter",
        )
    log.info("serving environment %s: building it in %s", tag, folder)
    started = time.monotonic()
    job = VenvJob(
        folder=folder,
        spec=spec,
        tag=tag,
        python=interpreter,
        environ=environ,
        pip_ca=pip_ca or _pip_cert(environ),
        installer=installer,
        kind=SERVING,
        fix_hint=FIX_MODEL,
        # A serving venv is the user's own, writable: what the runtime imports is compiled by
        # importing it once, the rest (thousands of files it never reads) when first needed.
        compile_all=False,
    )
    try:
        build_venv(job)
    except BuildError as e:
        raise reframe_build_error(e, spec, runtime_requirements(), requirements_origin(model_dir)) from e
    log.info("serving environment %s built in %.0fs", tag, time.monotonic() - started)
    return folder


def ensure_serving_image(
    model_dir: Path,
    environ: Mapping[str, str],
    *,
    base_image: str,
    pip_ca: Path | None = None,
    installer: str = "auto",
    repository: str = SERVING_REPOSITORY,
) -> str:
    """The local docker image ``<repository>:<tag>`` whose entrypoint serves the model; built if missing.

    Run it as the serving image: ``docker run IMAGE --model /mnt/models --name N --port P``.
    """
    import docker

    spec = serving_spec(model_dir)
    client = docker.from_env(environment=dict(environ), timeout=BUILD_TIMEOUT)
    try:
        base, platform = _base_identity(client, base_image)
        tag = serving_tag(spec, base, platform)
        reference = f"{repository}:{tag}"
        try:
            client.images.get(reference)
        except docker.errors.ImageNotFound:
            log.info("serving environment %s: building image %s from %s", tag, reference, base_image)
        else:
            log.info("serving environment %s found (cache hit): image %s", tag, reference)
            return reference
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="fuseml-serving-env-") as folder:
            uv = uv_for(environ, installer, same_platform=platform == host_platform())
            context = write_context(Path(folder), spec, pip_ca or _pip_cert(environ), installer, uv, SERVING)
            chunks = client.api.build(
                path=str(context),
                tag=reference,
                buildargs={"BASE_IMAGE": base_image, "ENVIRONMENT": tag},
                rm=True,
                forcerm=True,
                decode=True,
            )
            image_id = follow_build(chunks)
        log.info("serving environment %s built in %.0fs: %s (%s)", tag, time.monotonic() - started, reference, image_id)
        return reference
    except BuildError as e:
        raise reframe_build_error(e, spec, runtime_requirements(), requirements_origin(model_dir)) from e
    except docker.errors.APIError as e:
        raise BuildError(f"docker refused the build of the serving environment: {e.explanation or e}") from e
    except docker.errors.DockerException as e:
        raise ServiceUnavailable(f"docker is not usable: {e}", "check DOCKER_HOST and that the daemon runs") from e
    finally:
        client.close()


def _base_identity(client: Any, base_image: str) -> tuple[str, str]:
    """(base, platform) for the tag, as the builder's docker backend has them: the base's digest (else its
    local id, else its name) and the daemon's platform."""
    import docker

    base = base_image
    try:
        attrs = client.images.get(base_image).attrs
    except docker.errors.ImageNotFound:
        log.info("base image %s is not on this machine: the build pulls it", base_image)
    else:
        digests = [d.split("@", 1)[1] for d in attrs.get("RepoDigests") or [] if "@" in d]
        base = digests[0] if digests else attrs.get("Id") or base_image
    version = client.version()
    platform = f"{version.get('Os', 'linux')}/{version.get('Arch', 'unknown')}" if version else host_platform()
    return base, platform


def _skinny_line(line: str) -> str:
    if requirement_name(line) != MLFLOW:
        return line
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return line
    return MLFLOW_SKINNY + line[len(requirement.name) :] if canonicalize_name(requirement.name) == MLFLOW else line


def requirements_origin(model_dir: Path) -> str:
    """The model's file its requirement lines come from, for messages: MLflow's python_env.yaml only says
    ``-r requirements.txt``."""
    path = next((model_dir / n for n in MODEL_ENVIRONMENT_FILES if (model_dir / n).is_file()), None)
    if path is None:
        return "MLmodel"
    if path.name == "python_env.yaml" and (model_dir / "requirements.txt").is_file():
        if "-r requirements.txt" in path.read_text(encoding="utf-8", errors="replace"):
            return "requirements.txt"
    return path.name


def _pip_cert(environ: Mapping[str, str]) -> Path | None:
    value = environ.get("PIP_CERT", "").strip()
    return Path(value) if value and Path(value).is_file() else None
