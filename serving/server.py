"""Run ``kserve.ModelServer`` for one model on the host, port and KServe options given.

KServe binds ``0.0.0.0`` with no option to change it; the local target wants
``127.0.0.1`` (nothing else on the machine should reach a dev model). Plain
V2 JSON infer requests take ``fast_lane.InferFastLane``, which wraps KServe's
app as the ASGI app uvicorn runs; everything else reaches KServe. Both need
KServe internals, so ``internals.model_server`` makes the server (and says so
when it must do without them).

KServe logs a line per request (``kserve.trace`` timings, uvicorn access);
that costs latency and buries the story, so those loggers only speak in
verbose mode. A bad request (``InvalidInput``, a 400) is the client's problem:
it is logged as one warning line, not as an error with a traceback.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Mapping
from typing import Any

from kserve import ModelServer
from kserve.errors import InvalidInput

from serving.fast_lane import InferFastLane
from serving.internals import AsgiApp, model_server
from serving.model import MlflowModel

log = logging.getLogger(__name__)

PER_REQUEST_LOGGERS = ("kserve.trace", "uvicorn.access")


class BadRequestsAsWarnings(logging.Filter):
    """KServe logs every InvalidInput with a traceback at ERROR; make it one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, InvalidInput):
            record.msg, record.args = "bad request: %s", (error,)
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


def make_server(model: MlflowModel, host: str, options: Mapping[str, Any], verbose: bool = False) -> ModelServer:
    """A ModelServer for ``model`` that will listen on ``host`` with ``options`` (``http_port``, ``workers``, ...)."""
    quiet_request_logs(verbose)

    def with_fast_lane(app: AsgiApp) -> AsgiApp:
        return InferFastLane(app, {model.name: model})

    return model_server(host, with_fast_lane, **options)


def serve(model: MlflowModel, host: str, options: Mapping[str, Any], verbose: bool = False) -> None:
    """Serve ``model`` (already loaded) until SIGTERM/SIGINT."""
    server = make_server(model, host, options, verbose)
    log.info("serving model %r on http://%s:%s/v2/models/%s/infer", model.name, host, server.http_port, model.name)
    server.start([model])
