"""Leaving the process as soon as the step is done, without Python's interpreter teardown.

With MLflow (and through it pandas, pydantic, SQLAlchemy) loaded, Python spends
about half a second after the step's last line freeing its modules one by one:
time added to every pipeline run, for nothing the step owes anyone. By then the
result is written, and the exit handlers (MLflow's, temporary folders',
logging's) still run as usual: only the freeing after them is skipped, with
``os._exit`` and the same exit code.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def teardown_skipped() -> Iterator[None]:
    """Around a ``main`` that ends in ``sys.exit(code)``: exit with that code after the exit handlers.

    Enter it before the step imports its libraries: exit handlers run newest first, so every handler
    registered inside the block (MLflow's among them) still runs before ours. Logging's, registered
    earlier, is called here. A ``SystemExit`` without an integer code, or any other exception, keeps
    Python's usual exit.
    """
    code: list[int] = []

    def leave() -> None:
        if not code:
            return
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code[0])

    atexit.register(leave)
    try:
        yield
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code.append(done.code or 0)
        raise
