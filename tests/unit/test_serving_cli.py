"""The runtime's command line: our flags as the targets, image and KServe runtime pass them, KServe's flags
reaching ModelServer, the FUSEML_SERVE_* fallbacks, and the exit codes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kserve import model_server

import serving.__main__ as entrypoint
from common.ports import free_port
from serving.cli import parse_args
from serving.model import MlflowModel
from serving.server import make_server, server_options
from serving.workers import worker_count

ROOT = Path(__file__).resolve().parents[2]
TARGET_ARGS = ["--model", "/m", "--name", "wine", "--port", "9000", "--host", "127.0.0.1"]


def test_our_flags_as_the_targets_pass_them() -> None:
    args = parse_args(TARGET_ARGS, {})
    assert (args.model, args.model_name, args.http_port, args.host) == ("/m", "wine", 9000, "127.0.0.1")
    assert (args.workdir, args.verbose) == (None, False)
    options = server_options(vars(args))
    assert options["http_port"] == 9000 and options["workers"] == 1
    assert options["enable_grpc"] is True and options["grpc_port"] == 8081, "gRPC on KServe's port unless told"
    assert options["enable_latency_logging"] is False
    assert not {"model", "model_name", "host", "workdir", "verbose"} & set(options)


def test_defaults_and_the_image_cmd() -> None:
    args = parse_args(["--model", "/mnt/models"], {})
    assert (args.model_name, args.http_port, args.host) == ("model", 8080, "0.0.0.0")
    assert (args.grpc_port, args.enable_grpc) == (8081, True)


@pytest.mark.parametrize(
    ("argv", "environ", "port", "enabled"),
    [
        (["--grpc-port", "9001"], {}, 9001, True),
        (["--grpc_port", "9002"], {}, 9002, True),
        (["--grpc-port", "0"], {}, 0, False),
        ([], {"FUSEML_SERVE_GRPC_PORT": "9003"}, 9003, True),
        (["--grpc-port", "9004"], {"FUSEML_SERVE_GRPC_PORT": "9003"}, 9004, True),
        (["--enable_grpc", "false"], {}, 8081, False),
    ],
    ids=["ours", "kserve-spelling", "zero-turns-it-off", "environment", "flag-wins", "kserve-switch"],
)
def test_grpc_port(argv: list[str], environ: dict[str, str], port: int, enabled: bool) -> None:
    args = parse_args(["--model", "/m", *argv], environ)
    assert (args.grpc_port, args.enable_grpc) == (port, enabled)
    assert server_options(vars(args))["enable_grpc"] is enabled


def test_model_is_never_read_as_model_name() -> None:
    args = parse_args(["--model_name", "kserve-style", "--model", "/m"], {})
    assert (args.model, args.model_name) == ("/m", "kserve-style")
    with pytest.raises(SystemExit) as exited:
        parse_args(["--mod", "/m"], {})  # no abbreviations
    assert exited.value.code == 2


def test_kserve_flags_reach_model_server_options() -> None:
    args = parse_args(
        ["--model", "/m", "--http_port", "9100", "--timeout-keep-alive", "5", "--enable_grpc", "true",
         "--grpc_port", "9101", "--event-loop", "asyncio"],
        {},
    )  # fmt: skip
    options = server_options(vars(args))
    assert options["http_port"] == 9100 and options["timeout_keep_alive"] == 5 and options["event_loop"] == "asyncio"
    assert options["enable_grpc"] is True and options["grpc_port"] == 9101


def test_latency_log_follows_verbose_unless_given() -> None:
    assert parse_args(["--model", "/m", "--verbose"], {}).enable_latency_logging is True
    given = parse_args(["--model", "/m", "--verbose", "--enable_latency_logging", "false"], {})
    assert given.enable_latency_logging is False


def test_environment_fallbacks_and_flags_win() -> None:
    environ = {
        "FUSEML_SERVE_MODEL": "s3://b/m",
        "FUSEML_SERVE_NAME": "env-name",
        "FUSEML_SERVE_PORT": "9200",
        "FUSEML_SERVE_HOST": "127.0.0.1",
        "FUSEML_SERVE_WORKDIR": "/tmp/w",
        "FUSEML_SERVE_VERBOSE": "true",
    }
    args = parse_args([], environ)
    assert (args.model, args.model_name, args.http_port, args.host) == ("s3://b/m", "env-name", 9200, "127.0.0.1")
    assert (args.workdir, args.verbose) == ("/tmp/w", True)
    args = parse_args(["--model", "/m", "--name", "flag-name", "--http_port", "9300"], environ)
    assert (args.model, args.model_name, args.http_port) == ("/m", "flag-name", 9300)


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        ([], {}, "--model is required (or set FUSEML_SERVE_MODEL)"),
        (["--model", "/m", "--workers", "0"], {}, "--workers '0' is not valid"),
        (["--model", "/m", "--workers", "many"], {}, "--workers 'many' is not valid"),
        (["--model", "/m", "--port", "9000", "--grpc-port", "9000"], {}, "--grpc-port and --port are both 9000"),
        (["--model", "/m"], {"FUSEML_SERVE_PORT": "eighty"}, 'FUSEML_SERVE_PORT="eighty" is not valid'),
        (["--model", "/m"], {"FUSEML_SERVE_VERBOSE": "maybe"}, 'FUSEML_SERVE_VERBOSE="maybe" is not valid'),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv, environ)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_kserve_parser_is_left_as_kserve_made_it() -> None:
    parse_args(TARGET_ARGS, {"FUSEML_SERVE_PORT": "9400"})
    assert model_server.parser.get_default("enable_grpc") is True
    assert model_server.parser.get_default("grpc_port") == 8081
    assert model_server.parser.get_default("http_port") == 8080
    assert model_server.parser.get_default("model_name") == "model"


def test_help_lists_our_flags_and_kserves() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serving", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for flag in ("--model URI", "--name NAME", "--port PORT", "--grpc-port PORT", "--host HOST", "--workdir DIR",
                 "--verbose"):  # fmt: skip
        assert flag in done.stdout
    assert "--http_port" in done.stdout and "--timeout-keep-alive" in done.stdout


def test_model_server_gets_the_values() -> None:
    args = parse_args([*TARGET_ARGS, "--timeout-keep-alive", "7", "--verbose"], {})
    server = make_server(MlflowModel("wine", Path("/m")), args.host, server_options(vars(args)), verbose=True)
    assert (server.http_port, server.grpc_port, server.workers) == (9000, 8081, 1)
    # gRPC is ours (on --host), not KServe's (on [::] only): KServe's own switch stays off.
    assert (server.enable_grpc, server.grpc_wanted) == (False, True)
    assert (server.timeout_keep_alive, server.enable_latency_logging) == (7, True)


# -- exit codes ---------------------------------------------------------------------------------


@pytest.fixture
def quiet_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """run() configures the root logger for a process of its own; in pytest that would take over its handlers."""
    monkeypatch.setattr(entrypoint, "configure_logging", lambda verbose, environ: None)


def test_exit_0_on_a_clean_stop(quiet_logging: None, monkeypatch: pytest.MonkeyPatch, wine_model_dir: Path) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(entrypoint, "serve", lambda model, host, options, verbose: served.update(model=model) or 0)
    assert entrypoint.run(["--model", str(wine_model_dir), "--name", "wine"], {}) == 0
    assert served["model"].ready and served["model"].name == "wine"


def test_exit_0_on_interrupt(quiet_logging: None, monkeypatch: pytest.MonkeyPatch, wine_model_dir: Path) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(entrypoint, "serve", interrupted)
    assert entrypoint.run(["--model", str(wine_model_dir)], {}) == 0


def test_exit_1_with_one_line_when_the_model_cannot_load(
    quiet_logging: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "MLmodel").write_text("flavors: [unclosed")
    assert entrypoint.run(["--model", str(tmp_path)], {}) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("serve: error: ") and "not valid YAML" in line


def test_exit_2_on_a_bug(
    quiet_logging: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(entrypoint, "fetch_model", broken)
    assert entrypoint.run(["--model", "/m"], {}) == 2
    assert "internal error" in caplog.text and "RuntimeError: a bug" in caplog.text


@pytest.mark.parametrize("taken", ["--port", "--grpc-port"])
def test_exit_1_with_one_line_when_a_port_is_in_use(
    quiet_logging: None, taken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        other = free_port(with_grpc=False)
        ports = {"--port": other, "--grpc-port": other}
        ports[taken] = busy
        argv = ["--model", "/nowhere", "--host", "127.0.0.1", *(f"{k}={v}" for k, v in ports.items())]
        assert entrypoint.run(argv, {}) == 1, "checked before the model is looked for"
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"serve: error: port {busy} is in use ({taken}, on 127.0.0.1); ")


@pytest.mark.parametrize(
    ("argv", "environ", "workers"),
    [
        ([], {}, 1),
        (["--workers", "3"], {}, 3),
        ([], {"FUSEML_SERVE_WORKERS": "2"}, 2),
        (["--workers", "4"], {"FUSEML_SERVE_WORKERS": "2"}, 4),
    ],
)
def test_workers(argv: list[str], environ: dict[str, str], workers: int) -> None:
    args = parse_args(["--model", "/m", *argv], environ)
    assert args.workers == workers
    server = make_server(MlflowModel("wine", Path("/m")), args.host, server_options(vars(args)))
    assert server.workers == 1, "every worker is a one-process ModelServer of ours, never KServe's multiprocess path"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "100000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ({}, None),
    ],
    ids=["v2-half-a-cpu", "v2-one-cpu", "v2-no-limit", "v1-one-cpu", "v1-no-limit", "no-cgroup"],
)
def test_auto_workers_follow_the_cpu_limit(tmp_path: Path, files: dict[str, str], expected: int | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cores = len(os.sched_getaffinity(0))
    assert worker_count("auto", tmp_path) == (expected if expected is not None else cores)
    assert worker_count("2", tmp_path) == 2
