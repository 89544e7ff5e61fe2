"""The predictor image runs the step as its contract says: command `run`, non-root, result file written."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from common.storage import S3Settings, S3Store
from tests.fixtures.images import ROOT, build_image, docker, image_size_mb
from tests.fixtures.kube_api import schema_errors

pytestmark = [pytest.mark.integration, pytest.mark.docker]
TAG = "fuseml-local/kserve-predictor:test"
# What the image may add to its base: the Kubernetes and S3 clients, docker-py and mlflow-skinny
# (about 40 MB installed, to resolve models:/, runs:/ and mlflow-artifacts:/ URIs with MLflow's own client).
MAX_EXTRA_MB = 180


def _docker(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return docker(*args, timeout=timeout)


@pytest.fixture(scope="module")
def image(base_image: str) -> str:
    return build_image(ROOT / "Dockerfiles" / "predictor.Dockerfile", TAG, base_image)


def test_image_is_lean_and_non_root(image: str, base_image: str) -> None:
    assert image_size_mb(image) - image_size_mb(base_image) < MAX_EXTRA_MB
    imports = "; ".join(f"python -c 'import {module}'" for module in ("mlflow.artifacts", "kserve", "sklearn"))
    script = f"id -u; command -v run; {imports}"
    done = _docker("run", "--rm", image, "sh", "-c", script, timeout=120)
    lines = done.stdout.split()
    assert lines[:2] == ["1000", "/usr/local/bin/run"]
    assert "No module named 'mlflow" not in done.stderr, "the predictor resolves models:/ URIs with MLflow's client"
    assert "No module named 'kserve'" in done.stderr, "the deploy image must not carry the serving stack"
    assert "No module named 'sklearn'" in done.stderr, "the deploy image must not carry the serving stack"


def test_run_does_a_kserve_dry_run_and_writes_the_result(image: str, s3, wine_model_dir: Path, tmp_path: Path) -> None:
    url = f"s3://{s3.bucket}/predictor-image/{uuid.uuid4().hex[:8]}/artifacts/model"
    S3Store(S3Settings.from_environ(s3.env())).upload(wine_model_dir, url)
    results = tmp_path / "results"
    results.mkdir(mode=0o777)
    results.chmod(0o777)
    env = {**s3.env(), "FUSEML_MODEL": url, "FUSEML_APP_NAME": "wine", "FUSEML_DRY_RUN": "true",
           "KUBERNETES_SERVICE_HOST": "10.0.0.1", "TASK_RESULT": "prediction-url",
           "FUSEML_RESULTS_DIR": "/tekton/results"}  # fmt: skip
    flags = [f"--env={name}={value}" for name, value in env.items()]
    done = _docker("run", "--rm", "--network", "host", "-v", f"{results}:/tekton/results", *flags, image, "run",
                   timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    isvc = list(yaml.safe_load_all(done.stdout.split("---\n", 1)[1]))[-1]
    assert schema_errors(isvc) == [] and isvc["spec"]["predictor"]["model"]["runtime"] == "fuseml-mlflow"
    assert (results / "prediction-url").read_text() == (
        "http://wine-predictor.fuseml-workloads.svc.cluster.local/v2/models/wine/infer"
    )


def test_run_help_in_the_image_lists_the_inputs(image: str) -> None:
    done = _docker("run", "--rm", image, "run", "--help", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "FUSEML_MODEL " in done.stdout and "FUSEML_TARGET " in done.stdout and "KUBECONFIG" in done.stdout
