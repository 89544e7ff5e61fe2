"""Marking the MLflow run at the end is best effort: a failing step keeps its own error."""

from __future__ import annotations

import logging

import pytest
from mlflow.exceptions import MlflowException

from steps.trainer.step import _mark_run


class _ServerGone:
    """An MlflowClient whose server stopped answering, as the client reports it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def set_terminated(self, run_id: str, status: str) -> None:
        self.calls.append((run_id, status))
        raise MlflowException("API request to http://127.0.0.1:5000/api/2.0/mlflow/runs/update failed\nMax retries")


def test_a_tracking_server_that_is_gone_is_a_warning_not_a_second_error(caplog: pytest.LogCaptureFixture) -> None:
    client = _ServerGone()
    with caplog.at_level(logging.WARNING):
        _mark_run(client, "abc123", "FAILED")
    assert client.calls == [("abc123", "FAILED")]
    assert "could not mark MLflow run abc123 FAILED: API request to" in caplog.text
    assert "Max retries" not in caplog.text, "one line, not the client's whole message"
