/**
 * The virtufin.WebSocketManager service: translates requests into connection-manager calls
 * and connections into messages. Validation and errors live in the manager; this file only
 * adapts shapes and bounds waits by the RPC deadline.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  ConnectResponseSchema,
  CorrelationMode as CorrelationModeProto,
  InboundMessageSchema,
  LifecycleEventSchema,
  ListResponseSchema,
  SendResponseSchema,
  SubscribeResponseSchema,
  WebSocketConnectionSchema,
  type ConnectRequest,
  type SubscribeResponse,
  type WebSocketConnection,
  type WebSocketManager,
} from "../../gen/virtufin/websocketmanager_pb.js";
import type { ConnectionManager, ConnectParams } from "../manager/connection-manager.ts";
import type { ManagedConnection } from "../manager/managed-connection.ts";
import type { EventHub, HubEvent } from "../publish/event-hub.ts";

export interface WebSocketManagerServiceOptions {
  manager: ConnectionManager;
  hub: EventHub;
  /** Per-stream buffer of Subscribe before the oldest events are dropped. Default 10000. */
  subscribeBufferEvents?: number;
}

const MIN_SNAPSHOT_INTERVAL_MS = 100;

export function toConnectParams(req: ConnectRequest): ConnectParams {
  return {
    url: req.url,
    autoReconnect: req.autoReconnect,
    tags: req.tags,
    headers: req.headers,
    subprotocols: req.subprotocols,
    onOpen: req.onOpen.map((m) => ({ message: m.message, contentType: m.contentType })),
    reconnect: req.reconnect
      ? { baseDelayMs: req.reconnect.baseDelayMs, maxDelayMs: req.reconnect.maxDelayMs, maxAttempts: req.reconnect.maxAttempts }
      : undefined,
    heartbeat: req.heartbeat
      ? {
          pingIntervalMs: req.heartbeat.pingIntervalMs,
          pongTimeoutMs: req.heartbeat.pongTimeoutMs,
          staleTimeoutMs: req.heartbeat.staleTimeoutMs,
        }
      : undefined,
    correlation: req.correlation
      ? {
          mode: req.correlation.mode === CorrelationModeProto.UUID_PREFIX ? "uuid-prefix" : "json-field",
          field: req.correlation.field,
        }
      : undefined,
    topic: req.topic,
    handshakeTimeoutMs: req.handshakeTimeoutMs,
    publishUnordered: req.publishUnordered,
  };
}

const ts = (ms: number) => (ms > 0 ? timestampFromMs(ms) : undefined);

/** A connection as the API shows it. Request headers are never included: they may hold secrets. */
export function toConnectionMessage(c: ManagedConnection): WebSocketConnection {
  const s = c.statsSnapshot();
  const ch = c.channel.stats;
  return create(WebSocketConnectionSchema, {
    id: c.id,
    url: c.url,
    status: c.status,
    topic: c.topic,
    instanceId: c.instanceId,
    contentType: c.contentType,
    tags: Object.fromEntries(c.tags),
    stats: {
      messagesIn: BigInt(s.messagesIn),
      messagesOut: BigInt(s.messagesOut),
      bytesIn: BigInt(s.bytesIn),
      bytesOut: BigInt(s.bytesOut),
      published: BigInt(ch.published),
      publishDropped: BigInt(ch.dropped),
      publishFailed: BigInt(ch.failed),
      reconnects: BigInt(s.reconnects),
      connectedSince: ts(s.connectedSinceMs),
      lastMessageAt: ts(s.lastMessageAtMs),
      lastError: s.lastError,
      pendingSends: s.pendingSends,
      lastSequence: BigInt(ch.lastSequence),
      reconnectAttempt: s.reconnectAttempt,
      publishQueueLength: ch.queued,
    },
    autoReconnect: c.settings.autoReconnect,
    protocol: c.protocol,
    createdAt: timestampFromMs(c.createdAtMs),
    correlationMode: c.settings.correlator.mode === "uuid-prefix" ? CorrelationModeProto.UUID_PREFIX : CorrelationModeProto.JSON_FIELD,
    correlationField: c.settings.correlator.field,
    publishUnordered: c.settings.publishUnordered,
  });
}

function toSubscribeResponse(ev: HubEvent): SubscribeResponse {
  if (ev.kind === "message") {
    const f = ev.frame;
    return create(SubscribeResponseSchema, {
      event: {
        case: "message",
        value: create(InboundMessageSchema, {
          connectionId: f.connectionId,
          url: f.url,
          data: f.data,
          contentType: f.contentType,
          topic: f.topic,
          sequence: BigInt(f.sequence),
          receivedAt: timestampFromMs(f.receivedAtMs),
        }),
      },
    });
  }
  const e = ev.event;
  return create(SubscribeResponseSchema, {
    event: {
      case: "lifecycle",
      value: create(LifecycleEventSchema, {
        connectionId: e.connectionId,
        url: e.url,
        instanceId: e.instanceId,
        status: e.status,
        previousStatus: e.previousStatus,
        attempt: e.attempt,
        errorType: e.errorType,
        errorMessage: e.errorMessage,
        time: timestampFromMs(e.timeMs),
        type: e.type,
      }),
    },
  });
}

