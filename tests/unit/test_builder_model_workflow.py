"""``examples/workflows/mlflow-any-flavour.yaml``: the e2e workflow with a ``serving-builder`` step (the
builder in its model mode) between trainer and predictor. It validates, and exports to Tekton (every
document checked as the API server and the webhook would) and to Kubeflow Pipelines (compiled by the
real kfp SDK in ``.venv-kfp``), with the trained model going to the serving-builder and its image to
the predictor's ``serving_image``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from runner.cli import cli
from runner.workflow import load_workflow
from tests.fixtures.k8s_schemas import validate_documents
from tests.unit.test_export_kfp import documents, executor, platform_of, task_by_step
from tests.unit.test_export_tekton import TEKTON_DATA, by_kind, env_of, run_step, task

ROOT = Path(__file__).resolve().parents[2]
ANY_FLAVOUR = ROOT / "examples" / "workflows" / "mlflow-any-flavour.yaml"
E2E = ROOT / "examples" / "workflows" / "mlflow-e2e.yaml"
URL = "https://example.com/org/onnx.git"
BUILDER_IMAGE = "ghcr.io/fuseml-steps/mlflow-builder:0.1.0"


def export(to: str) -> str:
    result = CliRunner().invoke(cli, ["export", str(ANY_FLAVOUR), "--to", to, "--codeset-url", URL])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_it_is_the_e2e_workflow_plus_a_serving_builder() -> None:
    flow, e2e = load_workflow(ANY_FLAVOUR), load_workflow(E2E)
    assert [s.name for s in flow.steps] == ["builder", "trainer", "serving-builder", "predictor"]
    assert [i.name for i in flow.inputs] == [i.name for i in e2e.inputs]
    assert [o.name for o in flow.outputs] == [o.name for o in e2e.outputs]
    serving = flow.step("serving-builder")
    assert serving.image == flow.step("builder").image == BUILDER_IMAGE
    inputs = {i.name: i.value for i in serving.value_inputs}
    assert inputs == {"model": "{{ steps.trainer.outputs.mlflow-model-url }}"}
    assert {e.kind for e in serving.extensions} == {"mlflow-tracking", "s3"}  # to read the model
    predictor = {i.name: i.value for i in flow.step("predictor").value_inputs}
    assert predictor["serving_image"] == "{{ steps.serving-builder.outputs.image }}"


def test_it_exports_to_tekton_with_the_model_in_and_the_image_out() -> None:
    docs = list(yaml.safe_load_all(export("tekton")))
    assert validate_documents(docs, TEKTON_DATA) == []
    from runner.export.tekton_checks import check_documents

    assert check_documents(docs) == []
    pipeline = by_kind(docs, "Pipeline")
    serving = task(pipeline, "serving-builder")
    assert {"name": "model", "value": "$(tasks.trainer.results.mlflow-model-url)"} in serving["params"]
    assert env_of(serving)["FUSEML_MODEL"] == "$(params.model)"
    assert env_of(serving)["TASK_RESULT"] == "image"
    assert run_step(serving)["command"] == ["run"]
    assert run_step(serving)["securityContext"] == run_step(task(pipeline, "builder"))["securityContext"]  # buildah
    assert [s["secretRef"]["name"] for s in run_step(serving)["envFrom"]] == [
        "fuseml-mlflow-tracking",
        "fuseml-mlflow-store",
    ]
    predictor = task(pipeline, "predictor")
    assert {"name": "serving_image", "value": "$(tasks.serving-builder.results.image)"} in predictor["params"]
    assert env_of(predictor)["FUSEML_SERVING_IMAGE"] == "$(params.serving_image)"


def test_it_compiles_to_a_kfp_pipeline_with_the_model_in_and_the_image_out() -> None:
    spec, platform = documents(export("kfp"))
    serving = task_by_step(spec, "serving-builder")
    assert serving["inputs"]["parameters"]["model"]["taskOutputParameter"] == {
        "outputParameterKey": "mlflow_model_url",
        "producerTask": "fuseml-trainer",
    }
    assert executor(spec, "serving-builder")["image"] == BUILDER_IMAGE
    predictor: dict[str, Any] = task_by_step(spec, "predictor")
    producer = predictor["inputs"]["parameters"]["serving_image"]["taskOutputParameter"]
    assert producer["outputParameterKey"] == "image"
    assert producer["producerTask"] == next(
        k for k, t in spec["root"]["dag"]["tasks"].items() if t["taskInfo"]["name"] == "serving-builder"
    )
    secrets = {s["secretName"] for s in platform_of(spec, platform, "serving-builder")["secretAsEnv"]}
    assert secrets == {"fuseml-mlflow-tracking", "fuseml-mlflow-store"}
