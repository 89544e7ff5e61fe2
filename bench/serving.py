"""Serving benchmark: our V2 runtime against ``mlflow models serve``, same wine models, same load.

For each model (``MODELS``: the example's ElasticNet, a RandomForestRegressor
of 50 trees of depth 8, a HistGradientBoostingRegressor of 100 iterations;
all saved by MLflow 3.17 with its default skops serialisation) both servers
serve it with one worker, on loopback. Each round drives one server with the
same bounded, closed-loop load (``wrk``: 1 thread, ``CONNECTIONS``
connections, ``DURATION`` seconds, requests in each server's native form: the
V2 real-client body for ours, ``dataframe_split`` for MLflow's), and rounds
alternate A/B/B/A so drift on a shared machine hits both alike: first 1-row
requests (req/s, p50, p99), then ``BATCH_ROWS``-row requests (rows/s). One
table sums it up. Then, for the linear model, each server's cold start (spawn
to first 200 on its readiness route) is timed.

Targets (issue): >= 4x MLflow's req/s on 1-row requests and p99 <= 5 ms for
every model, >= 4x MLflow's rows/s on 1,000-row requests, cold start to ready
<= 2 s. Figures are printed, not asserted: a busy machine moves them. CPU
seconds at ready are printed beside cold start, as the figure a busy machine
distorts least.

Then our runtime alone: 1 worker against 2 (``--workers``, same wrk load), and
REST against gRPC (the same 1-row FP32 tensor, one worker, from Python
clients on both sides: ``requests`` sessions and a gRPC channel with KServe's
stubs, ``CONNECTIONS`` threads each), as ratios.

Tunables (env): BENCH_SERVING_ROUNDS (4), BENCH_SERVING_DURATION (5 s),
BENCH_SERVING_CONNECTIONS (4), BENCH_SERVING_COLD (5 starts each; the target is a median of 5),
BENCH_SERVING_MODELS (``linear,random_forest,hist_gradient_boosting,scaled_forest``; the last a
Pipeline of StandardScaler and the random forest),
BENCH_SERVING_BATCH_ROWS (1000).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from common.polling import wait_until
from common.ports import free_port
from common.processes import stop_process_group

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
WRK = "/usr/bin/wrk"
START_TIMEOUT = 120.0

ROUNDS = int(os.environ.get("BENCH_SERVING_ROUNDS", "4"))
DURATION = int(os.environ.get("BENCH_SERVING_DURATION", "5"))
CONNECTIONS = int(os.environ.get("BENCH_SERVING_CONNECTIONS", "4"))
COLD_STARTS = int(os.environ.get("BENCH_SERVING_COLD", "5"))
MODELS = os.environ.get("BENCH_SERVING_MODELS", "linear,random_forest,hist_gradient_boosting,scaled_forest").split(",")
BATCH_ROWS = int(os.environ.get("BENCH_SERVING_BATCH_ROWS", "1000"))


@dataclass(frozen=True)
class Server:
    """How to start one server and talk to it."""

    label: str
    argv: list[str]
    ready_path: str
    infer_path: str
    body: str
    env: dict[str, str]


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def servers(model_dir: Path, rows: list[list[float]], columns: list[str]) -> tuple[Server, Server]:
    env = {
        **os.environ,
        # `mlflow models serve` runs `bash -c 'exec uvicorn ...'`: uvicorn must be on PATH.
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        # MLflow 3.17 deserialises models (skops included) only when allowed.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        "PYTHONPATH": str(ROOT),
    }
    ours = Server(
        label="fuseml",
        argv=[
            sys.executable,
            "-m",
            "serving",
            "--model",
            str(model_dir),
            "--name",
            "wine",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--grpc-port",
            "{grpc_port}",
        ],  # fmt: skip
        ready_path="/v2/health/ready",
        infer_path="/v2/models/wine/infer",
        body=json.dumps(
            {"inputs": [{"name": "input-0", "shape": [len(rows), len(columns)], "datatype": "FP32", "data": rows}]}
        ),
        env=env,
    )
    theirs = Server(
        label="mlflow",
        argv=[
            str(VENV_BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "-h",
            "127.0.0.1",
            "-p",
            "{port}",
            "-w",
            "1",
            "--env-manager",
            "local",
        ],  # fmt: skip
        ready_path="/ping",
        infer_path="/invocations",
        body=json.dumps({"dataframe_split": {"columns": columns, "data": rows}}),
        env=env,
    )
    return ours, theirs


@contextmanager
def started(server: Server) -> Iterator[tuple[str, float, float]]:
    """Start ``server``; yields (base URL, seconds to ready, CPU seconds at ready); stops it after."""
    port, grpc_port = free_port(with_grpc=False), free_port(with_grpc=False)
    argv = [a.replace("{port}", str(port)).replace("{grpc_port}", str(grpc_port)) for a in server.argv]
    began = time.monotonic()
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    server.env["BENCH_GRPC_ADDRESS"] = f"127.0.0.1:{grpc_port}"  # where drive_grpc finds it
    try:
        seconds = wait_ready(url + server.ready_path, process, began)
        yield url, seconds, cpu_seconds(process.pid)
    finally:
        stop_process_group(process, timeout=20)


def wait_ready(url: str, process: subprocess.Popen[str], began: float) -> float:
    """Seconds from ``began`` until ``url`` answers 200, polled every 5 ms (it is the cold-start figure)."""
    session = requests.Session()

    def answered() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}: {process.stderr.read()[-2000:]}")
        try:
            return session.get(url, timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    if not wait_until(answered, timeout=START_TIMEOUT - (time.monotonic() - began), interval=0.005):
        raise RuntimeError(f"{url}: not ready within {START_TIMEOUT}s")
    return time.monotonic() - began


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its direct children so far (Linux /proc)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def check_answer(url: str, server: Server) -> None:
    response = requests.post(url + server.infer_path, data=server.body, headers={"content-type": "application/json"})
    if response.status_code != 200:
        raise RuntimeError(f"{server.label}: {response.status_code} {response.text[:500]}")


def drive(url: str, server: Server) -> Load:
    """Closed-loop load: CONNECTIONS connections for DURATION seconds, wrk if present."""
    if shutil.which(WRK):
        return drive_wrk(url, server)
    return drive_python(url, server)


def drive_wrk(url: str, server: Server) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(server.body)}\n"
        )
    try:
        command = [WRK, "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-s", script.name,
                   url + server.infer_path]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=DURATION + 60).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed = int(errors.group(1)) if errors else 0
    failed += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return Load(rps, _wrk_percentile(output, "50"), _wrk_percentile(output, "99"), failed)


def _wrk_percentile(output: str, percent: str) -> float:
    match = re.search(rf"^\s+{percent}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    if not match:
        raise RuntimeError(f"no {percent}% latency in wrk output:\n{output}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def drive_python(url: str, server: Server) -> Load:
    """The same bounded load from Python threads, for machines without wrk (slower client)."""

    def client() -> Callable[[], bool]:
        session = requests.Session()
        headers = {"content-type": "application/json"}
        return lambda: session.post(url + server.infer_path, data=server.body, headers=headers).status_code == 200

    return drive_threads(client)


def drive_threads(client: Callable[[], Callable[[], bool]]) -> Load:
    """``CONNECTIONS`` threads, each with its own ``client()`` (one request -> ok?), for ``DURATION`` seconds."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + DURATION

    def worker() -> None:
        request = client()
        mine: list[float] = []
        failed = 0
        while time.monotonic() < deadline:
            began = time.perf_counter()
            ok = request()
            mine.append((time.perf_counter() - began) * 1000)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    elapsed = time.monotonic() - began
    return Load(
        len(latencies) / elapsed, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)], errors[0]
    )


