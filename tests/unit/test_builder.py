"""Builder logic without a container engine: settings, tags and the files they hash,
build context, log following, backend choice, and the venv backend's lock."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from common import venv_build
from common.build_payload import (
    CHECK_PYTHON,
    INSTALL_SCRIPT,
    builder_version,
    copy_app,
    payload,
    run_script,
    trainer_code,
    write_context,
    write_environment_files,
)
from common.check_python import satisfied
from common.envspec import EnvSpec, load_envspec
from common.envspec.tag import environment_tag
from common.errors import InputError
from common.installer import find_uv
from common.venv_build import VenvJob
from steps.builder.backends import choose_backend, detect, load_backend
from steps.builder.backends.base import BuildError, BuildPlan, error_lines
from steps.builder.backends.docker import follow_build, follow_push
from steps.builder.backends.venv import MARKER, VenvBackend
from steps.builder.registry import RegistryError
from steps.builder.settings import BuilderSettings

ROOT = Path(__file__).resolve().parents[2]
WINE = ROOT / "examples" / "codesets" / "wine"


def test_defaults_are_fusemls() -> None:
    settings = BuilderSettings.from_environ({})
    assert settings.registry == "registry.fuseml-registry"
    assert settings.pull_reference("t") == "127.0.0.1:30500/mlflow/trainer:t"
    assert settings.push_reference("t") == "registry.fuseml-registry/mlflow/trainer:t"
    assert settings.backend == "auto" and settings.base_image == "python:3.11-slim"


def test_empty_pull_registry_means_the_push_registry() -> None:
    settings = BuilderSettings.from_environ({"FUSEML_REGISTRY": "reg.example:5000", "FUSEML_PULL_REGISTRY": ""})
    assert settings.pull_reference("t") == "reg.example:5000/mlflow/trainer:t"


def test_fuseml_only_inputs_are_accepted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    BuilderSettings.from_environ({"FUSEML_MINICONDA_VERSION": "4.10", "FUSEML_INTEL_OPTIMIZED": "true"})
    assert "miniconda_version=4.10 is accepted and ignored" in caplog.text
    assert "intel_optimized=true is accepted and ignored" in caplog.text


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="FUSEML_BACKEND"):
        BuilderSettings.from_environ({"FUSEML_BACKEND": "kaniko"})
    with pytest.raises(InputError, match="PIP_CERT=/nope is not a file"):
        BuilderSettings.from_environ({"PIP_CERT": "/nope"})


def test_cache_dir_default_and_input(tmp_path: Path) -> None:
    assert BuilderSettings.from_environ({"HOME": "/h"}).cache_dir == Path("/h/.cache/fuseml/venvs")
    given = BuilderSettings.from_environ({"FUSEML_CACHE_DIR": str(tmp_path)})
    assert given.cache_dir == tmp_path


def test_tag_is_stable_and_sensitive(tmp_path: Path) -> None:
    spec = load_envspec(WINE)
    version = builder_version()
    tag = environment_tag(spec, "sha256:abc", version, "linux/amd64")
    assert len(tag) == 16 and tag == environment_tag(load_envspec(WINE), "sha256:abc", version, "linux/amd64")
    changed = EnvSpec(source="x", python=spec.python, requirements=(*spec.requirements, "numpy"))
    assert environment_tag(changed, "sha256:abc", version, "linux/amd64") != tag
    assert environment_tag(spec, "sha256:def", version, "linux/amd64") != tag
    assert environment_tag(spec, "sha256:abc", version + "x", "linux/amd64") != tag
    assert environment_tag(spec, "sha256:abc", version, "linux/arm64") != tag


def test_build_context_has_template_inputs_and_trainer(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    context = write_context(tmp_path / "ctx", load_envspec(WINE), ca)
    assert (context / "Dockerfile").read_text().startswith("# The trainer image")
    assert "mlflow==3.17.2" in (context / "build" / "requirements.txt").read_text()
    assert (context / "build" / "pip-ca.crt").read_text() == ca.read_text()
    assert (context / "build" / "python-constraint").read_text().splitlines() == ["3.11", "python_env.yaml"]
    assert (context / "build" / "run").stat().st_mode & 0o111
    assert (context / "app" / "steps" / "trainer" / "__main__.py").is_file()
    assert (context / "app" / "common" / "entrypoint.py").is_file()
    assert not (context / "app" / "steps" / "builder").exists()


# What write_context adds from the codeset's spec, pip's CA and the installer input; everything else is the payload.
SPEC_FILES = {f"build/{n}" for n in ("requirements.txt", "constraints.txt", "build-requirements.txt")} | {
    "build/python-constraint",
    "build/pip-ca.crt",
    "build/installer",
}


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_context_holds_exactly_the_hashed_payload(tmp_path: Path) -> None:
    uv = find_uv({})
    assert uv is not None, "uv is a dependency of the builder"
    written = files_under(write_context(tmp_path / "ctx", load_envspec(WINE), None, "auto", uv))
    assert SPEC_FILES <= set(written)
    assert written.pop("build/uv") == uv.read_bytes(), "the builder's own uv goes into the context"
    assert (tmp_path / "ctx" / "build" / "uv").stat().st_mode & 0o111
    assert {name: content for name, content in written.items() if name not in SPEC_FILES} == payload()
    copy_app(tmp_path / "venv-app")
    app = {name.removeprefix("app/"): c for name, c in payload().items() if name.startswith("app/")}
    assert files_under(tmp_path / "venv-app") == app


def test_trainer_code_is_the_trainer_and_what_it_imports() -> None:
    code = trainer_code()
    assert {"steps/__init__.py", "steps/trainer/__main__.py", "common/entrypoint.py", "common/errors.py"} <= set(code)
    assert not any(name.startswith("steps/builder/") for name in code)


def test_the_tag_hashes_what_goes_into_the_image_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    for part in ("common", "steps", "Dockerfiles"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    spec = load_envspec(WINE)

    def tag() -> str:
        return environment_tag(spec, "sha256:abc", builder_version(root=root), "linux/amd64")

    def edit(name: str, line: str = "# edited") -> None:
        with open(root / name, "a") as f:
            f.write(f"\n{line}\n")

    first = tag()
    assert builder_version(root=root) == builder_version(), "the same files hash the same wherever they are"
    edit("steps/builder/registry/client.py")
    edit("steps/builder/step.py")
    (root / "common" / "unused_by_the_trainer.py").write_text("VALUE = 1\n")
    assert tag() == first, "files the image does not hold do not count"

    seen = {first}
    for name in ("common/errors.py", "steps/trainer/step.py", "Dockerfiles/trainer.Dockerfile", CHECK_PYTHON):
        edit(name)
        assert tag() not in seen, f"an edit of {name} must change the tag"
        seen.add(tag())

    assert "app/common/unused_by_the_trainer.py" not in payload("trainer", root)
    edit("steps/trainer/launch.py", "import common.unused_by_the_trainer")
    assert "app/common/unused_by_the_trainer.py" in payload("trainer", root), "a newly imported module is copied"
    before = tag()
    edit("common/unused_by_the_trainer.py")
    assert tag() != before


def test_the_tag_does_not_depend_on_the_installer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from steps.builder import step

    tags: list[str] = []

    def found(self: VenvBackend, plan: BuildPlan) -> str:
        tags.append(plan.tag)
        return "venv://built-before"

    monkeypatch.setattr(VenvBackend, "find", found)
    monkeypatch.chdir(WINE)
    for installer in ("auto", "uv", "pip"):
        environ = {"FUSEML_BACKEND": "venv", "FUSEML_CACHE_DIR": str(tmp_path), "FUSEML_INSTALLER": installer}
        assert step.build(environ) == "venv://built-before"
    assert len(tags) == 3 and len(set(tags)) == 1, tags

    spec = load_envspec(WINE)
    with_uv = files_under(write_context(tmp_path / "uv", spec, None, "auto", find_uv({})))
    with_pip = files_under(write_context(tmp_path / "pip", spec, None, "pip", find_uv({})))
    assert "build/uv" in with_uv and "build/uv" not in with_pip, "installer=pip sends no uv"
    assert with_uv["build/installer"] != with_pip["build/installer"]
    hashed = payload()
    kept = [{name: content for name, content in files.items() if name in hashed} for files in (with_uv, with_pip)]
    assert kept[0] == kept[1] == hashed, "the installer changes nothing the tag hashes"


def test_bad_installer_input() -> None:
    assert BuilderSettings.from_environ({}).installer == "auto"
    with pytest.raises(InputError, match="FUSEML_INSTALLER"):
        BuilderSettings.from_environ({"FUSEML_INSTALLER": "conda"})


# install.sh with stand-ins for the virtualenv's python (its pip) and for uv, each writing its calls to $CALLS.
# A venv's python that has pip (install.sh's checks for it pass) and records what pip is asked to do.
FAKE_PYTHON = """case "$*" in
    "-c import pip" | "-m pip --version") exit 0 ;;
    "-c import sysconfig"*) echo /venv/site-packages; exit 0 ;;
