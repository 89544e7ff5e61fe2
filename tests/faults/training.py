"""A codeset that pauses in the middle of training, so a test can break a service at a known moment.

Its ``train.py`` logs a parameter and a small model, writes the file named by
``$FAULT_READY``, waits for the file named by ``$FAULT_GO``, then logs a metric
and an artifact of ``$FAULT_ARTIFACT_MB`` MB (0: none): the test breaks S3 or
MLflow between the two files, and the trainer meets the fault in the calls
after ``go``. It trains with the trainer's own Python (mlflow, scikit-learn).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.services import SYSTEM_PATH, VENV_BIN

MLPROJECT = """\
name: pausing
entry_points:
  main:
    command: "python train.py"
"""

TRAIN_PY = """\
import os
import time
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import LinearRegression

x = np.arange(20, dtype=float).reshape(10, 2)
model = LinearRegression().fit(x, x.sum(axis=1))
with mlflow.start_run():
    mlflow.log_param("rows", len(x))
    mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    Path(os.environ["FAULT_READY"]).touch()
    while not Path(os.environ["FAULT_GO"]).exists():
        time.sleep(0.1)
    mlflow.log_metric("score", 1.0)
    megabytes = int(os.environ.get("FAULT_ARTIFACT_MB", "0"))
    if megabytes:
        big = Path("big.bin")
        big.write_bytes(os.urandom(megabytes << 20))
        mlflow.log_artifact(str(big), artifact_path="data")
print("training done")
"""

WAIT_SECONDS = 600


def pausing_codeset(folder: Path) -> Path:
    """The codeset above in ``folder`` (created), with FuseML's metadata; returns ``folder``."""
    (folder / ".fuseml").mkdir(parents=True)
    (folder / ".fuseml" / "_org").write_text("faults\n")
    (folder / ".fuseml" / "_project").write_text(f"{folder.name}\n")
    (folder / "MLproject").write_text(MLPROJECT)
    (folder / "train.py").write_text(TRAIN_PY)
    return folder


def trainer_env(tmp_path: Path, services: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The env of a trainer step against ``services``, with the pause files under ``tmp_path``."""
    return {
        "PATH": f"{VENV_BIN}:{SYSTEM_PATH}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        **services,
        "FUSEML_RESULTS_DIR": str(tmp_path / "results"),
        "TASK_RESULT": "mlflow-model-url",
        "FAULT_READY": str(tmp_path / "ready"),
        "FAULT_GO": str(tmp_path / "go"),
        **extra,
    }


@dataclass
class Trainer:
    """A trainer step started as a process, its stdout and stderr going to files (no pipe to fill up)."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def finish(self, timeout: float = WAIT_SECONDS) -> tuple[int, str, str]:
        """Wait for the step; (exit code, stdout, stderr)."""
        code = self.process.wait(timeout=timeout)
        return code, self.stdout.read_text(errors="replace"), self.stderr.read_text(errors="replace")


def start_trainer(env: Mapping[str, str], codeset: Path, logs: Path) -> Trainer:
    stdout, stderr = logs / "trainer.out", logs / "trainer.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "steps.trainer"], env=dict(env), cwd=codeset, stdout=out, stderr=err
        )
    return Trainer(process, stdout, stderr)


def wait_for_pause(env: Mapping[str, str], trainer: Trainer) -> None:
    """Until ``train.py`` has logged its model and waits; AssertionError with the trainer's output if it ends first."""
    ready = Path(env["FAULT_READY"])
    deadline = time.monotonic() + WAIT_SECONDS
    while not ready.exists():
        if trainer.process.poll() is not None or time.monotonic() > deadline:
            code, out, err = trainer.finish()
            raise AssertionError(f"train.py never paused (exit {code}):\n{out}\n{err}")
        time.sleep(0.1)


def go_on(env: Mapping[str, str]) -> None:
    Path(env["FAULT_GO"]).touch()