def save_model(folder: Path, kind: str) -> tuple[Path, list[list[float]], list[str]]:
    """The wine model of ``kind`` (``linear``, ``scaled_forest``, a fixtures' ``TREE_MODELS``) in ``folder``."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.models import WINE_FEATURES, save_tree_model, save_wine_model, wine_feature_rows

    path = folder / kind
    if kind == "linear":
        model_dir = save_wine_model(path)
    elif kind == "scaled_forest":
        model_dir = save_scaled_forest(path)
    else:
        model_dir = save_tree_model(path, kind)
    return model_dir, wine_feature_rows(BATCH_ROWS), WINE_FEATURES


def save_scaled_forest(path: Path) -> Path:
    """A Pipeline with a preprocessing step: StandardScaler, then the fixtures' random forest; saved with skops."""
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tests.fixtures.models import WINE_TARGET, load_wine_data, save_skops_model, train_tree_model

    forest, train_x = train_tree_model("random_forest")
    quality = load_wine_data().loc[train_x.index, WINE_TARGET]
    model = make_pipeline(StandardScaler(), clone(forest)).fit(train_x, quality)
    return save_skops_model(model, train_x, path)


@dataclass(frozen=True)
class Compared:
    """One model's medians, ours and MLflow's: 1-row (req/s, p50, p99, errors) and batch rows/s."""

    one_row: dict[str, tuple[float, float, float, int]]
    batch_rows_per_second: dict[str, float]


