"""``common/install.sh`` on a virtualenv made ``--without-pip`` (the venv backend's): it ends up with what
``python -m venv`` would have installed (pip; setuptools before Python 3.12), then the requirements.

Offline: the one requirement is pip itself, already there once bootstrapped, so neither installer reaches an
index; uv bootstraps from ensurepip's own wheels, pip's path runs ensurepip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from common.build_payload import INSTALL_SCRIPT, write_environment_files
from common.envspec import EnvSpec

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"


def what_venv_installs(tmp_path: Path) -> set[str]:
    """The distributions a plain ``python -m venv`` puts into a virtualenv of this Python."""
    plain = tmp_path / "plain"
    subprocess.run([sys.executable, "-m", "venv", str(plain)], check=True)
    return distributions(plain)


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def distributions(venv: Path) -> set[str]:
    return {d.metadata["Name"].lower() for d in metadata.distributions(path=[str(site_packages(venv))])}


def install(venv: Path, installer: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """install.sh with the one requirement pip, offline, as the venv backend runs it."""
    files = tmp_path / f"files-{venv.name}"
    write_environment_files(files, EnvSpec(source="test", requirements=("pip",)), None, installer)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "FUSEML_"))}
    environ |= {"UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_OFFLINE": "1", "PIP_NO_INDEX": "1", **env}
    return subprocess.run(  # noqa: S603 - our own script
        ["sh", str(ROOT / INSTALL_SCRIPT), str(venv / "bin" / "python"), str(files), str(UV)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def venv_without_pip(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


@pytest.mark.parametrize("installer,half_copied", [("uv", False), ("pip", False), ("pip", True)])
def test_a_venv_without_pip_gets_what_python_m_venv_installs(installer: str, half_copied: bool, tmp_path: Path) -> None:
    """half_copied: what a uv that failed while copying pip leaves (an importable ``pip`` that does not run)."""
    venv = venv_without_pip(tmp_path / "venv")
    assert "pip" not in distributions(venv)
    if half_copied:
        (site_packages(venv) / "pip").mkdir()
        (site_packages(venv) / "pip" / "__init__.py").write_text("")
    done = install(venv, installer, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"fuseml-installer: {installer} done" in done.stdout, done.stdout
    assert distributions(venv) == what_venv_installs(tmp_path)
    assert any((site_packages(venv) / "pip").rglob("*.pyc")), "pip is compiled, as ensurepip compiles it"
    pip = subprocess.run([str(venv / "bin" / "pip"), "--version"], capture_output=True, text=True, check=False)
    assert pip.returncode == 0 and str(venv) in pip.stdout, pip.stderr


def compiled(venv: Path) -> set[str]:
    """The modules of ``venv`` with bytecode, as paths relative to site-packages."""
    site = site_packages(venv)
    return {str(pyc.relative_to(site)) for pyc in site.rglob("*.pyc")}


def with_a_test_suite(venv: Path) -> Path:
    """A package in ``venv`` that has a test suite, as scikit-learn or pandas do."""
    package = site_packages(venv) / "fuseml_fake"
    (package / "tests").mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 1\n")
    (package / "tests" / "__init__.py").write_text("")
    (package / "tests" / "test_value.py").write_text("def test_value():\n    assert True\n")
    return package


def test_both_installers_leave_the_same_bytecode_every_module_but_the_test_suites(tmp_path: Path) -> None:
    by_installer = {}
    for installer in ("uv", "pip"):
        venv = venv_without_pip(tmp_path / f"venv-{installer}")
        package = with_a_test_suite(venv)
        done = install(venv, installer, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "fuseml-installer: compiling bytecode, test suites left out" in done.stdout
        assert list((package / "__pycache__").glob("__init__.*.pyc")), "an installed module is compiled"
        assert not (package / "tests" / "__pycache__").exists(), "its test suite is not"
        by_installer[installer] = compiled(venv)
    # ensurepip (which bootstraps pip on pip's path) compiles all of pip, its vendored test suites too.
    assert by_installer["uv"] <= by_installer["pip"]
    assert {name for name in by_installer["pip"] - by_installer["uv"] if not name.startswith("pip/_vendor/")} == set()
    assert any(name.startswith("pip/_internal/") for name in by_installer["uv"])


def test_bytecode_none_leaves_it_to_the_first_import(tmp_path: Path) -> None:
    venv = venv_without_pip(tmp_path / "venv")
    package = with_a_test_suite(venv)
    done = install(venv, "uv", tmp_path, FUSEML_BYTECODE="none")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "compiling bytecode" not in done.stdout
    assert compiled(venv) == set(), "neither uv nor a compile step wrote bytecode"
    assert not (package / "__pycache__").exists()
