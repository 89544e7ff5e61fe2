"""Serving benchmark: our V2 runtime against ``mlflow models serve`` and MLServer, same wine models, same load.

For each model (``MODELS``: the example's ElasticNet, a RandomForestRegressor
of 50 trees of depth 8, a HistGradientBoostingRegressor of 100 iterations, a
Pipeline of StandardScaler and that forest, all saved by MLflow 3.17 with its
default skops serialisation; an XGBRegressor and an LGBMRegressor of 50 trees,
saved by ``mlflow.xgboost`` and ``mlflow.lightgbm``) the three servers serve it
with one worker each, on loopback: ours, ``mlflow models serve -w 1``, and
MLServer with its MLflow runtime (``bench/_mlserver.py``: its own virtualenv,
one process). Each server's answer to the probe row and to the batch must equal
ours (1e-12 relative) before it is measured. Each round drives one server with
the same bounded, closed-loop load (``wrk``: 1 thread, ``CONNECTIONS``
connections, ``DURATION`` seconds, requests in each server's native form: the
V2 body of one FP64 ``input-0`` tensor for ours, ``dataframe_split`` for MLflow's, one named
tensor per column for MLServer's, which rejects the unnamed one), and rounds
alternate A/B/C/C/B/A so drift on a shared machine hits all alike: first 1-row
requests (req/s, p50, p99), then ``BATCH_ROWS``-row requests (rows/s). One
table per part sums it up; a peer that cannot serve a model (it fails to start
or load, or answers differently) shows ``n/a`` in its cells and the reason under
the table. Then, for the linear model, each server's cold start (spawn to first
200 on its readiness route) is timed.

Targets (issue): >= 4x MLflow's req/s on 1-row requests and p99 <= 5 ms for
every model, >= 4x MLflow's rows/s on 1,000-row requests, cold start to ready
<= 2 s. Figures are printed, not asserted: a busy machine moves them. CPU
seconds at ready are printed beside cold start, as the figure a busy machine
distorts least.

Then our runtime alone: 1 worker against 2 (``--workers``, same wrk load), and
REST against gRPC (the same 1-row FP64 tensor, one worker, from Python
clients on both sides: ``requests`` sessions and a gRPC channel with KServe's
stubs, ``CONNECTIONS`` threads each), as ratios.

Last, the big request (target: a 50 MB request answered in under 2 s): the
linear model's V2 body of one FP64 ``input-0`` tensor, the wine rows repeated
until it is ``BIG_MB`` MB (10^6 bytes; 717,945 rows for 50), sent to each
server in turn (the same rows as ``dataframe_split`` to MLflow's, as named
column tensors to MLServer's, whose REST side has no body limit to raise: its
``grpc_max_message_length`` is for gRPC). Seconds from send to the last byte of
the answer, median of ``BIG_TIMED`` after a warm-up whose answer must be the
model's own ``predict`` on those rows (1e-12 relative).

Tunables (env): BENCH_SERVING_ROUNDS (4), BENCH_SERVING_DURATION (5 s),
BENCH_SERVING_CONNECTIONS (4), BENCH_SERVING_COLD (5 starts each; the target is a median of 5),
BENCH_SERVING_MODELS (``linear,random_forest,hist_gradient_boosting,scaled_forest,xgboost,lightgbm``;
``scaled_forest`` is the Pipeline of StandardScaler and the random forest),
BENCH_SERVING_BATCH_ROWS (1000), BENCH_SERVING_BIG (``0`` skips the big request, ``only`` runs nothing else;
it needs ``linear`` in the models otherwise), BENCH_SERVING_BIG_MB (50).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import requests

from bench import _mlserver
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
MODELS = os.environ.get(
    "BENCH_SERVING_MODELS", "linear,random_forest,hist_gradient_boosting,scaled_forest,xgboost,lightgbm"
).split(",")
BATCH_ROWS = int(os.environ.get("BENCH_SERVING_BATCH_ROWS", "1000"))
# The big request (goal 2: a 50 MB request answered in under 2 s): "0" skips it, "only" runs nothing else.
BIG = os.environ.get("BENCH_SERVING_BIG", "1")
BIG_MB = float(os.environ.get("BENCH_SERVING_BIG_MB", "50"))
BIG_TIMED = 3  # sends timed after the warm-up; the figure is their median
BIG_TARGET_S = 2.0


@dataclass(frozen=True)
class Server:
    """How to start one server and talk to it."""

    label: str
    argv: list[str]
    ready_path: str
    infer_path: str
    body: str
    env: dict[str, str]
    cwd: Path = ROOT


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def servers(model_dir: Path, rows: list[list[float]], columns: list[str], mlserver: Path | None) -> list[Server]:
    """Ours, ``mlflow models serve``, and MLServer when its virtualenv's ``bin`` (``mlserver``) is given."""
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
        # FP64, the signature's type, as the peers get: an FP32 tensor is rounded to float32 first, and a value
        # that crosses a split then (a HistGradientBoosting row of the wine set does) is another input.
        body=json.dumps(
            {"inputs": [{"name": "input-0", "shape": [len(rows), len(columns)], "datatype": "FP64", "data": rows}]}
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
    if mlserver is None:
        return [ours, theirs]
    repository = _mlserver.model_repository(model_dir)
    seldon = Server(
        label="mlserver",
        argv=[str(mlserver / "mlserver"), "start", str(repository)],
        ready_path=f"/v2/models/{_mlserver.MODEL_NAME}/ready",
        infer_path=f"/v2/models/{_mlserver.MODEL_NAME}/infer",
        body=json.dumps(_mlserver.named_request(rows, columns)),
        env={
            **{name: value for name, value in env.items() if name != "PYTHONPATH"},  # none of our modules
            "PATH": f"{mlserver}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            **_mlserver.server_environment(repository, "{port}", "{grpc_port}", "{metrics_port}"),
        },
        cwd=repository,
    )
    return [ours, theirs, seldon]


@contextmanager
def started(server: Server) -> Iterator[tuple[str, float, float]]:
    """Start ``server``; yields (base URL, seconds to ready, CPU seconds at ready); stops it after.

    ``{port}``, ``{grpc_port}`` and ``{metrics_port}`` in its argv and environment become free ports.
    """
    ports = {name: str(free_port(with_grpc=False)) for name in ("{port}", "{grpc_port}", "{metrics_port}")}
    port, grpc_port = ports["{port}"], ports["{grpc_port}"]
    argv = [with_ports(a, ports) for a in server.argv]
    env = {name: with_ports(value, ports) for name, value in server.env.items()}
    began = time.monotonic()
    process = subprocess.Popen(
        argv,
        cwd=server.cwd,
        env=env,
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


def with_ports(text: str, ports: dict[str, str]) -> str:
    for placeholder, port in ports.items():
        text = text.replace(placeholder, port)
    return text


def wait_ready(url: str, process: subprocess.Popen[str], began: float) -> float:
    """Seconds from ``began`` until ``url`` answers 200, polled every 5 ms (it is the cold-start figure)."""
    session = requests.Session()

    def answered() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}: {process.stderr.read()[-2000:]}")
        try:
            return session.get(url, timeout=2).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or busy loading
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


@dataclass(frozen=True)
class Answer:
    """A server's predictions, flat, and whether it says they are FP32 (MLflow's answer does not say)."""

    values: list[float]
    fp32: bool = False


def answer(url: str, server: Server, session: requests.Session | None = None) -> Answer:
    """``server``'s predictions for its body: a V2 response's first output, or MLflow's ``predictions``."""
    return answer_of(posted(url, server, session or requests.Session()).json())


def posted(url: str, server: Server, session: requests.Session) -> requests.Response:
    """``server``'s body sent to it, the whole answer read (not streamed); an error status raises."""
    response = session.post(
        url + server.infer_path, data=server.body.encode(), headers={"content-type": "application/json"}, timeout=600
    )
    if response.status_code != 200:
        raise RuntimeError(f"{server.label}: {response.status_code} {response.text[:500]}")
    return response


def answer_of(payload: dict) -> Answer:
    """The predictions in a V2 response (its first output) or in MLflow's ``{"predictions": ...}``."""
    if "predictions" in payload:
        return Answer([float(value) for value in _flat(payload["predictions"])])
    output = payload["outputs"][0]
    return Answer([float(value) for value in _flat(output["data"])], output["datatype"] == "FP32")


def _flat(values: list) -> Iterator[float]:
    for value in values:
        yield from _flat(value) if isinstance(value, list) else (value,)


def same_answers(ours: Answer, theirs: Answer, label: str) -> None:
    """Raise unless ``theirs`` is ours, value by value: the same float32 when ours is FP32 (XGBoost predicts
    in float32; JSON spells it shortest or widened), else to 1e-12 relative (the fast paths' own bound)."""
    if len(ours.values) != len(theirs.values):
        raise RuntimeError(f"{label} answered {len(theirs.values)} predictions, ours {len(ours.values)}")
    for row, (mine, other) in enumerate(zip(ours.values, theirs.values, strict=True)):
        same = as_fp32(mine) == as_fp32(other) if ours.fp32 else math.isclose(mine, other, rel_tol=1e-12, abs_tol=0)
        if not same:
            raise RuntimeError(f"{label} answered {other!r} for row {row}, ours {mine!r}")


def as_fp32(value: float) -> bytes:
    return struct.pack("<f", value)


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
    """The wine model of ``kind`` (``linear``, ``scaled_forest``, ``BOOSTED``, ``TREE_MODELS``) in ``folder``."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.models import WINE_FEATURES, save_tree_model, save_wine_model, wine_feature_rows

    path = folder / kind
    if kind == "linear":
        model_dir = save_wine_model(path)
    elif kind == "scaled_forest":
        model_dir = save_scaled_forest(path)
    elif kind in BOOSTED:
        model_dir = save_boosted_model(path, kind)
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


# The boosting libraries' own regressors, each saved by its MLflow flavour; the library's pip name.
BOOSTED = {"xgboost": "xgboost-cpu", "lightgbm": "lightgbm"}


def save_boosted_model(path: Path, kind: str) -> Path:
    """``XGBRegressor`` (50 trees, depth 6) or ``LGBMRegressor`` (50 trees) on the fixtures' wine split.

    Saved by ``mlflow.xgboost`` (``model.ubj``) or ``mlflow.lightgbm`` (skops, trusting the types it holds),
    with a signature; the requirements are given, since inferring them reloads the model in a subprocess.
    """
    import mlflow.lightgbm
    import mlflow.xgboost
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.model_selection import train_test_split

    from tests.fixtures.models import WINE_TARGET, load_wine_data

    train, _ = train_test_split(load_wine_data(), test_size=0.25, random_state=42)
    train_x, quality = train.drop(columns=[WINE_TARGET]), train[WINE_TARGET]
    requirements = [f"{name}=={version(name)}" for name in ("mlflow", BOOSTED[kind], "numpy", "pandas", "scikit-learn")]
    if kind == "xgboost":
        import xgboost

        model = xgboost.XGBRegressor(n_estimators=50, max_depth=6, random_state=42).fit(train_x, quality)
        save, extra = mlflow.xgboost.save_model, {}
    else:
        import lightgbm

        model = lightgbm.LGBMRegressor(n_estimators=50, random_state=42, verbose=-1).fit(train_x, quality)
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        save, extra = mlflow.lightgbm.save_model, {"skops_trusted_types": trusted}
        requirements.append(f"skops=={version('skops')}")
    signature = infer_signature(train_x, model.predict(train_x))
    save(model, str(path), signature=signature, input_example=train_x.head(3), pip_requirements=requirements, **extra)
    return path


@dataclass(frozen=True)
class Compared:
    """One model's medians per server: 1-row (req/s, p50, p99, errors), batch (rows/s, ...); why a peer has none."""

    one_row: dict[str, tuple[float, float, float, int]]
    batch: dict[str, tuple[float, float, float, int]]
    missing: dict[str, str]


def compare(kind: str, model_dir: Path, rows: list[list[float]], columns: list[str], mlserver: Path | None) -> Compared:
    """Rounds of 1-row then ``BATCH_ROWS``-row requests against every server of one model, alternating order.

    Ours must start and answer; a peer that does not start, fails or answers differently from ours is left
    out with its reason.
    """
    one_row = servers(model_dir, rows[:1], columns, mlserver)
    batch = {server.label: server for server in servers(model_dir, rows, columns, mlserver)}
    print(f"{kind}: {model_dir}; wrk -t1 -c{CONNECTIONS} -d{DURATION}s, {ROUNDS} rounds A/B/C/C/B/A", flush=True)
    missing: dict[str, str] = {}
    urls: dict[str, str] = {}
    with ExitStack() as running:
        ours = one_row[0]
        urls[ours.label] = running.enter_context(started(ours))[0]
        expected = answer(urls[ours.label], ours), answer(urls[ours.label], batch[ours.label])
        drive_python_warmup(urls[ours.label], ours)
        for peer in one_row[1:]:
            try:
                urls[peer.label] = start_checked(running, peer, batch[peer.label], expected)
            except (RuntimeError, requests.RequestException) as error:
                missing[peer.label] = one_line(error)
                print(f"  {peer.label}: left out: {missing[peer.label]}", flush=True)
        active = [server for server in one_row if server.label in urls]
        loads = rounds(urls, active, rows=1)
        batches = rounds(urls, [batch[server.label] for server in active], rows=len(rows))
    return Compared(
        one_row={label: summarise(runs) for label, runs in loads.items()},
        batch={label: rows_per_second(summarise(runs), len(rows)) for label, runs in batches.items()},
        missing=missing,
    )


def rows_per_second(summary: tuple[float, float, float, int], rows: int) -> tuple[float, float, float, int]:
    return summary[0] * rows, *summary[1:]


def start_checked(running: ExitStack, server: Server, batch: Server, expected: tuple[Answer, Answer]) -> str:
    """Start a peer and keep it running in ``running`` once it answers both bodies as ours did; its URL."""
    with ExitStack() as own:
        url = own.enter_context(started(server))[0]
        same_answers(expected[0], answer(url, server), server.label)
        same_answers(expected[1], answer(url, batch), server.label)
        drive_python_warmup(url, server)
        running.enter_context(own.pop_all())
    return url


def rounds(urls: dict[str, str], active: list[Server], rows: int) -> dict[str, list[Load]]:
    """``ROUNDS`` rounds of the same load on each server, the order reversed every other round (A/B/C/C/B/A)."""
    loads: dict[str, list[Load]] = {server.label: [] for server in active}
    for round_ in range(ROUNDS):
        for server in active if round_ % 2 == 0 else active[::-1]:
            load = drive(urls[server.label], server)
            loads[server.label].append(load)
            rate = (
                f"{load.requests_per_second:8.0f} req/s"
                if rows == 1
                else f"{load.requests_per_second * rows:10.0f} rows/s"
            )
            print(
                f"  round {round_ + 1} {server.label:8s} {rate}  p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms"
                f"  errors {load.errors}" + ("" if rows == 1 else f"  ({rows}-row requests)"),
                flush=True,
            )
    return loads


def one_line(error: BaseException) -> str:
    """The line of an error that says why (a server's stderr ends with its exception), shortened."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    return lines[-1][:200]


LABELS = ("fuseml", "mlflow", "mlserver")
PEERS = LABELS[1:]


def print_tables(results: dict[str, Compared]) -> None:
    """One table per part (1-row requests, ``BATCH_ROWS``-row requests): every server, ratios, targets."""
    print_table(results, "1-row requests, req/s", lambda r: r.one_row, p99_target=True)
    print_table(results, f"{BATCH_ROWS}-row requests, rows/s", lambda r: r.batch, p99_target=False)
    print("MLServer gets one named FP64 tensor per signature column (it rejects our unnamed `input-0` tensor).")


def print_table(
    results: dict[str, Compared],
    title: str,
    part: Callable[[Compared], dict[str, tuple[float, float, float, int]]],
    p99_target: bool,
) -> None:
    """Throughput per server, ours over each peer, p99 per server, then the targets (>= 4x mlflow; p99 <= 5 ms)."""
    print(f"\n{title}; one worker each; medians of {ROUNDS} rounds")
    print(
        f"{'model':24s}" + "".join(f"{label:>10s}" for label in LABELS)
        + "".join(f"{'/' + peer:>10s}" for peer in PEERS)
        + "".join(f"{'p99 ' + label:>14s}" for label in LABELS)
        + "   targets"
    )  # fmt: skip
    notes: list[str] = []
    for kind, result in results.items():
        figures = part(result)
        cells = {label: "n/a" for label in LABELS}
        for label, reason in result.missing.items():
            notes.append(f"[{len(notes) + 1}] {label}, {kind}: {reason}")
            cells[label] = f"n/a[{len(notes)}]"
        rate = {label: figures[label][0] for label in figures}
        ours = rate["fuseml"]
        ratio = {peer: ours / rate[peer] for peer in PEERS if peer in rate}
        line = f"{kind:24s}" + "".join(
            f"{rate[label]:10.0f}" if label in rate else f"{cells[label]:>10s}" for label in LABELS
        )
        line += "".join(f"{ratio[peer]:9.1f}x" if peer in ratio else f"{'n/a':>10s}" for peer in PEERS)
        line += "".join(f"{figures[label][2]:12.2f}ms" if label in figures else f"{'n/a':>14s}" for label in LABELS)
        verdicts = [f">= 4x mlflow {'n/a' if 'mlflow' not in ratio else 'met' if ratio['mlflow'] >= 4 else 'NOT met'}"]
        if p99_target:
            verdicts.append(f"p99 <= 5 ms {'met' if figures['fuseml'][2] <= 5 else 'NOT met'}")
        errors = {label: figures[label][3] for label in figures if figures[label][3]}
        if errors:
            verdicts.append("errors " + ", ".join(f"{label} {count}" for label, count in errors.items()))
        print(line + "   " + "; ".join(verdicts))
    for note in notes:
        print(note)


def mlserver_venv() -> tuple[Path | None, str]:
    """MLServer's virtualenv ``bin``, or None and why it could not be made (the bench goes on without it)."""
    try:
        return _mlserver.ensure_venv(), ""
    except (RuntimeError, OSError) as error:
        print(f"mlserver: left out: {one_line(error)}", flush=True)
        return None, one_line(error)


def main() -> None:
    mlserver, mlserver_missing = mlserver_venv()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as work:
        if BIG == "only":
            return big_request(Path(work), mlserver)
        results: dict[str, Compared] = {}
        for kind in MODELS:
            model_dir, rows, columns = save_model(Path(work), kind)
            results[kind] = compare(kind, model_dir, rows, columns, mlserver)
            if mlserver is None:
                results[kind].missing["mlserver"] = f"no virtualenv: {mlserver_missing}"
        print_tables(results)
        if "linear" not in MODELS:
            return
        (Path(work) / "cold").mkdir()
        model_dir, rows, columns = save_model(Path(work) / "cold", "linear")
        linear, *_ = cold = servers(model_dir, rows[:1], columns, mlserver)
        for server in cold:
            starts = []
            try:
                for _ in range(COLD_STARTS):
                    with started(server) as (_, seconds, cpu):
                        starts.append((seconds, cpu))
            except RuntimeError as error:
                if server is linear:
                    raise
                print(f"{server.label:8s} cold start to ready: n/a: {one_line(error)}")
                continue
            seconds = statistics.median(s for s, _ in starts)
            cpu = statistics.median(c for _, c in starts)
            verdict = f" (target <= 2 s: {'met' if seconds <= 2 else 'NOT met'})" if server.label == "fuseml" else ""
            runs = ", ".join(f"{s:.2f}" for s, _ in starts)
            print(f"{server.label:8s} cold start to ready: median {seconds:.2f} s [{runs}], CPU {cpu:.2f} s{verdict}")
        workers_and_grpc(linear)
        if BIG != "0":
            big_request(Path(work), mlserver)


@dataclass(frozen=True)
class BigTiming:
    """One server's big request: its body's size, the timed sends (seconds), or why it has none."""

    label: str
    body_bytes: int
    seconds: tuple[float, ...] = ()
    missing: str = ""


def big_request(work: Path, mlserver: Path | None) -> None:
    """Goal 2's big request: ~``BIG_MB`` MB of V2 JSON for the wine ElasticNet, send to full answer, per server.

    Rows are the wine features repeated in order until our body (one FP64 ``input-0`` tensor) has the size;
    the peers get the same rows in their own forms. One server runs at a time. Its warm-up answer must be the
    model's own ``predict`` on those rows (1e-12 relative) before it is timed.
    """
    (work / "big").mkdir()
    model_dir, _, columns = save_model(work / "big", "linear")
    rows = big_rows(int(BIG_MB * 1_000_000), columns)
    expected = Answer(model_predictions(model_dir, rows, columns))
    timings: list[BigTiming] = []
    for server in servers(model_dir, rows, columns, mlserver):
        size = len(server.body)
        try:
            with started(server) as (url, _, _):
                seconds = timed_sends(url, server, expected)
        except (RuntimeError, requests.RequestException) as error:
            if server.label == "fuseml":
                raise
            timings.append(BigTiming(server.label, size, missing=one_line(error)))
            continue
        timings.append(BigTiming(server.label, size, tuple(seconds)))
    if mlserver is None:
        timings.append(BigTiming("mlserver", 0, missing="no virtualenv"))
    print_big(timings, len(rows), len(columns))


def big_rows(target_bytes: int, columns: list[str]) -> list[list[float]]:
    """The wine feature rows, repeated in order, until our V2 body of them is ``target_bytes`` long."""
    from tests.fixtures.models import WINE_FEATURES, load_wine_data

    wine = load_wine_data()[WINE_FEATURES].astype(float).values.tolist()
    sizes = [len(json.dumps(row)) + 2 for row in wine]  # each row and its ", " separator
    size = len(servers(Path(), [], columns, None)[0].body)  # within a few bytes: n in the shape grows digits
    rows: list[list[float]] = []
    while size < target_bytes:
        size += sizes[len(rows) % len(wine)]
        rows.append(wine[len(rows) % len(wine)])
    return rows


def model_predictions(model_dir: Path, rows: list[list[float]], columns: list[str]) -> list[float]:
    """The model's own ``predict`` on ``rows`` (a DataFrame: it was fitted on named columns)."""
    import mlflow.sklearn
    import pandas as pd

    model = mlflow.sklearn.load_model(str(model_dir))
    return [float(value) for value in model.predict(pd.DataFrame(rows, columns=columns))]


def timed_sends(url: str, server: Server, expected: Answer) -> list[float]:
    """A warm-up send whose answer must be ``expected``, then ``BIG_TIMED`` sends timed to the answer's last byte."""
    session = requests.Session()
    same_answers(expected, answer(url, server, session), f"{server.label} (against the model's predict)")
    seconds = []
    for _ in range(BIG_TIMED):
        began = time.perf_counter()
        posted(url, server, session)
        seconds.append(time.perf_counter() - began)
    return seconds


def print_big(timings: list[BigTiming], rows: int, width: int) -> None:
    """Median seconds per server, each peer's over ours, and the target (ours <= 2 s)."""
    ours = next(t for t in timings if t.label == "fuseml")
    mine = statistics.median(ours.seconds)
    print(
        f"\n{BIG_MB:g} MB request: wine ElasticNet, {rows:,} rows x {width} FP64, one worker each; seconds from"
        f" send to full answer, median of {BIG_TIMED} after a checked warm-up"
    )
    print(f"{'server':10s}{'body bytes':>13s}{'median s':>10s}  {'runs':24s}{'peer/ours':>10s}   target")
    notes = []
    for timing in timings:
        if timing.missing:
            notes.append(f"[{len(notes) + 1}] {timing.label}: {timing.missing}")
            print(f"{timing.label:10s}{timing.body_bytes or '':>13}{f'n/a[{len(notes)}]':>10s}")
            continue
        median = statistics.median(timing.seconds)
        runs = ", ".join(f"{s:.2f}" for s in timing.seconds)
        ratio = "" if timing is ours else f"{median / mine:9.1f}x"
        verdict = f"   <= {BIG_TARGET_S:g} s {'met' if mine <= BIG_TARGET_S else 'NOT met'}" if timing is ours else ""
        print(f"{timing.label:10s}{timing.body_bytes:13,d}{median:10.2f}  {'[' + runs + ']':24s}{ratio:>10s}{verdict}")
    for note in notes:
        print(note)


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
            name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"],
            contents=pb.InferTensorContents(fp64_contents=[v for row in tensor["data"] for v in row]),
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
