"""No container engine: a virtualenv in a cache folder named by the tag.

For local runs without Docker. ``<cache_dir>/<tag>/`` holds the environment,
the trainer code (``fuseml/``, put on ``sys.path`` by a ``.pth`` file, like a
non-editable install) and ``bin/run``; the result is ``venv://<path>``.
Builders of the same tag take turns through a lock file, so two concurrent
runs build once and the second finds the first one's work. The lock file holds
its owner's pid; the kernel releases the lock when the owner dies, however it
dies, so a stale lock is simply taken over. The venv is built in place (venvs
do not survive a move: scripts hold absolute paths) and only counts as built
once its marker file is written, last. A half-built folder left by a builder
that died is never reused or deleted where it lies: it is renamed aside first
(a rename cannot fail half-way, as deleting a tree something still writes into
does), then deleted. pip and venv die with the builder, even on SIGKILL (the
kernel's parent-death signal), so nothing keeps writing into a dead build.
The packages are installed by ``install.sh``, as in an image: uv (the builder's
own, with its cache in ``~/.cache/uv``) or pip when uv is missing or refuses.

The interpreter is the builder's own Python, or ``base_image`` when that names
an interpreter (``/usr/bin/python3.11``, ``python3.12``).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import platform
import re
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
from pathlib import Path

from common.build_payload import INSTALL_SCRIPT, PROJECT_ROOT, copy_app, run_script, write_environment_files
from common.envspec import python_satisfies
from common.errors import InputError
from common.installer import uv_for
from steps.builder.backends.base import Backend, BaseIdentity, BuildError, BuildPlan, error_lines

log = logging.getLogger(__name__)

MARKER = ".fuseml-environment.json"
SCHEME = "venv://"
# Less than this free after a failed step means the disk, not the requirements, made it fail.
MIN_FREE_BYTES = 64_000_000
_INTERPRETER = re.compile(r"^(/.*|python[0-9.]*)$")


class VenvBackend(Backend):
    name = "venv"

    def interpreter(self) -> str:
        """The Python the venv is made from (an absolute path)."""
        base = self.settings.base_image
        if self.settings.base_image_given and _INTERPRETER.match(base):
            found = base if base.startswith("/") else shutil.which(base, path=self.environ.get("PATH"))
            if not found or not os.access(found, os.X_OK):
                raise InputError(
                    f"base_image={base}: no such Python interpreter", "give a path such as /usr/bin/python3"
                )
            return found
        if self.settings.base_image_given:
            log.info("base_image=%s is an image; the venv backend uses this Python (%s)", base, sys.executable)
        return sys.executable

    def identity(self) -> BaseIdentity:
        python = self.interpreter()
        if python == sys.executable:
            version = platform.python_version()
            base = getattr(sys, "_base_executable", sys.executable)
        else:
            version, base = _ask(python)
        real = os.path.realpath(base)
        return BaseIdentity(
            platform=f"{sys.platform}/{platform.machine()}",
            digest=f"python {version} {real}",
            python_version=version,
        )

    def folder(self, plan: BuildPlan) -> Path:
        return self.settings.cache_dir / plan.tag

    def find(self, plan: BuildPlan) -> str | None:
        folder = self.folder(plan)
        if (folder / MARKER).is_file() and (folder / "bin" / "run").is_file():
            log.info("%s already exists: nothing to build", folder)
            return f"{SCHEME}{folder}"
        return None

    def build(self, plan: BuildPlan) -> str:
        folder = self.folder(plan)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _locked(folder.parent / f"{plan.tag}.lock"):
            found = self.find(plan)
            if found:
                return found
            identity = self.identity()
            if identity.python_version and not python_satisfies(plan.spec.python, identity.python_version):
                raise InputError(
                    f"{plan.spec.source} asks for python {plan.spec.python}, but {self.interpreter()} is "
                    f"Python {identity.python_version}",
                    "give a matching interpreter as input base_image (e.g. /usr/bin/python3.11)",
                )
            if folder.exists():
                log.info("an earlier build of %s did not finish: discarding it", folder)
                _discard(folder)
            log.info("=== Building virtualenv %s ===", folder)
            started = time.monotonic()
            try:
                self._create(plan, folder)
            except BaseException:
                if folder.exists():
                    log.info("discarding the unfinished environment %s", folder)
                    _discard(folder)
                raise
            marker = {"tag": plan.tag, "environment": json.loads(plan.spec.canonical())}
            (folder / MARKER).write_text(json.dumps(marker, indent=1))
            log.info("built %s in %.0fs", folder, time.monotonic() - started)
        return f"{SCHEME}{folder}"

    def _create(self, plan: BuildPlan, folder: Path) -> None:
        self._run([self.interpreter(), "-m", "venv", str(folder)], "python -m venv")
        python = str(folder / "bin" / "python")
        env = dict(self.environ)
        env.pop("PYTHONPATH", None)
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        # pip compiles bytecode as it installs; uv only when asked. The trainer runs with
        # PYTHONDONTWRITEBYTECODE in many setups, so an uncompiled venv would compile at every run.
        env["UV_COMPILE_BYTECODE"] = "1"
        uv = uv_for(self.environ, self.settings.installer, same_platform=True)
        with tempfile.TemporaryDirectory(prefix="fuseml-venv-") as work:
            files = Path(work)
            write_environment_files(files, plan.spec, self.settings.pip_ca, self.settings.installer)
            script = [str(PROJECT_ROOT / INSTALL_SCRIPT), python, str(files), str(uv or "")]
            self._run(["/bin/sh", *script], "install", env)
        app = folder / "fuseml"
        copy_app(app)
        site = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        Path(site, "fuseml-steps.pth").write_text(f"{app}\n")
        run = folder / "bin" / "run"
        run.write_text(run_script(folder))
        run.chmod(0o755)

    def _run(self, argv: Sequence[str], what: str, env: Mapping[str, str] | None = None) -> None:
        """Run a build command, its output logged as it comes; BuildError with pip's reason on failure."""
        tail: deque[str] = deque(maxlen=200)
        log.info("running %s", " ".join(argv))
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(env) if env is not None else None,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only a prctl call, no locks
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            log.info("%s: %s", what, line.rstrip())
        code = proc.wait()
        if code != 0:
            self._check_space(what, code, tail)
            raise BuildError(
                f"{what} failed (exit {code}): " + " | ".join(error_lines(tail)),
                "fix the requirement named above in the codeset's environment file",
                build_log=tail,
            )

    def _check_space(self, what: str, code: int, tail: deque[str]) -> None:
        """A build that failed because the cache folder's disk is full says so, whatever pip printed."""
        cache = self.settings.cache_dir
        try:
            free = shutil.disk_usage(cache).free
        except OSError:
            return
        if free < MIN_FREE_BYTES or any("No space left on device" in line for line in tail):
            raise BuildError(
                f"{what} failed (exit {code}): the disk of the cache folder {cache} is full "
                f"({free // 1_000_000} MB free)",
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
