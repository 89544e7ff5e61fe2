"""The exported Kubeflow Pipelines pipeline, run for real by ``kfp.local`` and its DockerRunner.

``fuseml-steps export examples/workflows/mlflow-e2e.yaml --to kfp`` with our
images (built here FROM the local base image, as the docker-executor test builds
them) is loaded from its IR YAML and run by ``kfp.local`` in the kfp virtualenv,
against the real S3, MLflow server and registry: the codeset component clones a
git repository into the pipeline's workspace, the builder builds and pushes the
trainer image (docker backend, through the host's Docker socket), the trainer
trains in it, the predictor starts a serving container (docker target), and the
pipeline's output is a prediction URL that answers.

What ``kfp.local`` cannot do, shown rather than assumed:

- it does not resolve an image given by an upstream output (the trainer's,
  ``set_container_image``): it tries to pull the literal placeholder. The
  unmodified export therefore runs clone and builder and stops at the trainer;
  the same export with ``--image trainer=<the builder's output>`` runs to the end.
- it ignores ``kfp-kubernetes``' platform config (Secrets as env, the namespace
  from the downward API, the builder's emptyDir): the services' variables reach
  the containers through the DockerRunner's ``environment``, as the cluster's
  Secrets would give them; the Docker socket and host network are DockerRunner
  arguments (a cluster's builder uses buildah, its predictor KServe).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.export.kfp_sdk import kfp_python
from steps.predictor.targets.docker import container_name, remove_container
from tests.fixtures.images import e2e_workflow_with_our_images

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WINE = ROOT / "examples" / "codesets" / "wine"
DOCKER_SOCKET = "/var/run/docker.sock"
RUN_TIMEOUT = 1800
# Runs in the kfp virtualenv: loads the compiled pipeline and runs it with kfp.local's DockerRunner.
DRIVER = """\
import json, sys
from docker.types import Mount
from kfp import components, local

config = json.load(sys.stdin)
runner = local.DockerRunner(
    network_mode="host",
    mounts=[Mount(target=path, source=path, type="bind", read_only=read_only) for path, read_only in config["mounts"]],
    environment=config["environment"],
    user=config["user"],
    group_add=config["group_add"],
)
local.init(runner=runner, pipeline_root=config["root"], workspace_root=config["workspace"])
pipeline = components.load_component_from_file(config["pipeline"])
try:
    task = pipeline()
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
else:
    print(json.dumps({"outputs": dict(task.outputs)}))
