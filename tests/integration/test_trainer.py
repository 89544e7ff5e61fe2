"""The trainer step end to end, against a real MLflow server and real S3 (SeaweedFS).

Each test sets only the variables FuseML would set, runs ``python -m
steps.trainer`` in a codeset as its working directory, and checks the result
file, the exit code and the message the user sees.
"""

from __future__ import annotations

import socket
import textwrap
import uuid
from pathlib import Path

import pytest

from common.storage import open_store
from tests.fixtures.codesets import WINE, checkout_wine
from tests.fixtures.services import read_result, run_step

pytestmark = pytest.mark.integration


@pytest.fixture
def wine_codeset(tmp_path: Path) -> Path:
    """The example codeset as FuseML checks it out: with its .fuseml metadata."""
    return checkout_wine(tmp_path / "project")


def make_codeset(tmp_path: Path, mlproject: str, **files: str) -> Path:
    codeset = tmp_path / "project"
    codeset.mkdir()
    (codeset / "MLproject").write_text(textwrap.dedent(mlproject))
    for name, text in files.items():
        (codeset / name).write_text(textwrap.dedent(text))
    return codeset


def assert_failed(result, env, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert read_result(env) is None, "a failed step must leave no result"
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("trainer: error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last


def files_holding(folder: Path, secret: str) -> list[Path]:
    """Every file under ``folder`` whose bytes contain ``secret``."""
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_trains_the_wine_codeset_and_returns_a_loadable_model(wine_codeset, step_env, monkeypatch):
    step_env["FUSEML_MLFLOW_ENTRYPOINT_ARGS"] = "alpha=0.4"
    step_env["FUSEML_L1_RATIO"] = "0.2"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert result.returncode == 0, result.stderr
    url = read_result(step_env)
    assert url.startswith("s3://mlflow-artifacts/"), url
    assert "/models/m-" in url and url.endswith("/artifacts"), "MLflow 3 logs models under models/<id>/artifacts"
    assert open_store(url, step_env).exists(url + "/MLmodel")

    for name, value in step_env.items():
        if name.startswith(("AWS_", "MLFLOW_")):
            monkeypatch.setenv(name, value)
    import mlflow
    import pandas as pd

    rows = pd.read_csv(WINE / "wine-quality.csv").drop(columns=["quality"]).head(5)
    predictions = mlflow.pyfunc.load_model(url).predict(rows)
    assert len(predictions) == 5 and all(3 <= p <= 9 for p in predictions)

    run = mlflow.MlflowClient(step_env["MLFLOW_TRACKING_URI"]).search_runs(
        [
            mlflow.MlflowClient(step_env["MLFLOW_TRACKING_URI"])
            .get_experiment_by_name(_experiment(wine_codeset))
            .experiment_id
        ]
    )[0]
    assert run.data.params["alpha"] == "0.4" and run.data.params["l1_ratio"] == "0.2"
    assert run.info.status == "FINISHED" and "rmse" in run.data.metrics


def _experiment(codeset: Path) -> str:
    return "tests." + (codeset / ".fuseml" / "_project").read_text().strip()


def test_verbose_run_never_shows_a_secret(wine_codeset, step_env, tmp_path):
    step_env["FUSEML_VERBOSE"] = "true"
    step_env["MLFLOW_TRACKING_USERNAME"] = "fuseml"
    step_env["MLFLOW_TRACKING_PASSWORD"] = "tracking-pa55-" + uuid.uuid4().hex
    url_password = "url-pa55-" + uuid.uuid4().hex  # MLflow prints its run link, this URL, itself
    step_env["MLFLOW_TRACKING_URI"] = step_env["MLFLOW_TRACKING_URI"].replace("://", f"://fuseml:{url_password}@", 1)
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "DEBUG" in output, "verbose mode shows detail"
    assert "View run" in result.stdout and "fuseml:****@" in result.stdout
    for secret in (step_env["AWS_SECRET_ACCESS_KEY"], step_env["MLFLOW_TRACKING_PASSWORD"], url_password):
        assert secret not in output
        assert files_holding(tmp_path, secret) == []


def test_no_mlproject(tmp_path, step_env):
    (tmp_path / "project").mkdir()
    result = run_step("steps.trainer", step_env, cwd=tmp_path / "project")
    assert_failed(result, step_env, "no MLproject file in the codeset")


def test_unknown_entry_point(wine_codeset, step_env):
    step_env["FUSEML_MLFLOW_ENTRYPOINT"] = "train"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "no entry point 'train'", "entry points: main")


def test_unknown_argument(wine_codeset, step_env):
    step_env["FUSEML_MLFLOW_ENTRYPOINT_ARGS"] = "alpha=0.1 l1-ratio=0.3"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "no parameter 'l1-ratio'", "parameters: alpha, l1_ratio")


