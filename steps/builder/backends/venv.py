"""No container engine: a virtualenv in a cache folder named by the tag.

For local runs without Docker. ``<cache_dir>/<tag>/`` holds the environment,
the kind's code (``fuseml/``) and ``bin/run``; the result is ``venv://<path>``.
How it is built, locked against concurrent builders and never left half-built
is ``common/venv_build.py`` (shared with the predictor's serving environments).

The interpreter is the builder's own Python, or ``base_image`` when that names
an interpreter (``/usr/bin/python3.11``, ``python3.12``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from pathlib import Path

from common.envspec import python_satisfies
from common.errors import InputError
from common.venv_build import MARKER, VenvJob, build_venv, interpreter_identity, is_built
from steps.builder.backends.base import Backend, BaseIdentity, BuildPlan

log = logging.getLogger(__name__)

__all__ = ["MARKER", "SCHEME", "VenvBackend"]

SCHEME = "venv://"
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
        platform, digest, version = interpreter_identity(self.interpreter())
        return BaseIdentity(platform=platform, digest=digest, python_version=version)

    def folder(self, plan: BuildPlan) -> Path:
        return self.settings.cache_dir / plan.tag

    def find(self, plan: BuildPlan) -> str | None:
        folder = self.folder(plan)
        if is_built(folder):
            log.info("%s already exists: nothing to build", folder)
            return f"{SCHEME}{folder}"
        return None

    def build(self, plan: BuildPlan) -> str:
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
        job = VenvJob(
            folder=self.folder(plan),
            spec=plan.spec,
            tag=plan.tag,
            python=self.interpreter(),
            environ=self.environ,
            pip_ca=self.settings.pip_ca,
            installer=self.settings.installer,
            kind=plan.kind,
        )
        return f"{SCHEME}{build_venv(job)}"