"""


def git_codeset(folder: Path) -> str:
    """The wine codeset as a git repository (what the codeset component clones); returns its file:// URL."""
    shutil.copytree(WINE, folder, ignore=shutil.ignore_patterns("mlruns", "__pycache__", ".fuseml"))
    git = ["git", "-C", str(folder), "-c", "user.name=tests", "-c", "user.email=tests@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "wine"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    return f"file://{folder}"


def export_kfp(workflow: Path, url: str, out: Path, *extra: str) -> Path:
    """``fuseml-steps export WORKFLOW --to kfp``, through the command line; the pipeline file."""
    args = ["export", str(workflow), "--to", "kfp", "--codeset-url", url, *extra, "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return out / "pipeline.yaml"


def run_local(
    pipeline: Path, work: Path, environment: dict[str, str], mounts: list[tuple[str, bool]]
) -> dict[str, Any]:
    """Run ``pipeline`` with kfp.local (in the kfp virtualenv); its outputs, or the error that stopped it."""
    config = {
        "pipeline": str(pipeline),
        "root": str(work / "root"),
        "workspace": str(work / "workspace"),
        "environment": environment,
        "mounts": mounts,
        "user": f"{os.getuid()}:{os.getgid()}",
        "group_add": [str(os.stat(DOCKER_SOCKET).st_gid)],
    }
    done = subprocess.run(
        [kfp_python(), "-I", "-c", DRIVER], input=json.dumps(config), capture_output=True, text=True,
        timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    outcome: dict[str, Any] = json.loads(lines[-1])
    outcome["log"] = done.stdout + done.stderr
    return outcome


def plain(log: str) -> str:
    """kfp.local's log without its colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", log)


def task_output(work: Path, task: str, output: str) -> str:
    """An output kfp.local wrote for ``task`` under the pipeline root (the only run there)."""
    (path,) = (work / "root").glob(f"*/{task}/{output}")
    return path.read_text()


@pytest.fixture(scope="module")
def workflow(docker_client, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """examples/workflows/mlflow-e2e.yaml with our freshly built images, as the docker-executor test makes it."""
    return e2e_workflow_with_our_images(base_image, tmp_path_factory.mktemp("kfp-workflow"))


def test_the_exported_pipeline_runs_under_kfp_local_to_an_answered_prediction(  # type: ignore[no-untyped-def]
    tmp_path: Path, workflow: Path, services_env: dict[str, str], registry, wine_rows
) -> None:
    import requests

    repo = tmp_path / "tests" / "wine-kfp"  # project "tests", name "wine-kfp", as FuseML named codesets by URL
    url = git_codeset(repo)
    app = "tests-wine-kfp-mlflow-e2e"  # <org>-<project>-<workflow>, the predictor's default
    # What the cluster's Secrets give (the services), and this machine's registry and targets.
    environment = {
        **services_env,
        "FUSEML_REGISTRY": registry.host,
        "FUSEML_PULL_REGISTRY": registry.host,
        "FUSEML_BACKEND": "docker",
        "FUSEML_TARGET": "docker",
        "FUSEML_STATE_DIR": "/tmp/fuseml-predictor-state",
        "HOME": "/tmp",
    }
    mounts = [(str(repo), True), (DOCKER_SOCKET, False)]
    # As the docker executor does: the host's proxy and pip CA, which pip needs here to build.
    environment.update({k: v for k, v in os.environ.items() if k in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")})
    pip_ca = os.environ.get("PIP_CERT", "")
    if pip_ca and Path(pip_ca).is_file():
        mounts.append((str(Path(pip_ca).resolve()), True))
        environment["FUSEML_PIP_CA"] = str(Path(pip_ca).resolve())
    try:
        # 1. The export as it is: kfp.local runs the clone and the builder, then cannot start the trainer.
        first = run_local(export_kfp(workflow, url, tmp_path / "as-is"), tmp_path / "as-is", environment, mounts)
        assert "error" in first, first["log"][-8000:]
        # The trainer's image, an upstream output, is pulled as the literal placeholder.
        assert "pipelinechannel--fuseml-builder-image" in first["error"], f"{first['error']}\n{first['log'][-8000:]}"
        assert "Task 'fuseml-builder' finished with status SUCCESS" in plain(first["log"]), first["log"][-8000:]
        image = task_output(tmp_path / "as-is", "fuseml-builder", "image")
        assert image.startswith(f"{registry.host}/mlflow/trainer:"), image

        # 2. The same export with the trainer's image given: every step runs, the prediction URL answers.
        pinned = export_kfp(workflow, url, tmp_path / "pinned", "--image", f"trainer={image}")
        second = run_local(pinned, tmp_path / "pinned", environment, mounts)
        assert "outputs" in second, f"{second.get('error')}\n{second['log'][-8000:]}"
        assert task_output(tmp_path / "pinned", "fuseml-builder", "image") == image
        assert "already exists" in second["log"]  # the registry has the tag: nothing built
        model_url = task_output(tmp_path / "pinned", "fuseml-trainer", "mlflow_model_url")
        assert model_url.startswith("s3://mlflow-artifacts/"), model_url
        prediction_url = second["outputs"]["prediction_url"]
        # The app is named after the cloned codeset's .fuseml files, which the codeset component wrote.
        assert prediction_url.endswith(f"/v2/models/{app}/infer"), prediction_url
        body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": wine_rows(1)}]}
        response = requests.post(prediction_url, json=body, timeout=30)
        assert response.status_code == 200, response.text
        prediction = response.json()["outputs"][0]["data"][0]
        assert isinstance(prediction, int | float) and 0 < prediction < 10, response.text
    finally:
        remove_container(container_name(app))
