"""A virtualenv built from an environment spec, in a cache folder named by its tag.

For environments without a container engine: the builder's venv backend (the
trainer kind) and the predictor's local serving environments (the serving
kind). ``<cache>/<tag>/`` holds the environment, the kind's code (``fuseml/``,
put on ``sys.path`` by a ``.pth`` file, like a non-editable install) and
``bin/run``. Builders of the same tag take turns through a lock file, so two
concurrent runs build once and the second finds the first one's work. The lock
file holds its owner's pid; the kernel releases the lock when the owner dies,
however it dies, so a stale lock is simply taken over. The venv is built in
place (venvs do not survive a move: scripts hold absolute paths) and only counts
as built once its marker file is written, last. A half-built folder left by a
builder that died is never reused or deleted where it lies: it is renamed aside
first (a rename cannot fail half-way, as deleting a tree something still writes
into does), then deleted. pip and venv die with the builder, even on SIGKILL
(the kernel's parent-death signal), so nothing keeps writing into a dead build.
The packages are installed by ``install.sh``, as in an image: uv (the builder's
own, with its cache in ``~/.cache/uv``) or pip when uv is missing or refuses.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.build_log import BuildError, error_lines
from common.build_payload import (
    INSTALL_SCRIPT,
    PROJECT_ROOT,
    TRAINER,
    copy_app,
    payload_kind,
    run_script,
    write_environment_files,
)
from common.envspec import EnvSpec
from common.errors import InputError
from common.installer import uv_for

log = logging.getLogger(__name__)

MARKER = ".fuseml-environment.json"
# Less than this free after a failed step means the disk, not the requirements, made it fail.
MIN_FREE_BYTES = 64_000_000
FIX_REQUIREMENT = "fix the requirement named above in the codeset's environment file"


@dataclass(frozen=True)
class VenvJob:
    """One virtualenv to build: where, from what, with which interpreter and installer, for which kind."""

    folder: Path
    spec: EnvSpec
    tag: str
    python: str
    environ: Mapping[str, str] = field(default_factory=dict)
    pip_ca: Path | None = None
    installer: str = "auto"
    kind: str = TRAINER
    # What to do about a requirement that does not install (the end of the error message).
    fix_hint: str = FIX_REQUIREMENT
    # True: every installed module but the test suites is compiled (install.sh, whichever installer).
    # False: only what the kind's module imports, by importing it once (a smoke test too); the rest
    # compiles when first imported.
    compile_all: bool = True


def is_built(folder: Path) -> bool:
    """Whether ``folder`` holds a finished environment (its marker, written last, and ``bin/run``)."""
    return (folder / MARKER).is_file() and (folder / "bin" / "run").is_file()


def build_venv(job: VenvJob) -> Path:
    """Build the environment unless a concurrent builder did; returns its folder. Nothing half-built stays."""
    folder = job.folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.parent / f"{folder.name}.lock"):
        if is_built(folder):
            log.info("%s already exists: nothing to build", folder)
            return folder
        if folder.exists():
            log.info("an earlier build of %s did not finish: discarding it", folder)
            _discard(folder)
        log.info("=== Building virtualenv %s ===", folder)
        started = time.monotonic()
        try:
            create_venv(job)
        except BaseException:
            if folder.exists():
                log.info("discarding the unfinished environment %s", folder)
                _discard(folder)
            raise
        marker = {"tag": job.tag, "kind": job.kind, "environment": json.loads(job.spec.canonical())}
        (folder / MARKER).write_text(json.dumps(marker, indent=1))
        log.info("built %s in %.0fs", folder, time.monotonic() - started)
    return folder


def create_venv(job: VenvJob) -> None:
    """The venv, its packages (``install.sh``), the kind's code on its path and ``bin/run``."""
    folder = job.folder
    # Without pip: ensurepip would take 2-3 s running pip to install pip; install.sh puts the same
    # wheels in with uv in a fraction of that (or runs ensurepip itself when pip installs).
    run_logged([job.python, "-m", "venv", "--without-pip", str(folder)], "python -m venv", job)
    python = str(folder / "bin" / "python")
    env = dict(job.environ)
    env.pop("PYTHONPATH", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # install.sh compiles the bytecode, whichever installer ran (none: the import check below does).
    env["FUSEML_BYTECODE"] = "all" if job.compile_all else "none"
    uv = uv_for(job.environ, job.installer, same_platform=True)
    with tempfile.TemporaryDirectory(prefix="fuseml-venv-") as work:
        files = Path(work)
        write_environment_files(files, job.spec, job.pip_ca, job.installer)
        script = [str(PROJECT_ROOT / INSTALL_SCRIPT), python, str(files), str(uv or "")]
        run_logged(["/bin/sh", *script], "install", job, env)
    app = folder / "fuseml"
    copy_app(app, job.kind)
    subprocess.run([python, "-m", "compileall", "-q", str(app)], capture_output=True, check=False)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "fuseml-steps.pth").write_text(f"{app}\n")
    run = folder / "bin" / "run"
    run.write_text(run_script(folder, job.kind))
    run.chmod(0o755)
    if not job.compile_all:
        warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        argv = [python, "-c", f"import {payload_kind(job.kind).module}.__main__"]
        run_logged(argv, "import check", job, warm, cwd=folder)  # not the caller's folder: it may hold our code


