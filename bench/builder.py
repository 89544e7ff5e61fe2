"""Builder benchmark: cold builds with uv and with pip side by side, image size, cache-hit wall time.

Runs the real step process (``python -m steps.builder``) on the wine codeset,
with the docker backend (a fresh local registry, the local Debian base image)
and with the venv backend. Cold means nothing to reuse: Docker's layer cache
is off (input ``no_cache``) and the venv builds start with empty pip and uv
caches (a fresh HOME, no pip.conf but the system one). Each installer builds
``BENCH_BUILDER_ROUNDS`` times (default 2), uv and pip alternating, and the
medians are compared (target: uv <= 1/3 of pip);
``BENCH_BUILDER_BACKENDS=docker`` leaves the venv builds out. CPU seconds: for venv, the
builder and everything it ran; for docker, the install step inside the build
(``install.sh`` reports it), since the rest runs in the daemon. Targets: cache
hit <= 1.5 s wall for the whole process; the wine trainer image <= 700 MB.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINE = ROOT / "examples" / "codesets" / "wine"
CACHE_HIT_TARGET_S = 1.5
IMAGE_SIZE_TARGET_MB = 700
UV_RATIO_TARGET = 1 / 3
CACHE_HIT_RUNS = 7
INSTALLERS = ("uv", "pip")
_INSTALL_CPU = re.compile(r"fuseml-installer: (\w+) done, cpu (\d+)m([\d.]+)s (\d+)m([\d.]+)s")


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float  # the builder and its children (venv) or the install step in the build (docker)
    installer: str  # the one install.sh reports it used
    result: str  # the step's result: the image or venv reference


def run_builder(env: dict[str, str], codeset: Path) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "steps.builder"], cwd=codeset, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"builder failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    reported = _INSTALL_CPU.search(done.stderr)
    installer = reported.group(1) if reported else "none"
    if env.get("FUSEML_BACKEND") == "docker" and reported:
        cpu = int(reported.group(2)) * 60 + float(reported.group(3)) + int(reported.group(4)) * 60
        cpu += float(reported.group(5))
    result = (Path(env["FUSEML_RESULTS_DIR"]) / env["TASK_RESULT"]).read_text()
    return Run(elapsed, cpu, installer, result)


def cold_runs(env: dict[str, str], codeset: Path, work: Path, backend: str, rounds: int) -> dict[str, list[Run]]:
    """``rounds`` cold builds per installer, alternating, each with nothing to reuse."""
    runs: dict[str, list[Run]] = {name: [] for name in INSTALLERS}
    for number in range(rounds):
        for installer in INSTALLERS:
            home = work / f"home-{backend}-{installer}-{number}"
            home.mkdir()
            cold = {
                **env,
                "HOME": str(home),
                "FUSEML_BACKEND": backend,
                "FUSEML_INSTALLER": installer,
                "FUSEML_NO_CACHE": "true",
                "FUSEML_REPOSITORY": f"bench/trainer-{installer}-{number}",
                "FUSEML_CACHE_DIR": str(work / f"venvs-{installer}-{number}"),
            }
            run = run_builder(cold, codeset)
            if run.installer != installer:
                raise RuntimeError(f"asked for {installer}, install.sh used {run.installer}")
            runs[installer].append(run)
            print(f"  {backend} cold with {installer} #{number + 1}: {run.wall:.1f} s, {run.cpu:.1f} s CPU", flush=True)
            shutil.rmtree(work / f"venvs-{installer}-{number}", ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)
    return runs


def print_side_by_side(title: str, runs: dict[str, list[Run]], cpu_what: str) -> None:
    wall = {name: statistics.median(r.wall for r in runs[name]) for name in INSTALLERS}
    cpu = {name: statistics.median(r.cpu for r in runs[name]) for name in INSTALLERS}
    rounds = len(runs["uv"])
    print(f"{title} (median of {rounds}) | ours with uv | ours with pip | uv / pip (target <= 0.33)")
    print(
        f"  wall                       | {wall['uv']:10.1f} s | {wall['pip']:11.1f} s | {wall['uv'] / wall['pip']:.2f}"
    )
    print(f"  CPU, {cpu_what:21} | {cpu['uv']:10.1f} s | {cpu['pip']:11.1f} s | {cpu['uv'] / cpu['pip']:.2f}")


def main() -> None:
    from runner.services.registry import Registry
    from tools.base_image import ensure_base_image
    from tools.dockerd import ensure_docker

    rounds = int(os.environ.get("BENCH_BUILDER_ROUNDS", "2"))
    backends = os.environ.get("BENCH_BUILDER_BACKENDS", "venv,docker").split(",")
    client = ensure_docker()
    base = ensure_base_image(client)
    with tempfile.TemporaryDirectory(prefix="fuseml-bench-builder-") as folder, Registry(Path(folder) / "reg") as reg:
        work = Path(folder)
        codeset = work / "project"
        shutil.copytree(WINE, codeset, ignore=shutil.ignore_patterns("mlruns", "__pycache__"))
        results = work / "results"
        results.mkdir()
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

        venv_runs = cold_runs(env, codeset, work, "venv", rounds) if "venv" in backends else None
        docker_runs = cold_runs(env, codeset, work, "docker", rounds)
        image = docker_runs["uv"][-1].result
        size_mb = {i: client.images.get(docker_runs[i][-1].result).attrs["Size"] / 1e6 for i in INSTALLERS}
        hit_env = {**env, "FUSEML_REPOSITORY": f"bench/trainer-uv-{rounds - 1}"}
        hits = [run_builder(hit_env, codeset).wall for _ in range(CACHE_HIT_RUNS)]
        for run in docker_runs["uv"] + docker_runs["pip"]:
            client.images.remove(run.result, force=True)

    if venv_runs:
        print_side_by_side("venv backend, cold", venv_runs, "builder + children")
    print_side_by_side("docker backend, cold, push included", docker_runs, "install step")
    hit = statistics.median(hits)
    same = {run.result.rsplit(":", 1)[1] for run in docker_runs["uv"] + docker_runs["pip"]}
    print(f"trainer image           : {image} ({len(same)} tag(s) over all builds: one, whichever installer)")
    print(
        f"trainer image size      : {size_mb['uv']:.0f} MB with uv, {size_mb['pip']:.0f} MB with pip "
        f"(target <= {IMAGE_SIZE_TARGET_MB} MB, {size_mb['uv'] / IMAGE_SIZE_TARGET_MB:.2f}x)"
    )
    print(
        f"cache hit, whole process: median {hit:.2f} s, min {min(hits):.2f} s over {CACHE_HIT_RUNS} runs "
        f"(target <= {CACHE_HIT_TARGET_S} s, {hit / CACHE_HIT_TARGET_S:.2f}x)"
    )


if __name__ == "__main__":
    main()
