"""The fuseml-steps CLI, the config file, and the docker executor's container settings."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.config import Config, ConfigError, load_config
from runner.executors import ExecutorError, get_executor
from runner.executors.base import StepSpec, image_role
from runner.executors.docker import DockerExecutor
from runner.extensions import step_extensions
from runner.formatting import format_duration
from runner.progress import ConsoleProgress
from runner.runs import RunNotFound
from runner.workflow import load_workflow


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    run = tmp_path / "img" / "bin" / "run"
    run.parent.mkdir(parents=True)
    run.write_text(
        '#!/bin/sh\nset -eu\necho "hello $FUSEML_WHO"\n'
        'test "$FUSEML_WHO" != fail\nprintf \'done-%s\' "$FUSEML_WHO" > "$FUSEML_RESULTS_DIR/$TASK_RESULT"\n'
    )
    run.chmod(run.stat().st_mode | stat.S_IXUSR)
    path = tmp_path / "wf.yaml"
    path.write_text(
        f"""\
name: hello
inputs:
  - {{name: code, type: codeset}}
  - {{name: who}}
outputs:
  - {{name: greeting}}
steps:
  - name: greet
    image: venv://{run.parent.parent}
    inputs:
      - {{name: code, codeset: {{name: "{{{{ inputs.code }}}}", path: /project}}}}
      - {{name: who, value: "{{{{ inputs.who }}}}"}}
    outputs: [{{name: greeting}}]
"""
    )
    (tmp_path / "code").mkdir()
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_run_prints_progress_then_outputs_and_runs_lists_it(tmp_path: Path, workflow: Path) -> None:
    state = str(tmp_path / "state")
    code, out, err = invoke(
        "run", str(workflow), "--codeset", str(tmp_path / "code"), "-i", "who=world", "--state-dir", state
    )
    assert code == 0, err
    assert out == "greeting: done-world\n"
    assert "greet     Succeeded" in err and "run hello-1 succeeded" in err
    assert "hello world" not in err  # the step log is folded without -v
    code, out, _ = invoke("runs", "--state-dir", state)
    assert out.splitlines()[0].split() == ["NAME", "WORKFLOW", "STARTED", "DURATION", "STATUS"]
    assert out.splitlines()[1].split()[:2] == ["hello-1", "hello"] and out.split()[-1] == "Succeeded"
    assert invoke("logs", "hello-1", "greet", "--state-dir", state)[1] == "hello world\n"
    assert "=== greet (Succeeded) ===" in invoke("logs", "last", "--state-dir", state)[1]


def test_a_failed_run_exits_1_and_shows_the_log_tail(tmp_path: Path, workflow: Path) -> None:
    state = str(tmp_path / "state")
    code, out, err = invoke(
        "run", str(workflow), "--codeset", str(tmp_path / "code"), "-i", "who=fail", "--state-dir", state
    )
    assert code == 1 and out == ""
    assert "greet     Failed" in err and "| hello fail" in err
    assert "logs: fuseml-steps logs hello-1 [STEP]" in err


def test_verbose_streams_the_step_log(tmp_path: Path, workflow: Path) -> None:
    args = ["run", str(workflow), "--codeset", str(tmp_path / "code"), "-i", "who=v", "-v"]
    _, _, err = invoke(*args, "--state-dir", str(tmp_path / "s"))
    assert "greet    | hello v" in err


def test_user_errors_are_one_line_without_traceback(
    tmp_path: Path, workflow: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.cli import main

    argv = ["fuseml-steps", "run", str(workflow), "--codeset", str(tmp_path / "code"), "--state-dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert "fuseml-steps: error: the inputs do not fit workflow hello" in err
    assert "missing required input 'who': pass --input who=VALUE" in err and "Traceback" not in err
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        invoke("logs", "nope", "--state-dir", str(tmp_path))


def test_progress_on_a_terminal_redraws_one_line_per_step() -> None:
    class Tty:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return True

    out = Tty()
    progress = ConsoleProgress(out)  # type: ignore[arg-type]
    step = SimpleNamespace(
        name="builder", started=0.0, status="Succeeded", output="venv:///x", error=None, duration=3.0
    )
    run = SimpleNamespace(steps=[step])
    progress.step_started(run, step)  # type: ignore[arg-type]
    progress.step_log(run, step, "Collecting mlflow")  # type: ignore[arg-type]
    progress.step_finished(run, step)  # type: ignore[arg-type]
    assert out.text.endswith("builder   Succeeded    3.0s  venv:///x\n")


def test_format_duration() -> None:
    assert [format_duration(s) for s in (4.25, 187, 3725)] == ["4.2s", "3m07s", "1h02m"]


def test_config_file_sections_flags_and_variables(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "mlflow-tracking: {uri: http://127.0.0.1:5000}\n"
        's3: {endpoint: http://127.0.0.1:8333, access_key_id: k, secret_access_key: "${S3_SECRET}"}\n'
        "kserve-api: {target: docker}\nregistry: 127.0.0.1:5000\nextensions: {feast: {FEAST_URL: http://f}}\n"
    )
    config = load_config(path, {"S3_SECRET": "s3cr3t-value"})
    assert config.tracking_uri == "http://127.0.0.1:5000"
    assert config.aws_secret_access_key == "s3cr3t-value" and config.secrets() == ["s3cr3t-value"]
    assert config.predictor_target == "docker" and config.registry == "127.0.0.1:5000"
    assert config.extensions == {"feast": {"FEAST_URL": "http://f"}}
    assert config.merged(tracking_uri=None, registry="r").registry == "r"
    assert load_config(tmp_path / "absent.yaml") == Config()
    path.write_text("s3: {endpoint_url: x}\n")
    with pytest.raises(ConfigError, match="unknown key 's3.endpoint_url'; use one of endpoint"):
        load_config(path)
    path.write_text("kserve-api: {target: cloud}\n")
    with pytest.raises(ConfigError, match="not one of local, docker, kserve"):
        load_config(path)


def test_config_from_a_service_environment() -> None:
    config = Config.from_environ(
        {"MLFLOW_TRACKING_URI": "http://m", "MLFLOW_S3_ENDPOINT_URL": "http://s", "AWS_DEFAULT_REGION": "r"}
    )
    assert (config.tracking_uri, config.s3_endpoint_url, config.aws_region) == ("http://m", "http://s", "r")


EXAMPLE_WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "mlflow-e2e.yaml"
S3_VARIABLES = {"MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}


def example_step_env(config: Config, step: str, tmp_path: Path, default_target: str = "local") -> dict[str, str]:
    """The variables the example workflow's ``step`` gets from its extensions under ``config``."""
    flow = load_workflow(EXAMPLE_WORKFLOW)
    chosen = next(s for s in flow.steps if s.name == step)
    return step_extensions(chosen, config, tmp_path, default_target).env


