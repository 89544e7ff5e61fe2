"""Against a live cluster with KServe: deploy the wine model and ask it a question.

Runs only when KUBECONFIG is set (and names a file); it needs KServe, our
``fuseml-mlflow`` ClusterServingRuntime, and S3 reachable from the cluster at
PREDICTOR_TEST_S3_ENDPOINT with PREDICTOR_TEST_MODEL pointing at a wine model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.fixtures.models import wine_feature_rows

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        not os.environ.get("KUBECONFIG") or not Path(os.environ["KUBECONFIG"]).is_file(),
        reason="no live cluster: set KUBECONFIG (and PREDICTOR_TEST_MODEL, PREDICTOR_TEST_S3_ENDPOINT)",
    ),
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("predictor", ["auto", "mlflow"])
def test_deploy_to_kserve_and_predict(tmp_path: Path, predictor: str) -> None:
    model = os.environ.get("PREDICTOR_TEST_MODEL")
    if not model:
        pytest.skip("set PREDICTOR_TEST_MODEL to an s3:// wine model the cluster can read")
    env = {
        **os.environ,
        "FUSEML_MODEL": model,
        "FUSEML_PREDICTOR": predictor,
        "FUSEML_APP_NAME": f"predictor-test-{predictor}",
        "FUSEML_TARGET": "kserve",
        "FUSEML_TIMEOUT": "900",
        "MLFLOW_S3_ENDPOINT_URL": os.environ.get(
            "PREDICTOR_TEST_S3_ENDPOINT", os.environ.get("MLFLOW_S3_ENDPOINT_URL", "")
        ),
        "FUSEML_RESULTS_DIR": str(tmp_path),
        "TASK_RESULT": "url",
    }
    done = subprocess.run([sys.executable, "-m", "steps.predictor"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = (tmp_path / "url").read_text()
    body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": wine_feature_rows(1)}]}
    answer = requests.post(url, json=body, timeout=60)
    assert answer.status_code == 200 and answer.json()["outputs"], answer.text
