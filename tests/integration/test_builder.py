"""The builder step end to end: real Docker (Debian's docker.io), a real registry
(Debian's docker-registry) on loopback, the local Debian base image, and the
trainer image run against the real S3 and MLflow server from the fixtures.

Image builds take minutes the first time (pip downloads); Docker's layer cache
makes later runs quick. Each test uses its own repository in the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.ports import free_port
from common.processes import stop_process_group
from common.storage import open_store
from runner.services import start_process, wait_until
from steps.builder.registry import ImageRef, RegistryClient
from tests.fixtures.codesets import checkout_wine
from tests.fixtures.images import our_image
from tests.fixtures.services import read_result, run_step

BUILD_TIMEOUT = 1500
# pip's and uv's download caches survive across runs (HOME is a fresh folder per test).
PIP_CACHE = "/var/tmp/fuseml-tests-pip-cache"
UV_CACHE = "/var/tmp/fuseml-tests-uv-cache"
# Which installer put mlflow into an image (uv and pip each write their name into INSTALLER), and whether uv is there.
INSTALLED_BY = (
    'echo "installed by $(cat /opt/venv/lib/python3*/site-packages/mlflow-*.dist-info/INSTALLER)"; '
    'command -v uv || echo "no uv"'
)


@pytest.fixture
def codeset(tmp_path: Path) -> Path:
    """The wine codeset as FuseML checks it out, readable and writable by the image's user."""
    folder = checkout_wine(tmp_path / "project")
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    return folder


@pytest.fixture
def builder_env(step_env: dict[str, str], registry, base_image: str) -> dict[str, str]:
    """A builder step's env: the test registry (returned as the pull registry too), the local base."""
    env = dict(step_env)
    env.update(
        FUSEML_REGISTRY=registry.host,
        FUSEML_PULL_REGISTRY="",
        FUSEML_REPOSITORY=f"tests/trainer-{uuid.uuid4().hex[:8]}",
        FUSEML_BASE_IMAGE=base_image,
        FUSEML_BACKEND="docker",
        PIP_CACHE_DIR=PIP_CACHE,
    )
    if os.environ.get("PIP_CERT"):
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    return env


def build(env: dict[str, str], codeset: Path) -> subprocess.CompletedProcess[str]:
    return run_step("steps.builder", env, cwd=codeset, timeout=BUILD_TIMEOUT)


def assert_failed(result: subprocess.CompletedProcess[str], env: dict[str, str], *fragments: str) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    assert read_result(env) is None, "a failed step must leave no result"
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("builder: error: "), result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in last, last
    return last


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.slow
def test_builds_pushes_trains_then_skips(codeset, builder_env, registry, docker_client, services_env, tmp_path):
    result = build(builder_env, codeset)
    assert result.returncode == 0, result.stderr[-5000:]
    image = read_result(builder_env)
    ref = ImageRef.parse(image)
    assert ref.registry == registry.host and ref.repository == builder_env["FUSEML_REPOSITORY"]
    assert RegistryClient(registry.host).exists(ref), "the image was pushed"
    assert "=== Building" in result.stderr and "push:" in result.stderr

    attrs = docker_client.images.get(image).attrs
    labels = attrs["Config"]["Labels"]
    assert labels["org.opencontainers.image.created"] and "org.opencontainers.image.title" in labels
    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Size"] <= 700e6, f"trainer image is {attrs['Size'] / 1e6:.0f} MB"
    ca_check = docker_client.containers.run(
        image,
        ["sh", "-c", f"ls /tmp/build 2>&1; grep -rl 'BEGIN CERT' /opt 2>/dev/null | head -1; {INSTALLED_BY}"],
        remove=True,
    )
    assert b"pip-ca" not in ca_check and b"No such file" in ca_check, ca_check
    # The installer is read from the image (mlflow's INSTALLER record), not the log: layers may come from the cache.
    assert ca_check.decode().splitlines()[-2:] == ["installed by uv", "no uv"], "uv installs, then stays behind"

    # The image is the trainer: docker run it as FuseML would, codeset as working directory.
    results = tmp_path / "results-in-container"
    results.mkdir(mode=0o777)
    results.chmod(0o777)
    argv = ["/usr/bin/docker", "run", "--rm", "--network", "host", "-v", f"{codeset}:/project", "-w", "/project"]
    argv += ["-v", f"{results}:/results", "-e", "TASK_RESULT=model", "-e", "FUSEML_RESULTS_DIR=/results"]
    for name, value in services_env.items():
        argv += ["-e", f"{name}={value}"]
    trained = subprocess.run([*argv, image, "run"], capture_output=True, text=True, timeout=600, check=False)
    assert trained.returncode == 0, trained.stderr[-5000:]
    model_url = (results / "model").read_text()
    assert model_url.startswith("s3://mlflow-artifacts/"), model_url
    assert open_store(model_url, services_env).exists(model_url.rstrip("/") + "/MLmodel")

    # Same codeset again: the registry has the tag, nothing is built.
    images_before = {i.id for i in docker_client.images.list(all=True)}
    again = build(builder_env, codeset)
    assert again.returncode == 0, again.stderr
    assert read_result(builder_env) == image
    assert "already exists" in again.stderr and "=== Building" not in again.stderr
    assert {i.id for i in docker_client.images.list(all=True)} == images_before, "nothing may be built"


