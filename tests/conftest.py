"""Fixtures live in tests/fixtures/, one module per kind of thing they provide."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator

import pytest


def _import_grpc_without_fork_support() -> None:
    """gRPC, for this process only, without its fork handlers.

    The serving tests load gRPC into this process, and with fork support on (its
    default) gRPC restarts its poller threads in every forked child. A child that
    runs Python before exec (``Popen``'s ``preexec_fn``: the venv builder's
    parent-death signal, the terminal tests' SIGINT) then aborts now and then
    with "epoll_wait error: Bad file descriptor" (1 to 4 in 300 spawns here; a
    rehearsal of CI lost a venv build to it). Nothing here uses gRPC across a fork. gRPC reads
    the variable when it is imported; it is removed again, so the steps and
    servers the tests start keep gRPC's defaults.
    """
    saved = os.environ.get("GRPC_ENABLE_FORK_SUPPORT")
    os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
    try:
        import grpc  # noqa: F401
    finally:
        if saved is None:
            del os.environ["GRPC_ENABLE_FORK_SUPPORT"]
        else:
            os.environ["GRPC_ENABLE_FORK_SUPPORT"] = saved


_import_grpc_without_fork_support()

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.models",
    "tests.fixtures.flavours",
    "tests.fixtures.fast_paths",
]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Import test modules without pytest's own arguments in ``sys.argv``.

    ``kserve.model_server`` parses ``sys.argv`` with argparse when it is first
    imported, and argparse takes abbreviations: pytest's ``--co`` reads as
    kserve's ``--configure_logging`` without a value and exits, so collecting
    any test module that imports kserve would end the whole session.
    """
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        return (yield)
    finally:
        sys.argv = argv
