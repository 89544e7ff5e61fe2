"""The engine and the process executor, proven with tiny fake steps (``venv://`` folders
whose ``bin/run`` is a shell script), so they need none of the real steps."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from textwrap import dedent

import pytest

from runner.config import Config
from runner.engine import run_workflow
from runner.executors.base import StepSpec
from runner.executors.process import ProcessExecutor
from runner.extensions import ExtensionError
from runner.progress import Progress
from runner.runs import CANCELLED, FAILED, SKIPPED, SUCCEEDED, RunStore
from runner.staging import Codeset, resolve_codeset
from runner.workflow import WorkflowError, bind_inputs, parse_workflow

pytestmark = pytest.mark.skipif(os.name != "posix", reason="fake steps are shell scripts")


def fake_step(root: Path, name: str, script: str) -> str:
    """A ``venv://`` image whose ``bin/run`` is ``script``; returns the image reference."""
    run = root / name / "bin" / "run"
    run.parent.mkdir(parents=True)
    run.write_text("#!/bin/sh\nset -eu\n" + dedent(script))
    run.chmod(run.stat().st_mode | stat.S_IXUSR)
    return f"venv://{root / name}"


def write_result(value: str) -> str:
    return f'printf \'%s\' "{value}" > "$FUSEML_RESULTS_DIR/$TASK_RESULT"\n'


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lines: list[str] = []

    def step_started(self, run, step) -> None:  # type: ignore[no-untyped-def]
        self.events.append(("start", step.name))

    def step_log(self, run, step, line) -> None:  # type: ignore[no-untyped-def]
        self.lines.append(f"{step.name}: {line}")

    def step_finished(self, run, step) -> None:  # type: ignore[no-untyped-def]
        self.events.append((step.status, step.name))


@pytest.fixture
def codeset(tmp_path: Path) -> Codeset:
    folder = tmp_path / "wine"
    (folder / ".git").mkdir(parents=True)
    (folder / "MLproject").write_text("name: wine\n")
    (folder / "mlruns").mkdir()
    return resolve_codeset(folder)


