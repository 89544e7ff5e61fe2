"""The runtime's command line: our flags, on top of KServe's ModelServer flags.

    python -m serving --model URI --name NAME --port P [--grpc-port G] [--host H] [--workdir DIR] [--verbose]
        [KServe flags]

The parser extends ``kserve.model_server.parser``, as KServe's own
sklearnserver does, so KServe's flags (``--http_port``, ``--timeout-keep-alive``,
``--access_log_format``, ...) work here and reach ``ModelServer``. Ours keep the
spelling the predictor's local and docker targets, the image's CMD and the
ClusterServingRuntime use; two mean the same as KServe's and write the same
value: ``--name`` is ``--model_name``, ``--port`` is ``--http_port`` and
``--grpc-port`` is ``--grpc_port`` (8081, as KServe runtimes; 0 turns gRPC
off). Each of ours not given on the command line is read from
``FUSEML_SERVE_<FLAG>``.

Abbreviations are off: ``--model`` must never be taken for ``--model_name``.
One KServe default differs here: the per-request latency line follows
``--verbose``. ``--workers`` is ours (KServe's multi-worker path would drop
``--host`` and the fast lane): a number or ``auto``, served by
``serving.workers``.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Mapping, Sequence

from kserve import model_server

from common.errors import InputError
from common.inputs import Inputs
from common.names import input_variable
from serving.workers import worker_count

# Our flags are also inputs in the FuseML way: serve_model is FUSEML_SERVE_MODEL, and so on.
MODEL, NAME, PORT, GRPC_PORT, HOST, WORKDIR, VERBOSE, WORKERS = (
    "serve_model",
    "serve_name",
    "serve_port",
    "serve_grpc_port",
    "serve_host",
    "serve_workdir",
    "serve_verbose",
    "serve_workers",
)
ENV_PREFIX = input_variable("serve_")
DEFAULT_NAME = "model"
DEFAULT_PORT = 8080
DEFAULT_GRPC_PORT = 8081
DEFAULT_HOST = "0.0.0.0"


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The parser; defaults of our flags come from ``environ`` (InputError when a variable is malformed)."""
    inputs = Inputs(environ)
    # A copy: the defaults changed below must not leak into KServe's module-level parser.
    kserve_flags = copy.deepcopy(model_server.parser)
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve an MLflow model over the Open Inference Protocol (V2) with kserve.ModelServer.",
        parents=[kserve_flags],
        epilog="KServe's flags keep their meaning, but here --enable_latency_logging (None) follows --verbose, "
        "--grpc-port 0 turns gRPC off (as --enable_grpc false does), and --workers takes auto.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
        conflict_handler="resolve",  # our --workers replaces KServe's
    )
    ours = parser.add_argument_group(
        "the model and where to serve it", f"each also read from {ENV_PREFIX}<FLAG> ({input_variable(MODEL)}, ...)"
    )
    ours.add_argument(
        "--model", metavar="URI", help="model URI: a folder with MLmodel, file://, s3://, runs:/, models:/"
    )
    ours.add_argument(
        "--name", dest="model_name", metavar="NAME", help="model name in /v2/models/<name> (same as --model_name)"
    )
    ours.add_argument(
        "--port", dest="http_port", metavar="PORT", type=int, help="port to listen on (same as --http_port)"
    )
    ours.add_argument(
        "--grpc-port",
        dest="grpc_port",
        metavar="PORT",
        type=int,
        help="port of the OIP gRPC service; 0 turns it off (same as --grpc_port)",
    )
    ours.add_argument("--host", help="address to listen on (REST and gRPC)")
    ours.add_argument(
        "--workdir", metavar="DIR", help="where remote models are downloaded; a temporary folder when not given"
    )
    ours.add_argument("--verbose", action="store_true", help="debug logs and a line per request")
    ours.add_argument(
        "--workers",
        metavar="N",
        help="worker processes serving REST and gRPC; auto: the container's CPU limit, else the cores",
    )
    parser.set_defaults(
        model=inputs.str(MODEL, None),
        model_name=inputs.str(NAME, DEFAULT_NAME),
        http_port=inputs.int(PORT, DEFAULT_PORT, minimum=0),
        grpc_port=inputs.int(GRPC_PORT, DEFAULT_GRPC_PORT, minimum=0),
        host=inputs.str(HOST, DEFAULT_HOST),
        workdir=inputs.str(WORKDIR, None),
        verbose=inputs.bool(VERBOSE, False),
        workers=inputs.str(WORKERS, "1"),
        enable_latency_logging=None,  # None: as --verbose
    )
    return parser


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    """The parsed command line; exits 2 with a usage message when it is wrong, as argparse does."""
    try:
        parser = build_parser(environ)
    except InputError as e:
        argparse.ArgumentParser(prog="python -m serving").error(str(e))
    args = parser.parse_args(list(argv))
    if not args.model:
        parser.error(f"--model is required (or set {input_variable(MODEL)})")
    try:
        args.workers = worker_count(args.workers)
    except InputError as e:
        parser.error(str(e))
    args.enable_grpc = bool(args.enable_grpc) and args.grpc_port != 0
    if args.enable_grpc and args.grpc_port == args.http_port:
        parser.error(f"--grpc-port and --port are both {args.http_port}; give gRPC its own port, or 0 to turn it off")
    if args.enable_latency_logging is None:
        args.enable_latency_logging = args.verbose
    return args
