"""End-to-end benchmark: ``fuseml-steps run`` of the example workflow to an answered prediction.

Runs ``fuseml-steps run examples/workflows/mlflow-e2e.yaml --codeset
examples/codesets/wine`` as a user would (process executor, the default local
setup: sqlite MLflow store and local artifacts in the state folder, the
builder's venv backend, the predictor's local target) and times the wall clock
from the command's start to a 200 answer, with a prediction, to the real-client
V2 body (docs/contract.md) POSTed to the printed ``prediction-url``.

- cold: a fresh ``--state-dir`` and a fresh builder cache (``XDG_CACHE_HOME``,
  where the builder keeps its venvs and the predictor its state), so the venv is
  built (about 1-2 min); pip's own download cache is the user's as it is.
- warm: the same command again with the same state and cache: the builder finds
  its venv, the trainer trains, the predictor replaces its server.

Target: warm <= 30 s. ``FUSEML_BENCH_QUICK=1`` skips cold: the state and cache
then live in a folder kept between benchmark runs (primed once, not timed as
cold). Every server started is stopped at the end (``fuseml-steps apps stop
<app>`` on the same state folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "workflows" / "mlflow-e2e.yaml"
WINE = ROOT / "examples" / "codesets" / "wine"
WARM_TARGET_S = 30.0
QUICK_ENV = "FUSEML_BENCH_QUICK"
QUICK_FOLDER = Path(tempfile.gettempdir()) / "fuseml-bench-e2e"
RUN_TIMEOUT = 1800
# What a real client sends (docs/contract.md): one unnamed [1, 11] tensor, columns in training order.
BODY = {
    "inputs": [
        {
            "name": "input-0",
            "shape": [1, 11],
            "datatype": "FP32",
            "data": [[7.0, 0.27, 0.36, 20.7, 0.045, 45.0, 170.0, 1.001, 3.0, 0.45, 8.8]],
        }
    ]
}
URL_PREFIX = "prediction-url: "


def fuseml_steps() -> list[str]:
    """The ``fuseml-steps`` command of this venv (``python -m runner`` if the script is not installed)."""
    script = Path(sys.executable).parent / "fuseml-steps"
    return [str(script)] if script.exists() else [sys.executable, "-m", "runner"]


def environment(work: Path) -> dict[str, str]:
    """This environment with the builder cache and the predictor state under ``work``."""
    env = dict(os.environ)
    # pip's download cache stays where it was (XDG_CACHE_HOME would move it too).
    env.setdefault("PIP_CACHE_DIR", str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip"))
    env["XDG_CACHE_HOME"] = str(work / "cache")
    env.pop("FUSEML_STEPS_STATE_DIR", None)
    return env


def run_to_prediction(work: Path, env: dict[str, str]) -> tuple[float, str, float, str]:
    """One ``fuseml-steps run`` then one prediction: (seconds to the answer, URL, prediction, step lines)."""
    argv = [*fuseml_steps(), "run", str(WORKFLOW), "--codeset", str(WINE), "--state-dir", str(work / "state")]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"fuseml-steps run failed ({done.returncode}):\n{done.stderr[-4000:]}")
    urls = [line[len(URL_PREFIX) :] for line in done.stdout.splitlines() if line.startswith(URL_PREFIX)]
    if not urls:
        raise RuntimeError(f"fuseml-steps run printed no prediction-url:\n{done.stdout}\n{done.stderr[-2000:]}")
    request = urllib.request.Request(
        urls[0], data=json.dumps(BODY).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    elapsed = time.monotonic() - started
    prediction = answer["outputs"][0]["data"][0]
    if not isinstance(prediction, int | float):
        raise RuntimeError(f"the prediction is not a number: {answer}")
    steps = "\n".join(line for line in done.stderr.splitlines() if line.startswith("  ") and "Running" not in line)
    return elapsed, urls[0], float(prediction), steps


def stop_servers(work: Path, env: dict[str, str]) -> None:
    """Stop every app the predictor recorded in this benchmark's state folder; one left running is an error."""
    state = work / "cache" / "fuseml-steps" / "predictor"
    left = []
    for path in sorted(state.glob("*.json")) if state.is_dir() else []:
        done = subprocess.run(
            [*fuseml_steps(), "apps", "stop", path.stem, "--state-dir", str(state)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        print(f"stop {path.stem}: {(done.stdout.strip() or done.stderr.strip()[-300:])}")
        if done.returncode != 0:
            left.append(path.stem)
    if left:
        raise RuntimeError(f"could not stop {', '.join(left)}: see above")


def main() -> None:
    quick = os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes")
    if quick:
        QUICK_FOLDER.mkdir(parents=True, exist_ok=True)
        work = QUICK_FOLDER
    else:
        work = Path(tempfile.mkdtemp(prefix="fuseml-bench-e2e-"))
    env = environment(work)
    cold = None
    try:
        if quick:
            if not any((work / "cache" / "fuseml" / "venvs").glob("*/bin/run")):
                primed, _, _, _ = run_to_prediction(work, env)
                print(f"primed the kept state in {work} ({primed:.1f} s, not a cold figure)")
        else:
            cold, url, prediction, steps = run_to_prediction(work, env)
            print(f"cold run steps:\n{steps}")
        warm, url, prediction, steps = run_to_prediction(work, env)
        print(f"warm run steps:\n{steps}")
    finally:
        stop_servers(work, env)
        if not quick:
            shutil.rmtree(work, ignore_errors=True)
    print(f"prediction URL          : {url} -> {prediction:.3f}")
    if cold is None:
        print(f"cold (fresh state + builder cache): skipped ({QUICK_ENV}=1)")
    else:
        print(f"cold (fresh state + builder cache): {cold:.1f} s to an answered prediction")
    print(
        f"warm (same state + cache, again)  : {warm:.1f} s to an answered prediction "
        f"(target <= {WARM_TARGET_S:.0f} s, {warm / WARM_TARGET_S:.2f}x)"
    )
    if cold is not None:
        print(f"cold / warm              : {cold / warm:.1f}x")


if __name__ == "__main__":
    main()