@pytest.fixture
def images(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "images"
    trainer = fake_step(
        root,
        "trainer",
        """\
        echo "trainer in $(pwd) org=$(cat .fuseml/_org) project=$(cat .fuseml/_project)"
        echo "tracking=$MLFLOW_TRACKING_URI experiment=$FUSEML_MLFLOW_EXPERIMENT"
        echo "workflow=$FUSEML_ENV_WORKFLOW_NAME namespace=$FUSEML_ENV_WORKFLOW_NAMESPACE"
        test ! -e .git && test ! -e mlruns
        touch written-by-the-step
        """
        + write_result("s3://bucket/$FUSEML_MLFLOW_EXPERIMENT/model"),
    )
    builder = fake_step(
        root,
        "builder",
        """\
        echo "backend=${FUSEML_BACKEND:-none}"
        echo "building"
        """
        + write_result(trainer),
    )
    predictor = fake_step(
        root,
        "predictor",
        'echo "model=$FUSEML_MODEL predictor=$FUSEML_PREDICTOR target=$FUSEML_TARGET"\n'
        + write_result("http://127.0.0.1:1/v2/models/$FUSEML_APP_NAME/infer"),
    )
    return {"builder": builder, "trainer": trainer, "predictor": predictor}


def e2e(images: dict[str, str], builder_inputs: str = "") -> str:
    return f"""\
name: fake-e2e
inputs:
  - name: mlflow-codeset
    type: codeset
  - name: predictor
    default: auto
outputs:
  - name: prediction-url
steps:
  - name: builder
    image: {images["builder"]}
    inputs:
      - name: mlflow-codeset
        codeset: {{name: "{{{{ inputs.mlflow-codeset }}}}", path: /project}}{builder_inputs}
    outputs: [{{name: image}}]
  - name: trainer
    image: "{{{{ steps.builder.outputs.image }}}}"
    inputs:
      - name: mlflow-codeset
        codeset: {{name: "{{{{ inputs.mlflow-codeset }}}}", path: /project}}
      - name: mlflow_experiment
        value: "{{{{ inputs.mlflow-codeset.project }}}}.{{{{ inputs.mlflow-codeset.name }}}}"
    outputs: [{{name: mlflow-model-url}}]
    extensions: [{{name: mlflow-tracking}}, {{name: mlflow-store, service_resource: s3}}]
  - name: predictor
    image: {images["predictor"]}
    inputs:
      - name: model
        value: "{{{{ steps.trainer.outputs.mlflow-model-url }}}}"
      - name: predictor
        value: "{{{{ inputs.predictor }}}}"
      - name: app_name
        value: "{{{{ inputs.mlflow-codeset.name }}}}"
    outputs: [{{name: prediction-url}}]
    extensions: [{{name: kserve-api}}]
"""


def test_outputs_flow_from_step_to_step_and_the_run_is_recorded(
    tmp_path: Path, codeset: Codeset, images: dict[str, str]
) -> None:
    state = tmp_path / "state"
    progress = Recorder()
    run = run_workflow(
        parse_workflow(e2e(images)), codeset, {"predictor": "sklearn"}, "process", Config(), state, progress
    )
    assert run.status == SUCCEEDED, run.error
    assert run.outputs == {"prediction-url": "http://127.0.0.1:1/v2/models/wine/infer"}
    assert [s.output for s in run.steps] == [
        images["trainer"],
        "s3://bucket/local.wine/model",
        run.outputs["prediction-url"],
    ]
    assert run.steps[1].image == images["trainer"]
    assert progress.events == [
        ("start", "builder"),
        (SUCCEEDED, "builder"),
        ("start", "trainer"),
        (SUCCEEDED, "trainer"),
        ("start", "predictor"),
        (SUCCEEDED, "predictor"),
    ]
    # A venv:// image is not ours: no implicit inputs; the kserve-api extension picks the local target.
    assert "builder: backend=none" in progress.lines
    assert "predictor: model=s3://bucket/local.wine/model predictor=sklearn target=local" in progress.lines
    assert f"trainer: tracking=sqlite:///{state.resolve()}/mlflow/mlflow.db experiment=local.wine" in progress.lines
    assert "trainer: workflow=fake-e2e namespace=fuseml-workloads" in progress.lines
    # The codeset was copied (without .git and mlruns), never written to, and the copy is gone.
    assert f"trainer: trainer in {run.run_dir}/codesets/mlflow-codeset org=local project=wine" in progress.lines
    assert sorted(p.name for p in codeset.path.iterdir()) == [".git", "MLproject", "mlruns"]
    assert not (run.run_dir / "codesets").exists()
    stored = RunStore(state).get(run.name)
    assert (stored.name, stored.status, stored.outputs) == ("fake-e2e-1", SUCCEEDED, run.outputs)
    assert [s.status for s in stored.steps] == [SUCCEEDED] * 3
    assert "building" in stored.step("builder").log_path.read_text()


def test_a_failed_step_stops_the_run_and_keeps_the_evidence(tmp_path: Path, codeset: Codeset) -> None:
    images = {
        "builder": fake_step(tmp_path, "b", "echo 'pip: no such package' >&2\nexit 3\n"),
        "predictor": fake_step(tmp_path, "p", write_result("x")),
    }
    run = run_workflow(parse_workflow(e2e(images)), codeset, {}, "process", Config(), tmp_path / "s")
    assert run.status == FAILED
    assert [s.status for s in run.steps] == [FAILED, SKIPPED, SKIPPED]
    assert run.steps[0].exit_code == 3
    assert "exit code 3" in run.error and "builder.log" in run.error
    assert "pip: no such package" in run.steps[0].log_path.read_text()
    assert (run.run_dir / "codesets" / "mlflow-codeset" / "MLproject").exists()
    assert run.outputs == {}


def test_a_step_that_succeeds_without_its_result_fails_with_the_path(tmp_path: Path, codeset: Codeset) -> None:
    images = {"builder": fake_step(tmp_path, "b", "true\n"), "predictor": fake_step(tmp_path, "p", "true\n")}
    run = run_workflow(parse_workflow(e2e(images)), codeset, {}, "process", Config(), tmp_path / "s")
    assert run.status == FAILED
    assert "succeeded but wrote no result 'image'" in run.steps[0].error
    assert "$FUSEML_RESULTS_DIR/$TASK_RESULT" in run.steps[0].error


def test_our_images_map_to_step_modules_with_implicit_inputs(tmp_path: Path) -> None:
    executor = ProcessExecutor(environ={"PATH": "/usr/bin", "HOME": "/root", "SECRET_THING": "x"})
    spec = StepSpec(
        run="r",
        step="builder",
        image="ghcr.io/fuseml-steps/mlflow-builder:0.1",
        env={"FUSEML_X": "1"},
        workdir=tmp_path,
        results_dir=tmp_path / "results",
        log_path=tmp_path / "log",
    )
    assert executor.command(spec)[1:] == ["-m", "steps.builder"]
    env = executor.environment(spec)
    assert env["FUSEML_X"] == "1" and env["PATH"] == "/usr/bin" and "SECRET_THING" not in env
    assert env["FUSEML_RESULTS_DIR"] == str(tmp_path / "results")
    assert executor.implicit_inputs("builder") == {"FUSEML_BACKEND": "venv"}
    for image, module in [
        ("127.0.0.1:5000/x/kserve-predictor@sha256:ab", "steps.predictor"),
        ("mlflow-trainer", "steps.trainer"),
    ]:
        assert executor.command(StepSpec(**{**spec.__dict__, "image": image}))[-1] == module


def test_an_image_the_process_executor_cannot_run_fails_before_it_starts(tmp_path: Path, codeset: Codeset) -> None:
    text = "name: w\ninputs: [{name: c, type: codeset}]\nsteps:\n  - name: s\n    image: python:3.11\n"
    run = run_workflow(parse_workflow(text), codeset, {}, "process", Config(), tmp_path / "s")
    assert run.status == FAILED
    assert "cannot run without containers" in run.error and "--executor docker" in run.error


def test_workflow_inputs_are_bound_or_refused_before_a_run_exists(tmp_path: Path, codeset: Codeset) -> None:
    workflow = parse_workflow(
        "name: w\ninputs:\n  - {name: c, type: codeset}\n  - {name: need}\n  - {name: opt, default: d}\n"
        "steps: [{name: s, image: x}]\n",
        "w.yaml",
    )
    assert bind_inputs(workflow, {"need": "1"}, {"c": codeset.name}) == {"c": "wine", "need": "1", "opt": "d"}
    with pytest.raises(WorkflowError) as caught:
        run_workflow(workflow, None, {"nedd": "1"}, "process", Config(), tmp_path / "s")
    assert caught.value.problems == [
        "unknown input 'nedd' (the workflow's inputs: c, need, opt)",
        "w.yaml:3: codeset input 'c' has no codeset: pass --codeset DIR",
        "w.yaml:4: missing required input 'need': pass --input need=VALUE",
    ]
    assert RunStore(tmp_path / "s").list() == []


def test_an_unknown_extension_is_refused_unless_the_config_gives_its_variables(
    tmp_path: Path, codeset: Codeset
) -> None:
    image = fake_step(tmp_path, "s", 'echo "feast=$FEAST_URL"\n' + write_result("ok"))
    text = f"name: w\nsteps:\n  - name: s\n    image: {image}\n    outputs: [{{name: o}}]\n"
    text += "    extensions: [{name: feast}]\n"
    with pytest.raises(ExtensionError, match="extensions: {feast: {NAME: value}}"):
        run_workflow(parse_workflow(text), None, {}, "process", Config(), tmp_path / "s")
    config = Config(extensions={"feast": {"FEAST_URL": "http://f"}})
    progress = Recorder()
    run = run_workflow(parse_workflow(text), None, {}, "process", config, tmp_path / "s", progress)
    assert run.status == SUCCEEDED and "s: feast=http://f" in progress.lines


def test_configured_services_reach_the_steps_and_secrets_stay_masked(tmp_path: Path, codeset: Codeset) -> None:
    image = fake_step(
        tmp_path,
        "s",
        'echo "$MLFLOW_TRACKING_URI $MLFLOW_S3_ENDPOINT_URL $AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY $FUSEML_TARGET"\n'
        + write_result("ok"),
    )
    text = (
        f"name: w\nsteps:\n  - name: s\n    image: {image}\n    outputs: [{{name: o}}]\n"
        "    extensions: [{name: mlflow-tracking}, {name: s3}, {name: kserve-api}]\n"
    )
    config = Config(
        tracking_uri="http://127.0.0.1:5000",
        s3_endpoint_url="http://127.0.0.1:8333",
        aws_access_key_id="key",
        aws_secret_access_key="very-secret-value",
        predictor_target="docker",
    )
    progress = Recorder()
    run = run_workflow(parse_workflow(text), None, {}, "process", config, tmp_path / "s", progress)
    assert run.status == SUCCEEDED
    assert progress.lines == ["s: http://127.0.0.1:5000 http://127.0.0.1:8333 key **** docker"]


def test_cancelling_stops_the_running_step_and_records_it(tmp_path: Path, codeset: Codeset) -> None:
    image = fake_step(tmp_path, "s", "echo started\nsleep 60\necho slept\n")
    text = f"name: w\nsteps:\n  - name: s\n    image: {image}\n    outputs: [{{name: o}}]\n"
    text += f"  - name: t\n    image: {image}\n"
    cancel = threading.Event()

    class CancelOnStart(Recorder):
        def step_log(self, run, step, line) -> None:  # type: ignore[no-untyped-def]
            cancel.set()

    run = run_workflow(
        parse_workflow(text), None, {}, "process", Config(), tmp_path / "s", CancelOnStart(), cancel=cancel
    )
    assert run.status == CANCELLED
    assert [s.status for s in run.steps] == [CANCELLED, SKIPPED]
    # Stopped, not waited for: the step never got past its sleep.
    assert run.steps[0].log_path.read_text() == "started\n"


def test_run_names_count_per_workflow(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    names = [store.create(wf, "process", "c", {}, tmp_path).name for wf in ("a", "a", "b")]
    assert names == ["a-1", "a-2", "b-1"]
    assert store.get("last").name == "b-1"
    assert [r.name for r in store.list("a")] == ["a-2", "a-1"]


def test_codeset_names_come_from_flags_then_fuseml_files_then_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    (folder / ".fuseml").mkdir(parents=True)
    assert resolve_codeset(folder) == Codeset(folder.resolve(), "proj", "local")
    (folder / ".fuseml" / "_org").write_text("team\n")
    (folder / ".fuseml" / "_project").write_text("app\n")
    assert resolve_codeset(folder) == Codeset(folder.resolve(), "app", "team")
    assert resolve_codeset(folder, "n", "p") == Codeset(folder.resolve(), "n", "p")
    with pytest.raises(WorkflowError, match="is not a folder"):
        resolve_codeset(tmp_path / "missing")
