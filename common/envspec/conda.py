"""conda.yaml read without conda: its ``pip:`` list plus the conda packages pip can install.

FuseML codesets describe their environment in conda.yaml. Our images install
with pip into a virtualenv (no conda: smaller images, no second resolver), so
a conda.yaml is translated:

- ``python=3.11`` (or ``python>=3.9``) becomes the Python constraint, checked
  against the base image's Python by the builder;
- a conda package that exists on PyPI under the same name (numpy, pandas,
  scikit-learn, ...) becomes a pip requirement, its conda version spec
  translated (``numpy=1.26`` -> ``numpy==1.26.*``, build strings dropped);
- a few packages PyPI knows under another name are renamed (``pytorch`` ->
  ``torch``), with a note in the log;
- conda-only packages (compilers, CUDA toolkits, C libraries) are an error that
  names them, since silently leaving them out would build an environment that
  fails later;
- ``channels`` and ``pip`` itself are ignored (noted in the log).

A name we do not know as conda-only goes to pip, whose "No matching
distribution" then names it.
"""

from __future__ import annotations

import re
from pathlib import Path

from common.envspec.requirements import normalise_requirement, parse_requirement_lines
from common.envspec.spec import EnvSpec, normalise_python
from common.envspec.yaml_file import kind_of, load_yaml, string_list
from common.errors import CodesetError

# Conda packages with no PyPI project of that name, and what to use instead.
CONDA_ONLY: dict[str, str] = {
    "cudatoolkit": "a CUDA base image, or the nvidia-*-cu12 wheels (e.g. nvidia-cuda-runtime-cu12)",
    "cuda-toolkit": "a CUDA base image, or the nvidia-*-cu12 wheels",
    "cuda": "a CUDA base image",
    "cudnn": "nvidia-cudnn-cu12",
    "nccl": "nvidia-nccl-cu12",
    "cupti": "nvidia-cuda-cupti-cu12",
    "nomkl": "nothing (pip wheels bring their own BLAS)",
    "blas": "nothing (pip wheels bring their own BLAS)",
    "libblas": "nothing (pip wheels bring their own BLAS)",
    "libcblas": "nothing (pip wheels bring their own BLAS)",
    "liblapack": "nothing (pip wheels bring their own BLAS)",
    "openblas": "nothing (pip wheels bring their own BLAS)",
    "libopenblas": "nothing (pip wheels bring their own BLAS)",
    "libgcc-ng": "nothing (the base image's C library)",
    "libstdcxx-ng": "nothing (the base image's C++ library)",
    "libgomp": "nothing",
    "libgfortran-ng": "nothing",
    "libffi": "nothing",
    "ld-impl-linux-64": "nothing",
    "openssl": "nothing (the base image's OpenSSL)",
    "ca-certificates": "nothing (the base image's certificates)",
    "readline": "nothing",
    "ncurses": "nothing",
    "sqlite": "nothing",
    "tk": "nothing",
    "xz": "nothing",
    "zlib": "nothing",
    "bzip2": "nothing",
    "libzlib": "nothing",
    "libuuid": "nothing",
    "tzdata": "tzdata (PyPI has it, but conda's is the C-library data: drop it)",
    "gcc": "a base image with compilers, or binary wheels",
    "gxx": "a base image with compilers, or binary wheels",
    "gfortran": "a base image with compilers, or binary wheels",
    "make": "a base image with build tools",
    "r-base": "an R-capable image (this builder makes Python environments)",
    "ffmpeg": "a base image with ffmpeg, or imageio-ffmpeg",
}
# Conda names whose PyPI project is named differently.
PYPI_NAMES: dict[str, str] = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-opencv": "opencv-python",
    "tensorflow-base": "tensorflow",
    "matplotlib-base": "matplotlib",
    "pytables": "tables",
    "msgpack-python": "msgpack",
}
# Conda-side tools that a pip install does not need.
IGNORED = {"pip", "conda", "mamba"}

_SPEC = re.compile(r"^(?:[^\s:]+::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(?P<rest>.*)$")


