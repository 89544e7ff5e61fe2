"""Builder logic without a container engine: settings, tags, build context,
log following, backend choice, and the venv backend's lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from steps.builder.envspec import EnvSpec, load_envspec
from common.errors import InputError
from steps.builder.registry import RegistryError
from steps.builder.backends import choose_backend, detect, load_backend
from steps.builder.backends.base import BuildError, BuildPlan, error_lines
from steps.builder.backends.docker import follow_build, follow_push
from steps.builder.backends.venv import MARKER, VenvBackend
from steps.builder.check_python import satisfied
from steps.builder.payload import builder_version, write_context
from steps.builder.settings import BuilderSettings
from steps.builder.tag import environment_tag

WINE = Path(__file__).resolve().parents[2] / "examples" / "codesets" / "wine"


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


def test_template_keeps_the_ca_in_the_throwaway_stage() -> None:
    text = (Path(__file__).resolve().parents[2] / "Dockerfiles" / "trainer.Dockerfile").read_text()
    final = text.split("\nFROM ${BASE_IMAGE}\n", 1)[1]
    instructions = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "build/" not in final and "pip-ca" not in final and "--mount" not in instructions
    assert "USER 1000" in final and 'CMD ["run"]' in final
    assert final.index("COPY --from=environment") < final.index("COPY app/")


def test_check_python() -> None:
    assert satisfied("", "3.11.2") and satisfied("3.11", "3.11.2") and not satisfied("3.10", "3.11.2")
    assert satisfied(">=3.9,<3.12", "3.11.2") and not satisfied(">=3.12", "3.11.2")


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

    def fake_create(self: VenvBackend, plan: BuildPlan, folder: Path) -> None:
        builds.append(1)
        time.sleep(0.3)
        (folder / "bin").mkdir(parents=True)
        (folder / "bin" / "run").write_text("#!/bin/sh\n")

    monkeypatch.setattr(VenvBackend, "_create", fake_create)
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