function requireId(id: string): string {
  if (id === "") throw new ConnectError("id is empty", Code.InvalidArgument);
  return id;
}

function requireMessage(message: string): string {
  if (message === "") throw new ConnectError("message is empty", Code.InvalidArgument);
  return message;
}

export function createWebSocketManagerService(options: WebSocketManagerServiceOptions): ServiceImpl<typeof WebSocketManager> {
  const { manager, hub } = options;

  return {
    async connect(req, ctx) {
      const conn = await manager.connect(toConnectParams(req), ctx.signal);
      return create(ConnectResponseSchema, { id: conn.id, status: conn.status });
    },

    list(req) {
      return create(ListResponseSchema, {
        connections: manager.list(req.filters.map((f) => ({ key: f.key, value: f.value }))).map(toConnectionMessage),
      });
    },

    disconnect(req) {
      manager.disconnect(requireId(req.id));
      return {};
    },

    startPublish(req) {
      manager.startPublish(requireId(req.id), req.topic);
      return {};
    },

    stopPublish(req) {
      manager.stopPublish(requireId(req.id));
      return {};
    },

    async send(req, ctx) {
      if (req.timeoutMs < 0) throw new ConnectError("timeout_ms must not be negative", Code.InvalidArgument);
      const conn = manager.get(requireId(req.id));
      const reply = await conn.send(requireMessage(req.message), req.contentType, req.timeoutMs, ctx.signal, ctx.timeoutMs());
      return create(SendResponseSchema, { response: reply.data, contentType: reply.contentType });
    },

    sendRaw(req) {
      manager.get(requireId(req.id)).sendRaw(requireMessage(req.message), req.contentType);
      return {};
    },

    setTag(req) {
      manager.setTag(requireId(req.id), req.key, req.value);
      return {};
    },

    getTag(req) {
      return { value: manager.getTag(requireId(req.id), req.key) };
    },

    setTags(req) {
      manager.setTags(requireId(req.id), req.tags);
      return {};
    },

    getTags(req) {
      return { tags: manager.getTags(requireId(req.id)) };
    },

    async reconnect(req, ctx) {
      const conn = await manager.reconnect(requireId(req.id), ctx.signal);
      return { id: conn.id, status: conn.status };
    },

    async *subscribe(req, ctx) {
      for (const id of req.connectionIds) {
        if (id === "") throw new ConnectError("connection_ids has an empty id", Code.InvalidArgument);
      }
      const sub = hub.subscribe({
        connectionIds: req.connectionIds,
        topics: req.topics,
        messages: !req.excludeMessages,
        lifecycle: !req.excludeLifecycle,
        maxBufferedEvents: options.subscribeBufferEvents ?? 10_000,
      });
      const snapshotMs = req.snapshotIntervalMs > 0 ? Math.max(MIN_SNAPSHOT_INTERVAL_MS, req.snapshotIntervalMs) : 0;
      const ids = new Set(req.connectionIds);
      const snapshot = (): SubscribeResponse =>
        create(SubscribeResponseSchema, {
          event: {
            case: "snapshot",
            value: { connections: manager.list().filter((c) => ids.size === 0 || ids.has(c.id)).map(toConnectionMessage) },
          },
        });
      const iterator = sub[Symbol.asyncIterator]();
      const aborted = new Promise<"aborted">((resolve) => {
        if (ctx.signal.aborted) resolve("aborted");
        ctx.signal.addEventListener("abort", () => resolve("aborted"), { once: true });
      });
      try {
        if (snapshotMs > 0) yield snapshot();
        let next = iterator.next();
        let nextSnapshotAt = Date.now() + snapshotMs;
        for (;;) {
          let timer: NodeJS.Timeout | undefined;
          const tick =
            snapshotMs > 0
              ? new Promise<"tick">((resolve) => (timer = setTimeout(() => resolve("tick"), Math.max(0, nextSnapshotAt - Date.now()))))
              : undefined;
          const winner = await Promise.race(tick ? [next, aborted, tick] : [next, aborted]);
          clearTimeout(timer);
          if (winner === "aborted") return;
          if (winner === "tick") {
            nextSnapshotAt = Date.now() + snapshotMs;
            yield snapshot();
            continue;
          }
          if (winner.done) return;
          yield toSubscribeResponse(winner.value);
          next = iterator.next();
        }
      } finally {
        sub.close();
      }
    },
  };
}