def test_parameter_of_the_wrong_type(wine_codeset, step_env):
    step_env["FUSEML_ALPHA"] = "lots"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "'alpha'", "declared float but got 'lots'")


def test_entry_point_failing(tmp_path, step_env):
    codeset = make_codeset(
        tmp_path,
        """\
        name: broken
        entry_points:
          main:
            command: "python fail.py"
        """,
        **{"fail.py": "import sys\nprint('cannot read the training data')\nsys.exit(3)\n"},
    )
    result = run_step("steps.trainer", step_env, cwd=codeset)
    assert_failed(result, step_env, "failed with exit code 3", "cannot read the training data")


def test_wrong_model_artifact_path_lists_what_the_run_logged(wine_codeset, step_env):
    step_env["FUSEML_MLFLOW_ARTIFACT_PATH"] = "classifier"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "logged no model at 'classifier'", "models: model")


def test_tracking_server_not_answering_fails_fast(wine_codeset, step_env):
    """A server that accepts connections but never answers: the step gives up within 30 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        step_env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = run_step("steps.trainer", step_env, cwd=wine_codeset, timeout=30)
    assert_failed(result, step_env, "does not answer", "MLFLOW_TRACKING_URI")


def test_tracking_server_refusing_connections(wine_codeset, step_env):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    step_env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
    result = run_step("steps.trainer", step_env, cwd=wine_codeset, timeout=30)
    assert_failed(result, step_env, "does not answer")


def test_wrong_s3_credentials(wine_codeset, step_env):
    step_env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-" + uuid.uuid4().hex
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert_failed(result, step_env, "S3 authentication failed", "AWS_SECRET_ACCESS_KEY")
    assert step_env["AWS_SECRET_ACCESS_KEY"] not in result.stderr


def test_a_password_in_the_tracking_url_is_never_shown(wine_codeset, step_env, tmp_path):
    """MLflow itself prints 'View run … at: <tracking URL>' to stdout; that line must be masked too (quiet mode
    here; the verbose test above checks the same)."""
    password = "url-pa55-" + uuid.uuid4().hex
    step_env["MLFLOW_TRACKING_URI"] = step_env["MLFLOW_TRACKING_URI"].replace("://", f"://fuseml:{password}@", 1)
    result = run_step("steps.trainer", step_env, cwd=wine_codeset)
    assert result.returncode == 0, result.stderr
    assert "View run" in result.stdout, "MLflow's own run link is what this test is about"
    assert "fuseml:****@" in result.stdout + result.stderr
    assert password not in result.stdout + result.stderr
    assert files_holding(tmp_path, password) == []


def test_a_missing_path_parameter_fails_before_any_mlflow_run(tmp_path, step_env):
    codeset = make_codeset(
        tmp_path,
        """\
        name: paths
        entry_points:
          main:
            parameters:
              data: path
            command: "python -c 'print(1)' {data}"
        """,
    )
    (codeset / ".fuseml").mkdir()
    (codeset / ".fuseml" / "_org").write_text("tests\n")
    (codeset / ".fuseml" / "_project").write_text("paths-" + uuid.uuid4().hex[:8] + "\n")
    step_env["FUSEML_DATA"] = "no-such-file.csv"
    result = run_step("steps.trainer", step_env, cwd=codeset)
    assert_failed(result, step_env, "Got value no-such-file.csv for parameter data", "give an existing file")
    import mlflow

    client = mlflow.MlflowClient(step_env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(_experiment(codeset))
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []


def test_sigterm_stops_the_entry_point_and_marks_the_mlflow_run_killed(tmp_path, step_env):
    import signal
    import subprocess
    import sys
    import time

    import mlflow

    from common.processes import start_time

    pid_file = tmp_path / "train.pid"
    codeset = make_codeset(
        tmp_path,
        """\
        name: slow
        entry_points:
          main:
            command: "python train.py"
        """,
        **{
            "train.py": f"""\
            import os, pathlib, time
            import mlflow
            with mlflow.start_run():
                pathlib.Path("{pid_file}.tmp").write_text(str(os.getpid()))
                os.rename("{pid_file}.tmp", "{pid_file}")
                time.sleep(600)
            """
        },
    )
    (codeset / ".fuseml").mkdir()
    (codeset / ".fuseml" / "_org").write_text("tests\n")
    (codeset / ".fuseml" / "_project").write_text("slow-" + uuid.uuid4().hex[:8] + "\n")
    trainer = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "steps.trainer"], env=step_env, cwd=codeset, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while not pid_file.exists() and trainer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pid_file.exists(), f"the entry point never started: {trainer.communicate()[1]}"
        entry_point = int(pid_file.read_text())
        trainer.send_signal(signal.SIGTERM)
        _, stderr = trainer.communicate(timeout=120)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.communicate()
    assert trainer.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].endswith("trainer: terminated"), stderr
    assert start_time(entry_point) is None, "train.py outlived the trainer"
    assert read_result(step_env) is None
    client = mlflow.MlflowClient(step_env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(_experiment(codeset))
    assert [r.info.status for r in client.search_runs([experiment.experiment_id])] == ["KILLED"]


# --- A tracking server in MLflow's default mode: artifacts proxied onto S3, clients hold no S3 credentials.


@pytest.fixture
def proxied_env(step_env, mlflow_proxied):
    """The env FuseML gives the trainer with a proxied-artifact server: the tracking URI and nothing of S3."""
    env = {k: v for k, v in step_env.items() if not k.startswith(("AWS_", "MLFLOW_S3_"))}
    env.update(mlflow_proxied.env())
    assert not [k for k in env if k.startswith("AWS_") or k == "MLFLOW_S3_ENDPOINT_URL"]
    return env


def test_trains_against_a_proxied_artifact_server_with_no_s3_variables(wine_codeset, proxied_env, s3, tmp_path):
    """The server has no auth; MLflow sends the basic-auth credentials anyway, and they must appear nowhere."""
    url_password = "url-pa55-" + uuid.uuid4().hex
    proxied_env["MLFLOW_TRACKING_URI"] = proxied_env["MLFLOW_TRACKING_URI"].replace(
        "://", f"://fuseml:{url_password}@", 1
    )
    proxied_env["MLFLOW_TRACKING_USERNAME"] = "fuseml"
    proxied_env["MLFLOW_TRACKING_PASSWORD"] = "tracking-pa55-" + uuid.uuid4().hex
    result = run_step("steps.trainer", proxied_env, cwd=wine_codeset)
    assert result.returncode == 0, result.stderr
    url = read_result(proxied_env)
    assert url.startswith("mlflow-artifacts:/") and "/models/m-" in url and url.endswith("/artifacts"), url
    assert b"flavors:" in open_store(url, proxied_env).read(url + "/MLmodel")
    # The server wrote the model onto its own S3 bucket: the proxied URL's path is the key there.
    key = url.removeprefix("mlflow-artifacts:/").lstrip("/") + "/MLmodel"
    assert s3.client().head_object(Bucket="mlflow-proxied", Key=key)["ContentLength"] > 0
    output = result.stdout + result.stderr
    for secret in (url_password, proxied_env["MLFLOW_TRACKING_PASSWORD"]):
        assert secret not in output
        assert files_holding(tmp_path, secret) == []


def test_registers_the_model_moves_the_alias_and_returns_the_exact_version(tmp_path, proxied_env):
    import mlflow

    name = "wine-" + uuid.uuid4().hex[:8]
    client = mlflow.MlflowClient(proxied_env["MLFLOW_TRACKING_URI"])
    results = []
    for attempt in (1, 2):
        codeset = checkout_wine(tmp_path / f"project-{attempt}")
        env = {**proxied_env, "FUSEML_REGISTER_MODEL": name, "FUSEML_MODEL_ALIAS": "champion"}
        env["FUSEML_RESULTS_DIR"] = str(tmp_path / f"results-{attempt}")
        result = run_step("steps.trainer", env, cwd=codeset)
        assert result.returncode == 0, result.stderr
        results.append(read_result(env))
        assert results[-1] == f"models:/{name}/{attempt}", "the exact version, never the alias"
        assert client.get_model_version_by_alias(name, "champion").version == str(attempt)
        assert open_store(results[-1], env).exists(results[-1] + "/MLmodel")
    versions = {v.version: v for v in client.search_model_versions(f"name = '{name}'")}
    assert sorted(versions) == ["1", "2"] and all(v.status == "READY" for v in versions.values())
    assert versions["1"].run_id != versions["2"].run_id, "each training registers its own run's model"


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [
        ({"FUSEML_MODEL_ALIAS": "champion"}, ("FUSEML_MODEL_ALIAS is set but FUSEML_REGISTER_MODEL is not",)),
        ({"FUSEML_REGISTER_MODEL": "wine/prod"}, ("FUSEML_REGISTER_MODEL='wine/prod' is not valid", "'/' or ':'")),
    ],
    ids=["alias-without-model", "bad-name"],
)
def test_registry_inputs_are_checked_before_training(wine_codeset, proxied_env, inputs, fragments):
    """Every rule is in tests/unit/test_trainer_settings.py; here, what the user sees from the real step."""
    import mlflow

    result = run_step("steps.trainer", {**proxied_env, **inputs}, cwd=wine_codeset)
    assert_failed(result, proxied_env, *fragments)
    experiment = mlflow.MlflowClient(proxied_env["MLFLOW_TRACKING_URI"]).get_experiment_by_name(
        _experiment(wine_codeset)
    )
    assert experiment is None, "nothing may reach MLflow before the inputs are checked"
