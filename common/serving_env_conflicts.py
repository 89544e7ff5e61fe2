"""When a model's requirements and the serving runtime's cannot both hold: one message naming both sides.

Two places find out. A clash on a package both name (the model pins
``kserve==0.9.0``, the runtime needs ``kserve==0.21.0``) is found before any
build, with packaging's specifiers. A clash through a dependency (the model
pins ``numpy==1.20.0``, the runtime's kserve needs ``numpy>=1.26.0,<3.0.0``)
only the installer's resolver can see: its failure is recognised in the build
log and reframed the same way, its own explanation kept, so the user reads
"the model needs ...; the runtime needs ..." instead of a resolver trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from common.build_log import BuildError
from common.envspec import EnvSpec
from common.envspec.requirements import requirement_name
from common.errors import InputError, StepError

MLFLOW_SKINNY = "mlflow-skinny"
HINT = (
    "pin a version both accept in the model's requirements (retrain and log it again), "
    "or serve it with an image made for it (input serving_image)"
)
# What uv and pip print when the requirements cannot be resolved together.
_UNSOLVABLE = ("No solution found when resolving dependencies", "ResolutionImpossible", "conflicting dependencies")
# uv: "kserve>=0.21.0 depends on numpy>=1.26.0,<3.0.0"; pip: "kserve 0.21.0 depends on numpy<3.0.0 and >=1.26.0".
_DEPENDS = re.compile(
    r"(?P<who>[A-Za-z0-9][A-Za-z0-9._-]*)(?:[<>=!~]=?[^\s]+| [0-9][^\s]*)? depends on "
    r"(?P<package>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<spec>[<>=!~]=?[^\s,]+(?:,[<>=!~]=?[^\s,]+)*(?: and [<>=!~]=?[^\s,]+)*)"
)


def direct_conflicts(model: EnvSpec, runtime: Iterable[str], origin: str) -> str | None:
    """The message for the first package the model and the runtime both pin incompatibly, else None.

    Only exact pins are judged here (``==1.2.3`` on either side); two ranges that do not meet are left to
    the installer, whose failure is reframed by ``reframe_build_error``.
    """
    mine = {requirement_name(line): line for line in model.requirements}
    for line in runtime:
        name = requirement_name(line)
        if name is None or name == MLFLOW_SKINNY or name not in mine:
            continue
        if not _compatible(mine[name], line):
            return f"the model needs {mine[name]} (its {origin}); the runtime needs {line} (serving/requirements.txt)"
    return None


def reframe_build_error(error: BuildError, spec: EnvSpec, runtime: Iterable[str], origin: str) -> StepError:
    """An ``InputError`` naming both sides when the build failed on a resolver conflict, else ``error`` itself."""
    log_lines = [line.strip() for line in error.build_log if line.strip()]
    start = next((i for i, line in enumerate(log_lines) if any(s in line for s in _UNSOLVABLE)), None)
    if start is None:
        return error
    explanation = _explanation(log_lines[start:])
    runtime = list(runtime)
    mine = {requirement_name(line): line for line in spec.requirements if line not in runtime}
    theirs = {requirement_name(line): line for line in runtime}
    for match in _DEPENDS.finditer(" ".join(log_lines[start:])):
        package = canonicalize_name(match["package"])
        if package not in mine:
            continue
        needs = match["package"] + match["spec"].replace(" and ", ",").rstrip(".,")
        who = canonicalize_name(match["who"])
        side = f"the runtime needs {needs} ({theirs[who]})" if who in theirs else f"{match['who']} needs {needs}"
        return InputError(f"the model needs {mine[package]} (its {origin}); {side}; the installer says: {explanation}",
                          HINT)  # fmt: skip
    listed = ", ".join(sorted(theirs.values()))
    return InputError(
        f"the model's requirements (its {origin}) conflict with the runtime's ({listed}); "
        f"the installer says: {explanation}",
        HINT,
    )


def _compatible(model_line: str, runtime_line: str) -> bool:
    try:
        model, runtime = Requirement(model_line), Requirement(runtime_line)
    except InvalidRequirement:
        return True
    for pinned, other in ((model.specifier, runtime.specifier), (runtime.specifier, model.specifier)):
        version = _exact(pinned)
        if version is not None and not other.contains(version, prereleases=True):
            return False
    return True


def _exact(specifier: SpecifierSet) -> str | None:
    """The version an exact pin (``==1.2.3``) names, else None."""
    pins = [s for s in specifier if s.operator in ("==", "===") and "*" not in s.version]
    return pins[0].version if pins else None


def _explanation(lines: list[str], limit: int = 8) -> str:
    """The resolver's own words, one line: its explanation without the installer's log prefixes."""
    kept = []
    for line in lines[: limit * 2]:
        line = re.sub(r"^(install: |build: )", "", line).strip()
        line = re.sub(r"^(error: |ERROR: |cause: |[×╰─▶ ]+)", "", line).strip()
        if line and not line.startswith(("fuseml-installer:", "hint:")) and "input installer=" not in line:
            kept.append(line if line.endswith((".", ":")) else f"{line}:" if not kept else f"{line}.")
    return " ".join(kept[:limit])
