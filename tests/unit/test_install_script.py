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


@pytest.mark.parametrize("installer,half_copied", [("uv", False), ("pip", False), ("pip", True)])
def test_a_venv_without_pip_gets_what_python_m_venv_installs(installer: str, half_copied: bool, tmp_path: Path) -> None:
    """half_copied: what a uv that failed while copying pip leaves (an importable ``pip`` that does not run)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert "pip" not in distributions(venv)
    if half_copied:
        (site_packages(venv) / "pip").mkdir()
        (site_packages(venv) / "pip" / "__init__.py").write_text("")
    files = tmp_path / "files"
    write_environment_files(files, EnvSpec(source="test", requirements=("pip",)), None, installer)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    # UV_COMPILE_BYTECODE as the venv backend sets it for a trainer's venv.
    env |= {
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "UV_OFFLINE": "1",
        "PIP_NO_INDEX": "1",
        "UV_COMPILE_BYTECODE": "1",
    }
    done = subprocess.run(  # noqa: S603 - our own script
        ["sh", str(ROOT / INSTALL_SCRIPT), str(venv / "bin" / "python"), str(files), str(UV)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"fuseml-installer: {installer} done" in done.stdout, done.stdout
    assert distributions(venv) == what_venv_installs(tmp_path)
    assert any((site_packages(venv) / "pip").rglob("*.pyc")), "pip is compiled, as ensurepip compiles it"
    pip = subprocess.run([str(venv / "bin" / "pip"), "--version"], capture_output=True, text=True, check=False)
    assert pip.returncode == 0 and str(venv) in pip.stdout, pip.stderr