def run_logged(
    argv: Sequence[str], what: str, job: VenvJob, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> None:
    """Run a build command, its output logged as it comes; BuildError with pip's reason on failure."""
    tail: deque[str] = deque(maxlen=200)
    log.info("running %s", " ".join(argv))
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only a prctl call, no locks
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        tail.append(line.rstrip())
        log.info("%s: %s", what, line.rstrip())
    code = proc.wait()
    if code != 0:
        _check_space(job.folder.parent, what, code, tail)
        raise BuildError(f"{what} failed (exit {code}): " + " | ".join(error_lines(tail)), job.fix_hint, tail)


def interpreter_identity(python: str) -> tuple[str, str, str]:
    """(platform, identity, version) of the interpreter a venv is made from: what its tag hashes as the base."""
    if python == sys.executable:
        version = platform.python_version()
        base = getattr(sys, "_base_executable", sys.executable)
    else:
        version, base = _ask(python)
    return f"{sys.platform}/{platform.machine()}", f"python {version} {os.path.realpath(base)}", version


def _check_space(cache: Path, what: str, code: int, tail: deque[str]) -> None:
    """A build that failed because the cache folder's disk is full says so, whatever pip printed."""
    try:
        free = shutil.disk_usage(cache).free
    except OSError:
        return
    if free < MIN_FREE_BYTES or any("No space left on device" in line for line in tail):
        raise BuildError(
            f"{what} failed (exit {code}): the disk of the cache folder {cache} is full ({free // 1_000_000} MB free)",
            "free space there, or set FUSEML_CACHE_DIR to a folder on a disk with a few GB free",
            build_log=tail,
        )


def _ask(python: str) -> tuple[str, str]:
    """(version, base executable) of another interpreter."""
    code = (
        "import platform, sys; print(platform.python_version()); "
        "print(getattr(sys, '_base_executable', sys.executable))"
    )
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        raise InputError(f"base_image={python}: cannot run it as Python ({e})") from e
    version, base = (done.stdout.splitlines() + ["", ""])[:2]
    return version.strip(), base.strip() or python


_PR_SET_PDEATHSIG = 1
# Looked up once, here: between fork and exec only the call itself is safe.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL me when the builder dies (Linux); elsewhere nothing."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _discard(folder: Path) -> None:
    """Move an unfinished environment out of the way, then delete it as far as it goes."""
    aside = folder.with_name(f".discarded-{folder.name}-{uuid.uuid4().hex[:8]}")
    folder.rename(aside)
    shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``, which holds the owner's pid (released when the process dies, too)."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            log.info("builder pid %s is building this environment: waiting for it (%s)", owner, path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
