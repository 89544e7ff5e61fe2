"""The builder when its registry goes away in the middle of a push (docker backend).

A registry of its own (never the session's) is stopped as soon as the builder
reports a layer upload under way. The builder must end with one line naming
the registry and what to check, exit 1, leave no result, and the registry,
started again on its data, must not hold the tag (no half-pushed image
reported as done).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.services.registry import Registry
from steps.builder.registry import RegistryClient
from steps.builder.registry.push_errors import push_error
from tests.faults.checks import assert_no_secret, the_error_line
from tests.fixtures.codesets import checkout_wine
from tests.fixtures.services import SYSTEM_PATH, VENV_BIN, read_result

pytestmark = [pytest.mark.faults, pytest.mark.docker]

BUILD_TIMEOUT = 1500
PIP_CACHE = "/var/tmp/fuseml-tests-pip-cache"  # shared with tests/integration/test_builder.py
SECRET = "fault-secret-" + "3" * 12


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "registry") as registry:
        yield registry


def test_a_registry_gone_mid_push_is_one_line_and_no_tag(
    own_registry: Registry, base_image: str, tmp_path: Path
) -> None:
    codeset = checkout_wine(tmp_path / "project")
    repository = f"faults/trainer-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": f"{VENV_BIN}:{SYSTEM_PATH}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "FUSEML_REGISTRY": own_registry.host,
        "FUSEML_PULL_REGISTRY": "",
        "FUSEML_REPOSITORY": repository,
        "FUSEML_BASE_IMAGE": base_image,
        "FUSEML_BACKEND": "docker",
        "PIP_CACHE_DIR": PIP_CACHE,
        "FUSEML_RESULTS_DIR": str(tmp_path / "results"),
        "TASK_RESULT": "image",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        **({"PIP_CERT": os.environ["PIP_CERT"]} if os.environ.get("PIP_CERT") else {}),
    }
    builder = subprocess.Popen(
        [sys.executable, "-m", "steps.builder"],
        env=env,
        cwd=codeset,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert builder.stderr is not None and builder.stdout is not None
    stderr: list[str] = []
    stopped_at = None
    for line in builder.stderr:
        stderr.append(line)
        if stopped_at is None and " push: " in line and " Pushing " in line:
            stopped_at = line
            own_registry.stop()  # a layer is on its way: the registry goes away under it
    code = builder.wait(timeout=BUILD_TIMEOUT)
    output, errors = builder.stdout.read(), "".join(stderr)
    assert stopped_at is not None, f"the builder never reported a layer upload:\n{errors[-3000:]}"
    assert code == 1, errors[-3000:]
    line = the_error_line(errors, "builder: error: ")
    assert line.startswith(f"builder: error: registry {own_registry.host} went away during the push of "), line
    assert f"{own_registry.host}/{repository}:" in line, line
    assert line.endswith("check that the registry runs and the Docker daemon can reach it, then run the builder again")
    assert read_result(env) is None
    assert_no_secret(SECRET, [output, errors])

    own_registry.start()  # the same port and data: what did the interrupted push leave there?
    tag = line.split(f"{own_registry.host}/{repository}:", 1)[1].split()[0].rstrip(":;,)")
    assert RegistryClient(own_registry.host).manifest_digest(repository, tag) is None, "a half-pushed tag exists"


@pytest.mark.parametrize(
    ("engine", "message", "gone"),
    [
        ("docker", "Put http://127.0.0.1:5000/v2/t/blobs/uploads/x: EOF", True),
        ("docker", "write tcp 127.0.0.1:40112->127.0.0.1:5000: write: broken pipe", True),
        (
            "buildah",
            "Error: writing blob: initiating layer upload to /v2/t/blobs/uploads/ in 127.0.0.1:5000: "
            "dial tcp 127.0.0.1:5000: connect: connection refused",
            True,
        ),  # fmt: skip
        ("docker", "denied: requested access to the resource is denied", False),
        ("buildah", "Error: writing blob: unauthorized: authentication required", False),
    ],
)
def test_a_push_error_says_gone_or_refused(engine: str, message: str, gone: bool) -> None:
    error = push_error("127.0.0.1:5000/t:1", message, engine)
    if gone:
        assert str(error).startswith(
            f"registry 127.0.0.1:5000 went away during the push of 127.0.0.1:5000/t:1: {message}"
        )
        assert "run the builder again" in str(error)
    else:
        assert str(error).startswith(f"push of 127.0.0.1:5000/t:1 was refused: {message}; check the registry input")
