"""``make demo``: the end-to-end FuseML workflow on this machine, then a real prediction.

Runs ``examples/workflows/mlflow-e2e.yaml`` (builder -> trainer -> predictor)
on the wine codeset with the process executor and the local defaults (sqlite
tracking and artifacts in ``.fuseml/``, the builder's venv backend, the
predictor's local target), then sends the request a real client sends and
prints the answer. The prediction server stays up so the web app and curl can
use it; the closing lines say how to stop it.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from common.errors import StepError
from common.logs import configure_logging
from runner.cli import DEFAULT_STATE_DIR
from runner.config import CONFIG_FILE, load_config
from runner.engine import run_workflow
from runner.progress import ConsoleProgress
from runner.runs import SUCCEEDED
from runner.staging import resolve_codeset
from runner.workflow import load_workflow

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "workflows" / "mlflow-e2e.yaml"
CODESET = ROOT / "examples" / "codesets" / "wine"
OUTPUT = "prediction-url"


def sample_request(data: Path) -> dict:
    """The real-client V2 body (docs/contract.md): one unnamed 1x11 FP32 tensor, features in training order."""
    with data.open(newline="") as f:
        row = next(csv.DictReader(f))
    features = [float(v) for k, v in row.items() if k != "quality"]
    return {"inputs": [{"name": "input-0", "shape": [1, len(features)], "datatype": "FP32", "data": [features]}]}


def predict(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main() -> int:
    configure_logging(False, {})
    state_dir = ROOT / DEFAULT_STATE_DIR
    started = time.monotonic()
    print(f"demo: running {WORKFLOW.relative_to(ROOT)} on {CODESET.relative_to(ROOT)} (state in {state_dir})")
    try:
        run = run_workflow(
            load_workflow(WORKFLOW),
            resolve_codeset(CODESET),
            {},
            "process",
            load_config(state_dir / CONFIG_FILE),
            state_dir,
            ConsoleProgress(sys.stderr),
        )
    except StepError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1
    if run.status != SUCCEEDED:
        print(f"demo: the workflow run {run.name} {run.status.lower()}: {run.error or 'see the step log above'}")
        print(f"demo: logs: .venv/bin/fuseml-steps logs {run.name}")
        return 1
    url = run.outputs[OUTPUT]
    body = sample_request(CODESET / "wine-quality.csv")
    try:
        answer = predict(url, body)
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"demo: the prediction URL {url} did not answer: {e}", file=sys.stderr)
        return 1
    quality = answer["outputs"][0]["data"][0]
    app = url.rstrip("/").split("/")[-2]
    print(
        f"""
demo: workflow {run.name} succeeded in {time.monotonic() - started:.0f}s
prediction-url: {url}
request:  {json.dumps(body)}
answer:   predicted quality {quality:.2f} (from {json.dumps(answer["outputs"][0])})

Try it:   curl -s -H 'Content-Type: application/json' -d '{json.dumps(body)}' {url}
Web app:  make winery url={url}   (then open http://127.0.0.1:8501)
Runs:     .venv/bin/fuseml-steps runs
Stop:     .venv/bin/fuseml-steps apps stop {app}"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
