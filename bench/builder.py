"""Builder benchmark: cold build time, trainer image size, cache-hit wall time.

Runs the real step process (``python -m steps.builder``) on the wine codeset
with the docker backend, a fresh local registry and the local Debian base
image. The cold build disables Docker's layer cache (input ``no_cache``), so
it includes every pip download. Targets: cache hit <= 1.5 s wall for the whole
process; the wine trainer image <= 700 MB.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINE = ROOT / "examples" / "codesets" / "wine"
CACHE_HIT_TARGET_S = 1.5
IMAGE_SIZE_TARGET_MB = 700
CACHE_HIT_RUNS = 7


def run_builder(env: dict[str, str], codeset: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "steps.builder"], cwd=codeset, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"builder failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def main() -> None:
    from runner.services.registry import Registry
    from tools.base_image import ensure_base_image
    from tools.dockerd import ensure_docker

    client = ensure_docker()
    base = ensure_base_image(client)
    with tempfile.TemporaryDirectory(prefix="fuseml-bench-builder-") as work, Registry(Path(work) / "registry") as reg:
        codeset = Path(work) / "project"
        shutil.copytree(WINE, codeset, ignore=shutil.ignore_patterns("mlruns", "__pycache__"))
        results = Path(work) / "results"
        env = {
            "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "FUSEML_REGISTRY": reg.host,
            "FUSEML_PULL_REGISTRY": "",
            "FUSEML_REPOSITORY": "bench/trainer",
            "FUSEML_BASE_IMAGE": base,
            "FUSEML_BACKEND": "docker",
            "FUSEML_RESULTS_DIR": str(results),
            "TASK_RESULT": "image",
        }
        if os.environ.get("PIP_CERT"):
            env["PIP_CERT"] = os.environ["PIP_CERT"]

        cold = run_builder({**env, "FUSEML_NO_CACHE": "true"}, codeset)
        image = (results / "image").read_text()
        size_mb = client.images.get(image).attrs["Size"] / 1e6
        hits = [run_builder(env, codeset) for _ in range(CACHE_HIT_RUNS)]
        client.images.remove(image, force=True)

    hit = statistics.median(hits)
    print(f"trainer image           : {image}")
    print(f"cold build (no layer cache, push included): {cold:.1f} s")
    print(
        f"trainer image size      : {size_mb:.0f} MB "
        f"(target <= {IMAGE_SIZE_TARGET_MB} MB, {size_mb / IMAGE_SIZE_TARGET_MB:.2f}x)"
    )
    print(
        f"cache hit, whole process: median {hit:.2f} s, min {min(hits):.2f} s over {CACHE_HIT_RUNS} runs "
        f"(target <= {CACHE_HIT_TARGET_S} s, {hit / CACHE_HIT_TARGET_S:.2f}x)"
    )


if __name__ == "__main__":
    main()
