/**
 * The connection manager: validates what callers ask for, owns the registry of connections,
 * and wires each connection to publishing and to Subscribe streams. It knows nothing of RPC
 * protocols; the RPC service translates requests into these calls.
 */
import { randomUUID } from "node:crypto";
import { createSecureContext, rootCertificates } from "node:tls";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import type { EventHub } from "../publish/event-hub.ts";
import type { InboundFrame, LifecycleEvent } from "../publish/events.ts";
import type { PublishPipeline } from "../publish/publish-pipeline.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { createJsonFieldCorrelator, createUuidPrefixCorrelator, DEFAULT_CORRELATION_FIELD, type CorrelationMode } from "./correlation.ts";
import { frameKindOf } from "./frame-codec.ts";
import { ManagedConnection, type ConnectionSink, type HeartbeatPolicy, type OutboundMessage } from "./managed-connection.ts";
import { createInMemoryRegistry, type ConnectionRegistry } from "./registry.ts";
import type { UrlPolicy } from "./url-policy.ts";

export const LIMITS = {
  maxTags: 50,
  maxTagKeyChars: 128,
  maxTagValueChars: 1024,
  maxTopicChars: 256,
  maxHeaders: 50,
  maxOnOpenMessages: 100,
  maxSubprotocols: 20,
} as const;

const TOPIC_PATTERN = /^[A-Za-z0-9._:/-]+$/;
const HEADER_NAME_PATTERN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Headers the WebSocket handshake owns; a caller setting them would break it or smuggle.
const RESERVED_HEADERS = new Set([
  "host",
  "connection",
  "upgrade",
  "content-length",
  "transfer-encoding",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
]);

export interface ConnectionDefaults {
  autoReconnect?: boolean;
  reconnect: BackoffPolicy;
  heartbeat: HeartbeatPolicy;
  handshakeTimeoutMs: number;
  sendTimeoutMs: number;
}

export interface ConnectParams {
  url: string;
  autoReconnect: boolean;
  tags?: Record<string, string>;
  headers?: Record<string, string>;
  subprotocols?: string[];
  onOpen?: OutboundMessage[];
  reconnect?: Partial<BackoffPolicy>;
  heartbeat?: Partial<HeartbeatPolicy>;
  correlation?: { mode?: CorrelationMode; field?: string };
  topic?: string;
  handshakeTimeoutMs?: number;
  publishUnordered?: boolean;
}

export interface ConnectionManagerOptions {
  instanceId: string;
  urlPolicy: UrlPolicy;
  pipeline: PublishPipeline;
  hub: EventHub;
  logger: Logger;
  metrics: Metrics;
  defaults: ConnectionDefaults;
  /** Connections held at once. Default 10000. */
  maxConnections?: number;
  /** Largest frame in either direction. Default 4 MiB. */
  maxFrameBytes?: number;
  /** Upstream write buffer above which writes fail with RESOURCE_EXHAUSTED. Default 8 MiB. */
  maxBufferedBytes?: number;
  /** Extra CA certificates (PEM) trusted for wss:// upstreams, besides the system's roots. */
  upstreamCa?: string | Buffer;
  /** The registry; default in memory. */
  registry?: ConnectionRegistry<ManagedConnection>;
  random?: () => number;
}

