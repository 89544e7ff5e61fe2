"""The serving runtime when its model folder disappears after start.

The model is loaded into memory at start: a folder deleted afterwards (a
cleaned-up volume, a pruned cache) must not change what the server answers,
nor its readiness.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from tests.fixtures.models import wine_feature_rows
from tests.fixtures.serving import free_port, running, serve_argv

pytestmark = pytest.mark.faults


def test_the_runtime_keeps_serving_from_memory_when_its_model_folder_goes(wine_model_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(wine_model_dir, model)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rows = wine_feature_rows(2)
    body = {"inputs": [{"name": "input-0", "shape": [2, 11], "datatype": "FP32", "data": rows}]}
    with running(serve_argv(str(model), port), url) as process:
        before = requests.post(f"{url}/v2/models/wine/infer", json=body, timeout=30)
        assert before.status_code == 200, before.text
        shutil.rmtree(model)
        after = requests.post(f"{url}/v2/models/wine/infer", json=body, timeout=30)
        assert after.status_code == 200, after.text
        assert after.json()["outputs"] == before.json()["outputs"]
        assert requests.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
        assert requests.get(f"{url}/v2/models/wine/ready", timeout=5).status_code == 200
        assert process.poll() is None
