"""Finding a Python that has the ``kfp`` SDK, and compiling a plan with it.

Every ``kfp`` 2.x release requires ``kubernetes<31`` while the predictor pins
37, so the SDK lives in its own virtualenv (``make kfp-venv`` makes
``.venv-kfp``). The interpreter, first match wins: ``FUSEML_KFP_PYTHON``; the
current one if it can import ``kfp``; ``.venv-kfp/bin/python`` beside the
project. ``kfp_compile`` runs there in isolated mode (``-I``: nothing of this
project or its environment on its path), reading the plan on stdin.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common.errors import InputError

KFP_PYTHON_VARIABLE = "FUSEML_KFP_PYTHON"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
KFP_VENV_PYTHON = PROJECT_ROOT / ".venv-kfp" / "bin" / "python"
COMPILE_SCRIPT = Path(__file__).with_name("kfp_compile.py")
HOW_TO_INSTALL = (
    "run `make kfp-venv` in a checkout (a virtualenv .venv-kfp with kfp and kfp-kubernetes), "
    f"or point {KFP_PYTHON_VARIABLE} at a Python that has `pip install kfp==2.17.3 kfp-kubernetes==2.17.3`"
)
COMPILE_TIMEOUT = 300


def kfp_python(environ: dict[str, str] | None = None) -> str:
    """The interpreter that compiles; raises InputError saying how to get one."""
    environ = os.environ if environ is None else environ
    given = environ.get(KFP_PYTHON_VARIABLE, "").strip()
    if given:
        if not os.access(given, os.X_OK):
            raise InputError(f"{KFP_PYTHON_VARIABLE}={given} is not an executable Python", HOW_TO_INSTALL)
        return given
    if importlib.util.find_spec("kfp") is not None:
        return sys.executable
    if os.access(KFP_VENV_PYTHON, os.X_OK):
        return str(KFP_VENV_PYTHON)
    raise InputError("the Kubeflow Pipelines SDK (kfp) is not installed where fuseml-steps can use it", HOW_TO_INSTALL)


def compile_with_sdk(plan: dict[str, Any], python: str | None = None) -> str:
    """The pipeline's IR YAML, compiled by ``kfp_compile`` in ``python`` (default: ``kfp_python()``)."""
    python = python or kfp_python()
    with tempfile.TemporaryDirectory(prefix="fuseml-kfp-") as folder:
        out = Path(folder) / "pipeline.yaml"
        try:
            done = subprocess.run(
                [python, "-I", str(COMPILE_SCRIPT), str(out)],
                input=json.dumps(plan),
                capture_output=True,
                text=True,
                timeout=COMPILE_TIMEOUT,
                check=False,
            )
        except OSError as e:
            raise InputError(f"cannot run {python} to compile the pipeline: {e.strerror}", HOW_TO_INSTALL) from e
        if done.returncode != 0 or not out.exists():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit code {done.returncode}"
            missing = "ModuleNotFoundError" in last and "kfp" in last
            raise InputError(
                f"the kfp SDK in {python} could not compile the pipeline: {last}",
                HOW_TO_INSTALL if missing else "report it with the workflow (a bug in fuseml-steps export)",
            )
        return out.read_text()