esac
echo "python $* PIP_CERT=${PIP_CERT:-}" >> "$CALLS"
"""
FAKE_UV = """if [ "$1" = --version ]; then echo "uv 9.9.9 (stand-in)"; exit 0; fi
echo "uv $* SSL_CERT_FILE=${SSL_CERT_FILE:-} strategy=${UV_INDEX_STRATEGY:-} index=${UV_INDEX_URL:-} \
compile=${UV_COMPILE_BYTECODE:-}" >> "$CALLS"
if [ -n "${UV_SAYS:-}" ]; then echo "$UV_SAYS" >&2; fi
exit "${UV_EXIT:-0}"
"""
# install.sh's compile step: both installers are told not to compile, then this compiles for both.
COMPILE = "python -m compileall -qq -j 0 -x /tests?/ /venv/site-packages"
FOREIGN_UV = 'echo "cannot execute binary file: Exec format error" >&2; exit 126\n'


def run_install(
    tmp_path: Path, installer: str, uv: str | None, **extra: str
) -> tuple[subprocess.CompletedProcess, list]:
    files = tmp_path / "files"
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    write_environment_files(files, load_envspec(WINE), ca, installer)
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\n" + FAKE_PYTHON)
    python.chmod(0o755)
    argv = ["/bin/sh", str(ROOT / INSTALL_SCRIPT), str(python), str(files)]
    if uv is not None:
        (tmp_path / "uv").write_text("#!/bin/sh\n" + uv)
        (tmp_path / "uv").chmod(0o755)
        argv.append(str(tmp_path / "uv"))
    calls = tmp_path / "calls"
    env = {"PATH": "/usr/bin:/bin", "CALLS": str(calls), **extra}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_install_uses_uv_like_pip_with_the_pypi_ca(tmp_path: Path) -> None:
    done, calls = run_install(tmp_path, "auto", FAKE_UV, PIP_INDEX_URL="https://mirror.example/simple")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "fuseml-installer: uv 9.9.9 (stand-in)" and lines[-1].startswith("fuseml-installer: uv done")
    assert [c.split()[:4] for c in calls[:2]] == [["uv", "pip", "install", "--python"]] * 2, calls
    files = tmp_path / "files"
    assert f" --upgrade -r {files}/build-requirements.txt " in calls[0]
    assert f" -r {files}/requirements.txt " in calls[1] and "constraints.txt" not in calls[1], "no empty -c for uv"
    ca = tmp_path / "files" / "pip-ca.crt"
    for call in calls[:2]:
        assert f"SSL_CERT_FILE={ca}" in call and "strategy=unsafe-best-match" in call
        assert "index=https://mirror.example/simple" in call, "pip's index reaches uv"
        assert call.endswith(" compile=0"), "uv compiles nothing itself"
    assert calls[2:] == [COMPILE + " PIP_CERT="], "one compile step after uv, as after pip"


@pytest.mark.parametrize(
    "installer,uv,extra,why",
    [
        ("auto", None, {}, "no uv in the builder's environment"),
        ("auto", FOREIGN_UV, {}, "uv does not run here: cannot execute binary file: Exec format error"),
        ("auto", FAKE_UV, {"UV_EXIT": "2"}, "uv failed (exit 2)"),
        ("pip", FAKE_UV, {}, "input installer=pip"),
    ],
)
def test_install_falls_back_to_pip_and_says_why(
    tmp_path: Path, installer: str, uv: str | None, extra: dict[str, str], why: str
) -> None:
    done, calls = run_install(tmp_path, installer, uv, **extra)
    assert done.returncode == 0, done.stderr
    assert f"fuseml-installer: pip ({why})" in done.stdout.splitlines(), done.stdout
    pythons = [c for c in calls if c.startswith("python ")]
    files = tmp_path / "files"
    ca = files / "pip-ca.crt"
    assert pythons == [
        f"python -m pip install --no-compile --upgrade -r {files}/build-requirements.txt PIP_CERT={ca}",
        f"python -m pip install --no-compile -r {files}/requirements.txt -c {files}/constraints.txt PIP_CERT={ca}",
        COMPILE + f" PIP_CERT={ca}",
    ]
    assert all(c.startswith("uv ") for c in calls[: len(calls) - 3])
    assert done.stdout.splitlines()[-1].startswith("fuseml-installer: pip done, cpu ")


def test_install_with_installer_uv_has_no_fallback(tmp_path: Path) -> None:
    done, calls = run_install(tmp_path, "uv", FAKE_UV, UV_EXIT="2")
    assert done.returncode == 1 and not [c for c in calls if c.startswith("python ")]
    assert "error: input installer=uv, but uv failed (exit 2); set installer to auto or pip" in done.stderr


def test_install_does_not_retry_with_pip_what_uv_found_unsatisfiable(tmp_path: Path) -> None:
    """pip cannot meet contradicting requirements either; it would only take minutes to say so."""
    says = "  x No solution found when resolving dependencies:\n  Because kserve==0.21.0 depends on numpy>=1.26"
    done, calls = run_install(tmp_path, "auto", FAKE_UV, UV_EXIT="1", UV_SAYS=says)
    assert done.returncode == 1 and not [c for c in calls if c.startswith("python ")], calls
    assert "Because kserve==0.21.0 depends on numpy>=1.26" in done.stdout, "uv's explanation is shown"
    assert (
        "error: the requirements cannot all be met, so pip is not tried: x No solution found when resolving "
        "dependencies: Because kserve==0.21.0 depends on numpy>=1.26" in done.stderr
    ), "one line: the log's reason"


def test_template_keeps_the_ca_in_the_throwaway_stage() -> None:
    text = (ROOT / "Dockerfiles" / "trainer.Dockerfile").read_text()
    final = text.split("\nFROM ${BASE_IMAGE}\n", 1)[1]
    instructions = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "build/" not in final and "pip-ca" not in final and "--mount" not in instructions
    assert re.search(r"\buv\b", final) is None, "uv stays in the throwaway stage"
    assert "USER 1000" in final and 'CMD ["run"]' in final
    assert final.index("COPY --from=environment") < final.index("COPY app/")


def test_check_python() -> None:
    assert satisfied("", "3.11.2") and satisfied("3.11", "3.11.2") and not satisfied("3.10", "3.11.2")
    assert satisfied(">=3.9,<3.12", "3.11.2") and not satisfied(">=3.12", "3.11.2")


def test_error_lines_see_through_dockers_red_stderr() -> None:
    painted = ["Collecting x\n", "\x1b[91merror: the requirements cannot all be met: no version of x==0\n\x1b[0m"]
    assert error_lines(painted) == ["error: the requirements cannot all be met: no version of x==0"]


def test_follow_build_logs_and_raises_with_pips_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    ok = [{"stream": "Step 1/2 : FROM x\n"}, {"stream": " ---> abc\n"}, {"aux": {"ID": "sha256:1"}}]
    assert follow_build(ok) == "sha256:1"
    assert "build: Step 1/2 : FROM x" in caplog.text
    failing = [
        {"stream": "Collecting nosuch==1\n"},
        {"stream": "ERROR: No matching distribution found for nosuch==1\n"},
        {"errorDetail": {"message": "The command returned a non-zero code: 1"}, "error": "returned 1"},
    ]
    with pytest.raises(BuildError, match="No matching distribution found for nosuch==1") as caught:
        follow_build(failing)
    assert caught.value.build_log


def test_follow_push_reports_progress_and_refusal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    chunks = [
        {"status": "Pushing", "id": "l1", "progressDetail": {"current": 10, "total": 100}},
        {"status": "Pushing", "id": "l1", "progressDetail": {"current": 60, "total": 100}},
        {"status": "Pushed", "id": "l1"},
        {"aux": {"Tag": "t", "Digest": "sha256:9", "Size": 1}},
    ]
    assert follow_push(chunks, "r/x:t") == "sha256:9"
    assert "l1 Pushing 50%" in caplog.text
    with pytest.raises(RegistryError, match="push of r/x:t was refused: denied"):
        follow_push([{"error": "denied", "errorDetail": {"message": "denied"}}], "r/x:t")


def test_error_lines_prefers_error_lines() -> None:
    assert error_lines(["a", "ERROR: bad thing", "b"]) == ["ERROR: bad thing"]
    assert error_lines(["a", "b"]) == ["a", "b"]


def test_backend_choice(tmp_path: Path) -> None:
    nothing = {"PATH": str(tmp_path), "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    assert detect(nothing) == "venv"
    settings = BuilderSettings.from_environ({**nothing, "FUSEML_BACKEND": "venv"})
    assert choose_backend(nothing, settings).name == "venv"
    with pytest.raises(InputError, match="unknown builder backend"):
        load_backend("kaniko", nothing, settings)


def test_venv_backend_builds_once_under_concurrency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = BuilderSettings.from_environ({"FUSEML_CACHE_DIR": str(tmp_path), "FUSEML_BACKEND": "venv"})
    plan = BuildPlan(spec=load_envspec(WINE), tag="t1", settings=settings, codeset=WINE)
    builds: list[int] = []

    def fake_create(job: VenvJob) -> None:
        builds.append(1)
        time.sleep(0.3)
        (job.folder / "bin").mkdir(parents=True)
        (job.folder / "bin" / "run").write_text("#!/bin/sh\n")

    monkeypatch.setattr(venv_build, "create_venv", fake_create)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(VenvBackend({}, settings).build(plan))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == [1]
    assert results == [f"venv://{tmp_path / 't1'}"] * 3
    assert (tmp_path / "t1" / MARKER).is_file()
    assert VenvBackend({}, settings).find(plan) == f"venv://{tmp_path / 't1'}"


def test_venv_backend_rejects_a_python_it_cannot_match(tmp_path: Path) -> None:
    settings = BuilderSettings.from_environ({"FUSEML_CACHE_DIR": str(tmp_path)})
    spec = EnvSpec(source="python_env.yaml", python="2.7")
    plan = BuildPlan(spec=spec, tag="t2", settings=settings, codeset=WINE)
    with pytest.raises(InputError, match=r"python_env.yaml asks for python 2.7, but .* is Python 3\."):
        VenvBackend({}, settings).build(plan)


def test_the_run_script_keeps_a_hostile_cache_folder_name_a_name(tmp_path: Path) -> None:
    """sh expands $(...) inside double quotes: the generated script must quote for sh."""
    pwned = tmp_path / "pwned"
    venv = tmp_path / f"cache $(touch {pwned}) `touch {pwned}` \"'" / "t1"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text('#!/bin/sh\necho "python $*"\n')
    python.chmod(0o755)
    run = venv / "bin" / "run"
    run.write_text(run_script(venv))
    run.chmod(0o755)
    done = subprocess.run([str(run), "--flag"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "python -m steps.trainer --flag\n"
    assert not pwned.exists(), "the cache folder's name ran as a command"


@pytest.mark.parametrize(
    "variable,value",
    [
        ("FUSEML_REPOSITORY", "../../../evil"),
        ("FUSEML_REPOSITORY", "mlflow trainer"),
        ("FUSEML_REPOSITORY", "MLflow/Trainer"),
        ("FUSEML_REGISTRY", "reg.example/path"),
        ("FUSEML_REGISTRY", "reg example:5000"),
        ("FUSEML_PULL_REGISTRY", "127.0.0.1:5000/x"),
    ],
)
def test_registry_and_repository_follow_the_oci_grammar(variable: str, value: str) -> None:
    with pytest.raises(InputError) as caught:
        BuilderSettings.from_environ({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r} is not a valid ") and "; " in message and "\n" not in message


def test_valid_registries_and_repositories_are_kept() -> None:
    for registry in ("127.0.0.1:5000", "localhost", "[::1]:5000", "reg-1.example.com"):
        settings = BuilderSettings.from_environ({"FUSEML_REGISTRY": registry, "FUSEML_REPOSITORY": "a/b-c/d__e.f"})
        assert settings.push_reference("t") == f"{registry}/a/b-c/d__e.f:t"


# A builder whose "pip" keeps writing into the environment until it is killed, run as its own process.
_KILLED_BUILDER = """
import sys
from pathlib import Path
from steps.builder.backends.base import BuildPlan
from steps.builder.backends.venv import VenvBackend
from common import venv_build
from common.envspec import load_envspec
from steps.builder.settings import BuilderSettings

