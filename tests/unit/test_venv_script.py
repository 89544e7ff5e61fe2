"""``tools/venv.sh`` (``make venv``): the project through the builder's installer script, uv first, pip's CA given.

Offline: the virtualenv's ``pip``, ``python`` and ``uv`` are stubs that record
how they were called, so what is checked is the script's own work.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A virtualenv whose pip, python and uv record their calls in ``calls``; pip.conf's cert is ``conf-ca.crt``."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    calls = tmp_path / "calls"
    (tmp_path / "conf-ca.crt").write_text("CONF CA\n")
    conf = f'if [ "$1" = config ]; then echo {tmp_path}/conf-ca.crt; exit 0; fi\n'
    stub(bin_dir / "pip", conf + f'echo "pip $*" >> {calls}\n')
    stub(bin_dir / "python", f'echo "python $*" >> {calls}\n')
    stub(
        bin_dir / "uv",
        f'if [ "$1" = --version ]; then [ -z "${{UV_BROKEN:-}}" ] && echo "uv 0.13.9" && exit 0; exit 1; fi\n'
        f'echo "uv $* ca=$(cat "$SSL_CERT_FILE") compile=${{UV_COMPILE_BYTECODE:-}}" >> {calls}\n',
    )
    return tmp_path / "venv"


def run_script(venv: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "PIP_CERT"} | env
    return subprocess.run(  # noqa: S603 - our own script
        ["sh", str(ROOT / "tools" / "venv.sh"), str(venv), "dev"], env=environ, capture_output=True, text=True
    )


# install.sh's compile step, the stub python printing no site-packages folder.
COMPILE = [
    'python -c import sysconfig; print(sysconfig.get_paths()["purelib"])',
    "python -m compileall -qq -j 0 -x /tests?/ ",
]


def uv_pin() -> str:
    return next(part.strip('",') for part in (ROOT / "pyproject.toml").read_text().split() if part.startswith('"uv=='))


def test_uv_installs_the_project_with_pips_ca_from_pip_conf(venv: Path) -> None:
    done = run_script(venv)
    assert done.returncode == 0, done.stderr
    files = venv / ".fuseml-install"
    assert (files / "requirements.txt").read_text() == f"-e {ROOT}[dev]\n"
    calls = (venv.parent / "calls").read_text().splitlines()
    assert calls[0] == f"pip install -q {uv_pin()}"
    assert calls[1] == "python -c import pip", "the venv has pip: nothing to bootstrap"
    assert calls[2] == f"uv pip install --python {venv}/bin/python -r {files}/requirements.txt ca=CONF CA compile=0"
    assert calls[3:] == COMPILE, "uv compiles nothing: one step compiles after it, as after pip"
    assert done.stdout.startswith("fuseml-installer: uv 0.13.9")


def test_pip_cert_wins_over_pip_conf(venv: Path, tmp_path: Path) -> None:
    (tmp_path / "env-ca.crt").write_text("ENV CA\n")
    assert run_script(venv, PIP_CERT=str(tmp_path / "env-ca.crt")).returncode == 0
    assert (tmp_path / "calls").read_text().splitlines()[2].endswith("ca=ENV CA compile=0")


def test_without_a_working_uv_pip_installs_and_says_why(venv: Path) -> None:
    done = run_script(venv, UV_BROKEN="1")
    assert done.returncode == 0, done.stderr
    calls = (venv.parent / "calls").read_text().splitlines()
    files = venv / ".fuseml-install"
    assert calls[1:] == [
        "python -m pip --version",
        f"python -m pip install --no-compile -r {files}/requirements.txt -c {files}/constraints.txt",
        *COMPILE,
    ]
    assert "fuseml-installer: pip (uv does not run here" in done.stdout
