"""The docker executor against a real Docker engine.

First with a tiny step image of our own (the contract from inside a container:
``run`` as command, the codeset at /project as working directory, results in
/tekton/results, host network, a user that can write them). Then the example
workflow end to end with our builder, predictor and serving images (built here,
FROM the local base image) against the real S3, MLflow server and registry: the
builder pushes the trainer image, the trainer runs in it, the predictor starts
a serving container; a second run finds the trainer image and builds nothing.
"""

from __future__ import annotations

import http.server
import io
import os
import re
import tarfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner

from common.storage import open_store
from runner.apps import apps
from runner.config import Config
from runner.engine import run_workflow
from runner.executors.docker import DockerExecutor
from runner.runs import SUCCEEDED
from runner.staging import resolve_codeset
from runner.workflow import load_workflow, parse_workflow
from steps.builder.registry import ImageRef, RegistryClient
from steps.predictor.targets.docker import container_name, remove_container
from tests.fixtures.images import OUR_IMAGES, e2e_workflow_with_our_images

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


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The Docker engine (``docker_client``, which starts dockerd if none answers); a machine without one fails."""
    return request.getfixturevalue("docker_client")


@pytest.fixture(scope="module")
def e2e_workflow(engine, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """examples/workflows/mlflow-e2e.yaml with our freshly built images and this machine's base image.

    The builder builds the trainer FROM the local base (Docker Hub is not
    reachable) and the predictor's docker target runs our serving image: both
    are step inputs, as a user would set them in the workflow.
    """
    return e2e_workflow_with_our_images(base_image, tmp_path_factory.mktemp("e2e-workflow"))


def _logs(run) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(f"--- {s.name} ---\n{s.log_path.read_text()[-3000:]}" for s in run.steps if s.log_path.exists())


def _trainer_images_created(docker_client, start: float, end: float) -> list[str]:  # type: ignore[no-untyped-def]
    """Tags (or ids) of trainer images (the template's title label) created between ``start`` and ``end``."""
    found = []
    for image in docker_client.images.list(
        all=True, filters={"label": "org.opencontainers.image.title=FuseML trainer"}
    ):
        created = re.sub(r"\.\d+", "", image.attrs["Created"]).replace("Z", "+00:00")
        if start - 1 <= datetime.fromisoformat(created).astimezone(UTC).timestamp() <= end + 1:
            found.append(image.tags[0] if image.tags else image.id)
    return found


@pytest.mark.slow
def test_the_example_workflow_with_our_images(  # type: ignore[no-untyped-def]
    tmp_path: Path, e2e_workflow: Path, engine, services_env: dict[str, str], registry, wine_rows
) -> None:
    import requests

    config = Config.from_environ(services_env).merged(registry=registry.host, predictor_target="docker")
    codeset = resolve_codeset(ROOT / "examples" / "codesets" / "wine", "wine-docker", "tests")
    host_env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # the predictor's state folder, ours
    executor = DockerExecutor(client=engine, environ=host_env)
    app = "tests-wine-docker-mlflow-e2e"  # <org>-<project>-<workflow>, the predictor's default
    try:
        run = run_workflow(load_workflow(e2e_workflow), codeset, {}, executor, config, tmp_path / "state")
        assert run.status == SUCCEEDED, f"{run.error}\n{_logs(run)}"
        image, model_url, url = (step.output for step in run.steps)

        # The builder pushed the trainer image to the registry and the trainer ran in it.
        assert image.startswith(f"{registry.host}/mlflow/trainer:"), image
        assert RegistryClient(registry.host).exists(ImageRef.parse(image))
        assert model_url.startswith("s3://mlflow-artifacts/"), model_url
        assert open_store(model_url, services_env).exists(model_url.rstrip("/") + "/MLmodel")

        # The predictor started our serving image; it answers what real clients send.
        assert url == run.outputs["prediction-url"] and url.endswith(f"/v2/models/{app}/infer"), url
        assert OUR_IMAGES["serving"] in engine.containers.get(container_name(app)).image.tags
        body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": wine_rows(1)}]}
        response = requests.post(url, json=body, timeout=30)
        assert response.status_code == 200, response.text
        prediction = response.json()["outputs"][0]["data"][0]
        assert isinstance(prediction, int | float) and 0 < prediction < 10, response.text

        # Again: the registry has the tag, so the builder builds nothing and returns the same image.
        trainer_id = engine.images.get(image).id
        rerun = run_workflow(load_workflow(e2e_workflow), codeset, {}, executor, config, tmp_path / "state")
        assert rerun.status == SUCCEEDED, f"{rerun.error}\n{_logs(rerun)}"
        builder, built_log = rerun.steps[0], rerun.steps[0].log_path.read_text()
        assert builder.output == image
        assert "already exists" in built_log and "=== Building" not in built_log, built_log[-3000:]
        assert _trainer_images_created(engine, builder.started, builder.finished) == [], "nothing may be built"
        assert engine.images.get(image).id == trainer_id
        assert requests.post(rerun.outputs["prediction-url"], json=body, timeout=30).status_code == 200

        # The containerised predictor recorded its deployment on the host: stop finds and ends it.
        stopped = CliRunner().invoke(apps, ["stop", app], env=host_env)
        assert stopped.exit_code == 0 and stopped.output == f"{app}: stopped\n", repr(stopped.exception)
    finally:
        remove_container(container_name(app))  # what stop does for a docker deployment
    assert not engine.containers.list(all=True, filters={"name": container_name(app)})
