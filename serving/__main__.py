"""Serve an MLflow model over the Open Inference Protocol (V2).

    python -m serving --model URI --name NAME --port P [--grpc-port G] [--host 127.0.0.1] [--workers N|auto]

``URI`` is a folder holding MLmodel (a local path, ``file://``, ``s3://`` with
``MLFLOW_S3_ENDPOINT_URL``/``AWS_*``, or an MLflow ``runs:/``/``models:/`` URI).
The same command is the serving image's entrypoint and the KServe runtime's
container (``--model /mnt/models --name {{.Name}}``); ``--help`` lists our flags
and KServe's (see ``cli``). Exit codes: 0 on a clean stop, 1 when the model
cannot be fetched or loaded or a port is in use (one line ``serve: error: ...``
on stderr says why),
2 on a wrong command line or a bug.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

if __name__ == "__main__":
    # Python's cycle collector is off from here until the model is loaded (see collect_from_now_on).
    gc.disable()
    # First of ours: KServe's server modules then import without its Kubernetes client (0.5 s of a cold start).
    import serving.internals  # noqa: F401

from common.errors import StepError
from common.logs import configure_logging, masker
from common.telemetry import disable_telemetry
from serving.cli import parse_args
from serving.loader import fetch_model
from serving.model import MlflowModel
from serving.server import check_port_free, serve, server_options

log = logging.getLogger("fuseml.serve")


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Load the model, then serve it until stopped; returns the exit code."""
    disable_telemetry(os.environ)
    args = parse_args(argv, environ)
    configure_logging(args.verbose or environ.get("FUSEML_VERBOSE") == "true", environ)
    started = time.monotonic()
    try:
        # Before the model loads: a taken port fails in a second, not after a download.
        check_port_free(args.host, args.http_port, "--port")
        if args.enable_grpc:
            check_port_free(args.host, args.grpc_port, "--grpc-port")
        workdir = Path(args.workdir) if args.workdir else None
        model = MlflowModel(args.model_name, fetch_model(args.model, environ, workdir), environ)
        model.load()
        collect_from_now_on()
        log.info("model %r loaded in %.2fs (%s)", args.model_name, time.monotonic() - started, model.loaded.flavor)
        return serve(model, args.host, server_options(vars(args)), verbose=args.verbose)
    except StepError as e:
        print(f"serve: error: {masker().mask(str(e))}", file=sys.stderr, flush=True)
        return e.exit_code
    except KeyboardInterrupt:
        return 0
    except Exception:  # noqa: BLE001 - a bug: show it all, exit apart from a model that cannot load
        log.exception("serve: internal error (a bug; please report it with this log)")
        return 2


def collect_from_now_on() -> None:
    """Turn the cycle collector back on, once the start-up that ran without it is over.

    Collecting over and over while KServe, scikit-learn, SciPy and skops import is about a
    twelfth of the time to ready (0.45 of 5.8 CPU seconds on the 2-core CI machine), for
    garbage that is not there. What the start made (modules, the model) is frozen first, so
    collections while serving, and forked workers, never walk it again. A no-op when the
    collector is on (``run`` called in a process that did not start as ``python -m serving``).
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def main() -> None:
    sys.exit(run(sys.argv[1:], os.environ))


if __name__ == "__main__":
    main()
