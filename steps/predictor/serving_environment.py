"""Which Python environment serves the model on the local and docker targets, and getting it ready.

Our runtime can only load what its environment contains. The model's own
requirements (what MLflow wrote beside MLmodel) decide: input ``serving_env``
is ``runtime`` (today's: the predictor's own Python for local, ``serving_image``
for docker), ``model`` (always the model's own environment, built once per
content by ``common.serving_env``: a venv for local, an image for docker), or
``auto``: the runtime's environment when it already has every requirement the
model names at a matching version (MLflow's ``mlflow`` is satisfied by
``mlflow-skinny`` of the same version), else the model's own. The runtime
image's packages are listed by running it once per image id, and remembered in
the state folder. A ``serving_image`` given as input is used as it is: the
serving-builder's output, or the user's choice (for local, ``venv://PATH`` is
that venv's Python).

``decide`` changes nothing (a dry run shows its line); ``provide`` builds or
finds the model's environment and logs the one line saying which and why.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from common.artifact_store import ArtifactStore, join_url
from common.errors import ExecutionError, InputError
from common.serving_env import (
    MODEL_ENVIRONMENT_FILES,
    ensure_serving_image,
    ensure_serving_venv,
    model_spec,
    skinny,
)
from common.serving_env import SERVING_REPOSITORY as SERVING_ENV_REPOSITORY
from common.venv_build import is_built
from steps.predictor.docker_engine import docker_client, explain
from steps.predictor.settings import Settings

log = logging.getLogger(__name__)

VENV_SCHEME = "venv://"
MLFLOW_NAMES = ("mlflow", "mlflow-skinny")
IMAGE_PACKAGES_FOLDER = "image-packages"
# Printed by the runtime image's Python: every installed distribution and its version, as JSON.
LIST_PACKAGES = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}))"
)
RUNTIME, MODEL, GIVEN = "runtime", "model", "given"


@dataclass(frozen=True)
class ServingEnvironment:
    """Where the runtime runs: ``python`` (local) or ``image`` (docker); ``kind`` is runtime, model or given.

    ``model_dir`` holds the model's environment files while the model's own environment is still to be made.
    """

    kind: str
    reason: str
    python: str | None = None
    image: str | None = None
    model_dir: Path | None = None

    def describe(self) -> str:
        return f"serving environment: {self.reason}"


def decide(
    settings: Settings,
    target: str,
    model_dir: Path,
    runtime_packages: Mapping[str, str] | None = None,
) -> ServingEnvironment:
    """The environment ``target`` (local or docker) serves the model in, from the model's files in ``model_dir``.

    ``runtime_packages`` are the runtime environment's distributions (default: this interpreter's, or the
    serving image's for docker); they are only read in ``auto`` mode.
    """
    given = _given(settings, target)
    if given is not None:
        return given
    runtime = _runtime(settings, target)
    if settings.serving_env == RUNTIME:
        return replace(runtime, reason=f"the runtime's environment ({_where(runtime)}), as serving_env=runtime asks")
    if settings.serving_env == MODEL:
        return ServingEnvironment(MODEL, "the model's own environment, as serving_env=model asks", model_dir=model_dir)
    requirements = model_requirements(model_dir)
    if runtime_packages is None:
        if target == "local":
            runtime_packages = installed_here()
        else:
            runtime_packages = image_packages(settings.serving_image, settings.state_dir, pull=not settings.dry_run)
    if runtime_packages is None:
        return ServingEnvironment(
            MODEL, f"the runtime image {settings.serving_image} is not on this machine", model_dir=model_dir
        )
    lacking = missing(requirements, runtime_packages)
    if not lacking:
        return replace(
            runtime,
            reason=f"the runtime's environment ({_where(runtime)}) has all {len(requirements)} requirements "
            "of the model",
        )
    shown = ", ".join(lacking[:3]) + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
    return ServingEnvironment(
        MODEL, f"the model needs {shown}, which the runtime's environment lacks", model_dir=model_dir
    )


def provide(
    environment: ServingEnvironment, settings: Settings, target: str, environ: Mapping[str, str]
) -> ServingEnvironment:
    """``environment`` ready to run: the model's own one found or built (logged with why and how long)."""
    if environment.kind != MODEL:
        log.info("%s", environment.describe())
        return environment
    assert environment.model_dir is not None
    started = time.monotonic()
    if target == "local":
        before = set(_children(settings.cache_dir))
        folder = ensure_serving_venv(
            environment.model_dir, environ, cache_dir=settings.cache_dir, pip_ca=settings.pip_ca,
            installer=settings.installer,
        )  # fmt: skip
        done = replace(environment, python=str(folder / "bin" / "python"), model_dir=None)
        tag, hit = folder.name, folder.name in before
    else:
        before = set(_serving_images(environ))
        image = ensure_serving_image(
            environment.model_dir, environ, base_image=settings.base_image, pip_ca=settings.pip_ca,
            installer=settings.installer,
        )  # fmt: skip
        done = replace(environment, image=image, model_dir=None)
        tag, hit = image.rsplit(":", 1)[-1], image in before
    how = "cache hit" if hit else f"built in {time.monotonic() - started:.0f} s"
    log.info("%s: serving it in its own environment %s (%s)", environment.reason, tag, how)
    return done