cache, wine, pid_file = map(Path, sys.argv[1:])
writer = 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0"; i=0; while :; do i=$((i+1)); mkdir -p "$1/lib/d$i"; done'

def slow_pip(job):
    (job.folder / "lib").mkdir(parents=True)
    venv_build.run_logged(["sh", "-c", writer, str(pid_file), str(job.folder)], "pip", job)

venv_build.create_venv = slow_pip
settings = BuilderSettings.from_environ({"FUSEML_CACHE_DIR": str(cache), "FUSEML_BACKEND": "venv"})
VenvBackend({}, settings).build(BuildPlan(spec=load_envspec(wine), tag="t1", settings=settings, codeset=wine))
"""


def test_a_killed_builder_takes_pip_with_it_and_the_next_build_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.polling import wait_until
    from common.processes import start_time

    pip_pid = tmp_path / "pip.pid"
    builder = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _KILLED_BUILDER, str(tmp_path / "cache"), str(WINE), str(pip_pid)], cwd=ROOT
    )
    try:
        assert wait_until(pip_pid.exists, timeout=60, interval=0.05), "the builder never started its pip"
        assert (tmp_path / "cache" / "t1.lock").read_text() == str(builder.pid), "the lock names its owner"
    finally:
        builder.kill()
        builder.wait()
    pip = int(pip_pid.read_text())
    assert wait_until(lambda: start_time(pip) is None, timeout=30, interval=0.05), "pip outlived the killed builder"

    def fake_create(job: VenvJob) -> None:
        (job.folder / "bin").mkdir(parents=True)
        (job.folder / "bin" / "run").write_text("#!/bin/sh\n")

    monkeypatch.setattr(venv_build, "create_venv", fake_create)
    settings = BuilderSettings.from_environ({"FUSEML_CACHE_DIR": str(tmp_path / "cache"), "FUSEML_BACKEND": "venv"})
    plan = BuildPlan(spec=load_envspec(WINE), tag="t1", settings=settings, codeset=WINE)
    assert VenvBackend({}, settings).build(plan) == f"venv://{tmp_path / 'cache' / 't1'}"
    assert not (tmp_path / "cache" / "t1" / "lib").exists(), "the half-built folder was reused"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["t1", "t1.lock"]