export interface ConnectionManager {
  connect(params: ConnectParams, signal?: AbortSignal): Promise<ManagedConnection>;
  /** NOT_FOUND when unknown. */
  get(id: string): ManagedConnection;
  /** Oldest first; every filter must match (an empty value matches any value of the key). */
  list(filters?: ReadonlyArray<{ key: string; value: string }>): ManagedConnection[];
  disconnect(id: string): void;
  reconnect(id: string, signal?: AbortSignal): Promise<ManagedConnection>;
  startPublish(id: string, topic: string): void;
  stopPublish(id: string): void;
  setTag(id: string, key: string, value: string): void;
  getTag(id: string, key: string): string;
  setTags(id: string, tags: Record<string, string>): void;
  getTags(id: string): Record<string, string>;
  readonly size: number;
  readonly instanceId: string;
  /** Closes every upstream with code 1001. Idempotent. */
  close(): void;
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

export function validateTopic(topic: string): void {
  if (topic === "") throw invalid("topic is empty");
  if (topic.length > LIMITS.maxTopicChars) throw invalid(`topic is ${topic.length} characters, over the limit of ${LIMITS.maxTopicChars}`);
  if (!TOPIC_PATTERN.test(topic)) throw invalid(`topic ${JSON.stringify(topic)} may only contain A-Z a-z 0-9 . _ : / -`);
}

function validateTag(key: string, value: string): void {
  if (key === "") throw invalid("tag key is empty");
  if (key.length > LIMITS.maxTagKeyChars) throw invalid(`tag key is ${key.length} characters, over the limit of ${LIMITS.maxTagKeyChars}`);
  if (value.length > LIMITS.maxTagValueChars) {
    throw invalid(`value of tag ${JSON.stringify(key)} is ${value.length} characters, over the limit of ${LIMITS.maxTagValueChars}`);
  }
}

function validateTagCount(count: number): void {
  if (count > LIMITS.maxTags) throw invalid(`a connection may have at most ${LIMITS.maxTags} tags; this would make ${count}`);
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw invalid(`${name} must be a non-negative integer`);
  return value;
}

export function createConnectionManager(options: ConnectionManagerOptions): ConnectionManager {
  const { instanceId, urlPolicy, pipeline, hub, logger, metrics, defaults } = options;
  const registry = options.registry ?? createInMemoryRegistry<ManagedConnection>();
  const maxConnections = options.maxConnections ?? 10_000;
  const maxFrameBytes = options.maxFrameBytes ?? 4 * 1024 * 1024;
  const maxBufferedBytes = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  let closed = false;
  // One context for every wss:// socket. `ca` replaces Node's root store rather than adding
  // to it, so the roots go in too: an extra private CA must not break public upstreams.
  const secureContext = options.upstreamCa
    ? createSecureContext({ ca: [...rootCertificates, options.upstreamCa.toString()] })
    : undefined;

  const framesIn = metrics.counter("wsm_frames_received_total", "Inbound frames that were not Send replies.").labels();
  const lifecycleTotal = metrics.counter("wsm_lifecycle_events_total", "Connection lifecycle events by type.");
  const statusCount = (status: string) => {
    let n = 0;
    for (const c of registry.values()) if (c.status === status) n++;
    return n;
  };
  metrics.gauge("wsm_connections", "Connections by status.", () =>
    (["connecting", "connected", "reconnecting", "disconnected"] as const).map((s) => ({ labels: { status: s }, value: statusCount(s) })),
  );
  metrics.gauge("wsm_connection_stats_dropped", "Publish drops of the connections held now.", () => {
    let n = 0;
    for (const c of registry.values()) n += c.channel.stats.dropped;
    return [{ value: n }];
  });

  const sink: ConnectionSink = {
    frame(frame: InboundFrame) {
      framesIn.inc();
      hub.publishFrame(frame);
    },
    wantsFrames: (id) => hub.wantsFrames(id),
    lifecycle(event: LifecycleEvent) {
      lifecycleTotal.inc({ type: event.type });
      hub.publishLifecycle(event);
      pipeline.lifecycle(event);
    },
  };

  const get = (id: string): ManagedConnection => {
    if (id === "") throw invalid("id is empty");
    const c = registry.get(id);
    if (!c) throw new ConnectError(`connection ${id} not found`, Code.NotFound);
    return c;
  };

  const buildSettings = (p: ConnectParams, url: URL) => {
    const headers: Record<string, string> = {};
    const headerEntries = Object.entries(p.headers ?? {});
    if (headerEntries.length > LIMITS.maxHeaders) throw invalid(`at most ${LIMITS.maxHeaders} headers`);
    for (const [name, value] of headerEntries) {
      if (!HEADER_NAME_PATTERN.test(name)) throw invalid(`header name ${JSON.stringify(name)} is not a valid HTTP token`);
      if (RESERVED_HEADERS.has(name.toLowerCase())) throw invalid(`header ${name} is set by the WebSocket handshake and cannot be overridden`);
      if (/[\r\n\0]/.test(value)) throw invalid(`header ${name} has a line break or NUL in its value`);
      headers[name] = value;
    }
    const subprotocols = p.subprotocols ?? [];
    if (subprotocols.length > LIMITS.maxSubprotocols) throw invalid(`at most ${LIMITS.maxSubprotocols} subprotocols`);
    for (const s of subprotocols) {
      if (!HEADER_NAME_PATTERN.test(s)) throw invalid(`subprotocol ${JSON.stringify(s)} is not a valid token`);
    }
    if (new Set(subprotocols).size !== subprotocols.length) throw invalid("subprotocols must be unique");
    const onOpen = p.onOpen ?? [];
    if (onOpen.length > LIMITS.maxOnOpenMessages) throw invalid(`at most ${LIMITS.maxOnOpenMessages} on-open messages`);
    for (const [i, m] of onOpen.entries()) {
      if (m.message === "") throw invalid(`on_open[${i}].message is empty`);
      frameKindOf(m.contentType);
      if (Buffer.byteLength(m.message) > maxFrameBytes) throw invalid(`on_open[${i}] is over the frame limit of ${maxFrameBytes} bytes`);
    }
    const mode = p.correlation?.mode ?? "json-field";
    const field = p.correlation?.field || DEFAULT_CORRELATION_FIELD;
    if (field.length > 128) throw invalid("correlation field name is over 128 characters");
    const reconnect: BackoffPolicy = {
      baseDelayMs: nonNegative("reconnect.base_delay_ms", p.reconnect?.baseDelayMs, defaults.reconnect.baseDelayMs),
      maxDelayMs: nonNegative("reconnect.max_delay_ms", p.reconnect?.maxDelayMs, defaults.reconnect.maxDelayMs),
      maxAttempts: nonNegative("reconnect.max_attempts", p.reconnect?.maxAttempts, defaults.reconnect.maxAttempts),
    };
    if (reconnect.baseDelayMs === 0) reconnect.baseDelayMs = defaults.reconnect.baseDelayMs;
    if (reconnect.maxDelayMs < reconnect.baseDelayMs) reconnect.maxDelayMs = reconnect.baseDelayMs;
    const heartbeat: HeartbeatPolicy = {
      pingIntervalMs: nonNegative("heartbeat.ping_interval_ms", p.heartbeat?.pingIntervalMs, defaults.heartbeat.pingIntervalMs),
      pongTimeoutMs: nonNegative("heartbeat.pong_timeout_ms", p.heartbeat?.pongTimeoutMs, defaults.heartbeat.pongTimeoutMs),
      staleTimeoutMs: nonNegative("heartbeat.stale_timeout_ms", p.heartbeat?.staleTimeoutMs, defaults.heartbeat.staleTimeoutMs),
    };
    return {
      url,
      autoReconnect: p.autoReconnect,
      headers,
      subprotocols: [...subprotocols],
      onOpen: onOpen.map((m) => ({ message: m.message, contentType: m.contentType })),
      reconnect,
      heartbeat,
      correlator: mode === "uuid-prefix" ? createUuidPrefixCorrelator() : createJsonFieldCorrelator(field),
      handshakeTimeoutMs: p.handshakeTimeoutMs || defaults.handshakeTimeoutMs,
      publishUnordered: p.publishUnordered ?? false,
    };
  };

  return {
    instanceId,
    get size() {
      return registry.size;
    },

    async connect(p, signal) {
      if (closed) throw new ConnectError("server is shutting down", Code.Unavailable);
      const url = urlPolicy.parse(p.url);
      const settings = buildSettings(p, url);
      const tags = Object.entries(p.tags ?? {});
      validateTagCount(tags.length);
      for (const [k, v] of tags) validateTag(k, v);
      if (p.topic) validateTopic(p.topic);
      if (registry.size >= maxConnections) {
        throw new ConnectError(`connection limit of ${maxConnections} reached`, Code.ResourceExhausted);
      }
      const id = randomUUID();
      const channel = pipeline.channel(id, { ordered: !settings.publishUnordered });
      const conn = new ManagedConnection(id, settings, channel, {
        instanceId,
        urlPolicy,
        logger,
        sink,
        maxFrameBytes,
        maxBufferedBytes,
        defaultSendTimeoutMs: defaults.sendTimeoutMs,
        secureContext,
        random: options.random,
      });
      for (const [k, v] of tags) conn.tags.set(k, v);
      if (p.topic) conn.setTopic(p.topic);
      registry.add(conn);
      try {
        await conn.start(signal);
      } catch (err) {
        // Nothing is left behind after a failed Connect.
        registry.remove(id);
        conn.close();
        throw err;
      }
      logger.info("connected", { connection_id: id, url: url.origin + url.pathname, protocol: conn.protocol });
      return conn;
    },

    get,

    list(filters = []) {
      const out: ManagedConnection[] = [];
      for (const c of registry.values()) {
        if (filters.every((f) => (f.value === "" ? c.tags.has(f.key) : c.tags.get(f.key) === f.value))) out.push(c);
      }
      return out;
    },

    disconnect(id) {
      const c = get(id);
      registry.remove(id);
      c.close(1000, "client disconnect");
    },

    async reconnect(id, signal) {
      const c = get(id);
      await c.reconnect(signal);
      return c;
    },

    startPublish(id, topic) {
      validateTopic(topic);
      get(id).setTopic(topic);
    },

    stopPublish(id) {
      get(id).setTopic("");
    },

    setTag(id, key, value) {
      const c = get(id);
      validateTag(key, value);
      if (!c.tags.has(key)) validateTagCount(c.tags.size + 1);
      c.tags.set(key, value);
    },

    getTag(id, key) {
      const c = get(id);
      if (key === "") throw invalid("tag key is empty");
      const v = c.tags.get(key);
      if (v === undefined) throw new ConnectError(`connection ${id} has no tag ${JSON.stringify(key)}`, Code.NotFound);
      return v;
    },

    setTags(id, tags) {
      const c = get(id);
      const entries = Object.entries(tags);
      for (const [k, v] of entries) validateTag(k, v);
      const added = entries.filter(([k]) => !c.tags.has(k)).length;
      validateTagCount(c.tags.size + added);
      for (const [k, v] of entries) c.tags.set(k, v);
    },

    getTags(id) {
      return Object.fromEntries(get(id).tags);
    },

    close() {
      if (closed) return;
      closed = true;
      for (const c of [...registry.values()]) {
        registry.remove(c.id);
        c.close(1001, "server shutting down");
      }
    },
  };
}