def model_requirements(model_dir: Path) -> tuple[str, ...]:
    """The model's requirement lines as its environment files give them, ``mlflow`` read as ``mlflow-skinny``."""
    return skinny(model_spec(model_dir)).requirements


def missing(requirements: Iterable[str], installed: Mapping[str, str | None]) -> list[str]:
    """The requirement lines ``installed`` (distribution -> version; None: present at a version not known,
    taken as matching) does not satisfy. A line we cannot read counts as not satisfied: only the model's own
    environment is sure to have it."""
    versions = {canonicalize_name(name): version for name, version in installed.items()}
    lacking = []
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            lacking.append(line)
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        present = [n for n in (MLFLOW_NAMES if name in MLFLOW_NAMES else (name,)) if n in versions]
        if not present:
            lacking.append(line)
            continue
        version = versions[present[0]]
        if version is not None and not requirement.specifier.contains(version, prereleases=True):
            lacking.append(line)
    return lacking


def installed_here() -> dict[str, str]:
    """This interpreter's distributions: the local target's runtime environment."""
    found = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found[name] = distribution.version
    return found


def image_packages(image: str, state_dir: Path, pull: bool = True) -> dict[str, str] | None:
    """The distributions installed in ``image``, listed by running it once per image id; None when the image
    is not on this machine and cannot be pulled (or ``pull`` is false: a dry run pulls nothing)."""
    import docker.errors

    client = docker_client()
    try:
        image_id = client.images.get(image).id
    except docker.errors.ImageNotFound:
        if not pull:
            return None
        log.info("pulling the runtime image %s to list its packages", image)
        try:
            image_id = client.images.pull(image).id
        except docker.errors.DockerException as e:
            log.info("serving image %s cannot be pulled (%s)", image, explain(e))
            return None
    cached = state_dir / IMAGE_PACKAGES_FOLDER / f"{image_id.replace(':', '-')}.json"
    if cached.is_file():
        return dict(json.loads(cached.read_text()))
    try:
        output = client.containers.run(image, ["-c", LIST_PACKAGES], entrypoint=["python"], remove=True)
    except docker.errors.DockerException as e:
        raise ExecutionError(
            f"cannot list the packages of serving image {image}: {explain(e)}",
            "give an image of our runtime (make images), or set FUSEML_SERVING_ENV=model",
        ) from e
    packages = dict(json.loads(output.decode().strip().splitlines()[-1]))
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(packages, sort_keys=True))
    log.info("serving image %s (%s) has %d packages", image, image_id[:19], len(packages))
    return packages


def fetch_environment_files(store: ArtifactStore, url: str, files: Iterable[str], destination: Path) -> Path:
    """``destination`` holding the model's environment files (and nothing else: the model stays where it is)."""
    destination.mkdir(parents=True, exist_ok=True)
    present = set(files)
    for name in MODEL_ENVIRONMENT_FILES:
        if name in present:
            (destination / name).write_bytes(store.read(join_url(url, name)))
    return destination


@contextmanager
def model_environment_files(store: ArtifactStore, url: str, files: Iterable[str]) -> Iterator[Path]:
    """A scratch folder holding the model's environment files while the environment is chosen and made."""
    folder = Path(tempfile.mkdtemp(prefix="fuseml-model-env-"))
    try:
        yield fetch_environment_files(store, url, files, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _given(settings: Settings, target: str) -> ServingEnvironment | None:
    """The environment input ``serving_image`` names, if it names one for this target."""
    if not settings.serving_image_given:
        return None
    image = settings.serving_image
    if target == "docker":
        if image.startswith(VENV_SCHEME):
            raise InputError(
                f"FUSEML_SERVING_IMAGE={image} is a venv, which the docker target cannot run",
                "give an image (the serving-builder's docker or buildah backend), or use target=local",
            )
        return ServingEnvironment(GIVEN, f"serving_image {image}, as given", image=image)
    if not image.startswith(VENV_SCHEME):
        log.debug("serving_image %s is for the docker target: target local does not use it", image)
        return None
    python = Path(image[len(VENV_SCHEME) :]).expanduser() / "bin" / "python"
    if not python.is_file():
        raise InputError(
            f"FUSEML_SERVING_IMAGE={image}: {python} does not exist",
            "give the venv://PATH the builder returned, on this machine",
        )
    return ServingEnvironment(GIVEN, f"the venv {image}, as serving_image gives", python=str(python))


def _runtime(settings: Settings, target: str) -> ServingEnvironment:
    if target == "local":
        return ServingEnvironment(RUNTIME, "", python=sys.executable)
    return ServingEnvironment(RUNTIME, "", image=settings.serving_image)


def _where(runtime: ServingEnvironment) -> str:
    return f"image {runtime.image}" if runtime.image else f"{runtime.python}"


def _children(folder: Path) -> list[str]:
    try:
        return [p.name for p in folder.iterdir() if is_built(p)]
    except OSError:
        return []


def _serving_images(environ: Mapping[str, str]) -> list[str]:
    """The model serving images on this machine (``fuseml/serving-env:<tag>``), to tell a cache hit from a build."""
    return [tag for image in docker_client().images.list(name=SERVING_ENV_REPOSITORY) for tag in image.tags]