def compare(kind: str, model_dir: Path, rows: list[list[float]], columns: list[str]) -> Compared:
    """A/B rounds of 1-row then ``BATCH_ROWS``-row requests against both servers of one model."""
    ours, theirs = servers(model_dir, rows[:1], columns)
    batch = dict(zip((ours.label, theirs.label), servers(model_dir, rows, columns), strict=True))
    print(f"{kind}: {model_dir}; wrk -t1 -c{CONNECTIONS} -d{DURATION}s, {ROUNDS} rounds A/B/B/A", flush=True)
    loads: dict[str, list[Load]] = {ours.label: [], theirs.label: []}
    batches: dict[str, list[Load]] = {ours.label: [], theirs.label: []}
    with started(ours) as (our_url, _, _), started(theirs) as (their_url, _, _):
        urls = {ours.label: our_url, theirs.label: their_url}
        for server in (ours, theirs):
            check_answer(urls[server.label], server)
            check_answer(urls[server.label], batch[server.label])
            drive_python_warmup(urls[server.label], server)
        for round_ in range(ROUNDS):
            order = (ours, theirs) if round_ % 2 == 0 else (theirs, ours)
            for server in order:
                load = drive(urls[server.label], server)
                loads[server.label].append(load)
                print(
                    f"  round {round_ + 1} {server.label:7s} {load.requests_per_second:8.0f} req/s  "
                    f"p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms  errors {load.errors}",
                    flush=True,
                )
        for round_ in range(ROUNDS):
            order = (ours, theirs) if round_ % 2 == 0 else (theirs, ours)
            for server in order:
                load = drive(urls[server.label], batch[server.label])
                batches[server.label].append(load)
                print(
                    f"  round {round_ + 1} {server.label:7s} {load.requests_per_second * len(rows):10.0f} rows/s "
                    f"({len(rows)}-row requests, p99 {load.p99_ms:.1f} ms, errors {load.errors})",
                    flush=True,
                )
    return Compared(
        one_row={label: summarise(runs) for label, runs in loads.items()},
        batch_rows_per_second={
            label: statistics.median(r.requests_per_second for r in runs) * len(rows) for label, runs in batches.items()
        },
    )


def print_table(results: dict[str, Compared]) -> None:
    """One line per model: ours and MLflow's 1-row req/s and p99, batch rows/s, the ratios against the targets."""
    print(
        f"{'model':24s} {'ours req/s':>10s} {'mlflow':>8s} {'ratio':>7s} {'our p99':>8s} {'mlflow p99':>10s}   "
        f"{'ours rows/s':>11s} {'mlflow':>9s} {'ratio':>7s}   targets (>= 4x, <= 5 ms, >= 4x)"
    )
    for kind, result in results.items():
        ours, theirs = result.one_row["fuseml"], result.one_row["mlflow"]
        our_rows, their_rows = result.batch_rows_per_second["fuseml"], result.batch_rows_per_second["mlflow"]
        ratio, batch_ratio = ours[0] / theirs[0], our_rows / their_rows
        verdict = " ".join("met" if ok else "NOT met" for ok in (ratio >= 4, ours[2] <= 5, batch_ratio >= 4))
        print(
            f"{kind:24s} {ours[0]:10.0f} {theirs[0]:8.0f} {ratio:6.1f}x {ours[2]:6.2f}ms {theirs[2]:8.2f}ms   "
            f"{our_rows:11.0f} {their_rows:9.0f} {batch_ratio:6.1f}x   {verdict}"
        )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as work:
        results: dict[str, Compared] = {}
        for kind in MODELS:
            model_dir, rows, columns = save_model(Path(work), kind)
            results[kind] = compare(kind, model_dir, rows, columns)
        print_table(results)
        if "linear" not in MODELS:
            return
        (Path(work) / "cold").mkdir()
        model_dir, rows, columns = save_model(Path(work) / "cold", "linear")
        linear, _ = cold = servers(model_dir, rows[:1], columns)
        for server in cold:
            starts = []
            for _ in range(COLD_STARTS):
                with started(server) as (_, seconds, cpu):
                    starts.append((seconds, cpu))
            seconds = statistics.median(s for s, _ in starts)
            cpu = statistics.median(c for _, c in starts)
            verdict = f" (target <= 2 s: {'met' if seconds <= 2 else 'NOT met'})" if server.label == "fuseml" else ""
            runs = ", ".join(f"{s:.2f}" for s, _ in starts)
            print(f"{server.label:7s} cold start to ready: median {seconds:.2f} s [{runs}], CPU {cpu:.2f} s{verdict}")
        workers_and_grpc(linear)


