"""The docker executor against a real Docker engine.

First with a tiny step image of our own (the contract from inside a container:
``run`` as command, the codeset at /project as working directory, results in
/tekton/results, host network, a user that can write them). Then the example
workflow with the builder and predictor images against the real S3, MLflow
server and registry, when those images have been built.
"""

from __future__ import annotations

import http.server
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import pytest

from runner.config import Config
from runner.engine import resolve_codeset, run_workflow
from runner.executors.docker import DockerExecutor
from runner.runs import SUCCEEDED
from runner.workflow import load_workflow, parse_workflow

pytestmark = [pytest.mark.integration, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
STEP_SCRIPT = """\
#!/bin/sh
set -eu
echo "pwd=$(pwd) uid=$(id -u) org=$(cat .fuseml/_org) msg=$FUSEML_MESSAGE"
echo "results=$FUSEML_RESULTS_DIR task=$TASK_RESULT workflow=$FUSEML_ENV_WORKFLOW_NAME"
python3 -c "import urllib.request as u,sys; print('host says', u.urlopen(sys.argv[1]).read().decode())" "$PING_URL"
test -f MLproject
printf '%s' "$FUSEML_MESSAGE-done" > "$FUSEML_RESULTS_DIR/$TASK_RESULT"
"""


@pytest.fixture(scope="module")
def step_image(docker_client, base_image: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An image FROM the local base with our ``run`` script on PATH."""
    tag = f"fuseml-steps-test/runner-step:{os.getpid()}"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, text, mode in (
            ("Dockerfile", f"FROM {base_image}\nCOPY run /usr/local/bin/run\n", 0o644),
            ("run", STEP_SCRIPT, 0o755),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    docker_client.images.build(fileobj=context, custom_context=True, tag=tag, pull=False, rm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


@pytest.fixture
def ping_url() -> Iterator[str]:
    """An HTTP server on the host's loopback: reachable from a step only with host networking."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"pong")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_a_step_container_gets_the_contract(tmp_path: Path, docker_client, step_image: str, ping_url: str) -> None:  # type: ignore[no-untyped-def]
    code = tmp_path / "code"
    code.mkdir()
    (code / "MLproject").write_text("name: x\n")
    workflow = parse_workflow(
        dedent(
            f"""\
            name: in-docker
            inputs:
              - {{name: src, type: codeset}}
            outputs:
              - {{name: said}}
            steps:
              - name: first
                image: {step_image}
                inputs:
                  - {{name: src, codeset: {{name: "{{{{ inputs.src }}}}", path: /project}}}}
                  - {{name: message, value: hello}}
                env:
                  - {{name: PING_URL, value: "{ping_url}"}}
                outputs: [{{name: said}}]
            """
        )
    )
    run = run_workflow(
        workflow, resolve_codeset(code), {}, DockerExecutor(client=docker_client), Config(), tmp_path / "state"
    )
    log_text = run.steps[0].log_path.read_text()
    assert run.status == SUCCEEDED, f"{run.error}\n{log_text}"
    assert run.outputs == {"said": "hello-done"}
    assert f"pwd=/project uid={os.getuid()} org=local msg=hello" in log_text
    assert "results=/tekton/results task=said workflow=in-docker" in log_text
    assert "host says pong" in log_text
    assert not docker_client.containers.list(all=True, filters={"label": f"fuseml-steps.run={run.name}"})


def _local_image(docker_client, variable: str, repository: str) -> str:  # type: ignore[no-untyped-def]
    """The image named by ``variable``, else the newest local ``*/<repository>:*``; skip if none."""
    wanted = os.environ.get(variable)
    if wanted:
        return wanted
    for image in docker_client.images.list():
        for tag in image.tags:
            if tag.rsplit(":", 1)[0].rsplit("/", 1)[-1] == repository:
                return tag
    pytest.skip(f"no {repository} image on this machine: build it (make images) or set {variable}")


@pytest.fixture(scope="session")
def our_images(docker_client) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The builder and predictor images; session-scoped so a skip comes before the services start."""
    builder = _local_image(docker_client, "FUSEML_STEPS_BUILDER_IMAGE", "mlflow-builder")
    predictor = _local_image(docker_client, "FUSEML_STEPS_PREDICTOR_IMAGE", "kserve-predictor")
    return builder, predictor


@pytest.mark.slow
def test_the_example_workflow_with_our_images(  # type: ignore[no-untyped-def]
    tmp_path: Path, our_images: tuple[str, str], docker_client, services_env: dict[str, str], registry, wine_rows
) -> None:
    import requests

    builder, predictor = our_images
    text = (ROOT / "examples" / "workflows" / "mlflow-e2e.yaml").read_text()
    text = text.replace("ghcr.io/fuseml-steps/mlflow-builder:0.1.0", builder)
    text = text.replace("ghcr.io/fuseml-steps/kserve-predictor:0.1.0", predictor)
    path = tmp_path / "mlflow-e2e.yaml"
    path.write_text(text)
    config = Config.from_environ(services_env).merged(registry=registry.host, predictor_target="docker")
    codeset = resolve_codeset(ROOT / "examples" / "codesets" / "wine", "wine-docker", "tests")
    executor = DockerExecutor(client=docker_client)
    run = run_workflow(load_workflow(path), codeset, {}, executor, config, tmp_path / "state")
    logs = "\n".join(f"--- {s.name} ---\n{s.log_path.read_text()[-3000:]}" for s in run.steps if s.log_path.exists())
    try:
        assert run.status == SUCCEEDED, f"{run.error}\n{logs}"
        assert run.steps[0].output.startswith(f"{registry.host}/mlflow/trainer:")
        url = run.outputs["prediction-url"]
        body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": wine_rows(1)}]}
        response = requests.post(url, json=body, timeout=30)
        assert response.status_code == 200, response.text
        rerun = run_workflow(load_workflow(path), codeset, {}, executor, config, tmp_path / "state")
        assert rerun.status == SUCCEEDED and rerun.steps[0].output == run.steps[0].output
    finally:
        for container in docker_client.containers.list(
            all=True, filters={"label": "fuseml/app-name=tests-wine-docker-mlflow-e2e"}
        ):
            container.remove(force=True)
