"""Workflow YAML: what loads, what is refused, and that refusals say file:line and what to do."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from runner.templates import RefKind, TemplateSyntaxError, references, render
from runner.workflow import CODESET, WorkflowError, load_workflow, parse_workflow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "mlflow-e2e.yaml"

MINIMAL = """\
name: wf
inputs:
  - name: src
    type: codeset
  - name: flavour
    default: auto
outputs:
  - name: url
steps:
  - name: first
    image: ghcr.io/fuseml-steps/mlflow-builder:1
    inputs:
      - name: src
        codeset: {name: "{{ inputs.src }}", path: /project}
    outputs:
      - name: image
  - name: second
    image: "{{ steps.first.outputs.image }}"
    inputs:
      - name: flavour
        value: "{{ inputs.flavour }}"
    outputs:
      - name: url
"""


def problems(text: str) -> list[str]:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(dedent(text), source="wf.yaml")
    return caught.value.problems or [str(caught.value)]


def test_the_example_workflow_loads_with_the_contract_shape() -> None:
    workflow = load_workflow(EXAMPLE)
    assert workflow.name == "mlflow-e2e"
    assert [s.name for s in workflow.steps] == ["builder", "trainer", "predictor"]
    assert [i.name for i in workflow.inputs] == ["mlflow-codeset", "predictor"]
    assert workflow.input("mlflow-codeset").type == CODESET
    assert workflow.input("predictor").default == "auto"
    assert [o.name for o in workflow.outputs] == ["prediction-url"]
    builder, trainer, predictor = workflow.steps
    assert builder.result_name == "image" and builder.codeset.path == "/project"
    assert trainer.image == "{{ steps.builder.outputs.image }}"
    assert {e.kind for e in trainer.extensions} == {"mlflow-tracking", "s3"}
    assert {e.kind for e in predictor.extensions} == {"s3", "kserve-api"}
    assert {i.name: i.value for i in predictor.value_inputs} == {
        "model": "{{ steps.trainer.outputs.mlflow-model-url }}",
        "predictor": "{{ inputs.predictor }}",
    }


def test_keys_fuseml_has_but_we_do_not_use_are_accepted() -> None:
    text = MINIMAL.replace("name: wf\n", "name: wf\ndescription: hi\nlabels: [a]\n")
    text = text.replace("    default: auto\n", "    default: auto\n    description: d\n    labels: [x]\n")
    text = text.replace(
        "      - name: url\n",
        "      - name: url\n    resources:\n      limits: {cpu: 1}\n"
        "    extensions:\n      - name: s3\n        product: minio\n        service_resource: s3\n"
        "        version: 1\n        zone: z\n",
    )
    workflow = parse_workflow(text, "wf.yaml")
    assert workflow.steps[1].resources == {"limits": {"cpu": 1}}
    assert workflow.warnings == ()


def test_an_unknown_key_that_looks_like_a_typo_is_an_error_with_its_line() -> None:
    found = problems(MINIMAL.replace("    image: ghcr.io", "    imgae: ghcr.io"))
    assert "wf.yaml:11: step 'first': unknown key 'imgae'; did you mean 'image'?" in found
    assert "wf.yaml:10: step 'first' has no 'image'" in found


def test_an_unrelated_unknown_key_is_only_a_warning() -> None:
    workflow = parse_workflow(MINIMAL.replace("name: wf\n", "name: wf\nmaintainer: me\n"), "wf.yaml")
    assert workflow.warnings == ("wf.yaml:2: the workflow: key 'maintainer' is not a FuseML key; ignored",)


def test_a_reference_to_a_later_step_names_the_line_and_the_fix() -> None:
    text = MINIMAL.replace('value: "{{ inputs.flavour }}"', 'value: "{{ inputs.flavour }}"').replace(
        '        codeset: {name: "{{ inputs.src }}", path: /project}\n',
        '        codeset: {name: "{{ inputs.src }}", path: /project}\n'
        '      - name: model\n        value: "{{ steps.second.outputs.url }}"\n',
    )
    assert problems(text) == [
        "wf.yaml:16: step 'first' input 'model' refers to steps.second.outputs.url, which runs later: "
        "move step 'second' before 'first'"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("{{ steps.first.outputs.image }}", "{{ steps.nope.outputs.image }}", "there is no step 'nope'"),
        ("{{ steps.first.outputs.image }}", "{{ steps.first.outputs.img }}", "has no such output (has: image)"),
        ("{{ steps.first.outputs.image }}", "{{ steps.second.outputs.url }}", "its own output"),
        ("{{ inputs.flavour }}", "{{ inputs.colour }}", "the workflow has no input 'colour' (inputs: src, flavour)"),
        ("{{ inputs.flavour }}", "{{ inputs.flavour.name }}", "input 'flavour' is a string, not a codeset"),
        ("{{ inputs.flavour }}", "{{ flavour }}", "unknown template {{ flavour }}"),
        ("{{ inputs.flavour }}", "{{ inputs.flavour ", "unbalanced braces"),
    ],
)
def test_bad_references_are_reported(old: str, new: str, expected: str) -> None:
    found = problems(MINIMAL.replace(old, new))
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = MINIMAL.replace("    type: codeset", "    type: blob").replace(
        "  - name: url\nsteps", "  - name: nope\nsteps"
    )
    found = problems(text)
    assert found[0].startswith("wf.yaml:4: input 'src' has type 'blob'")
    assert any(p.startswith("wf.yaml:8: workflow output 'nope' is produced by no step") for p in found)
    assert any("is a blob: give it 'type: codeset'" in p for p in found)


def test_an_unquoted_template_gets_a_quoting_hint() -> None:
    text = MINIMAL.replace('value: "{{ inputs.flavour }}"', "value: {{ inputs.flavour }}")
    with pytest.raises(WorkflowError, match=r"wf.yaml:21: not valid YAML.*put a template in quotes"):
        parse_workflow(text, "wf.yaml")


def test_structure_errors() -> None:
    assert "wf.yaml:1: the workflow has no 'steps' list" in problems("name: wf\n")
    assert problems("name: wf\nsteps: {a: 1}\n") == [
        "wf.yaml:2: the workflow: 'steps' must be a list (items start with '- ')"
    ]
    found = problems("name: wf\nsteps:\n  - name: a\n    image: x\n    inputs:\n      - name: i\n")
    assert found == ["wf.yaml:6: step 'a' input 'i' needs exactly one of 'value' or 'codeset'"]
    found = problems("name: wf\nsteps:\n  - name: a\n    image: x\n  - name: a\n    image: y\n")
    assert found == ["wf.yaml:5: duplicate step name 'a'"]
    assert problems("name: wf\nsteps:\n  - name: a\n    image: [x]\n") == [
        "wf.yaml:4: step 'a': 'image' must be a string, got a list"
    ]
    assert problems("- a\n") == ["wf.yaml:1: a workflow is a mapping with name, inputs, outputs and steps"]


def test_yaml_scalars_become_fuseml_strings() -> None:
    text = MINIMAL.replace("    default: auto", "    default: true").replace(
        'value: "{{ inputs.flavour }}"', "value: 3"
    )
    workflow = parse_workflow(text, "wf.yaml")
    assert workflow.input("flavour").default == "true"
    assert workflow.steps[1].value_inputs[0].value == "3"
    assert not workflow.input("flavour").required


def test_a_missing_file_is_a_workflow_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="cannot read workflow"):
        load_workflow(tmp_path / "nope.yaml")


def test_templates_parse_and_render() -> None:
    refs = references("{{inputs.a}}-{{ inputs.c.project }}/{{ steps.s.outputs.model-url }}")
    assert [(r.kind, r.name, r.output) for r in refs] == [
        (RefKind.INPUT, "a", None),
        (RefKind.CODESET_PROJECT, "c", None),
        (RefKind.STEP_OUTPUT, "s", "model-url"),
    ]
    assert render("x {{ inputs.a }} y {{ steps.s.outputs.o }}", lambda r: str(r)) == "x inputs.a y steps.s.outputs.o"
    assert render("no templates", lambda r: "") == "no templates"
    with pytest.raises(TemplateSyntaxError):
        references("{{ steps.s.output.o }}")


def test_an_input_repeated_with_the_same_value_is_a_warning_and_with_another_value_an_error() -> None:
    # FuseML's own mlflow-multi-e2e repeats `verbose: false` in one step, and FuseML ran it.
    same = '        value: "{{ inputs.flavour }}"\n      - name: flavour\n        value: "{{ inputs.flavour }}"\n'
    workflow = parse_workflow(MINIMAL.replace('        value: "{{ inputs.flavour }}"\n', same), "wf.yaml")
    assert [i.name for i in workflow.step("second").value_inputs] == ["flavour"]
    assert workflow.warnings == ("wf.yaml:23: step 'second' input 'flavour' repeats line 21; ignored",)
    other = '        value: "{{ inputs.flavour }}"\n      - name: flavour\n        value: other\n'
    assert "wf.yaml:23: duplicate input of step 'second' name 'flavour'" in problems(
        MINIMAL.replace('        value: "{{ inputs.flavour }}"\n', other)
    )
