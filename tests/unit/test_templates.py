"""FuseML's ``{{ ... }}`` templates: the five forms, what is text, and ``{{ extensions.E.cfg.VAR }}``
resolved by the local runner from the extension's own variables (a real run of tiny fake steps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.config import Config
from runner.engine import run_workflow
from runner.extensions import ExtensionError
from runner.runs import FAILED, SUCCEEDED
from runner.staging import Codeset, resolve_codeset
from runner.templates import RefKind, TemplateSyntaxError, references, render, whole_reference
from runner.workflow import WorkflowError, parse_workflow
from tests.unit.test_runner_engine import Recorder, fake_step, write_result


def test_an_extension_configuration_template_names_the_extension_and_the_variable() -> None:
    (ref,) = references("{{ extensions.mlflow-store.cfg.MLFLOW_S3_ENDPOINT_URL }}")
    assert (ref.kind, ref.name, ref.output) == (RefKind.EXTENSION_CFG, "mlflow-store", "MLFLOW_S3_ENDPOINT_URL")
    assert str(ref) == "extensions.mlflow-store.cfg.MLFLOW_S3_ENDPOINT_URL"
    assert render("{{extensions.s3.cfg.A}}/b", lambda r: f"<{r}>") == "<extensions.s3.cfg.A>/b"


@pytest.mark.parametrize(
    "text",
    [
        "{{ extensions.s3.config.A }}",
        "{{ extensions.s3.cfg }}",
        "{{ extensions.s3.cfg.A.B }}",
        "{{ extension.s3.cfg.A }}",
    ],
)
def test_other_extension_forms_are_refused_with_the_forms_listed(text: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=r"use .*extensions\.<extension>\.cfg\.<VARIABLE>"):
        references(text)


def test_a_lone_closing_pair_is_text_and_a_lone_opening_pair_is_an_error() -> None:
    # FuseML's mlflow-multi-e2e passes JSON as a value: '{"requests": {"cpu": 1}}'.
    assert references('{"requests": {"cpu": 1}}') == []
    assert render('{"requests": {"cpu": 1}}', lambda r: "") == '{"requests": {"cpu": 1}}'
    with pytest.raises(TemplateSyntaxError, match="unbalanced braces"):
        references("{{ inputs.a")


def test_whole_reference_is_one_template_and_nothing_else() -> None:
    assert whole_reference(" {{ inputs.a }} ") is not None
    assert whole_reference("{{ inputs.a }}/x") is None
    assert whole_reference("{{ inputs.a }}{{ inputs.b }}") is None
    assert whole_reference("plain") is None


def flow(image: str, value: str, extensions: str = "[{name: mlflow-store, service_resource: s3}]") -> str:
    return f"""\
name: ext
outputs: [{{name: out}}]
steps:
  - name: convert
    image: {image}
    outputs: [{{name: out}}]
    extensions: {extensions}
    env:
      - name: S3_ENDPOINT
        value: '{value}'
"""


@pytest.fixture
def codeset(tmp_path: Path) -> Codeset:
    folder = tmp_path / "wine"
    folder.mkdir()
    (folder / "MLproject").write_text("name: wine\n")
    return resolve_codeset(folder)


@pytest.fixture
def image(tmp_path: Path) -> str:
    return fake_step(tmp_path / "images", "convert", 'echo "endpoint=$S3_ENDPOINT"\n' + write_result("done"))


def test_the_local_runner_gives_the_value_of_the_extensions_own_variable(
    tmp_path: Path, codeset: Codeset, image: str
) -> None:
    config = Config(
        s3_endpoint_url="http://127.0.0.1:8333", aws_access_key_id="key-id", aws_secret_access_key="not-in-the-log"
    )
    progress = Recorder()
    workflow = parse_workflow(flow(image, "{{ extensions.mlflow-store.cfg.MLFLOW_S3_ENDPOINT_URL }}/ovms"))
    run = run_workflow(workflow, None, {}, "process", config, tmp_path / "state", progress)
    assert run.status == SUCCEEDED, run.error
    assert "convert: endpoint=http://127.0.0.1:8333/ovms" in progress.lines


def test_a_variable_the_extension_does_not_set_fails_the_step_saying_what_to_configure(
    tmp_path: Path, image: str
) -> None:
    # With no S3 configured the s3 extension sets nothing: the step must not run with a hole in its value.
    workflow = parse_workflow(flow(image, "{{ extensions.mlflow-store.cfg.MLFLOW_S3_ENDPOINT_URL }}"))
    try:
        run = run_workflow(workflow, None, {}, "process", Config(), tmp_path / "state")
    except ExtensionError as e:
        message = str(e)
    else:
        assert run.status == FAILED
        message = run.error or ""
    assert "extensions.mlflow-store.cfg.MLFLOW_S3_ENDPOINT_URL" in message
    assert "does not set here (it sets: none)" in message


def test_an_extension_the_step_does_not_declare_is_a_workflow_problem_at_its_line(image: str) -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(flow(image, "{{ extensions.minio.cfg.A }}", extensions="[{name: s3}]"), source="wf.yaml")
    assert "wf.yaml:10: step 'convert' env 'S3_ENDPOINT' refers to extensions.minio.cfg.A" in str(caught.value)
    assert "has no extension 'minio' (its extensions: s3)" in str(caught.value)


def test_an_image_cannot_come_from_an_extension(image: str) -> None:
    text = flow(image, "x").replace(f"image: {image}", "image: '{{ extensions.s3.cfg.IMAGE }}'")
    with pytest.raises(WorkflowError, match="image refers to extensions.s3.cfg.IMAGE: an image comes from"):
        parse_workflow(text.replace("mlflow-store, service_resource: s3", "s3"))
