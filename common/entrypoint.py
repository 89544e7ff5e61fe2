"""The wrapper every step's ``main`` runs in: configure, run, report, exit.

A step function takes the environment mapping, does its work and returns the
result value. The wrapper writes that value as the step result (only then, and
atomically), logs a one-line summary, and maps a ``StepError`` to a one-line
message and exit code 1. Any other exception is a bug: exit 2 with a traceback.

``main`` (the process entry) also routes descriptors 1 and 2 through the
masking stream (common/masked_output.py), so nothing the step or its children
write escapes masking, and turns SIGTERM into ``Terminated``: the step's
cleanup runs (children stopped, an MLflow run marked KILLED) and it exits 143.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping

from common.errors import StepError
from common.inputs import Inputs
from common.logs import configure_logging, masker
from common.masked_output import masked_output
from common.results import check_result_folder, write_result
from common.step_help import StepDoc, parse_step_arguments
from common.telemetry import disable_telemetry

log = logging.getLogger("fuseml")

StepFunction = Callable[[Mapping[str, str]], str]

EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every ``finally`` and cleanup on the way runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def run_step(step: str, function: StepFunction, environ: Mapping[str, str] | None = None) -> int:
    """Run ``function`` as step ``step`` and return the process exit code."""
    environ = dict(os.environ if environ is None else environ)
    disable_telemetry(environ, os.environ)
    started = time.monotonic()
    try:
        verbose = Inputs(environ).bool("verbose", False)
    except StepError as e:
        verbose = False
        configure_logging(verbose, environ)
        return _fail(step, e)
    configure_logging(verbose, environ)
    try:
        check_result_folder(environ)
        value = function(environ)
        path = write_result(value, environ)
    except StepError as e:
        return _fail(step, e)
    except Terminated:
        log.error("%s: terminated", step)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        log.error("%s: interrupted", step)
        return 130
    except Exception:  # noqa: BLE001 - a bug: show it all, exit apart from user errors
        log.exception("%s: internal error (a bug; please report it with this log)", step)
        return 2
    where = f" (result in {path})" if path else ""
    log.info("%s: done in %.1fs: %s%s", step, time.monotonic() - started, value, where)
    return 0


def main(step: str, function: StepFunction, doc: StepDoc | None = None) -> None:
    """Entrypoint helper for ``__main__`` modules: ``--help`` documents the step (``doc``), else it runs."""
    if doc is not None:
        parse_step_arguments(doc, sys.argv[1:])
    signal.signal(signal.SIGTERM, _raise_terminated)
    with masked_output(masker()):
        code = run_step(step, function)
    sys.exit(code)


def _fail(step: str, error: StepError) -> int:
    message = masker().mask(str(error))
    print(f"{step}: error: {message}", file=sys.stderr, flush=True)
    return error.exit_code
