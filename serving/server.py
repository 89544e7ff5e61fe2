"""Run ``kserve.ModelServer`` for one model on the host, ports and KServe options given.

KServe binds ``0.0.0.0`` with no option to change it; the local target wants
``127.0.0.1`` (nothing else on the machine should reach a dev model). Plain
V2 JSON infer requests take ``fast_lane.InferFastLane``; what it passes on goes
through ``oip_rest.OipRest`` (answers made to fit the OIP REST schema) to
KServe's app. gRPC is ``grpc_server.GrpcServer``, on the same host, in the same
event loop, reaching the same model. All of it needs KServe internals, so
``internals.model_server`` makes the server (and says so when it must do
without them).

Both ports are checked (``check_port_free``) before the model loads, so a port already in use is
one ``serve: error: port N is in use`` line and exit 1, not uvicorn's or
gRPC's own failure. KServe logs a line per request (``kserve.trace`` timings,
uvicorn access); that costs latency and buries the story, so those loggers only
speak in verbose mode. A bad request (``InvalidInput``, a 400) or an unknown
model (``ModelNotFound``, a 404) is the client's problem: it is logged as one
warning line, not as an error with a traceback.
"""

from __future__ import annotations

import errno
import inspect
import logging
import socket
import warnings
from collections.abc import Mapping
from typing import Any

from kserve.errors import InvalidInput, ModelNotFound
from kserve.model_server import ModelServer

from common.errors import StepError
from serving.fast_lane import InferFastLane
from serving.grpc_server import GrpcServer, listen_address
from serving.internals import AsgiApp, model_server
from serving.model import MlflowModel
from serving.oip_rest import OipRest
from serving.workers import listening_socket, run_workers

log = logging.getLogger(__name__)

PER_REQUEST_LOGGERS = ("kserve.trace", "uvicorn.access")


class PortInUse(StepError):
    """A port the runtime should listen on is taken."""


class BadRequestsAsWarnings(logging.Filter):
    """KServe logs every InvalidInput and ModelNotFound with a traceback at ERROR; make each one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (InvalidInput, ModelNotFound)):
            what = "bad request" if isinstance(error, InvalidInput) else "unknown model"
            record.msg, record.args = f"{what}: %s", (error,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_request_logs(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(level)
    logging.getLogger("kserve").addFilter(BadRequestsAsWarnings())
    # Said once per process by FastAPI about KServe's app; nothing we can act on.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")


def server_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that ModelServer takes as keyword arguments: KServe's flags, by their names."""
    accepted = inspect.signature(ModelServer).parameters
    return {name: value for name, value in values.items() if name in accepted}


def make_server(
    model: MlflowModel, host: str, options: Mapping[str, Any], verbose: bool = False, fd: int | None = None
) -> ModelServer:
    """A ModelServer for ``model`` that will listen on ``host`` (or serve the socket ``fd``) with ``options``."""
    quiet_request_logs(verbose)
    models = {model.name: model}

    def with_fast_lane(app: AsgiApp) -> AsgiApp:
        return InferFastLane(OipRest(app, models), models)

    def grpc(server: ModelServer) -> GrpcServer:
        return GrpcServer(
            host, server.grpc_port, server.dataplane, server.model_repository_extension, models, options,
            grace_period=server.grace_period,
        )  # fmt: skip

    return model_server(host, with_fast_lane, grpc, fd, **{**options, "workers": 1})


def check_port_free(host: str, port: int, flag: str) -> None:
    """PortInUse when ``host:port`` cannot be bound now (as uvicorn and gRPC bind it: address reuse on)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host or "0.0.0.0", port))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise StepError(f"cannot listen on {host}:{port}: {e.strerror}", f"check --host and {flag}") from e
            raise PortInUse(
                f"port {port} is in use ({flag}, on {host})",
                f"stop what listens there (ss -ltnp 'sport = :{port}') or pick another {flag}",
            ) from e


def serve(model: MlflowModel, host: str, options: Mapping[str, Any], verbose: bool = False) -> int:
    """Serve ``model`` (already loaded) until SIGTERM/SIGINT, in ``options["workers"]`` processes; the exit code."""
    workers = int(options.get("workers") or 1)
    port = int(options.get("http_port") or 0)
    log.info("serving model %r on http://%s:%s/v2/models/%s/infer", model.name, host, port, model.name)
    if options.get("enable_grpc"):
        log.info("gRPC (Open Inference Protocol) on %s", listen_address(host, int(options.get("grpc_port") or 0)))
    if workers == 1:
        make_server(model, host, options, verbose).start([model])
        return 0
    try:
        listener = listening_socket(host, port)
    except OSError as e:
        raise PortInUse(f"port {port} is in use (--port, on {host}): {e.strerror}", "pick another --port") from e
    with listener:
        return run_workers(
            workers, lambda _index: make_server(model, host, options, verbose, fd=listener.fileno()).start([model])
        )
