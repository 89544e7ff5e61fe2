"""The Open Inference Protocol's gRPC half (``inference.GRPCInferenceService``), on the runtime's own host.

KServe's ``GRPCServer`` serves the service on ``[::]`` only, logs a line per
call, and answers model metadata with ``platform: ""`` and any model version
as if none was asked. This server reuses KServe's servicer (so gRPC reaches the
same ``DataPlane`` and ``MlflowModel`` code as REST), KServe's exception
interceptor (``InvalidInput`` -> ``INVALID_ARGUMENT``, ``ModelNotFound`` ->
``NOT_FOUND``, with the same messages REST sends), and KServe's generated
stubs, and changes only that: it listens on ``--host``, gives metadata from
``MlflowModel.metadata`` and answers a versioned request with ``NOT_FOUND``,
as REST does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent import futures
from typing import Any

from grpc import aio
from grpc_interceptor.exceptions import NotFound
from kserve.errors import ModelNotFound
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from serving.model import MlflowModel

log = logging.getLogger(__name__)

ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})


class MlflowServicer(InferenceServicer):
    """KServe's servicer, with our models' metadata and no model versions."""

    def __init__(
        self, data_plane: DataPlane, extension: ModelRepositoryExtension, models: Mapping[str, MlflowModel]
    ) -> None:
        super().__init__(data_plane, extension)
        self.models = dict(models)

    def _model(self, name: str, version: str) -> MlflowModel:
        model = self.models.get(name)
        if model is None:
            raise ModelNotFound(name)
        if version:
            raise NotFound(
                f"model '{name}' has no version '{version}': it is served without versions; leave model_version empty"
            )
        return model

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:  # noqa: N802 - the service's name
        return pb.ModelMetadataResponse(**self._model(request.name, request.version).metadata())

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:  # noqa: N802
        return pb.ModelReadyResponse(ready=self._model(request.name, request.version).ready)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:  # noqa: N802
        self._model(request.model_name, request.model_version)
        return await super().ModelInfer(request, context)


def listen_address(host: str, port: int) -> str:
    """``host:port`` as gRPC spells it: all interfaces as ``[::]``, IPv6 literals in brackets."""
    if host in ALL_INTERFACES:
        return f"[::]:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """The gRPC server beside the REST one, in the same event loop; ``stop`` as ``ModelServer.stop`` calls it."""

    def __init__(
        self,
        host: str,
        port: int,
        data_plane: DataPlane,
        extension: ModelRepositoryExtension,
        models: Mapping[str, MlflowModel],
        options: Mapping[str, Any],
        grace_period: int = 30,
    ) -> None:
        self.address = listen_address(host, port)
        self.servicer = MlflowServicer(data_plane, extension, models)
        self.max_threads = int(options.get("max_threads") or 4)
        # KServe's --grpc_max_send_message_length is gRPC's grpc.max_send_message_length, and so on.
        self.channel_options = [
            (name.replace("grpc_", "grpc.", 1), int(options[name]))
            for name in ("grpc_max_send_message_length", "grpc_max_receive_message_length")
            if options.get(name)
        ]
        self.grace_period = grace_period
        self._server: aio.Server | None = None

    async def start(self) -> None:
        server = aio.server(
            futures.ThreadPoolExecutor(max_workers=self.max_threads),
            interceptors=(ExceptionToStatusInterceptor(),),
            options=self.channel_options,
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(self.servicer, server)
        server.add_insecure_port(self.address)
        self._server = server
        await server.start()
        await server.wait_for_termination()

    async def stop(self, sig: int | None = None) -> None:
        if self._server is not None:
            await self._server.stop(grace=self.grace_period)
