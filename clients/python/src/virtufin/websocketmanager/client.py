"""The async client of the WebSocketManager service."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Union, cast

import grpc
import grpc.aio

from ._proto import websocketmanager_pb2 as pb
from ._proto import websocketmanager_pb2_grpc as pb_grpc
from .subscription import Subscription
from .version import __version__

DEFAULT_HOST: Final = "localhost"
DEFAULT_PORT: Final = 5002
#: ``timeout_ms`` of :meth:`WebSocketManagerClient.send` when the caller gives none.
DEFAULT_SEND_TIMEOUT_MS: Final = 5000
#: What the server waits for a Send reply when ``timeout_ms`` is 0.
SERVER_DEFAULT_SEND_TIMEOUT_MS: Final = 10_000
#: Added to ``timeout_ms`` to get the RPC deadline of a Send, so that the server's own
#: DEADLINE_EXCEEDED (which says what it waited for) reaches the caller before the
#: client-side deadline fires.
SEND_DEADLINE_MARGIN_S: Final = 5.0
OCTET_STREAM: Final = "application/octet-stream"

#: Channel options of a long-lived client. Keepalive pings detect a dead server during long
#: calls (Subscribe streams, slow Sends) without pinging an idle connection. gRPC's limit of
#: two pings without data is kept: servers that enforce the gRPC ping policy answer more
#: with GOAWAY "too_many_pings", which would end quiet Subscribe streams. A List of many
#: connections can exceed gRPC's default 4 MiB receive limit.
DEFAULT_CHANNEL_OPTIONS: Final[tuple[tuple[str, Any], ...]] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.primary_user_agent", f"virtufin-websocketmanager-python/{__version__}"),
)

Metadata = Sequence[tuple[str, Union[str, bytes]]]
#: A message for the upstream: text as is, or bytes (sent as a binary frame).
Payload = Union[str, bytes, bytearray, memoryview]
#: A ``CorrelationMode`` value, or its name with or without the ``CORRELATION_MODE_`` prefix
#: in any case (``"json_field"``, ``"uuid_prefix"``).
CorrelationModeLike = Union[int, str]

_CORRELATION_MODES: Final = {
    "unspecified": pb.CORRELATION_MODE_UNSPECIFIED,
    "json_field": pb.CORRELATION_MODE_JSON_FIELD,
    "uuid_prefix": pb.CORRELATION_MODE_UUID_PREFIX,
}


class WebSocketManagerClient:
    """Async client of the WebSocketManager gRPC service.

    Use it as an async context manager, or call :meth:`close` when done::

        async with WebSocketManagerClient("localhost", 5002) as client:
            response = await client.connect("wss://example.com/socket")

    Every method returns the service's protobuf response. A failed call raises the
    ``grpc.aio.AioRpcError`` of gRPC unchanged (``e.code()``, ``e.details()``).

    Args:
        host: Host name or IP address of the service.
        port: Its gRPC port.
        token: Bearer token sent as ``authorization: Bearer <token>`` on every call, for a
            service started with an auth token.
        metadata: Extra metadata (key, value) pairs sent on every call.
        timeout: Default deadline of each unary call in seconds; ``None`` means none. A
            :meth:`send` waits at least its ``timeout_ms`` plus a margin; a
            :meth:`subscribe` stream has no default deadline.
        credentials: TLS channel credentials (``grpc.ssl_channel_credentials()``) for a
            service that serves TLS; plaintext when ``None``.
        options: Extra gRPC channel options; they override :data:`DEFAULT_CHANNEL_OPTIONS`.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        metadata: Metadata | None = None,
        timeout: float | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.target = _target(host, port)
        base: list[tuple[str, str | bytes]] = list(metadata or ())
        if token:
            base.append(("authorization", f"Bearer {token}"))
        self._metadata: tuple[tuple[str, str | bytes], ...] = tuple(base)
        self._timeout = timeout
        channel_options = dict(DEFAULT_CHANNEL_OPTIONS)
        channel_options.update(dict(options or ()))
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=list(channel_options.items()))
        else:
            self._channel = grpc.aio.secure_channel(
                self.target, credentials, options=list(channel_options.items())
            )
        self._stub = pb_grpc.WebSocketManagerStub(self._channel)
        self._closed = False

    # Lifecycle

    async def __aenter__(self) -> WebSocketManagerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    async def close(self, grace: float | None = None) -> None:
        """Closes the channel; calls in flight are cancelled (after ``grace`` seconds).

        Idempotent. Any call made afterwards raises ``grpc.aio.UsageError``.
        """
        if self._closed:
            return
        self._closed = True
        await self._channel.close(grace)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Waits until the channel to the service is connected.

        Raises:
            asyncio.TimeoutError: when it is not connected within ``timeout`` seconds.
        """
        await asyncio.wait_for(self._channel.channel_ready(), timeout)

    # Connections

    async def connect(
        self,
        url: str,
        auto_reconnect: bool = False,
        *,
        tags: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        subprotocols: Iterable[str] | None = None,
        on_open: Iterable[Payload | pb.OutboundMessage] | None = None,
        reconnect: pb.ReconnectPolicy | Mapping[str, int] | None = None,
        heartbeat: pb.HeartbeatPolicy | Mapping[str, int] | None = None,
        correlation_mode: CorrelationModeLike | None = None,
        correlation_field: str | None = None,
        topic: str | None = None,
        handshake_timeout_ms: int | None = None,
        publish_unordered: bool = False,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> pb.ConnectResponse:
        """Opens a WebSocket connection; returns once the handshake has succeeded.

        Args:
            url: ``ws://`` or ``wss://`` URL of the upstream.
            auto_reconnect: Reconnect after an unexpected close, error or dead heartbeat.
            tags: Metadata of the caller's, never sent upstream.
            headers: Extra HTTP headers of the opening handshake (e.g. an API key).
            subprotocols: WebSocket subprotocols to offer, in order of preference.
            on_open: Messages sent after every open (the first and every reconnect), in
                order: subscriptions, authentication. Bytes go as binary frames.
            reconnect: Reconnect policy overrides, as a ``ReconnectPolicy`` or a mapping of
                its fields (``base_delay_ms``, ``max_delay_ms``, ``max_attempts``).
            heartbeat: Heartbeat overrides, as a ``HeartbeatPolicy`` or a mapping of its
                fields (``ping_interval_ms``, ``pong_timeout_ms``, ``stale_timeout_ms``).
            correlation_mode: How :meth:`send` matches replies: ``"json_field"`` (the
                default) or ``"uuid_prefix"``, or a ``CorrelationMode`` value.
            correlation_field: JSON field that carries the correlation key (default ``id``).
            topic: Publish every inbound frame to this topic from the first frame on.
            handshake_timeout_ms: Handshake timeout; the server default when ``None``.
            publish_unordered: Publish without keeping the order of frames (faster).
            timeout: Deadline of this call in seconds.
            metadata: Extra metadata of this call.

        Returns:
            ``ConnectResponse`` with ``id`` (a UUID) and ``status`` (``connected``).
        """
        request = pb.ConnectRequest(
            url=url,
            auto_reconnect=auto_reconnect,
            tags=dict(tags or {}),
            headers=dict(headers or {}),
            subprotocols=list(subprotocols or ()),
            on_open=[_outbound(item) for item in on_open or ()],
            topic=topic or "",
            handshake_timeout_ms=handshake_timeout_ms or 0,
            publish_unordered=publish_unordered,
        )
        if reconnect is not None:
            request.reconnect.CopyFrom(_policy(pb.ReconnectPolicy, reconnect))
        if heartbeat is not None:
            request.heartbeat.CopyFrom(_policy(pb.HeartbeatPolicy, heartbeat))
        if correlation_mode is not None or correlation_field is not None:
            request.correlation.CopyFrom(
                pb.Correlation(
                    mode=_correlation_mode(correlation_mode),
                    field=correlation_field or "",
                )
            )
        return cast(pb.ConnectResponse, await self._stub.Connect(request, **self._call(timeout, metadata)))

    async def list(
        self,
        filters: Mapping[str, str] | Iterable[pb.TagFilter | tuple[str, str]] | None = None,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> pb.ListResponse:
        """Lists the connections, oldest first.

        Args:
            filters: Only connections that have all these tags: a mapping of tag key to
                value, or ``TagFilter`` messages / ``(key, value)`` pairs.

        Returns:
            ``ListResponse`` whose ``connections`` each have ``id``, ``url``, ``status``,
            ``topic``, ``instance_id``, ``tags`` and more.
        """
        request = pb.ListRequest(filters=_tag_filters(filters))
        return cast(pb.ListResponse, await self._stub.List(request, **self._call(timeout, metadata)))

    async def disconnect(
        self, id: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> pb.DisconnectResponse:
        """Closes a connection (code 1000) and removes it."""
        request = pb.DisconnectRequest(id=id)
        return cast(pb.DisconnectResponse, await self._stub.Disconnect(request, **self._call(timeout, metadata)))

    async def reconnect(
        self, id: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> pb.ReconnectResponse:
        """Opens a disconnected connection again (same id, topic, tags and options).

        For a connection that is reconnecting, it restarts the reconnect cycle at once.
        Returns once the connection is connected.
        """
        request = pb.ReconnectRequest(id=id)
        return cast(pb.ReconnectResponse, await self._stub.Reconnect(request, **self._call(timeout, metadata)))

    # Messages

    async def send(
        self,
        id: str,
        message: Payload,
        timeout_ms: int = DEFAULT_SEND_TIMEOUT_MS,
        *,
        content_type: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> pb.SendResponse:
        """Sends a message and waits for the correlated reply.

        Args:
            id: Connection id.
            message: The message, usually a JSON object as text. Bytes are sent as a binary
                frame (base64 on the wire, content type ``application/octet-stream``).
            timeout_ms: How long the service waits for the reply; 0 means its default.
            content_type: Content type of ``message`` (``application/json``, ``text/plain``
                or ``application/octet-stream`` with a base64 message).
            timeout: RPC deadline in seconds. By default ``timeout_ms`` plus a margin, so
                that the service's own DEADLINE_EXCEEDED arrives first.

        Returns:
            ``SendResponse`` with the reply in ``response`` and its ``content_type``.
        """
        text, content_type = _payload(message, content_type)
        request = pb.SendRequest(id=id, message=text, timeout_ms=timeout_ms, content_type=content_type)
        if timeout is None:
            wait_ms = timeout_ms if timeout_ms > 0 else SERVER_DEFAULT_SEND_TIMEOUT_MS
            timeout = max(self._timeout or 0.0, wait_ms / 1000 + SEND_DEADLINE_MARGIN_S)
        return cast(pb.SendResponse, await self._stub.Send(request, **self._call(timeout, metadata)))

    async def send_raw(
        self,
        id: str,
        message: Payload,
        *,
        content_type: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> pb.SendRawResponse:
        """Sends a message without waiting for anything.

        Args:
            id: Connection id.
            message: Text is sent as a text frame; bytes as a binary frame.
            content_type: ``text/*``, ``application/json`` or empty for a text frame;
                ``application/octet-stream`` for a binary frame of the base64 ``message``.
        """
        text, content_type = _payload(message, content_type)
        request = pb.SendRawRequest(id=id, message=text, content_type=content_type)
        return cast(pb.SendRawResponse, await self._stub.SendRaw(request, **self._call(timeout, metadata)))

    # Publishing

    async def start_publish(
        self, id: str, topic: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> pb.StartPublishResponse:
        """Publishes every later inbound frame of the connection to a pub/sub topic."""
        request = pb.StartPublishRequest(id=id, topic=topic)
        return cast(
            pb.StartPublishResponse, await self._stub.StartPublish(request, **self._call(timeout, metadata))
        )

    async def stop_publish(
        self, id: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> pb.StopPublishResponse:
        """Stops publishing the connection's inbound frames."""
        request = pb.StopPublishRequest(id=id)
        return cast(
            pb.StopPublishResponse, await self._stub.StopPublish(request, **self._call(timeout, metadata))
        )

    def subscribe(
        self,
        connection_ids: Iterable[str] = (),
        topics: Iterable[str] = (),
        *,
        exclude_messages: bool = False,
        exclude_lifecycle: bool = False,
        snapshot_interval_ms: int = 0,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Subscription:
        """Streams inbound messages and lifecycle events.

        The call starts at once; iterate the result with ``async for``. Each item is a
        ``SubscribeResponse`` with one of ``message``, ``lifecycle`` or ``snapshot`` set
        (``item.WhichOneof("event")``)::

            async with client.subscribe([connection_id]) as events:
                async for event in events:
                    if event.HasField("message"):
                        print(event.message.data)

        Args:
            connection_ids: Only these connections; all when empty.
            topics: Only messages published to these topics; every inbound message when
                empty. Lifecycle events are not filtered by topic.
            exclude_messages: Leave out inbound messages.
            exclude_lifecycle: Leave out lifecycle events.
            snapshot_interval_ms: When > 0, a snapshot of the matching connections comes at
                once and then every this many milliseconds (at least 100).
            timeout: Deadline of the whole stream in seconds; none by default.
        """
        request = pb.SubscribeRequest(
            connection_ids=list(connection_ids),
            topics=list(topics),
            exclude_messages=exclude_messages,
            exclude_lifecycle=exclude_lifecycle,
            snapshot_interval_ms=snapshot_interval_ms,
        )
        call = self._stub.Subscribe(request, timeout=timeout, metadata=self._merge_metadata(metadata))
        return Subscription(call, lambda: self._closed)

    # Tags

    async def set_tag(
        self, id: str, key: str, value: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> pb.SetTagResponse:
        """Sets one tag of a connection."""
        request = pb.SetTagRequest(id=id, key=key, value=value)
        return cast(pb.SetTagResponse, await self._stub.SetTag(request, **self._call(timeout, metadata)))

    async def get_tag(
        self, id: str, key: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> pb.GetTagResponse:
        """Gets one tag of a connection (``value`` is empty when the tag is not set)."""
        request = pb.GetTagRequest(id=id, key=key)
        return cast(pb.GetTagResponse, await self._stub.GetTag(request, **self._call(timeout, metadata)))

    async def set_tags(
        self,
        id: str,
        tags: Mapping[str, str],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> pb.SetTagsResponse:
        """Sets several tags of a connection at once."""
        request = pb.SetTagsRequest(id=id, tags=dict(tags))
        return cast(pb.SetTagsResponse, await self._stub.SetTags(request, **self._call(timeout, metadata)))

    async def get_tags(
        self, id: str, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> pb.GetTagsResponse:
        """Gets all tags of a connection."""
        request = pb.GetTagsRequest(id=id)
        return cast(pb.GetTagsResponse, await self._stub.GetTags(request, **self._call(timeout, metadata)))

    # Helpers

    def _merge_metadata(self, metadata: Metadata | None) -> tuple[tuple[str, str | bytes], ...] | None:
        merged = self._metadata + tuple(metadata or ())
        return merged or None

    def _call(self, timeout: float | None, metadata: Metadata | None) -> dict[str, Any]:
        return {
            "timeout": self._timeout if timeout is None else timeout,
            "metadata": self._merge_metadata(metadata),
        }

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<WebSocketManagerClient {self.target} {state}>"


def _target(host: str, port: int) -> str:
    # A bare IPv6 address needs brackets before the port.
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def _payload(message: Payload, content_type: str) -> tuple[str, str]:
    if isinstance(message, (bytes, bytearray, memoryview)):
        if content_type not in ("", OCTET_STREAM):
            raise ValueError(f"a bytes message is sent as {OCTET_STREAM}, not {content_type!r}")
        return base64.b64encode(bytes(message)).decode("ascii"), OCTET_STREAM
    return message, content_type


def _outbound(item: Payload | pb.OutboundMessage) -> pb.OutboundMessage:
    if isinstance(item, pb.OutboundMessage):
        return item
    text, content_type = _payload(item, "")
    return pb.OutboundMessage(message=text, content_type=content_type)


def _policy(cls: Any, value: Any) -> Any:
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return cls(**value)
    raise TypeError(f"expected {cls.__name__} or a mapping of its fields, got {type(value).__name__}")


def _correlation_mode(value: CorrelationModeLike | None) -> pb.CorrelationMode:
    if value is None:
        return pb.CORRELATION_MODE_UNSPECIFIED
    if isinstance(value, str):
        name = value.strip().lower().removeprefix("correlation_mode_")
        if name not in _CORRELATION_MODES:
            raise ValueError(f"unknown correlation mode {value!r}; use one of {sorted(_CORRELATION_MODES)}")
        return _CORRELATION_MODES[name]
    for mode in _CORRELATION_MODES.values():
        if mode == value:
            return mode
    raise ValueError(f"unknown correlation mode {value!r}")


def _tag_filters(
    filters: Mapping[str, str] | Iterable[pb.TagFilter | tuple[str, str]] | None,
) -> list[pb.TagFilter]:
    if filters is None:
        return []
    if isinstance(filters, Mapping):
        return [pb.TagFilter(key=key, value=value) for key, value in filters.items()]
    result = []
    for item in filters:
        if isinstance(item, pb.TagFilter):
            result.append(item)
        else:
            key, value = item
            result.append(pb.TagFilter(key=key, value=value))
    return result
