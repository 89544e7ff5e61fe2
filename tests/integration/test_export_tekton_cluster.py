"""Against a live cluster with Tekton and KServe: apply the catalog, export mlflow-e2e, run it, ask the model.

Runs only when KUBECONFIG is set (and names a file). The cluster needs
Tekton Pipelines (v1.0 or later, the git resolver on), KServe with our
``fuseml-mlflow`` runtime, a registry the builder pushes to and nodes pull
from, and reachable MLflow and S3 services. The test reads:
TEKTON_TEST_CODESET_URL (git URL of the wine codeset, e.g. a fork holding
examples/codesets/wine at its root), MLFLOW_TRACKING_URI,
MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (as the
cluster sees them), TEKTON_TEST_NAMESPACE (default fuseml-workloads). The
README's "Running on Kubernetes" commands are these.
"""

from __future__ import annotations

import json
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
        reason="no live cluster: set KUBECONFIG (and TEKTON_TEST_CODESET_URL, MLflow and S3 variables)",
    ),
]
ROOT = Path(__file__).resolve().parents[2]
NEEDED = ("TEKTON_TEST_CODESET_URL", "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID")


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl {args[0]}: {done.stderr}"
    return done.stdout


def secret(name: str, namespace: str, keys: tuple[str, ...]) -> None:
    """Create or update a Secret from this process's variables; the values never reach a command line or a log."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {k: os.environ[k] for k in keys if os.environ.get(k)},
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(manifest))


def test_mlflow_e2e_runs_on_tekton_to_an_answered_prediction(tmp_path: Path) -> None:
    missing = [name for name in NEEDED if not os.environ.get(name)]
    assert not missing, f"set {', '.join(missing)} for the live-cluster Tekton test"
    namespace = os.environ.get("TEKTON_TEST_NAMESPACE", "fuseml-workloads")
    for step in ("builder", "trainer", "predictor"):
        kubectl("apply", "-n", namespace, "-f", str(ROOT / f"deploy/tekton/fuseml-{step}/0.1/fuseml-{step}.yaml"))
    secret(
        "fuseml-mlflow-tracking",
        namespace,
        ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"),
    )
    for name in ("fuseml-mlflow-store", "fuseml-s3-storage"):
        secret(name, namespace, ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    out = tmp_path / "tekton"
    export = subprocess.run(
        [sys.executable, "-m", "runner", "export", "examples/workflows/mlflow-e2e.yaml", "--to", "tekton",
         "--codeset-url", os.environ["TEKTON_TEST_CODESET_URL"], "--namespace", namespace, "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    kubectl("apply", "-f", str(out / "pipeline.yaml"))
    run = kubectl("create", "-f", str(out / "pipelinerun.yaml"), "-o", "name").strip()
    waited = subprocess.run(
        ["kubectl", "wait", "-n", namespace, "--for=condition=Succeeded", run, "--timeout=40m"],
        capture_output=True, text=True, timeout=2500,
    )  # fmt: skip
    status = kubectl("get", "-n", namespace, run, "-o", "jsonpath={.status.conditions[0].message}")
    assert waited.returncode == 0, f"{run}: {status} {waited.stderr}"
    url = kubectl("get", "-n", namespace, run, "-o", 'jsonpath={.status.results[?(@.name=="prediction-url")].value}')
    assert url.endswith("/infer"), url
    body = {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP32", "data": wine_feature_rows(1)}]}
    answer = requests.post(url, json=body, timeout=60)
    assert answer.status_code == 200 and answer.json()["outputs"], answer.text
