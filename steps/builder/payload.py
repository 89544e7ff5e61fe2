"""What the builder puts next to the environment: the trainer code, the ``run``
command and the image template, and the build context made of them.

The trainer code and template are part of the builder's version for tagging:
an image holds them, so a change to either must make a new tag even when the
codeset's requirements did not change.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from steps.builder.envspec import EnvSpec
from steps.builder import __version__

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = PROJECT_ROOT / "Dockerfiles" / "trainer.Dockerfile"
CHECK_PYTHON = Path(__file__).resolve().parent / "check_python.py"
# The trainer and what it imports: copied into every image and venv.
APP_PARTS = ("common", "steps/__init__.py", "steps/trainer")
TRAINER_MODULE = "steps.trainer"
IMAGE_VENV = "/opt/venv"
IMAGE_APP = "/opt/fuseml"


def app_files() -> Iterator[tuple[str, Path]]:
    """(path relative to the project root, file) for every file of the trainer payload, sorted."""
    found: list[tuple[str, Path]] = []
    for part in APP_PARTS:
        path = PROJECT_ROOT / part
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        found.extend((str(f.relative_to(PROJECT_ROOT)), f) for f in files if "__pycache__" not in f.parts)
    yield from sorted(found)


def builder_version() -> str:
    """``<version>+<hash of template, helper scripts and trainer code>``."""
    digest = hashlib.sha256()
    for name, path in [("Dockerfile", TEMPLATE), ("check_python.py", CHECK_PYTHON), *app_files()]:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(run_script(IMAGE_VENV).encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def run_script(venv: str | Path) -> str:
    """The ``run`` command: the trainer, with the environment's own Python."""
    return (
        "#!/bin/sh\n"
        f"# FuseML trainer step (fuseml-steps {__version__})\n"
        f'exec "{venv}/bin/python" -m {TRAINER_MODULE} "$@"\n'
    )


def copy_app(destination: Path) -> None:
    """Copy the trainer payload (``common/``, ``steps/trainer/``) under ``destination``."""
    for name, path in app_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def write_environment_files(folder: Path, spec: EnvSpec, pip_ca: Path | None) -> None:
    """The files pip is run with: requirements, constraints, build dependencies, CA, checks."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.txt").write_text(spec.requirements_text())
    (folder / "constraints.txt").write_text(spec.constraints_text())
    (folder / "build-requirements.txt").write_text("".join(f"{b}\n" for b in spec.build_dependencies))
    (folder / "python-constraint").write_text(f"{spec.python or ''}\n{spec.source}\n")
    shutil.copy2(CHECK_PYTHON, folder / "check_python.py")
    ca = folder / "pip-ca.crt"
    if pip_ca is not None:
        shutil.copyfile(pip_ca, ca)
    else:
        ca.write_bytes(b"")


def write_context(folder: Path, spec: EnvSpec, pip_ca: Path | None) -> Path:
    """A docker build context: Dockerfile, ``build/`` (pip inputs, ``run``) and ``app/`` (trainer code)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATE, folder / "Dockerfile")
    build = folder / "build"
    write_environment_files(build, spec, pip_ca)
    run = build / "run"
    run.write_text(run_script(IMAGE_VENV))
    run.chmod(0o755)
    copy_app(folder / "app")
    (folder / ".dockerignore").write_text("**/__pycache__\n")
    return folder