def workers_and_grpc(ours: Server) -> None:
    """1 vs 2 workers (wrk, REST), then REST vs gRPC (Python clients, one worker); medians and ratios."""
    two = Server(
        **{**ours.__dict__, "label": "2 workers", "argv": [*ours.argv, "--workers", "2"], "env": dict(ours.env)}
    )
    one = Server(**{**ours.__dict__, "label": "1 worker", "env": dict(ours.env)})
    loads: dict[str, list[Load]] = {one.label: [], two.label: [], "rest-py": [], "grpc-py": []}
    with started(one) as (one_url, _, _), started(two) as (two_url, _, _):
        urls = {one.label: one_url, two.label: two_url}
        for server in (one, two):
            drive_python_warmup(urls[server.label], server)
        for round_ in range(ROUNDS):
            for server in (one, two) if round_ % 2 == 0 else (two, one):
                loads[server.label].append(drive(urls[server.label], server))
            for label in ("rest-py", "grpc-py") if round_ % 2 == 0 else ("grpc-py", "rest-py"):
                load = (
                    drive_python(one_url, one) if label == "rest-py" else drive_grpc(one.env["BENCH_GRPC_ADDRESS"], one)
                )
                loads[label].append(load)
    summary = {label: summarise(runs) for label, runs in loads.items()}
    for label, (rps, p50, p99, errors) in summary.items():
        print(f"{label:9s} median {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  errors {errors}")
    cores = len(os.sched_getaffinity(0))
    print(f"ratio 2 workers / 1 worker req/s: {summary[two.label][0] / summary[one.label][0]:.2f}x ({cores} cores)")
    print(f"ratio gRPC / REST req/s (Python clients): {summary['grpc-py'][0] / summary['rest-py'][0]:.2f}x")


def drive_grpc(address: str, server: Server) -> Load:
    """The drive_python load over gRPC: ModelInfer with the same tensor, KServe's generated stubs."""
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as stubs

    tensor = json.loads(server.body)["inputs"][0]
    request = pb.ModelInferRequest(
        model_name="wine",
        inputs=[pb.ModelInferRequest.InferInputTensor(
            name=tensor["name"], datatype="FP32", shape=tensor["shape"],
            contents=pb.InferTensorContents(fp32_contents=[v for row in tensor["data"] for v in row]),
        )],
    )  # fmt: skip

    def client() -> Callable[[], bool]:
        infer = stubs.GRPCInferenceServiceStub(grpc.insecure_channel(address)).ModelInfer

        def one() -> bool:
            infer(request, timeout=10)  # an error status raises: the bench stops with it
            return True

        return one

    return drive_threads(client)


def drive_python_warmup(url: str, server: Server, count: int = 200) -> None:
    session = requests.Session()
    for _ in range(count):
        session.post(url + server.infer_path, data=server.body, headers={"content-type": "application/json"})


def summarise(runs: list[Load]) -> tuple[float, float, float, int]:
    return (
        statistics.median(r.requests_per_second for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
    )


if __name__ == "__main__":
    main()
