"""Run ``kserve.ModelServer`` for one model: one worker, REST only, on the host and port given.

KServe binds ``0.0.0.0`` with no option to change it; the local target wants
``127.0.0.1`` (nothing else on the machine should reach a dev model), so
``_HostModelServer`` sets the host on the REST server's uvicorn config after
``ModelServer.start`` builds it and before it serves.

KServe logs a line per request (``kserve.trace`` timings, uvicorn access);
that costs latency and buries the story, so those loggers only speak in
verbose mode. A bad request (``InvalidInput``, a 400) is the client's problem:
it is logged as one warning line, not as an error with a traceback.

Plain V2 JSON infer requests take ``fast_lane.InferFastLane``, which wraps
KServe's app as the ASGI app uvicorn runs; everything else reaches KServe.
"""

from __future__ import annotations

import logging
import warnings

from kserve import Model, ModelServer
from kserve.errors import InvalidInput

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


class _HostModelServer(ModelServer):
    def __init__(self, host: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.host = host
        self.models: list[Model] = []

    def start(self, models: list[Model]) -> None:  # type: ignore[override]
        self.models = list(models)
        super().start(models)

    async def _serve(self) -> None:
        # ModelServer.start() made the REST server (config, not yet serving): bind our
        # host, and put the fast lane in front of KServe's app (which it still sets up).
        if self._rest_server is not None:
            from kserve.model_server import app

            from serving.fast_lane import InferFastLane
            from serving.model import MlflowModel

            ours = {m.name: m for m in self.models if isinstance(m, MlflowModel)}
            self._rest_server.config.host = self.host
            self._rest_server.config.app = InferFastLane(app, ours)
        await super()._serve()


def quiet_request_logs(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(level)
    logging.getLogger("kserve").addFilter(BadRequestsAsWarnings())
    # Said once per process by FastAPI about KServe's app; nothing we can act on.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")


def make_server(host: str, port: int, verbose: bool = False) -> ModelServer:
    """A ModelServer that will listen on ``host:port`` with one worker and no gRPC."""
    quiet_request_logs(verbose)
    return _HostModelServer(
        host,
        http_port=port,
        workers=1,
        enable_grpc=False,
        enable_docs_url=False,
        enable_latency_logging=verbose,
    )


def serve(model: Model, host: str, port: int, verbose: bool = False) -> None:
    """Serve ``model`` (already loaded) until SIGTERM/SIGINT."""
    server = make_server(host, port, verbose)
    log.info("serving model %r on http://%s:%s/v2/models/%s/infer", model.name, host, port, model.name)
    server.start([model])
