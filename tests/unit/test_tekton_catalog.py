"""The Tekton catalog entries in deploy/tekton: one StepAction and one Task per step image.

The params must be the step's inputs as its settings module reads them, so a
new input added to a step cannot be forgotten in the YAML: the inputs are read
off the settings source with ``ast`` (every ``inputs.<method>("name")`` and
every ``"name"`` handed to a helper together with ``inputs``), not from a list
kept beside it. The documents are then checked as the API server would:
Tekton's CRD and OpenAPI schemas, Kubernetes' own, and the webhook's checks.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.export.tekton_checks import check_documents
from tests.fixtures.k8s_schemas import validate_documents

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "deploy" / "tekton"
TEKTON_DATA = ROOT / "tests" / "data" / "tekton"
VERSION = "0.1"
# step -> (the modules that read its inputs, its output in the example workflow)
STEPS = {
    "builder": (["steps/builder/settings.py"], "image"),
    "trainer": (["steps/trainer/settings.py", "steps/trainer/parameters.py"], "mlflow-model-url"),
    "predictor": (["steps/predictor/settings.py"], "prediction-url"),
}
# Read by common/logs.py for every step (FUSEML_VERBOSE), not by a settings module.
COMMON_INPUTS = {"verbose"}
INPUT_METHODS = {"str", "bool", "int", "float", "list", "map", "choice", "raw", "is_set", "variable"}
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL")


def settings_inputs(paths: list[str]) -> set[str]:
    """Every input name the modules read: literal or module-level constant arguments of input reads."""
    found: set[str] = set()
    for rel in paths:
        tree = ast.parse((ROOT / rel).read_text())
        constants = {
            t.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "IGNORED_INPUTS" for t in node.targets
            ):
                found |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            is_read = (
                isinstance(func, ast.Attribute)
                and func.attr in INPUT_METHODS
                and (
                    (isinstance(func.value, ast.Name) and func.value.id == "inputs")
                    or (
                        isinstance(func.value, ast.Call)
                        and isinstance(func.value.func, ast.Name)
                        and func.value.func.id == "Inputs"
                    )
                )
            )
            with_inputs = any(isinstance(a, ast.Name) and a.id == "inputs" for a in node.args)
            if not (is_read or with_inputs):
                continue
            args = node.args[:1] if is_read else node.args
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
                elif isinstance(arg, ast.Name) and arg.id in constants:
                    found.add(constants[arg.id])
    return found


def catalog(step: str) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = list(yaml.safe_load_all((CATALOG / f"fuseml-{step}" / VERSION / f"fuseml-{step}.yaml").read_text()))
    by_kind = {d["kind"]: d for d in docs}
    assert set(by_kind) == {"StepAction", "Task"}, f"fuseml-{step}.yaml holds {sorted(by_kind)}"
    return by_kind["StepAction"], by_kind["Task"]


def all_catalog_documents() -> list[dict[str, Any]]:
    return [d for step in STEPS for d in catalog(step)]


def make_images() -> dict[str, str]:
    """The references `make images` tags by default: {name: registry/name:version}, from images.yaml."""
    manifest = yaml.safe_load((ROOT / "images.yaml").read_text())
    return {i["name"]: f"{manifest['registry']}/{i['name']}:{manifest['version']}" for i in manifest["images"]}


def test_the_input_reader_finds_inputs_added_to_a_settings_module(tmp_path: Path) -> None:
    # The comparison below is only as good as this reader: a new read must show up.
    assert {"registry", "pull_registry", "pip_ca", "miniconda_version"} <= settings_inputs(STEPS["builder"][0])
    assert {"model", "serving_image", "resources_limits", "state_dir"} <= settings_inputs(STEPS["predictor"][0])
    assert {"mlflow_experiment", "mlflow_entrypoint_args"} <= settings_inputs(STEPS["trainer"][0])


@pytest.mark.parametrize("step", sorted(STEPS))
def test_stepaction_params_are_the_steps_inputs(step: str) -> None:
    action, _ = catalog(step)
    declared = {p["name"] for p in action["spec"]["params"]} - ({"image"} if step == "trainer" else set())
    expected = settings_inputs(STEPS[step][0]) | COMMON_INPUTS
    assert declared == expected, f"missing in YAML: {expected - declared}; not an input: {declared - expected}"


@pytest.mark.parametrize("step", sorted(STEPS))
def test_params_reach_the_step_only_through_env(step: str) -> None:
    action, _ = catalog(step)
    spec = action["spec"]
    env = {e["name"]: e.get("value") for e in spec["env"]}
    for param in spec["params"]:
        if param["name"] == "image":
            continue
        assert env["FUSEML_" + param["name"].upper()] == f"$(params.{param['name']})"
        assert param.get("default") == "", f"{param['name']}: empty means 'the step's default' (docs/contract.md)"
    assert "$(params." not in spec.get("script", "")


@pytest.mark.parametrize("step", sorted(STEPS))
def test_the_result_is_the_steps_output_written_to_the_step_result_path(step: str) -> None:
    action, task = catalog(step)
    output = STEPS[step][1]
    assert [r["name"] for r in action["spec"]["results"]] == [output]
    env = {e["name"]: e.get("value") for e in action["spec"]["env"]}
    assert env["TASK_RESULT"] == output
    assert f"$(step.results.{output}.path)" in action["spec"]["script"]
    step_name = task["spec"]["steps"][0]["name"]
    assert task["spec"]["results"] == [
        {
            "name": output,
            "type": "string",
            "description": "the step's output",
            "value": f"$(steps.{step_name}.results.{output})",
        }
    ]


@pytest.mark.parametrize("step", sorted(STEPS))
def test_the_task_wraps_the_stepaction_with_the_codeset_workspace(step: str) -> None:
    action, task = catalog(step)
    spec = task["spec"]
    assert [s["ref"] for s in spec["steps"]] == [{"name": action["metadata"]["name"]}]
    passed = {p["name"]: p["value"] for p in spec["steps"][0]["params"]}
    assert passed == {p["name"]: f"$(params.{p['name']})" for p in action["spec"]["params"]}
    task_params = {p["name"] for p in spec["params"]}
    assert {p["name"] for p in action["spec"]["params"]} <= task_params
    source = next(w for w in spec["workspaces"] if w["name"] == "source")
    assert source["mountPath"] == action["spec"]["workingDir"] == "/project"


def test_images_are_the_tags_make_images_builds() -> None:
    images = make_images()
    assert catalog("builder")[0]["spec"]["image"] == images["mlflow-builder"]
    assert catalog("predictor")[0]["spec"]["image"] == images["kserve-predictor"]
    assert catalog("trainer")[0]["spec"]["image"] == "$(params.image)"  # the builder's result


def test_credentials_come_from_secrets_only() -> None:
    for doc in all_catalog_documents():
        for path, name, value in env_values(doc):
            assert not any(w in name.upper() for w in SECRET_WORDS), f"{path}: {name}={value!r} is a literal credential"
    _, trainer = catalog("trainer")
    refs = [e["secretRef"]["name"] for e in trainer["spec"]["stepTemplate"]["envFrom"]]
    assert refs == ["$(params.mlflow-secret)", "$(params.s3-secret)"]
    _, predictor = catalog("predictor")
    from_secrets = predictor["spec"]["stepTemplate"]["envFrom"]
    assert [e["secretRef"]["name"] for e in from_secrets] == ["$(params.s3-secret)", "$(params.mlflow-secret)"]
    assert from_secrets[1]["secretRef"]["optional"] is True, "an s3:// model needs no tracking server"


def env_values(node: Any, path: str = "") -> list[tuple[str, str, str]]:
    """Every literal ``env`` entry (name, value) under ``node``."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                found += [(f"{path}.env", e["name"], e["value"]) for e in value if "value" in e]
            found += env_values(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += env_values(value, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("step", sorted(STEPS))
def test_catalog_documents_pass_the_schemas_and_the_webhook_checks(step: str) -> None:
    docs = list(catalog(step))
    assert validate_documents(docs, TEKTON_DATA) == []
    assert check_documents(docs) == []


@pytest.mark.parametrize("step", sorted(STEPS))
def test_sample_runs_pass_the_schemas_and_the_webhook_checks(step: str) -> None:
    entry = CATALOG / f"fuseml-{step}" / VERSION
    sample = list(yaml.safe_load_all((entry / "tests" / "run.yaml").read_text()))
    assert {d["kind"] for d in sample} == {"Pipeline", "PipelineRun"}
    assert (entry / "README.md").is_file()
    assert validate_documents(sample, TEKTON_DATA) == []
    assert check_documents(sample + all_catalog_documents()) == []


def test_checks_refuse_what_tekton_refuses() -> None:
    """The checks are not vacuous: each broken copy is refused, for its own reason."""
    action, task = catalog("trainer")

    def broken(change: Any) -> list[str]:
        docs = yaml.safe_load(yaml.safe_dump([action, task]))
        change(*docs)
        return validate_documents(docs, TEKTON_DATA) + check_documents(docs)

    assert any(
        "undeclared param" in p
        for p in broken(lambda a, t: a["spec"]["env"].append({"name": "X", "value": "$(params.nope)"}))
    )
    assert any(
        "interpolated into the script" in p
        for p in broken(lambda a, t: a["spec"].update(script="echo $(params.verbose)"))
    )
    assert any(
        "declares no result" in p
        for p in broken(lambda a, t: t["spec"]["results"][0].update(value="$(steps.train.results.nope)"))
    )
    assert any(
        "does not declare" in p
        for p in broken(lambda a, t: t["spec"]["steps"][0]["params"].append({"name": "nope", "value": "1"}))
    )
    assert any("computeResource" in p for p in broken(lambda a, t: a["spec"].update(computeResource={})))
    assert any("result name" in p for p in broken(lambda a, t: a["spec"]["results"][0].update(name="-bad")))
    assert any("envFrom" in p for p in broken(lambda a, t: t["spec"]["stepTemplate"].update(envFrom="x")))