@pytest.mark.integration
@pytest.mark.slow
def test_venv_backend_builds_then_trains_inside(codeset, step_env, tmp_path):
    env = {
        **step_env,
        "FUSEML_BACKEND": "venv",
        "FUSEML_CACHE_DIR": str(tmp_path / "venvs"),
        "PIP_CACHE_DIR": PIP_CACHE,
        "UV_CACHE_DIR": UV_CACHE,
    }
    result = build(env, codeset)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "fuseml-installer: uv " in result.stderr, "the builder's own uv installs the venv"
    location = read_result(env)
    assert location.startswith("venv://"), location
    venv = Path(location.removeprefix("venv://"))
    assert venv.parent == tmp_path / "venvs" and (venv / "bin" / "run").is_file()

    trained = subprocess.run(
        [str(venv / "bin" / "run")],
        cwd=codeset,
        env={**step_env, "TASK_RESULT": "model"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert trained.returncode == 0, trained.stderr[-5000:]
    model_url = (Path(step_env["FUSEML_RESULTS_DIR"]) / "model").read_text()
    assert open_store(model_url, step_env).exists(model_url.rstrip("/") + "/MLmodel")

    # Installed with uv, found again when pip is asked for: the tag does not depend on the installer.
    again = build({**env, "FUSEML_INSTALLER": "pip"}, codeset)
    assert again.returncode == 0 and read_result(env) == location
    assert "already exists" in again.stderr and "=== Building" not in again.stderr


# -- bad inputs: a clear message, exit 1, no result -------------------------------------------


@pytest.mark.integration
def test_no_environment_file(codeset, step_env):
    for name in ("python_env.yaml", "requirements.txt", "MLproject"):
        (codeset / name).unlink()
    env = {**step_env, "FUSEML_BACKEND": "venv"}
    assert_failed(build(env, codeset), env, "no environment file", "requirements.txt")


@pytest.mark.integration
def test_malformed_yaml_names_file_and_line(codeset, step_env):
    (codeset / "python_env.yaml").write_text("python: '3.11'\ndependencies:\n  - numpy\n - pandas: [\n")
    env = {**step_env, "FUSEML_BACKEND": "venv"}
    assert_failed(build(env, codeset), env, "python_env.yaml, line 4")


@pytest.mark.integration
@pytest.mark.docker
def test_unsatisfiable_requirement_shows_pips_reason(codeset, builder_env):
    (codeset / "requirements.txt").write_text("scikit-learn==0.0.42\n")
    last = assert_failed(build(builder_env, codeset), builder_env, "image build failed")
    # The installer's reason: pip's "No matching distribution", or uv's "there is no version of" (pip not tried).
    reasons = ("No matching distribution", "satisfies", "there is no version of scikit-learn==0.0.42")
    assert "scikit-learn==0.0.42" in last and any(reason in last for reason in reasons), last


@pytest.mark.integration
@pytest.mark.docker
def test_python_the_base_cannot_satisfy(codeset, builder_env):
    (codeset / "python_env.yaml").write_text("python: '3.9'\ndependencies: [-r requirements.txt]\n")
    assert_failed(build(builder_env, codeset), builder_env, "Python 3.11", "python 3.9")


@pytest.mark.integration
@pytest.mark.docker
def test_registry_unreachable(codeset, builder_env):
    env = {**builder_env, "FUSEML_REGISTRY": f"127.0.0.1:{free_port(with_grpc=False)}"}
    assert_failed(build(env, codeset), env, "does not answer", env["FUSEML_REGISTRY"])


@pytest.fixture
def readonly_registry(tmp_path: Path) -> Iterator[str]:
    """A registry in read-only maintenance mode: it answers reads and refuses every push."""
    port = free_port(with_grpc=False)
    config = {
        "version": 0.1,
        "storage": {
            "filesystem": {"rootdirectory": str(tmp_path / "ro")},
            "maintenance": {"readonly": {"enabled": True}},
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (tmp_path / "ro.yml").write_text(json.dumps(config))
    log_path = tmp_path / "ro.log"
    proc = start_process(
        [shutil.which("docker-registry") or "docker-registry", "serve", str(tmp_path / "ro.yml")], log_path
    )
    try:
        wait_until(lambda: _answers(port), what="read-only registry", timeout=30, proc=proc, log_path=log_path)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process_group(proc)


def _answers(port: int) -> bool:
    try:
        RegistryClient(f"127.0.0.1:{port}", timeout=1).manifest_digest("x/y", "z")
    except Exception:  # noqa: BLE001 - not up yet
        return False
    return True


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.slow
def test_push_refused(codeset, builder_env, readonly_registry):
    env = {**builder_env, "FUSEML_REGISTRY": readonly_registry}
    assert_failed(build(env, codeset), env, "push of", "was refused")


# -- the builder's own image, with buildah, as a pod would run it ---------------------------

POD_LIKE = ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--cap-add", "SYS_ADMIN"]


@pytest.fixture(scope="session")
def builder_image(docker_client, base_image: str) -> str:
    """The builder image (Dockerfiles/builder.Dockerfile), built with BuildKit and the PyPI CA as a secret."""
    return our_image("builder", base_image)


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.slow
def test_builder_image_builds_with_buildah(codeset, builder_image, base_image, registry, docker_client, tmp_path):
    probe = subprocess.run(["/usr/bin/docker", "run", "--rm", *POD_LIKE, builder_image, "true"], capture_output=True)
    assert probe.returncode == 0, f"this Docker cannot run a pod-like container: {probe.stderr.decode()[-300:]}"
    # buildah pulls the base from a registry, as in a cluster.
    base_in_registry = f"{registry.host}/tests/base:{base_image.rsplit(':', 1)[-1]}"
    docker_client.images.get(base_image).tag(base_in_registry)
    for chunk in docker_client.api.push(base_in_registry, stream=True, decode=True):
        assert "error" not in chunk, chunk
    results = tmp_path / "buildah-results"
    results.mkdir()
    argv = ["/usr/bin/docker", "run", "--rm", *POD_LIKE, "--network", "host", "-v", f"{codeset}:/project"]
    argv += ["-v", f"{results}:/results", "-e", "TASK_RESULT=image", "-e", "FUSEML_RESULTS_DIR=/results"]
    argv += ["-e", "KUBERNETES_SERVICE_HOST=10.0.0.1", "-e", f"FUSEML_REGISTRY={registry.host}"]
    argv += ["-e", "FUSEML_PULL_REGISTRY=", "-e", f"FUSEML_REPOSITORY=tests/buildah-{uuid.uuid4().hex[:8]}"]
    argv += ["-e", f"FUSEML_BASE_IMAGE={base_in_registry}"]
    if os.environ.get("PIP_CERT"):
        argv += ["-v", f"{os.environ['PIP_CERT']}:/etc/pip-ca.crt:ro", "-e", "FUSEML_PIP_CA=/etc/pip-ca.crt"]
    done = subprocess.run([*argv, builder_image], capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr[-5000:]
    assert "backend: buildah" in done.stderr
    image = (results / "image").read_text()
    assert RegistryClient(registry.host).exists(ImageRef.parse(image))
    ran = subprocess.run(
        ["/usr/bin/docker", "run", "--rm", image, "sh", "-c", f"id -u; command -v run; {INSTALLED_BY}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.stdout.splitlines() == ["1000", "/opt/venv/bin/run", "installed by uv", "no uv"], ran.stderr


@pytest.mark.integration
@pytest.mark.docker
def test_run_help_in_the_builder_image_lists_the_inputs(builder_image: str) -> None:
    done = subprocess.run(["/usr/bin/docker", "run", "--rm", builder_image, "run", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "FUSEML_REGISTRY " in done.stdout and "FUSEML_INSTALLER " in done.stdout
