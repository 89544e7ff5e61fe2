"""Fixtures live in tests/fixtures/, one module per kind of thing they provide."""

from __future__ import annotations

import sys
from collections.abc import Generator

import pytest

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
