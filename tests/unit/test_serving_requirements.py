"""``serving/requirements.txt``: the runtime's own needs, pinned as the package pins them, and all it imports.

A model's serving environment is the model's requirements plus this file, so
the file must agree with pyproject.toml's ``serving`` extra, and the runtime
must start with nothing else installed (what scikit-learn models need is
imported only when such a model loads). "Nothing else" is simulated by
``tests.fixtures.runtime_only``, which makes every other installed package
unimportable; ``tests/integration/test_serving_without_sklearn.py`` serves a
model that way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.fixtures.runtime_only import launcher, runtime_requirements

ROOT = Path(__file__).resolve().parents[2]
# Every module the runtime runs at start: the command line, the server and its transports, loading and decoding.
RUNTIME_MODULES = (
    "serving.__main__", "serving.server", "serving.grpc_server", "serving.fast_lane", "serving.workers",
    "serving.loader", "serving.model", "serving.payload", "serving.tensor_payload",
)  # fmt: skip


def test_every_requirement_is_pinned_as_the_serving_extra_pins_it() -> None:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serving"]
    pinned = {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, extra)}
    requirements = runtime_requirements()
    assert {canonicalize_name(r.name) for r in requirements} >= {"kserve", "mlflow-skinny", "boto3"}
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in pyproject.toml's serving extra"
        assert str(requirement.specifier) == pinned[name], f"{requirement}: the serving extra pins {pinned[name]}"
        assert str(requirement.specifier).startswith("=="), f"{requirement}: pin an exact version"


def test_scikit_learn_and_skops_are_not_runtime_requirements() -> None:
    names = {canonicalize_name(r.name) for r in runtime_requirements()}
    assert not names & {"scikit-learn", "skops", "scipy"}


def test_the_runtime_starts_with_only_its_requirements_installed() -> None:
    code = f"import json, sys\nfor m in {RUNTIME_MODULES!r}: __import__(m)\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", launcher(code)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert not loaded & {"sklearn", "skops", "scipy"}
    assert {"kserve", "numpy", "pandas"} <= loaded  # the hook let the requirements through