def load_conda(path: Path, root: Path) -> EnvSpec:
    """conda.yaml -> EnvSpec, or a CodesetError naming the file and the offending entries."""
    name = path.name
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise CodesetError(
            f"{name}: expected a mapping with 'dependencies', got {kind_of(data)}",
            f"fix it or delete {name} to use requirements.txt",
        )
    dependencies = data.get("dependencies")
    if dependencies is None:
        dependencies = []
    if not isinstance(dependencies, list):
        raise CodesetError(
            f"{name}: 'dependencies' must be a list, got {kind_of(dependencies)}",
            f"fix it or delete {name} to use requirements.txt",
        )
    notes: list[str] = []
    if data.get("channels"):
        notes.append("conda channels are ignored: packages are installed with pip from PyPI")
    python: str | None = None
    converted: list[str] = []
    pip_lines: list[str] = []
    conda_only: list[str] = []
    for item in dependencies:
        if isinstance(item, dict):
            if set(item) != {"pip"}:
                raise CodesetError(
                    f"{name}: in 'dependencies', only a 'pip:' list may be a mapping, got {sorted(item)}"
                )
            pip_lines.extend(string_list(item["pip"], name, "pip"))
            continue
        if not isinstance(item, str) or not item.strip():
            raise CodesetError(f"{name}: 'dependencies' must list package specs, got {kind_of(item)} ({item!r})")
        package, spec = split_conda_spec(item, name)
        if package == "python":
            python = normalise_python(spec or "", name) if spec else None
            continue
        if package in IGNORED:
            notes.append(f"{item!r} ignored: the environment is installed with pip")
            continue
        if package in CONDA_ONLY:
            conda_only.append(package)
            continue
        if package in PYPI_NAMES:
            notes.append(f"{package} installed as {PYPI_NAMES[package]} (its name on PyPI)")
            package = PYPI_NAMES[package]
        converted.append(normalise_requirement(package + spec, f"{name} 'dependencies'"))
    if conda_only:
        listed = "; ".join(f"{p} (use {CONDA_ONLY[p]})" for p in conda_only)
        raise CodesetError(
            f"{name}: conda-only package{'s' if len(conda_only) > 1 else ''} {', '.join(conda_only)} "
            f"cannot be installed: this builder installs with pip, and PyPI has no such package",
            f"remove {'them' if len(conda_only) > 1 else 'it'} from {name}: {listed}",
        )
    requirements, constraints, options = parse_requirement_lines(pip_lines, f"{name} 'pip'", root)
    return EnvSpec(
        source=name,
        python=python,
        requirements=tuple(sorted({*converted, *requirements})),
        constraints=constraints,
        pip_options=options,
        notes=tuple(notes),
    )


def split_conda_spec(item: str, where: str) -> tuple[str, str]:
    """A conda match spec as (lower-case name, PEP 440 specifier or "")."""
    match = _SPEC.match(item.strip())
    if not match:
        raise CodesetError(f"{where}: {item!r} is not a conda package spec")
    name = match.group("name").lower().replace("_", "-")
    rest = match.group("rest").strip()
    if not rest:
        return name, ""
    if "[" in rest or "|" in rest:
        raise CodesetError(
            f"{where}: {item!r} uses conda-only spec syntax ('[...]' or '|')",
            "write a plain version such as numpy=1.26 or numpy>=1.26,<2",
        )
    if rest.startswith("=") and not rest.startswith("=="):
        return name, _fuzzy(rest[1:].split("=")[0])
    if rest[0] in "<>!~=":
        return name, rest.replace(" ", "")
    # "name 1.2 build": a space instead of "=".
    return name, _fuzzy(rest.split()[0])


def _fuzzy(version: str) -> str:
    """Conda's ``=1.21`` means 1.21 or any 1.21.x: ``==1.21.*`` in PEP 440."""
    version = version.strip()
    if not version or version == "*":
        return ""
    if version.endswith(".*"):
        return f"=={version}"
    if version.endswith("*"):
        return f"=={version.rstrip('*').rstrip('.')}.*"
    return f"=={version}.*"
