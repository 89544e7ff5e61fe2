"""``fuseml-steps export --to kfp``: FuseML workflows as Kubeflow Pipelines v2 pipelines, and the
component catalog in deploy/kfp/components.

The pipelines are compiled by the real ``kfp`` SDK, in the virtualenv ``make
kfp-venv`` makes (kfp cannot live beside the steps: it requires kubernetes<31),
and read back as the IR YAML a KFP server receives. The components' inputs are
checked against the steps' settings modules, as the Tekton catalog's params are,
and the fixed script each component runs is run for real with a stand-in ``run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from common.errors import InputError
from runner.cli import cli
from runner.export.kfp_components import STEP_SCRIPT, STEPS, catalog, dump, kfp_name
from runner.export.kfp_pipeline import KfpOptions, pipeline_plan
from runner.export.kfp_sdk import COMPILE_SCRIPT, KFP_PYTHON_VARIABLE, kfp_python
from runner.workflow import load_workflow
from tests.unit.test_tekton_catalog import COMMON_INPUTS, SECRET_WORDS, settings_inputs
from tests.unit.test_tekton_catalog import STEPS as SETTINGS

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ROOT / "deploy" / "kfp" / "components"
EXAMPLES = ROOT / "tests" / "data" / "fuseml-examples"
E2E = ROOT / "examples" / "workflows" / "mlflow-e2e.yaml"
URL = "https://example.com/org/wine.git"
PLUMBING = {"workspace", "codeset"}


def export(*args: str, workflow: Path = E2E) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["export", str(workflow), "--to", "kfp", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def documents(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pipeline spec and its Kubernetes platform spec, as a KFP server reads the file."""
    docs = list(yaml.safe_load_all(text))
    return docs[0], (docs[1] if len(docs) > 1 else {})


def executor(spec: dict[str, Any], task: str) -> dict[str, Any]:
    """The container of the task whose display name is the workflow step ``task``."""
    name = task_by_step(spec, task)["componentRef"]["name"]
    label = spec["components"][name]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]["container"]


def task_by_step(spec: dict[str, Any], step: str) -> dict[str, Any]:
    (found,) = [t for t in spec["root"]["dag"]["tasks"].values() if t["taskInfo"]["name"] == step]
    return found


def platform_of(spec: dict[str, Any], platform: dict[str, Any], step: str) -> dict[str, Any]:
    name = task_by_step(spec, step)["componentRef"]["name"]
    label = spec["components"][name]["executorLabel"]
    return platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].get(label, {})


@pytest.fixture(scope="module")
def e2e() -> tuple[dict[str, Any], dict[str, Any]]:
    code, out, err = export("--codeset-url", URL)
    assert code == 0, err
    return documents(out)


# The catalog ---------------------------------------------------------------------------


@pytest.mark.parametrize("step", sorted(STEPS))
def test_component_inputs_are_the_steps_inputs(step: str) -> None:
    component = yaml.safe_load((COMPONENTS / f"{step}.yaml").read_text())
    declared = {i["name"] for i in component["inputs"]} - PLUMBING
    expected = settings_inputs(SETTINGS[step][0]) | COMMON_INPUTS
    assert declared == expected, f"missing in YAML: {expected - declared}; not an input: {declared - expected}"


@pytest.mark.parametrize("step", sorted(STEPS))
def test_inputs_reach_the_step_only_as_env_arguments_and_the_result_is_the_output_parameter(step: str) -> None:
    component = yaml.safe_load((COMPONENTS / f"{step}.yaml").read_text())
    container = component["implementation"]["container"]
    assert container["command"][:3] == ["sh", "-ec", STEP_SCRIPT]
    assert "inputValue" not in json.dumps(container["command"])  # values are arguments, never script text
    output = kfp_name(SETTINGS[step][1])
    assert [o["name"] for o in component["outputs"]] == [output]
    assert container["args"][:3] == [{"outputPath": output}, {"inputValue": "workspace"}, {"inputValue": "codeset"}]
    for item, arg in zip(component["inputs"][2:], container["args"][3:], strict=True):
        assert item.get("optional") is True, f"{item['name']}: not given means the step's own default"
        name = item["name"]
        assert arg == {
            "if": {"cond": {"isPresent": name}, "then": [{"concat": [f"FUSEML_{name.upper()}=", {"inputValue": name}]}]}
        }


