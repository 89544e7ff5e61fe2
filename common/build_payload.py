"""What the builder puts next to the environment, and the build context made of it.

The payload is every file of the build context that this checkout decides (the
codeset decides the rest: the pip inputs, hashed through the spec): the image
template, the Python check, the install script, the ``run`` command and the
trainer code. It is
both what the context is written from and what the builder's version hashes,
so an image's tag changes exactly when what it holds (or was built with)
changes. The trainer code is the trainer package plus the modules of ours it
imports, found by ``modulefinder``: an edit to the builder's own modules or to
a ``common/`` module the trainer does not import leaves every tag as it was.
Which installer runs (uv or pip, see ``install.sh``) is not in the payload: the
uv binary and the ``installer`` choice go into the context beside the spec
files, so the same environment has the same tag whichever installed it.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
from modulefinder import ModuleFinder
from pathlib import Path

from common import __version__
from common.envspec import EnvSpec

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Inside the project root (this checkout, or /opt/fuseml in the builder image).
TEMPLATE = "Dockerfiles/trainer.Dockerfile"
CHECK_PYTHON = "common/check_python.py"
INSTALL_SCRIPT = "common/install.sh"
TRAINER_PACKAGE = "steps/trainer"
TRAINER_MODULE = "steps.trainer"
# Inside the build context and the image.
APP = "app"
RUN = "build/run"
INSTALL = "build/install.sh"
UV = "build/uv"
IMAGE_VENV = "/opt/venv"
IMAGE_APP = "/opt/fuseml"
DOCKERIGNORE = "**/__pycache__\n"


def trainer_code(root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """The trainer package and every module of ours it imports, by path relative to ``root``, sorted."""
    finder = ModuleFinder(path=[str(root)])
    for path in sorted((root / TRAINER_PACKAGE).rglob("*.py")):
        if "__pycache__" not in path.parts:
            finder.import_hook(".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"))
    files = [Path(module.__file__) for module in finder.modules.values() if module.__file__]
    return {str(f.relative_to(root)): f for f in sorted(files) if f.is_relative_to(root)}


def payload(root: Path = PROJECT_ROOT) -> dict[str, bytes]:
    """Path in the build context -> content, for every file this checkout puts there."""
    files = {
        "Dockerfile": (root / TEMPLATE).read_bytes(),
        "build/check_python.py": (root / CHECK_PYTHON).read_bytes(),
        INSTALL: (root / INSTALL_SCRIPT).read_bytes(),
        RUN: run_script(IMAGE_VENV).encode(),
        ".dockerignore": DOCKERIGNORE.encode(),
    }
    files.update((f"{APP}/{name}", path.read_bytes()) for name, path in trainer_code(root).items())
    return dict(sorted(files.items()))


def builder_version(root: Path = PROJECT_ROOT) -> str:
    """``<version>+<hash of the payload>``: part of every tag, so a changed payload makes new images."""
    digest = hashlib.sha256()
    for name, content in payload(root).items():
        digest.update(name.encode() + b"\0" + content + b"\0")
    return f"{__version__}+{digest.hexdigest()[:12]}"


def run_script(venv: str | Path) -> str:
    """The ``run`` command: the trainer, with the environment's own Python.

    The path is quoted for sh: a cache folder named ``$(...)`` must stay a name, not run.
    """
    return (
        "#!/bin/sh\n"
        f"# FuseML trainer step (fuseml-steps {__version__})\n"
        f'exec {shlex.quote(f"{venv}/bin/python")} -m {TRAINER_MODULE} "$@"\n'
    )


def copy_app(destination: Path) -> None:
    """Write the payload's trainer code (``common/``, ``steps/trainer/`` files) under ``destination``."""
    prefix = f"{APP}/"
    _write(destination, {name.removeprefix(prefix): c for name, c in payload().items() if name.startswith(prefix)})


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
    folder: Path, spec: EnvSpec, pip_ca: Path | None, installer: str = "auto", uv: Path | None = None
) -> Path:
    """A docker build context: the payload (Dockerfile, ``build/``, ``app/``), the codeset's pip inputs, and
    the builder's own uv binary when it has one: the throwaway stage runs it from there, no download needed."""
    _write(folder, payload())
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
