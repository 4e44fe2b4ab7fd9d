import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CorrelationMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CORRELATION_MODE_UNSPECIFIED: _ClassVar[CorrelationMode]
    CORRELATION_MODE_JSON_FIELD: _ClassVar[CorrelationMode]
    CORRELATION_MODE_UUID_PREFIX: _ClassVar[CorrelationMode]
CORRELATION_MODE_UNSPECIFIED: CorrelationMode
CORRELATION_MODE_JSON_FIELD: CorrelationMode
CORRELATION_MODE_UUID_PREFIX: CorrelationMode

class ConnectRequest(_message.Message):
    __slots__ = ("url", "auto_reconnect", "tags", "headers", "subprotocols", "on_open", "reconnect", "heartbeat", "correlation", "topic", "handshake_timeout_ms", "publish_unordered")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    URL_FIELD_NUMBER: _ClassVar[int]
    AUTO_RECONNECT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    SUBPROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    ON_OPEN_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    HANDSHAKE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_UNORDERED_FIELD_NUMBER: _ClassVar[int]
    url: str
    auto_reconnect: bool
    tags: _containers.ScalarMap[str, str]
    headers: _containers.ScalarMap[str, str]
    subprotocols: _containers.RepeatedScalarFieldContainer[str]
    on_open: _containers.RepeatedCompositeFieldContainer[OutboundMessage]
    reconnect: ReconnectPolicy
    heartbeat: HeartbeatPolicy
    correlation: Correlation
    topic: str
    handshake_timeout_ms: int
    publish_unordered: bool
    def __init__(self, url: _Optional[str] = ..., auto_reconnect: _Optional[bool] = ..., tags: _Optional[_Mapping[str, str]] = ..., headers: _Optional[_Mapping[str, str]] = ..., subprotocols: _Optional[_Iterable[str]] = ..., on_open: _Optional[_Iterable[_Union[OutboundMessage, _Mapping]]] = ..., reconnect: _Optional[_Union[ReconnectPolicy, _Mapping]] = ..., heartbeat: _Optional[_Union[HeartbeatPolicy, _Mapping]] = ..., correlation: _Optional[_Union[Correlation, _Mapping]] = ..., topic: _Optional[str] = ..., handshake_timeout_ms: _Optional[int] = ..., publish_unordered: _Optional[bool] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("id", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class OutboundMessage(_message.Message):
    __slots__ = ("message", "content_type")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    message: str
    content_type: str
    def __init__(self, message: _Optional[str] = ..., content_type: _Optional[str] = ...) -> None: ...

class ReconnectPolicy(_message.Message):
    __slots__ = ("base_delay_ms", "max_delay_ms", "max_attempts")
    BASE_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    base_delay_ms: int
    max_delay_ms: int
    max_attempts: int
    def __init__(self, base_delay_ms: _Optional[int] = ..., max_delay_ms: _Optional[int] = ..., max_attempts: _Optional[int] = ...) -> None: ...

class HeartbeatPolicy(_message.Message):
    __slots__ = ("ping_interval_ms", "pong_timeout_ms", "stale_timeout_ms")
    PING_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    PONG_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    STALE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ping_interval_ms: int
    pong_timeout_ms: int
    stale_timeout_ms: int
    def __init__(self, ping_interval_ms: _Optional[int] = ..., pong_timeout_ms: _Optional[int] = ..., stale_timeout_ms: _Optional[int] = ...) -> None: ...

class Correlation(_message.Message):
    __slots__ = ("mode", "field")
    MODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    mode: CorrelationMode
    field: str
    def __init__(self, mode: _Optional[_Union[CorrelationMode, str]] = ..., field: _Optional[str] = ...) -> None: ...

class TagFilter(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("filters",)
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: _containers.RepeatedCompositeFieldContainer[TagFilter]
    def __init__(self, filters: _Optional[_Iterable[_Union[TagFilter, _Mapping]]] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("connections",)
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    connections: _containers.RepeatedCompositeFieldContainer[WebSocketConnection]
    def __init__(self, connections: _Optional[_Iterable[_Union[WebSocketConnection, _Mapping]]] = ...) -> None: ...

class WebSocketConnection(_message.Message):
    __slots__ = ("id", "url", "status", "topic", "instance_id", "content_type", "tags", "stats", "auto_reconnect", "protocol", "created_at", "correlation_mode", "correlation_field", "publish_unordered")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    AUTO_RECONNECT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_MODE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_FIELD_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_UNORDERED_FIELD_NUMBER: _ClassVar[int]
    id: str
    url: str
    status: str
    topic: str
    instance_id: str
    content_type: str
    tags: _containers.ScalarMap[str, str]
    stats: ConnectionStats
    auto_reconnect: bool
    protocol: str
    created_at: _timestamp_pb2.Timestamp
    correlation_mode: CorrelationMode
    correlation_field: str
    publish_unordered: bool
    def __init__(self, id: _Optional[str] = ..., url: _Optional[str] = ..., status: _Optional[str] = ..., topic: _Optional[str] = ..., instance_id: _Optional[str] = ..., content_type: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., stats: _Optional[_Union[ConnectionStats, _Mapping]] = ..., auto_reconnect: _Optional[bool] = ..., protocol: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., correlation_mode: _Optional[_Union[CorrelationMode, str]] = ..., correlation_field: _Optional[str] = ..., publish_unordered: _Optional[bool] = ...) -> None: ...

class ConnectionStats(_message.Message):
    __slots__ = ("messages_in", "messages_out", "bytes_in", "bytes_out", "published", "publish_dropped", "publish_failed", "reconnects", "connected_since", "last_message_at", "last_error", "pending_sends", "last_sequence", "reconnect_attempt", "publish_queue_length")
    MESSAGES_IN_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_OUT_FIELD_NUMBER: _ClassVar[int]
    BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    BYTES_OUT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_DROPPED_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FAILED_FIELD_NUMBER: _ClassVar[int]
    RECONNECTS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    PENDING_SENDS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_QUEUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    published: int
    publish_dropped: int
    publish_failed: int
    reconnects: int
    connected_since: _timestamp_pb2.Timestamp
    last_message_at: _timestamp_pb2.Timestamp
    last_error: str
    pending_sends: int
    last_sequence: int
    reconnect_attempt: int
    publish_queue_length: int
    def __init__(self, messages_in: _Optional[int] = ..., messages_out: _Optional[int] = ..., bytes_in: _Optional[int] = ..., bytes_out: _Optional[int] = ..., published: _Optional[int] = ..., publish_dropped: _Optional[int] = ..., publish_failed: _Optional[int] = ..., reconnects: _Optional[int] = ..., connected_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_message_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., pending_sends: _Optional[int] = ..., last_sequence: _Optional[int] = ..., reconnect_attempt: _Optional[int] = ..., publish_queue_length: _Optional[int] = ...) -> None: ...

class DisconnectRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DisconnectResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartPublishRequest(_message.Message):
    __slots__ = ("id", "topic")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    id: str
    topic: str
    def __init__(self, id: _Optional[str] = ..., topic: _Optional[str] = ...) -> None: ...

class StartPublishResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StopPublishRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class StopPublishResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SendRequest(_message.Message):
    __slots__ = ("id", "message", "timeout_ms", "content_type")
    ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    message: str
    timeout_ms: int
    content_type: str
    def __init__(self, id: _Optional[str] = ..., message: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., content_type: _Optional[str] = ...) -> None: ...

class SendResponse(_message.Message):
    __slots__ = ("response", "content_type")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    response: str
    content_type: str
    def __init__(self, response: _Optional[str] = ..., content_type: _Optional[str] = ...) -> None: ...

class SendRawRequest(_message.Message):
    __slots__ = ("id", "message", "content_type")
    ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    message: str
    content_type: str
    def __init__(self, id: _Optional[str] = ..., message: _Optional[str] = ..., content_type: _Optional[str] = ...) -> None: ...

class SendRawResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetTagRequest(_message.Message):
    __slots__ = ("id", "key", "value")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: str
    value: str
    def __init__(self, id: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class SetTagResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTagRequest(_message.Message):
    __slots__ = ("id", "key")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: str
    def __init__(self, id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class GetTagResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: str
    def __init__(self, value: _Optional[str] = ...) -> None: ...

class SetTagsRequest(_message.Message):
    __slots__ = ("id", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SetTagsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTagsRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetTagsResponse(_message.Message):
    __slots__ = ("tags",)
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.ScalarMap[str, str]
    def __init__(self, tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ReconnectRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ReconnectResponse(_message.Message):
    __slots__ = ("id", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("connection_ids", "topics", "exclude_messages", "exclude_lifecycle", "snapshot_interval_ms")
    CONNECTION_IDS_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    connection_ids: _containers.RepeatedScalarFieldContainer[str]
    topics: _containers.RepeatedScalarFieldContainer[str]
    exclude_messages: bool
    exclude_lifecycle: bool
    snapshot_interval_ms: int
    def __init__(self, connection_ids: _Optional[_Iterable[str]] = ..., topics: _Optional[_Iterable[str]] = ..., exclude_messages: _Optional[bool] = ..., exclude_lifecycle: _Optional[bool] = ..., snapshot_interval_ms: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("message", "lifecycle", "snapshot")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    message: InboundMessage
    lifecycle: LifecycleEvent
    snapshot: Snapshot
    def __init__(self, message: _Optional[_Union[InboundMessage, _Mapping]] = ..., lifecycle: _Optional[_Union[LifecycleEvent, _Mapping]] = ..., snapshot: _Optional[_Union[Snapshot, _Mapping]] = ...) -> None: ...

class InboundMessage(_message.Message):
    __slots__ = ("connection_id", "url", "data", "content_type", "topic", "sequence", "received_at")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    url: str
    data: str
    content_type: str
    topic: str
    sequence: int
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, connection_id: _Optional[str] = ..., url: _Optional[str] = ..., data: _Optional[str] = ..., content_type: _Optional[str] = ..., topic: _Optional[str] = ..., sequence: _Optional[int] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LifecycleEvent(_message.Message):
    __slots__ = ("connection_id", "url", "instance_id", "status", "previous_status", "attempt", "error_type", "error_message", "time", "type")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    url: str
    instance_id: str
    status: str
    previous_status: str
    attempt: int
    error_type: str
    error_message: str
    time: _timestamp_pb2.Timestamp
    type: str
    def __init__(self, connection_id: _Optional[str] = ..., url: _Optional[str] = ..., instance_id: _Optional[str] = ..., status: _Optional[str] = ..., previous_status: _Optional[str] = ..., attempt: _Optional[int] = ..., error_type: _Optional[str] = ..., error_message: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[str] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("connections",)
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    connections: _containers.RepeatedCompositeFieldContainer[WebSocketConnection]
    def __init__(self, connections: _Optional[_Iterable[_Union[WebSocketConnection, _Mapping]]] = ...) -> None: ...