def test_a_proxied_tracking_server_keeps_s3_keys_from_every_step_but_a_kserve_deploy(tmp_path: Path) -> None:
    stack = {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:8333",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_DEFAULT_REGION": "r",
    }
    proxied = Config.from_environ(stack).merged(mlflow_artifacts="proxied", tracking_password="p")
    tracking = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "MLFLOW_TRACKING_PASSWORD": "p"}
    assert example_step_env(proxied, "trainer", tmp_path) == tracking, "the training code holds no S3 keys"
    local = example_step_env(proxied, "predictor", tmp_path)
    assert not S3_VARIABLES & set(local), "local and docker deploys read the model through the tracking server"
    assert local["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000" and local["FUSEML_TARGET"] == "local"
    kserve = example_step_env(proxied.merged(predictor_target="kserve"), "predictor", tmp_path)
    assert S3_VARIABLES <= set(kserve) and kserve["MLFLOW_TRACKING_URI"], "KServe needs the model staged in S3"

    direct = Config.from_environ(stack).merged(mlflow_artifacts="direct")
    for step in ("trainer", "predictor"):
        assert S3_VARIABLES <= set(example_step_env(direct, step, tmp_path)), "direct: every s3 extension gets S3"
    assert S3_VARIABLES <= set(example_step_env(Config.from_environ(stack), "trainer", tmp_path)), "unset = direct"


def test_the_config_file_and_the_flag_name_the_mlflow_artifact_mode(tmp_path: Path, workflow: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("mlflow-tracking: {uri: http://127.0.0.1:5000, artifacts: proxied}\n")
    assert load_config(path).mlflow_artifacts == "proxied"
    path.write_text("mlflow-tracking: {artifacts: s3}\n")
    with pytest.raises(ConfigError, match="mlflow-tracking.artifacts 's3' is not one of proxied, direct"):
        load_config(path)
    code, _, err = invoke("run", str(workflow), "--codeset", str(tmp_path / "code"), "--mlflow-artifacts", "s3")
    assert code == 2 and "'s3' is not one of 'proxied', 'direct'" in err


def test_image_roles() -> None:
    assert image_role("ghcr.io/fuseml-steps/mlflow-builder:0.1") == "builder"
    assert image_role("127.0.0.1:5000/kserve-predictor") == "predictor"
    assert image_role("127.0.0.1:30500/mlflow/trainer:abc") is None
    assert image_role("venv:///x/mlflow-builder") is None
    with pytest.raises(ExecutorError, match="use one of process, docker"):
        get_executor("k8s")


def test_docker_container_settings(tmp_path: Path) -> None:
    socket = tmp_path / "docker.sock"
    socket.touch()
    executor = DockerExecutor(
        client=object(), environ={"LANG": "C.UTF-8", "PATH": "/host"}, user="1000:1000", socket=socket
    )
    spec = StepSpec(
        run="r-1",
        step="builder",
        image="ghcr.io/fuseml-steps/mlflow-builder:0.1",
        env={"FUSEML_X": "1", "TASK_RESULT": "image"},
        workdir=tmp_path / "code",
        results_dir=tmp_path / "results",
        log_path=tmp_path / "log",
        codeset_path="/project",
        shared_paths=(tmp_path / "mlflow",),
    )
    config = executor.container_config(spec)
    assert config["entrypoint"] == ["run"] and config["working_dir"] == "/project"
    assert config["network_mode"] == "host" and config["user"] == "1000:1000"
    assert config["environment"] == {
        "LANG": "C.UTF-8",
        "FUSEML_X": "1",
        "TASK_RESULT": "image",
        "FUSEML_RESULTS_DIR": "/tekton/results",
        "HOME": "/tmp",
    }
    assert config["volumes"] == {
        str(tmp_path / "code"): {"bind": "/project", "mode": "rw"},
        str(tmp_path / "results"): {"bind": "/tekton/results", "mode": "rw"},
        str(tmp_path / "mlflow"): {"bind": str(tmp_path / "mlflow"), "mode": "rw"},
        str(socket): {"bind": "/var/run/docker.sock", "mode": "rw"},
    }
    assert config["group_add"] == [str(socket.stat().st_gid)]
    trainer = executor.container_config(StepSpec(**{**spec.__dict__, "image": "127.0.0.1:1/mlflow/trainer:x"}))
    assert str(socket) not in trainer["volumes"] and "group_add" not in trainer
    with pytest.raises(ExecutorError, match="a container cannot run"):
        executor.check(StepSpec(**{**spec.__dict__, "image": "venv:///v"}))


def test_docker_predictor_records_its_deployments_on_the_host(tmp_path: Path) -> None:
    """The predictor's state folder is the host's, so `fuseml-steps apps stop` on the host finds its apps."""
    executor = DockerExecutor(client=object(), environ={"HOME": str(tmp_path)}, user="1000:1000", socket=tmp_path / "x")
    spec = StepSpec(
        run="r-1",
        step="predictor",
        image="ghcr.io/fuseml-steps/kserve-predictor:0.1",
        env={},
        workdir=tmp_path / "code",
        results_dir=tmp_path / "results",
        log_path=tmp_path / "log",
        codeset_path="/project",
    )
    state = tmp_path / ".cache" / "fuseml-steps" / "predictor"
    config = executor.container_config(spec)
    assert config["environment"]["FUSEML_STATE_DIR"] == str(state) and state.is_dir()
    assert config["volumes"][str(state)] == {"bind": str(state), "mode": "rw"}
    chosen = executor.container_config(StepSpec(**{**spec.__dict__, "env": {"FUSEML_STATE_DIR": "/elsewhere"}}))
    assert chosen["environment"]["FUSEML_STATE_DIR"] == "/elsewhere" and str(state) not in chosen["volumes"]
