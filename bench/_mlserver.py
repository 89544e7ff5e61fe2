"""MLServer as a serving-bench peer: its own virtualenv, a model repository, its V2 request.

MLServer (Seldon's V2 server) with its MLflow runtime cannot share ``.venv``: it
pins fastapi below 0.116 and needs the full ``mlflow`` package. So it gets
``.venv-bench-mlserver`` beside ``.venv``, made once with pip and reused; it is
rebuilt when its pins change. The packages that read the model files (mlflow,
numpy, pandas, scipy, scikit-learn, skops, xgboost, lightgbm) are pinned to the
versions of the interpreter running the bench, so both sides load the same files
with the same code; so are pydantic and uvicorn with uvloop and httptools, so the
HTTP layer under each server's own code is the same.

It is started as fairly as ours and ``mlflow models serve -w 1``: one process
(``parallel_workers: 0``; with 1 MLServer would add an inference process beside
the HTTP one, and 1.7.1's worker fails under uvloop 0.22+: "There is no current
event loop"), no per-request logs (``debug: false``), on loopback, its gRPC and
metrics servers on free ports (they stay on, as MLServer ships). Its MLflow
runtime decodes a request through the model's signature and rejects the unnamed
``input-0`` tensor, so it is sent one named FP64 tensor per signature column.

The leading underscore keeps ``python -m bench`` from running this as a part.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-bench-mlserver"
PINS_FILE = "fuseml-bench-pins.txt"
MODEL_NAME = "wine"

# MLServer, exact; fastapi is the newest below mlserver's <0.116 bound (ours runs a newer one).
MLSERVER_PINS = ("mlserver==1.7.1", "mlserver-mlflow==1.7.1", "fastapi==0.115.14")
# The same versions as the bench's own interpreter: what reads the model files, and the HTTP stack under
# fastapi (mlserver asks for plain uvicorn, which would parse HTTP in Python without httptools).
SHARED_PACKAGES = (
    *("mlflow", "numpy", "pandas", "scipy", "scikit-learn", "skops", "xgboost-cpu", "lightgbm"),
    *("pydantic", "uvicorn", "uvloop", "httptools"),
)


def pins() -> list[str]:
    """Every pin of the MLServer virtualenv, the shared ones read from the running interpreter."""
    return [*MLSERVER_PINS, *(f"{name}=={version(name)}" for name in SHARED_PACKAGES)]


def ensure_venv(venv: Path = VENV) -> Path:
    """The ``bin`` folder of MLServer's virtualenv, made with pip if missing or if its pins changed."""
    wanted = "\n".join(pins())
    stamp = venv / PINS_FILE
    if stamp.is_file() and stamp.read_text() == wanted:
        return venv / "bin"
    print(f"mlserver: making {venv} ({', '.join(pins())}); a few minutes, once", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input", "--disable-pip-version-check", *pins()])
    stamp.write_text(wanted)  # last: an interrupted build is remade next time
    return venv / "bin"


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{command[0]} {command[1]} {command[2]} failed ({done.returncode}): {tail[0]}")


def model_repository(model_dir: Path) -> Path:
    """A one-model MLServer repository for ``model_dir``, beside it."""
    repository = model_dir.parent / f"{model_dir.name}-mlserver"
    (repository / MODEL_NAME).mkdir(parents=True, exist_ok=True)
    model = {
        "name": MODEL_NAME,
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(model_dir)},
    }
    (repository / MODEL_NAME / "model-settings.json").write_text(json.dumps(model, indent=2))
    return repository


def server_environment(repository: Path, port: str, grpc_port: str, metrics_port: str) -> dict[str, str]:
    """MLServer's server settings, as variables: a ``settings.json`` would hide the ``MLSERVER_*`` ones."""
    return {
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": port,
        "MLSERVER_GRPC_PORT": grpc_port,
        "MLSERVER_METRICS_PORT": metrics_port,
        "MLSERVER_PARALLEL_WORKERS": "0",
        "MLSERVER_DEBUG": "false",
        "MLSERVER_METRICS_DIR": str(repository / ".metrics"),
        "MLSERVER_ENVIRONMENTS_DIR": str(repository / ".envs"),
    }


def named_request(rows: list[list[float]], columns: list[str]) -> dict:
    """The V2 request MLServer's MLflow runtime accepts for ``rows``: one FP64 ``[n, 1]`` tensor per column."""
    return {
        "inputs": [
            {"name": name, "shape": [len(rows), 1], "datatype": "FP64", "data": [row[i] for row in rows]}
            for i, name in enumerate(columns)
        ]
    }
