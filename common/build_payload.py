"""What a build puts next to the environment, and the build context made of it, for each kind of image.

Two kinds of environment are built from the same machinery (``install.sh``,
the content-addressed tag, the venv/docker/buildah backends):

- ``trainer``: a codeset's environment whose ``run`` is the trainer step
  (template ``Dockerfiles/trainer.Dockerfile``, code ``steps/trainer``);
- ``serving``: a model's environment whose ``run`` is our serving runtime
  (template ``Dockerfiles/serving-env.Dockerfile``, code ``serving/``),
  see ``common/serving_env.py``.

The payload is every file of the build context that this checkout decides (the
codeset or the model decides the rest: the pip inputs, hashed through the
spec): the image template, the Python check, the install script, the ``run``
command and the kind's code. It is both what the context is written from and
what the builder's version hashes, so an image's tag changes exactly when what
it holds (or was built with) changes. The code is the kind's package plus the
modules of ours it imports, found by ``modulefinder``: an edit to the builder's
own modules or to a ``common/`` module the package does not import leaves every
tag as it was. Which installer runs (uv or pip, see ``install.sh``) is not in
the payload: the uv binary and the ``installer`` choice go into the context
beside the spec files, so the same environment has the same tag whichever
installed it.

An image that must carry a kind's code without importing it (the predictor
image carries ``serving/`` to build serving environments, but never imports
the serving stack) keeps those files under ``payload/`` in its project root,
off its import path; they are found there and hashed under the same names.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
from dataclasses import dataclass
from modulefinder import ModuleFinder
from pathlib import Path

from common import __version__
from common.envspec import EnvSpec

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Where an image keeps code it carries for builds but must not import (see the module docstring).
PAYLOAD_DATA = "payload"
CHECK_PYTHON = "common/check_python.py"
INSTALL_SCRIPT = "common/install.sh"
# Inside the build context and the image.
APP = "app"
RUN = "build/run"
INSTALL = "build/install.sh"
UV = "build/uv"
IMAGE_VENV = "/opt/venv"
IMAGE_APP = "/opt/fuseml"
DOCKERIGNORE = "**/__pycache__\n"


@dataclass(frozen=True)
class PayloadKind:
    """One kind of environment: its image template, its code and the module its ``run`` starts."""

    name: str
    template: str
    package: str
    module: str
    title: str


TRAINER = "trainer"
SERVING = "serving"
KINDS = {
    TRAINER: PayloadKind(TRAINER, "Dockerfiles/trainer.Dockerfile", "steps/trainer", "steps.trainer", "trainer step"),
    SERVING: PayloadKind(SERVING, "Dockerfiles/serving-env.Dockerfile", "serving", "serving", "serving runtime"),
}
# Kept for the builder's callers: the trainer kind's template and package.
TEMPLATE = KINDS[TRAINER].template
TRAINER_PACKAGE = KINDS[TRAINER].package
TRAINER_MODULE = KINDS[TRAINER].module


def payload_kind(kind: str) -> PayloadKind:
    """The kind called ``kind``; an unknown one is a bug of the caller (a ValueError listing the known)."""
    if kind not in KINDS:
        raise ValueError(f"unknown payload kind {kind!r}: one of {', '.join(KINDS)}")
    return KINDS[kind]


def source_file(name: str, root: Path = PROJECT_ROOT) -> Path:
    """The file ``name`` (relative to the project root) in this checkout or image, wherever it is kept."""
    direct = root / name
    carried = root / PAYLOAD_DATA / name
    return carried if not direct.exists() and carried.exists() else direct


def kind_code(kind: str = TRAINER, root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """The kind's package and every module of ours it imports, by path relative to the root, sorted."""
    package = payload_kind(kind).package
    roots = [root, root / PAYLOAD_DATA]
    finder = ModuleFinder(path=[str(r) for r in roots if r.is_dir()])
    top = source_file(package, root)
    base = root / PAYLOAD_DATA if top.is_relative_to(root / PAYLOAD_DATA) else root
    for path in sorted(top.rglob("*.py")):
        if "__pycache__" not in path.parts:
            finder.import_hook(".".join(path.relative_to(base).with_suffix("").parts).removesuffix(".__init__"))
    files = [Path(module.__file__) for module in finder.modules.values() if module.__file__]
    found: dict[str, Path] = {}
    for file in sorted(files):
        owner = next((r for r in (root / PAYLOAD_DATA, root) if file.is_relative_to(r)), None)
        if owner is not None:
            found[str(file.relative_to(owner))] = file
    return dict(sorted(found.items()))


