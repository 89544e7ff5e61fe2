"""Run ``kserve.ModelServer`` for one model: one worker, REST only, on the host and port given.

KServe binds ``0.0.0.0`` with no option to change it; the local target wants
``127.0.0.1`` (nothing else on the machine should reach a dev model), so
``_HostModelServer`` sets the host on the REST server's uvicorn config after
``ModelServer.start`` builds it and before it serves.

KServe logs a line per request (``kserve.trace`` timings, uvicorn access);
that costs latency and buries the story, so those loggers only speak in
verbose mode. A bad request (``InvalidInput``, a 400) is the client's problem:
it is logged as one warning line, not as an error with a traceback.

``curl -d`` and many small clients send a V2 JSON body with no content type
(or ``x-www-form-urlencoded``); KServe then takes it for the binary tensor
extension and answers a puzzling 400. ``JsonByDefault`` reads such bodies as
the JSON they are, unless the binary extension's header is present.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from kserve import Model, ModelServer
from kserve.errors import InvalidInput

log = logging.getLogger(__name__)

PER_REQUEST_LOGGERS = ("kserve.trace", "uvicorn.access")
BINARY_HEADER = b"inference-header-content-length"
NOT_JSON = (b"", b"application/x-www-form-urlencoded", b"text/plain")


class JsonByDefault:
    """ASGI middleware: an infer POST without a JSON content type is read as JSON (see module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/infer"):
            headers = scope["headers"]
            content_type = b""
            for key, value in headers:
                if key == BINARY_HEADER:
                    break
                if key == b"content-type":
                    content_type = value.split(b";")[0].strip().lower()
            else:
                if content_type in NOT_JSON:
                    scope = dict(scope)
                    scope["headers"] = [(k, v) for k, v in headers if k != b"content-type"]
                    scope["headers"].append((b"content-type", b"application/json"))
        await self.app(scope, receive, send)


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

    async def _serve(self) -> None:
        # ModelServer.start() made the REST server but has not started it yet.
        if self._rest_server is not None:
            self._rest_server.config.host = self.host
        from kserve.model_server import app

        app.add_middleware(JsonByDefault)
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
