"""``fuseml-steps apps``: listing what the predictor runs on this machine, and stopping it by name."""

from __future__ import annotations

import signal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from common.errors import InputError, ServiceUnavailable
from runner.apps import apps
from steps.predictor.state import AppState, StateStore
from steps.predictor.targets import docker as docker_target
from tests.unit.test_predictor_core_and_state import fake_server, finished_pid, gone, local_record


@click.group()
def cli() -> None:
    """Stands in for ``runner.cli.cli``, which registers ``apps`` the same way."""


cli.add_command(apps)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["apps", *args], env=env)


def table(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()]


def test_an_empty_state_folder_lists_only_the_header(tmp_path: Path) -> None:
    result = invoke("--state-dir", str(tmp_path / "nothing-yet"))
    assert result.exit_code == 0, result.output
    assert table(result.output) == [["NAME", "TARGET", "URL", "GRPC", "MODEL", "STARTED", "ALIVE"]]


def test_lists_each_app_with_whether_it_still_runs_then_stops_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_engine() -> None:
        raise ServiceUnavailable("no Docker engine answers")

    monkeypatch.setattr(docker_target, "docker_client", no_engine)
    state = tmp_path / "state"
    store = StateStore(state)
    with fake_server(tmp_path) as (server, worker):
        store.save(local_record(server.pid, "wine"))
        store.save(local_record(finished_pid(), "old-wine"))
        store.save(AppState("boxed", "docker", 9090, "http://127.0.0.1:9090/v2/models/boxed/infer", "/m",
                            container="c0ffee", started_at=1_700_000_000.0, grpc="127.0.0.1:9091"))  # fmt: skip

        listed = invoke("--state-dir", str(state))
        assert listed.exit_code == 0, listed.output
        rows = {row[0]: row for row in table(listed.output)[1:]}
        assert list(rows) == ["boxed", "old-wine", "wine"]
        assert rows["wine"] == [
            "wine", "local", "http://127.0.0.1:8080/v2/models/wine/infer", "-", "s3://b/m", "-", "yes"
        ], "a record without a gRPC address (made before it existed) shows -"  # fmt: skip
        assert rows["old-wine"][-1] == "no"
        assert rows["boxed"][1:5] == ["docker", "http://127.0.0.1:9090/v2/models/boxed/infer", "127.0.0.1:9091", "/m"]
        assert rows["boxed"][-1] == "unknown", "no engine answers: we cannot tell"
        assert len(rows["boxed"]) == 8, "STARTED is a date and a time"

        stopped = invoke("stop", "wine", "--state-dir", str(state))
        assert stopped.exit_code == 0, stopped.output
        assert stopped.output == "wine: stopped\n"
        assert server.wait(timeout=30) == -signal.SIGTERM and gone(worker)
    assert [s.app for s in store.apps()] == ["boxed", "old-wine"]


def test_stopping_an_unknown_app_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    result = invoke("stop", "wine", "--state-dir", str(tmp_path))
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert f"no app wine is recorded in {tmp_path}" in str(result.exception)
    assert "`fuseml-steps apps`" in str(result.exception)


def test_a_name_that_is_no_dns_label_never_reaches_the_file_system(tmp_path: Path) -> None:
    outside = StateStore(tmp_path)
    outside.save(local_record(finished_pid(), "victim"))
    result = invoke("stop", "../victim", "--state-dir", str(tmp_path / "state"))
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError) and "not an application name" in str(result.exception)
    assert outside.load("victim") is not None


def test_the_state_folder_is_the_predictors_own(tmp_path: Path) -> None:
    """FUSEML_STATE_DIR as the step reads it, else the step's default under XDG_CACHE_HOME."""
    StateStore(tmp_path / "chosen").save(local_record(finished_pid(), "chosen"))
    StateStore(tmp_path / "cache" / "fuseml-steps" / "predictor").save(local_record(finished_pid(), "cached"))

    chosen = invoke(env={"FUSEML_STATE_DIR": str(tmp_path / "chosen"), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert [row[0] for row in table(chosen.output)[1:]] == ["chosen"]
    by_default = invoke(env={"FUSEML_STATE_DIR": None, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert [row[0] for row in table(by_default.output)[1:]] == ["cached"]
    stopped = invoke("stop", "cached", env={"FUSEML_STATE_DIR": None, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert stopped.exit_code == 0 and stopped.output == "cached: stopped\n"
