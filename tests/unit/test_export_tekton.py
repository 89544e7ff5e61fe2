"""``fuseml-steps export --to tekton``: FuseML workflows as a Pipeline, a PipelineRun and the predictor's RBAC.

Every document is checked as the API server would (Tekton's CRD and OpenAPI
schemas, Kubernetes' own for core types) and as Tekton's webhook would
(params declared, results that exist, ordering, no cycles, workspaces bound,
names in Tekton's grammar). The export runs through the real command line.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from common.errors import InputError
from runner.cli import cli
from runner.export.tekton import TektonOptions, export_tekton
from runner.export.tekton_checks import check_documents
from runner.workflow import load_workflow
from tests.fixtures.k8s_schemas import validate_documents

ROOT = Path(__file__).resolve().parents[2]
TEKTON_DATA = ROOT / "tests" / "data" / "tekton"
EXAMPLES = ROOT / "tests" / "data" / "fuseml-examples"
E2E = ROOT / "examples" / "workflows" / "mlflow-e2e.yaml"
URL = "https://example.com/org/wine.git"
# All six fuseml/examples workflows; two read an extension's configuration ({{ extensions.E.cfg.VAR }}).
EXPORTABLE = [
    "mlflow-e2e",
    "mlflow-intel-e2e",
    "mlflow-seldon-e2e",
    "mlflow-seldon-triton-e2e",
    "mlflow-multi-e2e",
    "mlflow-ovms-e2e",
]
WITH_EXTENSION_TEMPLATES = ["mlflow-multi-e2e", "mlflow-ovms-e2e"]
SECRET_NAMES = ("PASSWORD", "SECRET", "TOKEN", "ACCESS_KEY", "CREDENTIAL")


def export(*args: str, workflow: Path = E2E) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["export", str(workflow), "--to", "tekton", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def fails(*args: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, workflow: Path = E2E) -> str:
    """Run the console script as a user does; return its one-line error (exit 1, no traceback)."""
    from runner.cli import main

    monkeypatch.setattr(sys, "argv", ["fuseml-steps", "export", str(workflow), "--to", "tekton", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    err = capsys.readouterr().err
    assert caught.value.code == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def e2e() -> list[dict[str, Any]]:
    code, out, err = export("--codeset-url", URL)
    assert code == 0, err
    return list(yaml.safe_load_all(out))


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in documents if d["kind"] == kind]
    return doc


def task(pipeline: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in pipeline["spec"]["tasks"] if t["name"] == name)


def run_step(pipeline_task: dict[str, Any]) -> dict[str, Any]:
    """The step that runs the step image (ours have a ``codeset-metadata`` step before it)."""
    return next(s for s in pipeline_task["taskSpec"]["steps"] if s["name"] == "run")


def env_of(pipeline_task: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in run_step(pipeline_task)["env"]}


def test_e2e_exports_documents_that_pass_every_check(e2e: list[dict[str, Any]]) -> None:
    kinds = [d["kind"] for d in e2e]
    assert kinds == ["Pipeline", "PipelineRun", "ServiceAccount", "Role", "RoleBinding"]
    assert validate_documents(e2e, TEKTON_DATA) == []
    assert check_documents(e2e) == []


def test_codeset_is_cloned_from_git_into_a_workspace(e2e: list[dict[str, Any]]) -> None:
    pipeline, run = by_kind(e2e, "Pipeline"), by_kind(e2e, "PipelineRun")
    clone = task(pipeline, "clone-mlflow-codeset")
    assert clone["taskRef"]["resolver"] == "git"
    assert {"name": "pathInRepo", "value": "task/git-clone/0.9/git-clone.yaml"} in clone["taskRef"]["params"]
    assert clone["workspaces"] == [{"name": "output", "workspace": "mlflow-codeset"}]
    assert {"name": "mlflow-codeset-url", "value": URL} in run["spec"]["params"]
    assert {"name": "mlflow-codeset-revision", "value": "main"} in run["spec"]["params"]
    (workspace,) = run["spec"]["workspaces"]
    assert workspace["name"] == "mlflow-codeset" and "volumeClaimTemplate" in workspace
    for name in ("builder", "trainer", "predictor"):
        step = task(pipeline, name)
        assert step["workspaces"] == [{"name": "source", "workspace": "mlflow-codeset"}]
        assert step["taskSpec"]["workspaces"] == [{"name": "source", "mountPath": "/project"}]
        assert run_step(step)["workingDir"] == "$(workspaces.source.path)"


def test_templates_become_tekton_variables(e2e: list[dict[str, Any]]) -> None:
    pipeline = by_kind(e2e, "Pipeline")
    trainer, predictor = task(pipeline, "trainer"), task(pipeline, "predictor")
    # The trainer's image is the builder's result, through a param (a taskSpec cannot see other tasks).
    assert run_step(trainer)["image"] == "$(params.fuseml-step-image)"
    assert {"name": "fuseml-step-image", "value": "$(tasks.builder.results.image)"} in trainer["params"]
    assert {"name": "model", "value": "$(tasks.trainer.results.mlflow-model-url)"} in predictor["params"]
    assert {"name": "predictor", "value": "$(params.predictor)"} in predictor["params"]
    env = env_of(predictor)
    assert env["FUSEML_MODEL"] == "$(params.model)" and env["FUSEML_PREDICTOR"] == "$(params.predictor)"
    assert env["TASK_RESULT"] == "prediction-url"
    assert env["FUSEML_ENV_WORKFLOW_NAME"] == "mlflow-e2e"
    assert env["FUSEML_ENV_WORKFLOW_NAMESPACE"] == "$(context.taskRun.namespace)"
    assert {"name": "predictor", "type": "string", "default": "auto"}.items() <= next(
        p for p in pipeline["spec"]["params"] if p["name"] == "predictor"
    ).items()
    assert pipeline["spec"]["results"] == [
        {
            "name": "prediction-url",
            "type": "string",
            "description": "The URL where the exposed prediction service endpoint can be contacted to run predictions.",
            "value": "$(tasks.predictor.results.prediction-url)",
        }
    ]


def test_codeset_metadata_is_written_as_fuseml_checkout_did(e2e: list[dict[str, Any]]) -> None:
    pipeline = by_kind(e2e, "Pipeline")
    params = {p["name"]: p.get("default") for p in pipeline["spec"]["params"]}
    assert params["mlflow-codeset-name"] == "wine" and params["mlflow-codeset-project"] == "org"
    for name in ("builder", "trainer", "predictor"):
        pipeline_task = task(pipeline, name)
        first = pipeline_task["taskSpec"]["steps"][0]
        assert first["name"] == "codeset-metadata" and first["image"] == run_step(pipeline_task)["image"]
        assert "$(params." not in first["script"] and ".fuseml/_org" in first["script"]
        assert {"name": "fuseml-codeset-name", "value": "$(params.mlflow-codeset-name)"} in pipeline_task["params"]


def test_extensions_come_from_secrets_and_no_credential_is_written(e2e: list[dict[str, Any]]) -> None:
    pipeline = by_kind(e2e, "Pipeline")
    assert run_step(task(pipeline, "trainer"))["envFrom"] == [
        {"secretRef": {"name": "fuseml-mlflow-tracking"}},
        {"secretRef": {"name": "fuseml-mlflow-store"}},
    ]
    # kserve-api is the cluster: the predictor's ServiceAccount, not a Secret. The tracking Secret is
    # optional there: a trainer output behind the tracking server (mlflow-artifacts:/, models:/) needs it.
    assert run_step(task(pipeline, "predictor"))["envFrom"] == [
        {"secretRef": {"name": "fuseml-s3-storage"}},
        {"secretRef": {"name": "fuseml-mlflow-tracking", "optional": True}},
    ]
    for doc in e2e:
        for name in literal_env_names(doc):
            assert not any(word in name.upper() for word in SECRET_NAMES), f"{doc['kind']}: {name} has a literal value"
        assert "kind: Secret" not in yaml.safe_dump(doc)


def literal_env_names(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [e["name"] for e in node.get("env", []) if "value" in e] if isinstance(node.get("env"), list) else []
        return found + [n for v in node.values() for n in literal_env_names(v)]
    if isinstance(node, list):
        return [n for v in node for n in literal_env_names(v)]
    return []


def test_secret_option_names_the_secret(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = export("--codeset-url", URL, "--secret", "mlflow-store=team-s3", "--secret", "s3-storage=team-s3")
    assert code == 0
    pipeline = by_kind(list(yaml.safe_load_all(out)), "Pipeline")
    assert {"secretRef": {"name": "team-s3"}} in run_step(task(pipeline, "trainer"))["envFrom"]
    err = fails("--codeset-url", URL, "--secret", "mlflow-stroe=x", capsys=capsys, monkeypatch=monkeypatch)
    assert "mlflow-stroe" in err and "use one of: kserve, mlflow-store, mlflow-tracking, s3-storage" in err


def test_predictor_runs_under_a_service_account_allowed_to_deploy(e2e: list[dict[str, Any]]) -> None:
    run, role, binding = by_kind(e2e, "PipelineRun"), by_kind(e2e, "Role"), by_kind(e2e, "RoleBinding")
    assert run["spec"]["taskRunSpecs"] == [
        {"pipelineTaskName": "predictor", "serviceAccountName": "fuseml-steps-predictor"}
    ]
    resources = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert resources == {("serving.kserve.io", "inferenceservices"), ("", "secrets"), ("", "serviceaccounts")}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "fuseml-steps-predictor", "namespace": "fuseml-workloads"}
    ]


def test_builder_gets_what_buildah_needs_in_a_pod(e2e: list[dict[str, Any]]) -> None:
    builder = task(by_kind(e2e, "Pipeline"), "builder")
    step = run_step(builder)
    assert step["securityContext"]["capabilities"] == {"add": ["SYS_ADMIN"]}
    assert step["volumeMounts"] == [{"name": "containers", "mountPath": "/var/lib/containers"}]
    assert step["command"] == ["run"]


def test_output_dir_writes_pipeline_and_run(tmp_path: Path) -> None:
    code, _, err = export("--codeset-url", f"mlflow-codeset={URL}", "--revision", "v1", "-o", str(tmp_path))
    assert code == 0, err
    pipeline = list(yaml.safe_load_all((tmp_path / "pipeline.yaml").read_text()))
    run = list(yaml.safe_load_all((tmp_path / "pipelinerun.yaml").read_text()))
    assert [d["kind"] for d in pipeline] == ["Pipeline", "ServiceAccount", "Role", "RoleBinding"]
    assert [d["kind"] for d in run] == ["PipelineRun"]
    assert {"name": "mlflow-codeset-revision", "value": "v1"} in run[0]["spec"]["params"]


def test_step_env_and_resources_are_carried_over(tmp_path: Path) -> None:
    flow = yaml.safe_load(E2E.read_text())
    flow["steps"][1]["env"] = [{"name": "EXTRA", "value": "{{ inputs.predictor }}-x"}]
    flow["steps"][1]["resources"] = {"limits": {"cpu": "2", "memory": "4Gi"}}
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(flow))
    code, out, err = export("--codeset-url", URL, workflow=path)
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    trainer = task(by_kind(docs, "Pipeline"), "trainer")
    assert env_of(trainer)["EXTRA"] == "$(params.env-extra)"
    assert {"name": "env-extra", "value": "$(params.predictor)-x"} in trainer["params"]
    assert run_step(trainer)["computeResources"] == {"limits": {"cpu": "2", "memory": "4Gi"}}
    assert validate_documents(docs, TEKTON_DATA) == [] and check_documents(docs) == []


@pytest.mark.parametrize("name", EXPORTABLE)
def test_fuseml_examples_export(name: str) -> None:
    flow = load_workflow(EXAMPLES / f"{name}.yaml")
    docs = export_tekton(flow, TektonOptions(codeset_urls={flow.codeset_inputs[0].name: URL}))
    assert validate_documents(docs, TEKTON_DATA) == []
    assert check_documents(docs) == []
    pipeline = by_kind(docs, "Pipeline")
    for step in flow.steps:
        spec = task(pipeline, step.name)["taskSpec"]
        assert [r["name"] for r in spec.get("results", [])] == list(step.outputs)
        env = env_of(task(pipeline, step.name))
        for item in step.value_inputs:
            assert "FUSEML_" + item.name.upper() in env


def test_a_step_we_do_not_provide_is_an_inline_task_with_its_inputs_as_env() -> None:
    flow = load_workflow(EXAMPLES / "mlflow-seldon-e2e.yaml")
    docs = export_tekton(flow, TektonOptions(codeset_urls={flow.codeset_inputs[0].name: URL}))
    seldon = next(s for s in flow.steps if "seldon" in s.image)
    spec = task(by_kind(docs, "Pipeline"), seldon.name)["taskSpec"]
    assert [s["name"] for s in spec["steps"]] == ["run"]  # no shell assumed in a foreign image
    assert spec["steps"][0]["image"] == seldon.image
    assert "command" not in spec["steps"][0]  # its own entrypoint, as FuseML ran it
    assert {"ServiceAccount", "Role"}.isdisjoint(d["kind"] for d in docs)  # no predictor of ours to authorise


@pytest.mark.parametrize("name", WITH_EXTENSION_TEMPLATES)
def test_an_extensions_configuration_is_the_key_of_its_secret(name: str) -> None:
    flow = load_workflow(EXAMPLES / f"{name}.yaml")
    docs = export_tekton(flow, TektonOptions(codeset_urls={flow.codeset_inputs[0].name: URL}))
    pipeline = by_kind(docs, "Pipeline")
    readers = [s for s in flow.steps if any("extensions." in e.value for e in s.env)]
    assert readers, "the example reads an extension's configuration"
    for step in readers:
        (entry,) = [e for e in run_step(task(pipeline, step.name))["env"] if e["name"] == "S3_ENDPOINT"]
        assert entry == {
            "name": "S3_ENDPOINT",
            "valueFrom": {"secretKeyRef": {"name": "fuseml-mlflow-store", "key": "MLFLOW_S3_ENDPOINT_URL"}},
        }
    assert "{{" not in yaml.safe_dump_all(docs)


def extension_flow(tmp_path: Path, value: str, extensions: list[str] | None = None) -> Path:
    flow = yaml.safe_load(E2E.read_text())
    trainer = flow["steps"][1]
    if extensions is not None:
        trainer["extensions"] = [{"name": e, "service_resource": "s3"} for e in extensions]
    trainer["env"] = [{"name": "S3_URL", "value": value}]
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(flow))
    return path


def test_an_extension_value_inside_text_is_read_into_a_variable_and_expanded_by_kubernetes(tmp_path: Path) -> None:
    path = extension_flow(tmp_path, "{{ extensions.mlflow-store.cfg.MLFLOW_S3_ENDPOINT_URL }}/bucket")
    code, out, err = export("--codeset-url", URL, "--secret", "mlflow-store=my-s3", workflow=path)
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    env = run_step(task(by_kind(docs, "Pipeline"), "trainer"))["env"]
    names = [e["name"] for e in env]
    helper = "FUSEML_EXT_MLFLOW_STORE_MLFLOW_S3_ENDPOINT_URL"
    assert names.index(helper) < names.index("S3_URL")  # the kubelet expands only earlier variables
    assert env[names.index(helper)]["valueFrom"] == {"secretKeyRef": {"name": "my-s3", "key": "MLFLOW_S3_ENDPOINT_URL"}}
    assert env[names.index("S3_URL")]["value"] == f"$({helper})/bucket"
    assert validate_documents(docs, TEKTON_DATA) == [] and check_documents(docs) == []


def test_an_extension_value_mixed_with_another_template_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = extension_flow(tmp_path, "{{ extensions.mlflow-store.cfg.X }}/{{ inputs.predictor }}")
    err = fails("--codeset-url", URL, workflow=path, capsys=capsys, monkeypatch=monkeypatch)
    assert "S3_URL mixes an extension's configuration with inputs.predictor" in err


def test_an_extension_the_step_does_not_declare_is_refused_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = extension_flow(tmp_path, "{{ extensions.minio.cfg.MLFLOW_S3_ENDPOINT_URL }}", extensions=["mlflow-store"])
    err = fails("--codeset-url", URL, workflow=path, capsys=capsys, monkeypatch=monkeypatch)
    assert "wf.yaml:" in err and "has no extension 'minio' (its extensions: mlflow-store)" in err


def test_wrong_codeset_or_input_is_an_error_that_says_what_to_give(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="no git URL for codeset input mlflow-codeset.*give --codeset-url"):
        export_tekton(load_workflow(E2E), TektonOptions(codeset_urls={}))
    err = fails("--codeset-url", f"other={URL}", capsys=capsys, monkeypatch=monkeypatch)
    assert "--codeset-url names other" in err and "use one of: mlflow-codeset" in err
    err = fails("--codeset-url", URL, "-i", "predictr=x", capsys=capsys, monkeypatch=monkeypatch)
    assert "--input predictr" in err and "use one of: predictor" in err


def test_checks_refuse_what_tekton_refuses(e2e: list[dict[str, Any]]) -> None:
    """The webhook checks are not vacuous: each broken copy is refused for its own reason."""

    def broken(change: Any) -> list[str]:
        docs = copy.deepcopy(e2e)
        change(by_kind(docs, "Pipeline")["spec"], by_kind(docs, "PipelineRun")["spec"])
        return check_documents(docs) + validate_documents(docs, TEKTON_DATA)

    def tasks(spec: dict[str, Any]) -> dict[str, Any]:
        return {t["name"]: t for t in spec["tasks"]}

    cases = {
        "undeclared param": lambda p, r: tasks(p)["predictor"]["params"].append(
            {"name": "x", "value": "$(params.nope)"}
        ),
        "declares no result": lambda p, r: tasks(p)["predictor"]["params"][0].update(
            value="$(tasks.trainer.results.x)"
        ),
        "names task 'ghost'": lambda p, r: tasks(p)["predictor"]["params"][0].update(value="$(tasks.ghost.results.x)"),
        "cycle": lambda p, r: tasks(p)["builder"].update(runAfter=["predictor"]),
        "not a workspace of the pipeline": lambda p, r: tasks(p)["builder"]["workspaces"][0].update(workspace="w"),
        "is not bound": lambda p, r: r.update(workspaces=[]),
        "has no default and no value": lambda p, r: r.update(params=[]),
        "does not match": lambda p, r: p["params"].append({"name": "1bad", "type": "string", "default": ""}),
        "task name": lambda p, r: tasks(p)["predictor"].update(name="Predictor"),
        "computeResource": lambda p, r: tasks(p)["builder"]["taskSpec"]["steps"][0].update(computeResource={}),
        "not a task of": lambda p, r: r["taskRunSpecs"][0].update(pipelineTaskName="nope"),
    }
    for reason, change in cases.items():
        problems = broken(change)
        assert any(reason in p for p in problems), f"{reason}: {problems}"
