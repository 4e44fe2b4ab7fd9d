"""The client against the real service and a local WebSocket server."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import grpc
import grpc.aio
import pytest

from local_servers import EchoServer, ServiceProcess
from virtufin.websocketmanager import (
    Subscription,
    SubscribeResponse,
    WebSocketManagerClient,
)
from virtufin.websocketmanager.client import SEND_DEADLINE_MARGIN_S

EVENT_TIMEOUT_S = 10.0


async def next_event(
    events: Subscription, matches: Callable[[SubscribeResponse], bool] = lambda _: True
) -> SubscribeResponse:
    """The next event that `matches`, skipping others; fails after EVENT_TIMEOUT_S."""

    async def find() -> SubscribeResponse:
        async for event in events:
            if matches(event):
                return event
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(find(), EVENT_TIMEOUT_S)


OpenStream = Callable[..., Awaitable[Subscription]]


@pytest.fixture
async def subscribed(wsm_client: WebSocketManagerClient) -> AsyncIterator[OpenStream]:
    """Opens Subscribe streams that are live at the service when returned, and ends them."""
    opened: list[Subscription] = []

    async def open_stream(
        connection_ids: list[str],
        topics: list[str] | None = None,
        *,
        exclude_messages: bool = False,
        exclude_lifecycle: bool = False,
    ) -> Subscription:
        events = wsm_client.subscribe(
            connection_ids,
            topics or [],
            exclude_messages=exclude_messages,
            exclude_lifecycle=exclude_lifecycle,
            snapshot_interval_ms=60_000,
        )
        opened.append(events)
        # The first snapshot, which the service sends at once, shows the stream is registered.
        await next_event(events, lambda event: event.HasField("snapshot"))
        return events

    yield open_stream
    for events in opened:
        events.cancel()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def test_list_shows_the_documented_fields(
    wsm_client: WebSocketManagerClient, wsm: ServiceProcess, echo: EchoServer
) -> None:
    suite = unique("list")
    connected = await wsm_client.connect(echo.url(), tags={"suite": suite})
    assert connected.status == "connected"
    uuid.UUID(connected.id)

    (connection,) = (await wsm_client.list(filters={"suite": suite})).connections
    assert connection.id == connected.id
    assert connection.url == echo.url()
    assert connection.status == "connected"
    assert connection.topic == ""
    assert connection.instance_id == wsm.instance_id != ""
    assert dict(connection.tags) == {"suite": suite}
    assert connected.id in {c.id for c in (await wsm_client.list()).connections}

    await wsm_client.start_publish(connected.id, "ws-events")
    (connection,) = (await wsm_client.list({"suite": suite})).connections
    assert connection.topic == "ws-events"
    await wsm_client.stop_publish(connected.id)
    (connection,) = (await wsm_client.list({"suite": suite})).connections
    assert connection.topic == ""

    await wsm_client.disconnect(connected.id)
    assert list((await wsm_client.list({"suite": suite})).connections) == []


async def test_list_filters_are_anded(wsm_client: WebSocketManagerClient, echo: EchoServer) -> None:
    suite = unique("filters")
    fx = await wsm_client.connect(echo.url(), tags={"suite": suite, "desk": "fx"})
    await wsm_client.connect(echo.url(), tags={"suite": suite, "desk": "rates"})
    both = await wsm_client.list({"suite": suite})
    assert len(both.connections) == 2
    only_fx = await wsm_client.list([("suite", suite), ("desk", "fx")])
    assert [c.id for c in only_fx.connections] == [fx.id]


async def test_tags_round_trip(wsm_client: WebSocketManagerClient, echo: EchoServer) -> None:
    connected = await wsm_client.connect(echo.url(), tags={"desk": "fx"})
    await wsm_client.set_tag(connected.id, "strategy", "mm-1")
    assert (await wsm_client.get_tag(connected.id, "strategy")).value == "mm-1"
    assert (await wsm_client.get_tag(connected.id, "desk")).value == "fx"
    await wsm_client.set_tags(connected.id, {"env": "test", "owner": "python"})
    tags = dict((await wsm_client.get_tags(connected.id)).tags)
    assert tags == {"desk": "fx", "strategy": "mm-1", "env": "test", "owner": "python"}
    (listed,) = (await wsm_client.list({"strategy": "mm-1", "owner": "python"})).connections
    assert listed.id == connected.id
    assert dict(listed.tags) == tags


async def test_subscribe_yields_message_events(
    wsm_client: WebSocketManagerClient, echo: EchoServer, subscribed: OpenStream
) -> None:
    connected = await wsm_client.connect(echo.url())
    events = await subscribed([connected.id])

    # The manual's send_raw example, with its quote typo fixed.
    await wsm_client.send_raw(connected.id, '{"type": "notification"}')
    event = await next_event(events, lambda e: e.HasField("message"))
    assert event.WhichOneof("event") == "message"
    assert event.message.connection_id == connected.id
    assert event.message.url == echo.url()
    assert json.loads(event.message.data) == {"type": "notification"}
    assert event.message.content_type == "application/json"

    await wsm_client.send_raw(connected.id, b"\x00\xffbinary")
    event = await next_event(events, lambda e: e.HasField("message"))
    assert event.message.content_type == "application/octet-stream"
    assert base64.b64decode(event.message.data) == b"\x00\xffbinary"

    await wsm_client.disconnect(connected.id)
    event = await next_event(events, lambda e: e.HasField("lifecycle"))
    assert (event.lifecycle.connection_id, event.lifecycle.status) == (connected.id, "disconnected")


async def test_subscribe_by_topic_sees_published_messages(
    wsm_client: WebSocketManagerClient, echo: EchoServer, subscribed: OpenStream
) -> None:
    topic = unique("md.python")
    connected = await wsm_client.connect(echo.url(), topic=topic)
    events = await subscribed([], topics=[topic], exclude_lifecycle=True)
    await wsm_client.send_raw(connected.id, '{"px": 1}')
    event = await next_event(events, lambda e: e.HasField("message"))
    assert (event.message.connection_id, event.message.topic) == (connected.id, topic)
    assert event.message.sequence >= 1


async def test_send_correlates_the_reply(wsm_client: WebSocketManagerClient, echo: EchoServer) -> None:
    default = await wsm_client.connect(echo.url())
    reply = await wsm_client.send(default.id, '{"type": "ping"}')
    assert json.loads(reply.response)["type"] == "ping"
    assert reply.content_type == "application/json"

    custom = await wsm_client.connect(echo.url(), correlation_field="req_id")
    reply = await wsm_client.send(custom.id, '{"req_id": "r-7", "op": "quote"}', timeout_ms=2000)
    assert json.loads(reply.response) == {"req_id": "r-7", "op": "quote"}


async def test_connect_options_reach_the_upstream(wsm_client: WebSocketManagerClient, echo: EchoServer) -> None:
    suite = unique("options")
    connected = await wsm_client.connect(
        echo.url("/inspect"),
        auto_reconnect=True,
        tags={"suite": suite},
        headers={"X-Api-Key": "k-1"},
        subprotocols=["wsm.v9", "wsm.v2"],
        on_open=['{"op": "subscribe", "channel": "ticker"}', b"\x01\x02"],
        reconnect={"base_delay_ms": 50, "max_attempts": 2},
        heartbeat={"ping_interval_ms": 1000},
        correlation_field="req_id",
        handshake_timeout_ms=3000,
    )
    reply = await wsm_client.send(connected.id, '{"inspect": true, "req_id": "q-1"}', timeout_ms=3000)
    assert json.loads(reply.response) == {
        "inspect": True,
        "req_id": "q-1",
        "api_key": "k-1",
        "protocol": "wsm.v2",
        # The on-open messages went first, in order, the bytes as a binary frame.
        "received": ['{"op": "subscribe", "channel": "ticker"}', "0102"],
    }
    (listed,) = (await wsm_client.list({"suite": suite})).connections
    assert (listed.protocol, listed.auto_reconnect, listed.correlation_field) == ("wsm.v2", True, "req_id")
    assert listed.stats.messages_out >= 3
    # Request headers may hold secrets: the service never shows them.
    assert "k-1" not in str(listed)


async def test_send_timeout_is_the_services_deadline_exceeded(
    wsm_client: WebSocketManagerClient, echo: EchoServer
) -> None:
    connected = await wsm_client.connect(echo.url("/silent"))
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await wsm_client.send(connected.id, '{"type": "ping"}', timeout_ms=300)
    elapsed = time.monotonic() - started
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The service's answer, not the client-side deadline that is a margin later.
    assert elapsed < 0.3 + SEND_DEADLINE_MARGIN_S / 2
    assert raised.value.details()


async def test_reconnect_after_the_upstream_closed(
    wsm_client: WebSocketManagerClient, echo: EchoServer, subscribed: OpenStream
) -> None:
    connected = await wsm_client.connect(echo.url("/closer"), auto_reconnect=False)
    events = await subscribed([connected.id], exclude_messages=True)
    await wsm_client.send_raw(connected.id, "close")
    await next_event(events, lambda e: e.HasField("lifecycle") and e.lifecycle.status == "disconnected")
    (listed,) = [c for c in (await wsm_client.list()).connections if c.id == connected.id]
    assert listed.status == "disconnected"

    reconnected = await wsm_client.reconnect(connected.id)
    assert (reconnected.id, reconnected.status) == (connected.id, "connected")
    reply = await wsm_client.send(connected.id, '{"after": "reconnect"}')
    assert json.loads(reply.response)["after"] == "reconnect"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1/", grpc.StatusCode.INVALID_ARGUMENT),
        ("not a url", grpc.StatusCode.INVALID_ARGUMENT),
        ("ws://127.0.0.1:{closed}/", grpc.StatusCode.UNAVAILABLE),
    ],
)
async def test_connect_errors(wsm_client: WebSocketManagerClient, url: str, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await wsm_client.connect(url.format(closed=closed_port()))
    assert type(raised.value) is grpc.aio.AioRpcError
    assert raised.value.code() == code
    assert raised.value.details()


async def test_unknown_connection_is_not_found(wsm_client: WebSocketManagerClient) -> None:
    missing = str(uuid.uuid4())
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: wsm_client.disconnect(missing),
        lambda: wsm_client.send(missing, "{}"),
        lambda: wsm_client.send_raw(missing, "x"),
        lambda: wsm_client.start_publish(missing, "ws-events"),
        lambda: wsm_client.stop_publish(missing),
        lambda: wsm_client.get_tags(missing),
        lambda: wsm_client.reconnect(missing),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call()
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_invalid_topic(wsm_client: WebSocketManagerClient, echo: EchoServer) -> None:
    connected = await wsm_client.connect(echo.url())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await wsm_client.start_publish(connected.id, "no spaces allowed")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def wsm_with_token() -> Iterator[ServiceProcess]:
    process = ServiceProcess(["--auth-token", "py-s3cret"])
    yield process
    process.stop()


async def test_bearer_token(wsm_with_token: ServiceProcess, echo: EchoServer) -> None:
    async with WebSocketManagerClient("127.0.0.1", wsm_with_token.port, token="py-s3cret") as client:
        connected = await client.connect(echo.url())
        assert connected.id in {c.id for c in (await client.list()).connections}
        await client.disconnect(connected.id)
    for token in (None, "wrong"):
        async with WebSocketManagerClient("127.0.0.1", wsm_with_token.port, token=token) as client:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await client.list()
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture(scope="module")
def wsm_with_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, bytes]]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    process = ServiceProcess(["--tls-cert", str(cert), "--tls-key", str(key)])
    yield process, cert.read_bytes()
    process.stop()


async def test_tls(wsm_with_tls: tuple[ServiceProcess, bytes], echo: EchoServer) -> None:
    process, certificate = wsm_with_tls
    credentials = grpc.ssl_channel_credentials(root_certificates=certificate)
    async with WebSocketManagerClient("127.0.0.1", process.port, credentials=credentials) as client:
        connected = await client.connect(echo.url())
        reply = await client.send(connected.id, '{"over": "tls"}')
        assert json.loads(reply.response)["over"] == "tls"
        await client.disconnect(connected.id)
    # The same service refuses a plaintext client.
    async with WebSocketManagerClient("127.0.0.1", process.port) as client:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.list(timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