def test_the_catalog_files_are_what_the_exporter_uses() -> None:
    for file_name, component in catalog().items():
        assert (COMPONENTS / file_name).read_text() == dump(component), (
            f"deploy/kfp/components/{file_name} is stale: python -m runner.export.kfp_components"
        )


def test_components_load_with_the_kfp_sdk() -> None:
    script = (
        "import json, sys\nfrom kfp import components\n"
        "for path in sys.argv[1:]:\n"
        "    spec = components.load_component_from_file(path).component_spec\n"
        "    print(json.dumps([spec.name, sorted(spec.inputs), sorted(spec.outputs or {})]))\n"
    )
    paths = sorted(str(p) for p in COMPONENTS.glob("*.yaml"))
    done = subprocess.run([kfp_python(), "-I", "-c", script, *paths], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    loaded = {name: (inputs, outputs) for name, inputs, outputs in map(json.loads, done.stdout.splitlines())}
    assert loaded["fuseml-trainer"][1] == ["mlflow_model_url"]
    assert loaded["fuseml-predictor"][1] == ["prediction_url"]
    assert loaded["fuseml-builder"][1] == ["image"]
    assert loaded["fuseml-codeset"] == (["codeset", "name", "project", "revision", "url", "workspace"], [])


def test_the_component_script_runs_the_step_with_given_inputs_only_and_writes_the_result_file(tmp_path: Path) -> None:
    """The script KFP runs, run here with a stand-in ``run`` that records what a step would see."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "run").write_text(
        "#!/bin/sh\n"
        'env | grep -E "^(FUSEML_|TASK_RESULT)" | sort > "$FUSEML_RESULTS_DIR/env"\n'
        'pwd > "$FUSEML_RESULTS_DIR/cwd"\n'
        'printf %s "s3://bucket/model" > "$FUSEML_RESULTS_DIR/$TASK_RESULT"\n'
    )
    (bin_dir / "run").chmod(0o755)
    (tmp_path / "ws" / "mlflow-codeset").mkdir(parents=True)
    result = tmp_path / "outputs" / "mlflow_model_url"
    value = "alpha=0.4 l1_ratio='a b' $(touch /tmp/nope)"
    done = subprocess.run(
        ["sh", "-ec", STEP_SCRIPT, "fuseml-trainer", str(result), str(tmp_path / "ws"), "mlflow-codeset",
         f"FUSEML_MLFLOW_ENTRYPOINT_ARGS={value}", "FUSEML_VERBOSE="],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert result.read_text() == "s3://bucket/model"
    assert (tmp_path / "outputs" / "cwd").read_text().strip() == str(tmp_path / "ws" / "mlflow-codeset")
    env = (tmp_path / "outputs" / "env").read_text().splitlines()
    assert env == [
        f"FUSEML_MLFLOW_ENTRYPOINT_ARGS={value}",  # as given: never run by a shell
        f"FUSEML_RESULTS_DIR={tmp_path / 'outputs'}",
        "FUSEML_VERBOSE=",
        "TASK_RESULT=mlflow_model_url",
    ]


# The exported pipeline -----------------------------------------------------------------


def test_e2e_compiles_to_a_pipeline_with_the_workflows_parameters_outputs_and_workspace(
    e2e: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    spec, _ = e2e
    assert spec["pipelineInfo"]["name"] == "mlflow-e2e"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["mlflow_codeset_url"]["defaultValue"] == URL
    assert params["mlflow_codeset_revision"]["defaultValue"] == "main"
    assert (params["mlflow_codeset_project"]["defaultValue"], params["mlflow_codeset_name"]["defaultValue"]) == (
        "org",
        "wine",
    )
    assert params["predictor"]["defaultValue"] == "auto"
    assert list(spec["root"]["outputDefinitions"]["parameters"]) == ["prediction_url"]
    assert spec["root"]["dag"]["outputs"]["parameters"]["prediction_url"]["valueFromParameter"] == {
        "outputParameterKey": "prediction_url",
        "producerSubtask": "fuseml-predictor",
    }
    # One task per step and one clone per codeset, sharing the workspace (a volume claim of --storage).
    assert sorted(t["taskInfo"]["name"] for t in spec["root"]["dag"]["tasks"].values()) == [
        "builder",
        "clone-mlflow-codeset",
        "predictor",
        "trainer",
    ]
    assert e2e[1]["platforms"]["kubernetes"]["pipelineConfig"]["workspace"]["size"] == "1Gi"


def test_steps_run_in_order_in_the_cloned_codeset_and_outputs_flow_between_them(
    e2e: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    spec, _ = e2e
    builder, trainer, predictor = (task_by_step(spec, s) for s in ("builder", "trainer", "predictor"))
    assert builder["dependentTasks"] == ["fuseml-codeset"]
    assert sorted(trainer["dependentTasks"]) == ["fuseml-builder", "fuseml-codeset"]
    assert sorted(predictor["dependentTasks"]) == ["fuseml-codeset", "fuseml-trainer"]
    for task in (builder, trainer, predictor):
        inputs = task["inputs"]["parameters"]
        assert inputs["workspace"]["runtimeValue"]["constant"] == "{{$.workspace_path}}"
        assert inputs["codeset"]["runtimeValue"]["constant"] == "mlflow-codeset"
        assert task["cachingOptions"] == {}  # never skipped: steps deploy and register things
    assert predictor["inputs"]["parameters"]["model"]["taskOutputParameter"] == {
        "outputParameterKey": "mlflow_model_url",
        "producerTask": "fuseml-trainer",
    }
    assert predictor["inputs"]["parameters"]["predictor"]["componentInputParameter"] == "predictor"
    # The trainer runs in the image the builder returns.
    assert executor(spec, "trainer")["image"] == "{{$.inputs.parameters['pipelinechannel--fuseml-builder-image']}}"
    assert trainer["inputs"]["parameters"]["pipelinechannel--fuseml-builder-image"]["taskOutputParameter"] == {
        "outputParameterKey": "image",
        "producerTask": "fuseml-builder",
    }
    assert executor(spec, "builder")["image"] == "ghcr.io/fuseml-steps/mlflow-builder:0.1.0"
    assert executor(spec, "predictor")["image"] == "ghcr.io/fuseml-steps/kserve-predictor:0.1.0"
    clone = executor(spec, "clone-mlflow-codeset")
    assert clone["image"] == "ghcr.io/fuseml-steps/mlflow-builder:0.1.0"  # it has git
    assert "git clone" in clone["command"][2]


def test_extensions_come_from_secrets_key_by_key_and_no_credential_is_written(
    e2e: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    spec, platform = e2e
    trainer = platform_of(spec, platform, "trainer")
    secrets = {(s["secretName"], s["optional"]): s["keyToEnv"] for s in trainer["secretAsEnv"]}
    assert secrets[("fuseml-mlflow-tracking", False)] == [
        {"envVar": "MLFLOW_TRACKING_URI", "secretKey": "MLFLOW_TRACKING_URI"}
    ]
    assert {e["secretKey"] for e in secrets[("fuseml-mlflow-store", False)]} == {
        "MLFLOW_S3_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    assert "MLFLOW_TRACKING_PASSWORD" in json.dumps(secrets[("fuseml-mlflow-tracking", True)])
    assert trainer["fieldPathAsEnv"] == [{"fieldPath": "metadata.namespace", "name": "FUSEML_ENV_WORKFLOW_NAMESPACE"}]
    predictor = platform_of(spec, platform, "predictor")
    assert {s["secretName"] for s in predictor["secretAsEnv"]} == {"fuseml-s3-storage"}  # kserve-api: the cluster
    assert platform_of(spec, platform, "builder")["emptyDirMounts"] == [
        {"mountPath": "/var/lib/containers", "volumeName": "containers"}
    ]
    for label, container in ((k, v["container"]) for k, v in spec["deploymentSpec"]["executors"].items()):
        for entry in container.get("env", []):
            assert not any(w in entry["name"].upper() for w in SECRET_WORDS), f"{label}: {entry} is a literal"


def test_secret_names_inputs_and_images_can_be_given(tmp_path: Path) -> None:
    code, out, err = export(
        "--codeset-url", URL, "--secret", "mlflow-store=my-s3", "--input", "predictor=sklearn",
        "--image", "trainer=127.0.0.1:5000/mlflow/trainer:abc", "--revision", "v1", "-o", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    assert "wrote" in err and out == ""
    spec, platform = documents((tmp_path / "pipeline.yaml").read_text())
    assert "my-s3" in {s["secretName"] for s in platform_of(spec, platform, "trainer")["secretAsEnv"]}
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert (params["predictor"]["defaultValue"], params["mlflow_codeset_revision"]["defaultValue"]) == ("sklearn", "v1")
    assert executor(spec, "trainer")["image"] == "127.0.0.1:5000/mlflow/trainer:abc"


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Every FuseML example compiled by kfp_compile, in one interpreter (importing kfp takes seconds)."""
    names = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
    plans = [pipeline_plan(load_workflow(EXAMPLES / f"{n}.yaml"), KfpOptions({"mlflow-codeset": URL})) for n in names]
    out = tmp_path_factory.mktemp("kfp")
    script = (
        "import json, runpy, sys\n"
        "compile_plan = runpy.run_path(sys.argv[1])['compile_plan']\n"
        "for i, plan in enumerate(json.load(sys.stdin)):\n"
        "    compile_plan(plan, f'{sys.argv[2]}/{i}.yaml')\n"
    )
    done = subprocess.run(
        [kfp_python(), "-I", "-c", script, str(COMPILE_SCRIPT), str(out)],
        input=json.dumps(plans), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return {n: documents((out / f"{i}.yaml").read_text()) for i, n in enumerate(names)}


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.yaml")))
def test_every_fuseml_example_compiles(name: str, examples: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    flow = load_workflow(EXAMPLES / f"{name}.yaml")
    spec, platform = examples[name]
    steps = sorted(t["taskInfo"]["name"] for t in spec["root"]["dag"]["tasks"].values())
    assert steps == sorted([s.name for s in flow.steps] + ["clone-mlflow-codeset"])
    for step in flow.steps:
        container = executor(spec, step.name)
        given = {str(a).split("=", 1)[0].split('"')[-1] for a in container["args"] if "Concat" in str(a)}
        for item in step.value_inputs:
            assert f"FUSEML_{item.name.upper()}" in given or f"FUSEML_{item.name.upper().replace('-', '_')}" in given
    assert "{{ " not in yaml.safe_dump(spec) + yaml.safe_dump(platform)  # every FuseML template was mapped


def test_an_extensions_configuration_is_the_key_of_its_secret(
    examples: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    spec, platform = examples["mlflow-ovms-e2e"]
    for step in ("converter", "predictor"):
        maps = platform_of(spec, platform, step)["secretAsEnv"]
        assert {
            "envVar": "S3_ENDPOINT",
            "secretKey": "MLFLOW_S3_ENDPOINT_URL",
        } in [e for m in maps if m["secretName"] == "fuseml-mlflow-store" for e in m["keyToEnv"]]
        # ...and the S3 extension's own variable is still there beside it (a key read into two variables).
        assert {"envVar": "MLFLOW_S3_ENDPOINT_URL", "secretKey": "MLFLOW_S3_ENDPOINT_URL"} in [
            e for m in maps for e in m["keyToEnv"]
        ]


def test_an_extension_value_inside_text_is_refused_for_kfp(tmp_path: Path) -> None:
    flow = yaml.safe_load(E2E.read_text())
    flow["steps"][1]["env"] = [{"name": "S3_URL", "value": "{{ extensions.mlflow-store.cfg.X }}/bucket"}]
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(flow))
    with pytest.raises(InputError, match="S3_URL builds a text around an extension's configuration"):
        export("--codeset-url", URL, workflow=path)


def test_without_the_sdk_the_error_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    monkeypatch.setenv(KFP_PYTHON_VARIABLE, str(bare / "bin" / "python"))
    with pytest.raises(InputError, match="could not compile the pipeline: ModuleNotFoundError.*make kfp-venv"):
        export("--codeset-url", URL)
    monkeypatch.setenv(KFP_PYTHON_VARIABLE, str(tmp_path / "nope"))
    with pytest.raises(InputError, match="is not an executable Python.*make kfp-venv"):
        export("--codeset-url", URL)


def test_the_sdk_is_found_in_the_kfp_virtualenv_when_the_current_python_has_none() -> None:
    assert kfp_python({}) in (sys.executable, str(ROOT / ".venv-kfp" / "bin" / "python"))
    assert os.access(kfp_python({}), os.X_OK)