def trainer_code(root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """The trainer package and every module of ours it imports (``kind_code`` of the trainer kind)."""
    return kind_code(TRAINER, root)


def payload(kind: str = TRAINER, root: Path = PROJECT_ROOT) -> dict[str, bytes]:
    """Path in the build context -> content, for every file this checkout puts there for ``kind``."""
    files = {
        "Dockerfile": source_file(payload_kind(kind).template, root).read_bytes(),
        "build/check_python.py": (root / CHECK_PYTHON).read_bytes(),
        INSTALL: (root / INSTALL_SCRIPT).read_bytes(),
        RUN: run_script(IMAGE_VENV, kind).encode(),
        ".dockerignore": DOCKERIGNORE.encode(),
    }
    files.update((f"{APP}/{name}", path.read_bytes()) for name, path in kind_code(kind, root).items())
    return dict(sorted(files.items()))


def builder_version(kind: str = TRAINER, root: Path = PROJECT_ROOT) -> str:
    """``<version>+<hash of the payload>``: part of every tag, so a changed payload makes new images.

    Kinds never share a version: their templates and ``run`` commands differ.
    """
    digest = hashlib.sha256()
    for name, content in payload(kind, root).items():
        digest.update(name.encode() + b"\0" + content + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def run_script(venv: str | Path, kind: str = TRAINER) -> str:
    """The ``run`` command: the kind's module, with the environment's own Python.

    The path is quoted for sh: a cache folder named ``$(...)`` must stay a name, not run.
    """
    chosen = payload_kind(kind)
    return (
        "#!/bin/sh\n"
        f"# FuseML {chosen.title} (fuseml-steps {__version__})\n"
        f'exec {shlex.quote(f"{venv}/bin/python")} -m {chosen.module} "$@"\n'
    )


def copy_app(destination: Path, kind: str = TRAINER) -> None:
    """Write the payload's code for ``kind`` (``common/`` and the kind's package files) under ``destination``."""
    prefix = f"{APP}/"
    files = payload(kind)
    _write(destination, {name.removeprefix(prefix): c for name, c in files.items() if name.startswith(prefix)})


def write_environment_files(folder: Path, spec: EnvSpec, pip_ca: Path | None, installer: str = "auto") -> None:
    """The files the installer runs with: requirements, constraints, build dependencies, Python constraint,
    CA, and the installer input (``install.sh`` reads them all)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "installer").write_text(f"{installer}\n")
    (folder / "requirements.txt").write_text(spec.requirements_text())
    (folder / "constraints.txt").write_text(spec.constraints_text())
    (folder / "build-requirements.txt").write_text("".join(f"{b}\n" for b in spec.build_dependencies))
    (folder / "python-constraint").write_text(f"{spec.python or ''}\n{spec.source}\n")
    ca = folder / "pip-ca.crt"
    if pip_ca is not None:
        shutil.copyfile(pip_ca, ca)
    else:
        ca.write_bytes(b"")


def write_context(
    folder: Path,
    spec: EnvSpec,
    pip_ca: Path | None,
    installer: str = "auto",
    uv: Path | None = None,
    kind: str = TRAINER,
) -> Path:
    """A docker build context: the payload (Dockerfile, ``build/``, ``app/``), the pip inputs, and
    the builder's own uv binary when it has one: the throwaway stage runs it from there, no download needed."""
    _write(folder, payload(kind))
    (folder / RUN).chmod(0o755)
    write_environment_files(folder / "build", spec, pip_ca, installer)
    if uv is not None and installer != "pip":
        shutil.copyfile(uv, folder / UV)
        (folder / UV).chmod(0o755)
    return folder


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
