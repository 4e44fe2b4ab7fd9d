"""Unit tests of WebSocketManagerClient against an in-process gRPC service that records calls."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from recording_service import RecordingService, start_server
from virtufin.websocketmanager import (
    CORRELATION_MODE_JSON_FIELD,
    CORRELATION_MODE_UUID_PREFIX,
    DEFAULT_SEND_TIMEOUT_MS,
    HeartbeatPolicy,
    OutboundMessage,
    ReconnectPolicy,
    TagFilter,
    WebSocketManagerClient,
)
from virtufin.websocketmanager import websocketmanager_pb2 as pb
from virtufin.websocketmanager.client import SEND_DEADLINE_MARGIN_S, _target


@pytest.fixture
async def service() -> AsyncIterator[RecordingService]:
    yield RecordingService()


@pytest.fixture
async def port(service: RecordingService) -> AsyncIterator[int]:
    server, port = await start_server(service)
    yield port
    await server.stop(None)


@pytest.fixture
async def client(port: int) -> AsyncIterator[WebSocketManagerClient]:
    client = WebSocketManagerClient("127.0.0.1", port)
    yield client
    await client.close()


# Each method with the RPC it must call and the request it must send.
CASES: list[tuple[str, Callable[[WebSocketManagerClient], Awaitable[Any]], Any]] = [
    ("Connect", lambda c: c.connect("ws://a"), pb.ConnectRequest(url="ws://a")),
    ("List", lambda c: c.list(), pb.ListRequest()),
    ("Disconnect", lambda c: c.disconnect("c1"), pb.DisconnectRequest(id="c1")),
    ("StartPublish", lambda c: c.start_publish("c1", "ws-events"), pb.StartPublishRequest(id="c1", topic="ws-events")),
    ("StopPublish", lambda c: c.stop_publish("c1"), pb.StopPublishRequest(id="c1")),
    ("Send", lambda c: c.send("c1", '{"a": 1}'), pb.SendRequest(id="c1", message='{"a": 1}', timeout_ms=5000)),
    ("SendRaw", lambda c: c.send_raw("c1", '{"type": "notification"}'),
     pb.SendRawRequest(id="c1", message='{"type": "notification"}')),
    ("SetTag", lambda c: c.set_tag("c1", "k", "v"), pb.SetTagRequest(id="c1", key="k", value="v")),
    ("GetTag", lambda c: c.get_tag("c1", "k"), pb.GetTagRequest(id="c1", key="k")),
    ("SetTags", lambda c: c.set_tags("c1", {"a": "1", "b": "2"}), pb.SetTagsRequest(id="c1", tags={"a": "1", "b": "2"})),
    ("GetTags", lambda c: c.get_tags("c1"), pb.GetTagsRequest(id="c1")),
    ("Reconnect", lambda c: c.reconnect("c1"), pb.ReconnectRequest(id="c1")),
]


@pytest.mark.parametrize(("method", "call", "expected"), CASES, ids=[case[0] for case in CASES])
async def test_each_method_calls_its_rpc_with_the_right_request(
    client: WebSocketManagerClient, service: RecordingService, method: str, call: Any, expected: Any
) -> None:
    await call(client)
    recorded = service.only(method)
    assert recorded.request == expected


@pytest.mark.parametrize(("method", "call", "expected"), CASES, ids=[case[0] for case in CASES])
@pytest.mark.parametrize(
    "code", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE]
)
async def test_errors_propagate_unchanged(
    client: WebSocketManagerClient,
    service: RecordingService,
    method: str,
    call: Any,
    expected: Any,
    code: grpc.StatusCode,
) -> None:
    service.errors[method] = (code, f"{method} failed on purpose")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(client)
    assert type(raised.value) is grpc.aio.AioRpcError
    assert raised.value.code() == code
    assert raised.value.details() == f"{method} failed on purpose"


async def test_responses_are_the_service_messages(client: WebSocketManagerClient) -> None:
    connected = await client.connect("ws://upstream/feed", auto_reconnect=True)
    assert isinstance(connected, pb.ConnectResponse)
    assert (connected.id, connected.status) == ("id-for:ws://upstream/feed", "connected")
    sent = await client.send("c1", '{"type": "ping"}')
    assert isinstance(sent, pb.SendResponse)
    assert sent.response == 'reply:{"type": "ping"}'
    assert sent.content_type == "application/json"
    assert (await client.get_tag("c1", "desk")).value == "value-of:desk"
    assert dict((await client.get_tags("c1")).tags) == {"owner": "c1"}
    reconnected = await client.reconnect("c9")
    assert (reconnected.id, reconnected.status) == ("c9", "connected")


async def test_connect_auto_reconnect_positional_and_keyword(
    client: WebSocketManagerClient, service: RecordingService
) -> None:
    await client.connect("wss://a", True)
    await client.connect("wss://b", auto_reconnect=False)
    await client.connect("wss://c", auto_reconnect=True)
    assert [(c.request.url, c.request.auto_reconnect) for c in service.calls] == [
        ("wss://a", True),
        ("wss://b", False),
        ("wss://c", True),
    ]


async def test_connect_leaves_unset_options_unset(client: WebSocketManagerClient, service: RecordingService) -> None:
    await client.connect("wss://a")
    request = service.only("Connect").request
    for name in ("reconnect", "heartbeat", "correlation"):
        assert not request.HasField(name)
    assert request == pb.ConnectRequest(url="wss://a")


async def test_connect_options(client: WebSocketManagerClient, service: RecordingService) -> None:
    await client.connect(
        "wss://exchange/ws",
        auto_reconnect=True,
        tags={"desk": "fx"},
        headers={"X-Api-Key": "k"},
        subprotocols=["v2", "v1"],
        on_open=['{"op": "subscribe"}', b"\x00\x01", OutboundMessage(message="hi", content_type="text/plain")],
        reconnect={"base_delay_ms": 100, "max_attempts": 3},
        heartbeat=HeartbeatPolicy(ping_interval_ms=0, stale_timeout_ms=30_000),
        correlation_mode="uuid_prefix",
        correlation_field="req_id",
        topic="md.btc",
        handshake_timeout_ms=2500,
        publish_unordered=True,
    )
    expected = pb.ConnectRequest(
        url="wss://exchange/ws",
        auto_reconnect=True,
        tags={"desk": "fx"},
        headers={"X-Api-Key": "k"},
        subprotocols=["v2", "v1"],
        on_open=[
            OutboundMessage(message='{"op": "subscribe"}'),
            OutboundMessage(message="AAE=", content_type="application/octet-stream"),
            OutboundMessage(message="hi", content_type="text/plain"),
        ],
        reconnect=ReconnectPolicy(base_delay_ms=100, max_attempts=3),
        heartbeat=HeartbeatPolicy(ping_interval_ms=0, stale_timeout_ms=30_000),
        correlation=pb.Correlation(mode=CORRELATION_MODE_UUID_PREFIX, field="req_id"),
        topic="md.btc",
        handshake_timeout_ms=2500,
        publish_unordered=True,
    )
    request = service.only("Connect").request
    assert request == expected
    # Explicit presence: a zero that was given is sent as given, an omitted field stays unset.
    assert request.heartbeat.HasField("ping_interval_ms")
    assert not request.heartbeat.HasField("pong_timeout_ms")
    assert not request.reconnect.HasField("max_delay_ms")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("json_field", CORRELATION_MODE_JSON_FIELD),
        ("CORRELATION_MODE_UUID_PREFIX", CORRELATION_MODE_UUID_PREFIX),
        (CORRELATION_MODE_JSON_FIELD, CORRELATION_MODE_JSON_FIELD),
    ],
)
async def test_correlation_mode_names_and_values(
    client: WebSocketManagerClient, service: RecordingService, mode: Any, expected: pb.CorrelationMode
) -> None:
    await client.connect("wss://a", correlation_mode=mode)
    assert service.only("Connect").request.correlation == pb.Correlation(mode=expected)


async def test_correlation_field_alone_keeps_the_default_mode(
    client: WebSocketManagerClient, service: RecordingService
) -> None:
    await client.connect("wss://a", correlation_field="req_id")
    assert service.only("Connect").request.correlation == pb.Correlation(field="req_id")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"correlation_mode": "nonsense"}, ValueError),
        ({"correlation_mode": 7}, ValueError),
        ({"reconnect": ["base_delay_ms"]}, TypeError),
        ({"heartbeat": {"no_such_field": 1}}, ValueError),
    ],
)
async def test_invalid_connect_options_fail_before_any_call(
    client: WebSocketManagerClient, service: RecordingService, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.connect("wss://a", **kwargs)
    assert service.calls == []


@pytest.mark.parametrize(
    "filters",
    [
        {"desk": "fx", "env": "prod"},
        [("desk", "fx"), ("env", "prod")],
        [TagFilter(key="desk", value="fx"), ("env", "prod")],
    ],
)
async def test_list_filters(client: WebSocketManagerClient, service: RecordingService, filters: Any) -> None:
    response = await client.list(filters)
    assert service.only("List").request == pb.ListRequest(
        filters=[TagFilter(key="desk", value="fx"), TagFilter(key="env", value="prod")]
    )
    assert [dict(c.tags) for c in response.connections] == [{"desk": "fx"}, {"env": "prod"}]


async def test_send_default_timeout_ms_is_5000(client: WebSocketManagerClient, service: RecordingService) -> None:
    assert DEFAULT_SEND_TIMEOUT_MS == 5000
    await client.send("c1", "{}")
    assert service.only("Send").request.timeout_ms == 5000


@pytest.mark.parametrize(("timeout_ms", "expected_s"), [(5000, 5.0), (1200, 1.2), (0, 10.0)])
async def test_send_deadline_is_timeout_ms_plus_margin(
    client: WebSocketManagerClient, service: RecordingService, timeout_ms: int, expected_s: float
) -> None:
    await client.send("c1", "{}", timeout_ms=timeout_ms)
    recorded = service.only("Send")
    assert recorded.request.timeout_ms == timeout_ms
    assert recorded.time_remaining is not None
    # Seen at the service a moment later, and rounded on the wire: about, not exactly, equal.
    deadline_s = expected_s + SEND_DEADLINE_MARGIN_S
    assert deadline_s - 1.0 < recorded.time_remaining <= deadline_s + 0.1


async def test_send_explicit_deadline_wins(client: WebSocketManagerClient, service: RecordingService) -> None:
    await client.send("c1", "{}", timeout_ms=60_000, timeout=2.0)
    remaining = service.only("Send").time_remaining
    assert remaining is not None and 1.0 < remaining <= 2.1


async def test_send_content_type_and_bytes(client: WebSocketManagerClient, service: RecordingService) -> None:
    await client.send("c1", "ping", timeout_ms=100, content_type="text/plain")
    await client.send("c1", b"\xff\x00binary", timeout_ms=100)
    assert [c.request for c in service.calls] == [
        pb.SendRequest(id="c1", message="ping", timeout_ms=100, content_type="text/plain"),
        pb.SendRequest(
            id="c1",
            message=base64.b64encode(b"\xff\x00binary").decode(),
            timeout_ms=100,
            content_type="application/octet-stream",
        ),
    ]


async def test_send_raw_content_type_and_bytes(client: WebSocketManagerClient, service: RecordingService) -> None:
    await client.send_raw("c1", "AAEC", content_type="application/octet-stream")
    await client.send_raw("c1", bytearray(b"\x00\x01\x02"))
    await client.send_raw("c1", "plain", content_type="text/plain")
    assert [c.request for c in service.calls] == [
        pb.SendRawRequest(id="c1", message="AAEC", content_type="application/octet-stream"),
        pb.SendRawRequest(id="c1", message="AAEC", content_type="application/octet-stream"),
        pb.SendRawRequest(id="c1", message="plain", content_type="text/plain"),
    ]


async def test_bytes_with_a_text_content_type_is_refused(
    client: WebSocketManagerClient, service: RecordingService
) -> None:
    with pytest.raises(ValueError, match="octet-stream"):
        await client.send_raw("c1", b"\x00", content_type="text/plain")
    assert service.calls == []


async def test_no_deadline_and_no_metadata_by_default(client: WebSocketManagerClient, service: RecordingService) -> None:
    await client.list()
    recorded = service.only("List")
    assert recorded.time_remaining is None
    assert "authorization" not in recorded.metadata


async def test_token_metadata_and_default_timeout_on_every_call(port: int, service: RecordingService) -> None:
    async with WebSocketManagerClient(
        "127.0.0.1", port, token="s3cret", metadata=[("x-team", "quant")], timeout=3.0
    ) as client:
        await client.list()
        await client.disconnect("c1", timeout=1.5, metadata=[("x-request-id", "r-1")])
        async with client.subscribe():
            await service.wait_calls(3)
    listed, disconnected, subscribed = service.calls
    for recorded in (listed, disconnected, subscribed):
        assert recorded.metadata["authorization"] == "Bearer s3cret"
        assert recorded.metadata["x-team"] == "quant"
        assert recorded.metadata["user-agent"].startswith("virtufin-websocketmanager-python/")
    assert disconnected.metadata["x-request-id"] == "r-1"
    assert "x-request-id" not in listed.metadata
    assert listed.time_remaining is not None and 2.0 < listed.time_remaining <= 3.1
    # The deadline travels in milliseconds, so the service may see a hair more than given.
    assert disconnected.time_remaining is not None and 0.5 < disconnected.time_remaining <= 1.6
    # A stream lives as long as its reader wants: the default deadline is for unary calls.
    assert subscribed.time_remaining is None


async def test_subscribe_request_and_events(client: WebSocketManagerClient, service: RecordingService) -> None:
    service.events = [
        pb.SubscribeResponse(message=pb.InboundMessage(connection_id="c1", data='{"p": 1}', sequence=1)),
        pb.SubscribeResponse(lifecycle=pb.LifecycleEvent(connection_id="c1", status="connected", type="connected")),
    ]
    service.subscribe_waits = False
    events = client.subscribe(["c1", "c2"], ["md.btc"], exclude_lifecycle=True, snapshot_interval_ms=500)
    received = [event async for event in events]
    assert received == service.events
    assert received[0].WhichOneof("event") == "message"
    assert service.only("Subscribe").request == pb.SubscribeRequest(
        connection_ids=["c1", "c2"], topics=["md.btc"], exclude_lifecycle=True, snapshot_interval_ms=500
    )


async def test_subscribe_cancel_ends_iteration_and_the_server_call(
    client: WebSocketManagerClient, service: RecordingService
) -> None:
    service.events = [pb.SubscribeResponse(message=pb.InboundMessage(connection_id="c1", data="x"))]
    async with client.subscribe() as events:
        first = await asyncio.wait_for(events.__anext__(), 5)
        assert first.message.data == "x"
        reader = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0)
        assert events.cancel() is True
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 5)
    await asyncio.wait_for(service.subscribe_cancelled.wait(), 5)
    with pytest.raises(StopAsyncIteration):
        await events.__anext__()


async def test_leaving_subscribe_context_cancels_the_stream(
    client: WebSocketManagerClient, service: RecordingService
) -> None:
    async with client.subscribe():
        await service.wait_calls(1)
    await asyncio.wait_for(service.subscribe_cancelled.wait(), 5)


async def test_subscribe_stream_error_propagates_unchanged(
    client: WebSocketManagerClient, service: RecordingService
) -> None:
    service.errors["Subscribe"] = (grpc.StatusCode.UNAUTHENTICATED, "no token")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in client.subscribe():
            pass
    assert type(raised.value) is grpc.aio.AioRpcError
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert raised.value.details() == "no token"


async def test_close_releases_the_channel(port: int, service: RecordingService) -> None:
    client = WebSocketManagerClient("127.0.0.1", port)
    await client.list()
    assert not client.closed
    await client.close()
    assert client.closed
    await client.close()  # idempotent
    with pytest.raises(grpc.aio.UsageError):
        await client.list()
    with pytest.raises(grpc.aio.UsageError):
        client.subscribe()
    assert len(service.calls) == 1


async def test_context_manager_closes(port: int, service: RecordingService) -> None:
    async with WebSocketManagerClient("127.0.0.1", port) as client:
        assert (await client.connect("ws://x")).status == "connected"
    assert client.closed
    with pytest.raises(grpc.aio.UsageError):
        await client.connect("ws://x")


async def test_context_manager_closes_on_error(port: int) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with WebSocketManagerClient("127.0.0.1", port) as client:
            raise RuntimeError("boom")
    assert client.closed


async def test_close_ends_streams_in_flight(port: int, service: RecordingService) -> None:
    client = WebSocketManagerClient("127.0.0.1", port)
    events = client.subscribe()
    await service.wait_calls(1)
    reader = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0)
    await client.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reader, 5)
    assert events.call.cancelled()
    await asyncio.wait_for(service.subscribe_cancelled.wait(), 5)


async def test_cancelling_the_reading_task_propagates(client: WebSocketManagerClient, service: RecordingService) -> None:
    events = client.subscribe()
    await service.wait_calls(1)
    reader = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert reader.cancelled()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_service_is_unavailable() -> None:
    async with WebSocketManagerClient("127.0.0.1", _closed_port()) as client:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.list(timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_wait_ready(client: WebSocketManagerClient) -> None:
    await client.wait_ready(5)


async def test_defaults_are_the_manuals() -> None:
    client = WebSocketManagerClient()
    try:
        assert (client.host, client.port, client.target) == ("localhost", 5002, "localhost:5002")
        assert repr(client) == "<WebSocketManagerClient localhost:5002 open>"
    finally:
        await client.close()
    assert repr(client) == "<WebSocketManagerClient localhost:5002 closed>"


@pytest.mark.parametrize(
    ("host", "target"),
    [("127.0.0.1", "127.0.0.1:5002"), ("::1", "[::1]:5002"), ("[::1]", "[::1]:5002"), ("wsm.internal", "wsm.internal:5002")],
)
def test_target(host: str, target: str) -> None:
    assert _target(host, 5002) == target
