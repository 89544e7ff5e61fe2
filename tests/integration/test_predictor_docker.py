"""The docker target end to end: the serving image on the host network, from an s3:// model."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from common.storage import S3Settings, S3Store
from runner.apps import apps
from tests.fixtures.models import wine_feature_rows
from tests.fixtures.services import read_result, run_step
from tests.fixtures.serving import build_serving_image

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SERVING_TAG = "fuseml-local/mlflow-serving:predictor-test"


@pytest.fixture(scope="module")
def serving_image(base_image: str) -> str:
    build_serving_image(base_image, SERVING_TAG)  # cached layers make a rebuild quick
    return SERVING_TAG


def test_docker_deploy_answers_and_stops(
    serving_image: str, s3, step_env: dict, wine_model_dir: Path, tmp_path: Path
) -> None:
    url = f"s3://{s3.bucket}/predictor-docker/{uuid.uuid4().hex[:8]}/artifacts/model"
    S3Store(S3Settings.from_environ(s3.env())).upload(wine_model_dir, url)
    app = f"wine-{uuid.uuid4().hex[:6]}"
    env = {**step_env, "FUSEML_MODEL": url, "FUSEML_APP_NAME": app, "FUSEML_TARGET": "docker",
           "FUSEML_SERVING_IMAGE": serving_image, "FUSEML_STATE_DIR": str(tmp_path / "state"),
           "FUSEML_TIMEOUT": "180"}  # fmt: skip
    try:
        done = run_step("steps.predictor", env)
        assert done.returncode == 0, done.stderr
        assert env["AWS_SECRET_ACCESS_KEY"] not in done.stderr
        body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": wine_feature_rows(1)}]}
        answer = requests.post(read_result(env), json=body, timeout=30)
        assert answer.status_code == 200 and answer.json()["outputs"], answer.text
    finally:
        stopped = CliRunner().invoke(apps, ["stop", app, "--state-dir", env["FUSEML_STATE_DIR"]])
    assert stopped.exit_code == 0 and stopped.output == f"{app}: stopped\n", repr(stopped.exception)
    listed = subprocess.run(["/usr/bin/docker", "ps", "-aq", "--filter", f"name=fuseml-predictor-{app}"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert listed.stdout.strip() == ""
