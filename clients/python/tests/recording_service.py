"""An in-process WebSocketManager service that records what the client sends.

It answers every RPC with a response derived from the request, or with the error that a test
configured, so that the unit tests see exactly which RPC the client called with which request,
metadata and deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio

from virtufin.websocketmanager import websocketmanager_pb2 as pb
from virtufin.websocketmanager import websocketmanager_pb2_grpc as pb_grpc


@dataclass
class RecordedCall:
    method: str
    request: Any
    metadata: dict[str, str]
    time_remaining: float | None


@dataclass
class RecordingService(pb_grpc.WebSocketManagerServicer):  # type: ignore[misc]  # untyped base
    calls: list[RecordedCall] = field(default_factory=list)
    #: method name -> (status code, details) to fail that method with.
    errors: dict[str, tuple[grpc.StatusCode, str]] = field(default_factory=dict)
    #: events the Subscribe stream yields before it waits for cancellation.
    events: list[pb.SubscribeResponse] = field(default_factory=list)
    #: when False, Subscribe ends the stream after its events instead of waiting.
    subscribe_waits: bool = True
    #: set when a Subscribe stream has been cancelled by the client.
    subscribe_cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def _record(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        metadata = {item.key: item.value for item in context.invocation_metadata() or ()}
        self.calls.append(RecordedCall(method, request, metadata, context.time_remaining()))
        if method in self.errors:
            code, details = self.errors[method]
            await context.abort(code, details)

    async def wait_calls(self, count: int, timeout_s: float = 5.0) -> None:
        """Waits until at least `count` calls have arrived."""

        async def arrived() -> None:
            while len(self.calls) < count:
                await asyncio.sleep(0.005)

        await asyncio.wait_for(arrived(), timeout_s)

    def only(self, method: str) -> RecordedCall:
        """The one recorded call; fails unless exactly one call of `method` was made."""
        assert [call.method for call in self.calls] == [method]
        return self.calls[0]

    async def Connect(self, request: pb.ConnectRequest, context: grpc.aio.ServicerContext) -> pb.ConnectResponse:
        await self._record("Connect", request, context)
        return pb.ConnectResponse(id=f"id-for:{request.url}", status="connected")

    async def List(self, request: pb.ListRequest, context: grpc.aio.ServicerContext) -> pb.ListResponse:
        await self._record("List", request, context)
        return pb.ListResponse(
            connections=[
                pb.WebSocketConnection(
                    id=f"conn-{index}", url="ws://upstream", status="connected", tags={f.key: f.value}
                )
                for index, f in enumerate(request.filters)
            ]
        )

    async def Disconnect(self, request: pb.DisconnectRequest, context: grpc.aio.ServicerContext) -> pb.DisconnectResponse:
        await self._record("Disconnect", request, context)
        return pb.DisconnectResponse()

    async def StartPublish(
        self, request: pb.StartPublishRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartPublishResponse:
        await self._record("StartPublish", request, context)
        return pb.StartPublishResponse()

    async def StopPublish(
        self, request: pb.StopPublishRequest, context: grpc.aio.ServicerContext
    ) -> pb.StopPublishResponse:
        await self._record("StopPublish", request, context)
        return pb.StopPublishResponse()

    async def Send(self, request: pb.SendRequest, context: grpc.aio.ServicerContext) -> pb.SendResponse:
        await self._record("Send", request, context)
        return pb.SendResponse(response=f"reply:{request.message}", content_type="application/json")

    async def SendRaw(self, request: pb.SendRawRequest, context: grpc.aio.ServicerContext) -> pb.SendRawResponse:
        await self._record("SendRaw", request, context)
        return pb.SendRawResponse()

    async def SetTag(self, request: pb.SetTagRequest, context: grpc.aio.ServicerContext) -> pb.SetTagResponse:
        await self._record("SetTag", request, context)
        return pb.SetTagResponse()

    async def GetTag(self, request: pb.GetTagRequest, context: grpc.aio.ServicerContext) -> pb.GetTagResponse:
        await self._record("GetTag", request, context)
        return pb.GetTagResponse(value=f"value-of:{request.key}")

    async def SetTags(self, request: pb.SetTagsRequest, context: grpc.aio.ServicerContext) -> pb.SetTagsResponse:
        await self._record("SetTags", request, context)
        return pb.SetTagsResponse()

    async def GetTags(self, request: pb.GetTagsRequest, context: grpc.aio.ServicerContext) -> pb.GetTagsResponse:
        await self._record("GetTags", request, context)
        return pb.GetTagsResponse(tags={"owner": request.id})

    async def Reconnect(self, request: pb.ReconnectRequest, context: grpc.aio.ServicerContext) -> pb.ReconnectResponse:
        await self._record("Reconnect", request, context)
        return pb.ReconnectResponse(id=request.id, status="connected")

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SubscribeResponse]:
        await self._record("Subscribe", request, context)
        for event in self.events:
            yield event
        if not self.subscribe_waits:
            return
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.subscribe_cancelled.set()
            raise


async def start_server(service: RecordingService) -> tuple[grpc.aio.Server, int]:
    """Starts `service` on a free loopback port; returns the server and the port."""
    server = grpc.aio.server()
    pb_grpc.add_WebSocketManagerServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port
