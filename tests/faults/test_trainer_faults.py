"""The trainer when a service goes away during training: S3 in the middle of the uploads, MLflow restarting.

Each test runs the trainer as a process on a codeset that pauses after logging
its model (tests/faults/training.py), breaks a service of its own (never a
session one) during the pause, and lets training go on into the fault.

- S3 stops (a dedicated SeaweedFS; MLflow in direct mode, so the training code
  uploads to S3 itself): the upload after the pause fails; the step ends with
  one line naming the S3 endpoint, exit 1, the MLflow run FAILED, no result.
- The MLflow server restarts (a dedicated server, stopped and started again on
  the same data and port): the entry point's MLflow calls retry long enough
  (about two minutes) to ride out a restart, so training succeeds with a
  correct result. A pipeline should not lose an hour of training to a rolling update
  of its tracking server; a server that stays down still fails the step.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from runner.services.mlflow_server import MLflowServer
from runner.services.seaweedfs import SeaweedFS
from tests.faults.checks import assert_no_secret, processes_in, the_error_line
from tests.faults.training import go_on, pausing_codeset, start_trainer, trainer_env, wait_for_pause
from tests.fixtures.services import read_result

pytestmark = pytest.mark.faults


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[SeaweedFS]:
    with SeaweedFS(tmp_path / "seaweedfs") as server:
        yield server


def run_ids(tracking_uri: str, experiment: str) -> list[str]:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    return [run.info.run_id for run in client.search_runs([found.experiment_id])]


def test_s3_gone_during_the_uploads_fails_in_one_line_naming_the_endpoint(
    mlflow_server: MLflowServer, own_s3: SeaweedFS, tmp_path: Path
) -> None:
    codeset = pausing_codeset(tmp_path / f"s3-stops-{uuid.uuid4().hex[:8]}")
    env = trainer_env(tmp_path, {"MLFLOW_TRACKING_URI": mlflow_server.tracking_uri, **own_s3.env()},
                      FAULT_ARTIFACT_MB="32")  # fmt: skip
    trainer = start_trainer(env, codeset, tmp_path)
    wait_for_pause(env, trainer)
    own_s3.stop()
    go_on(env)
    code, stdout, stderr = trainer.finish()

    assert code == 1, stderr
    line = the_error_line(stderr, "trainer: error: ", relays_user_code=True)
    (run_id,) = run_ids(mlflow_server.tracking_uri, f"faults.{codeset.name}")
    assert line.startswith(f"trainer: error: entry point 'main' failed with exit code 1 (MLflow run {run_id}); "), line
    assert line.endswith(
        f"the S3 endpoint {own_s3.endpoint_url} does not answer; check MLFLOW_S3_ENDPOINT_URL and that "
        "the S3 service runs, then run the step again"
    ), line
    assert MlflowClient(mlflow_server.tracking_uri).get_run(run_id).info.status == "FAILED"
    assert read_result(env) is None
    assert_no_secret(own_s3.secret_key, [stdout, stderr], [codeset, tmp_path / "results"])
    assert processes_in(codeset) == [], "training still runs"


def test_an_mlflow_restart_during_training_is_ridden_out(s3: SeaweedFS, tmp_path: Path) -> None:
    codeset = pausing_codeset(tmp_path / "mlflow-restarts")
    with MLflowServer(tmp_path / "mlflow", s3.env(), artifact_root=f"s3://{s3.bucket}/faults-mlflow") as server:
        env = trainer_env(tmp_path, server.env())
        trainer = start_trainer(env, codeset, tmp_path)
        wait_for_pause(env, trainer)
        server.stop()
        go_on(env)  # training logs its metric while the server is down...
        server.start()  # ...and the same server comes back on the same port and data
        code, stdout, stderr = trainer.finish()

        assert code == 0, stderr
        (run_id,) = run_ids(server.tracking_uri, "faults.mlflow-restarts")
        run = MlflowClient(server.tracking_uri).get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.metrics == {"score": 1.0} and run.data.params == {"rows": "10"}
        result = read_result(env)
        assert result is not None and result.startswith(f"s3://{s3.bucket}/faults-mlflow/"), result
        assert s3.client().get_object(Bucket=s3.bucket, Key=result.split("/", 3)[3] + "/MLmodel")["Body"].read()
        assert "training done" in stdout + stderr
    assert_no_secret(s3.secret_key, [stdout, stderr], [codeset, tmp_path / "results"])
    assert processes_in(codeset) == []
