"""Async Python client of the Virtufin WebSocketManager service.

    from virtufin.websocketmanager import WebSocketManagerClient

    async with WebSocketManagerClient("localhost", 5002) as client:
        response = await client.connect("wss://example.com/socket")
"""

from ._proto import websocketmanager_pb2, websocketmanager_pb2_grpc
from ._proto.websocketmanager_pb2 import (
    CORRELATION_MODE_JSON_FIELD,
    CORRELATION_MODE_UNSPECIFIED,
    CORRELATION_MODE_UUID_PREFIX,
    ConnectionStats,
    ConnectResponse,
    Correlation,
    CorrelationMode,
    DisconnectResponse,
    GetTagResponse,
    GetTagsResponse,
    HeartbeatPolicy,
    InboundMessage,
    LifecycleEvent,
    ListResponse,
    OutboundMessage,
    ReconnectPolicy,
    ReconnectResponse,
    SendRawResponse,
    SendResponse,
    SetTagResponse,
    SetTagsResponse,
    Snapshot,
    StartPublishResponse,
    StopPublishResponse,
    SubscribeResponse,
    TagFilter,
    WebSocketConnection,
)
from .client import (
    DEFAULT_CHANNEL_OPTIONS,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_SEND_TIMEOUT_MS,
    WebSocketManagerClient,
)
from .subscription import Subscription
from .version import __version__

__all__ = [
    "CORRELATION_MODE_JSON_FIELD",
    "CORRELATION_MODE_UNSPECIFIED",
    "CORRELATION_MODE_UUID_PREFIX",
    "DEFAULT_CHANNEL_OPTIONS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_SEND_TIMEOUT_MS",
    "ConnectResponse",
    "ConnectionStats",
    "Correlation",
    "CorrelationMode",
    "DisconnectResponse",
    "GetTagResponse",
    "GetTagsResponse",
    "HeartbeatPolicy",
    "InboundMessage",
    "LifecycleEvent",
    "ListResponse",
    "OutboundMessage",
    "ReconnectPolicy",
    "ReconnectResponse",
    "SendRawResponse",
    "SendResponse",
    "SetTagResponse",
    "SetTagsResponse",
    "Snapshot",
    "StartPublishResponse",
    "StopPublishResponse",
    "SubscribeResponse",
    "Subscription",
    "TagFilter",
    "WebSocketConnection",
    "WebSocketManagerClient",
    "__version__",
    "websocketmanager_pb2",
    "websocketmanager_pb2_grpc",
]
