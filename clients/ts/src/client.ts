/**
 * The TypeScript client of the WebSocketManager service: the operations of the Python client,
 * in camelCase, over any Connect `Transport` (gRPC, gRPC-Web or Connect; Node or browser).
 *
 * Every method resolves to the service's protobuf response and rejects with a `ConnectError`
 * that carries the service's code (`err.code`, `err.rawMessage`). This file is browser-safe:
 * it imports no Node module, so that bundles for the web never pull one in.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import {
  ConnectRequestSchema,
  CorrelationMode,
  WebSocketManager,
  type ConnectResponse,
  type DisconnectResponse,
  type GetTagResponse,
  type GetTagsResponse,
  type ListResponse,
  type OutboundMessage,
  type ReconnectResponse,
  type SendRawResponse,
  type SendResponse,
  type SetTagResponse,
  type SetTagsResponse,
  type StartPublishResponse,
  type StopPublishResponse,
} from "../../../gen/virtufin/websocketmanager_pb.js";
import { createSubscription, type Subscription, type SubscribeFilter } from "./subscription.ts";

/** `timeoutMs` of `send` when the caller gives none (as the Python client). */
export const DEFAULT_SEND_TIMEOUT_MS = 5000;
/** What the service waits for a Send reply when `timeoutMs` is 0. */
export const SERVER_DEFAULT_SEND_TIMEOUT_MS = 10_000;
/**
 * Added to a Send's `timeoutMs` to get its RPC deadline, so that the service's own
 * DEADLINE_EXCEEDED (which says what it waited for) reaches the caller before the client-side
 * deadline fires.
 */
export const SEND_DEADLINE_MARGIN_MS = 5000;
export const OCTET_STREAM = "application/octet-stream";

/** A message for the upstream: text as is, or bytes (sent as a binary frame, base64 on the wire). */
export type Payload = string | Uint8Array;

/** Options of every call. */
export interface CallOptions {
  /** Cancels the call; it then rejects with a ConnectError of code CANCELED. */
  signal?: AbortSignal;
  /** RPC deadline in milliseconds; default: the client's `defaultDeadlineMs`. 0: none. */
  deadlineMs?: number;
  /** Extra request headers of this call. */
  headers?: HeadersInit;
}

export interface WebSocketManagerClientOptions {
  /**
   * Default RPC deadline of unary calls in milliseconds; 0 (the default) means none. A `send`
   * always waits at least its `timeoutMs` plus `SEND_DEADLINE_MARGIN_MS`; `subscribe` streams
   * have no default deadline.
   */
  defaultDeadlineMs?: number;
  /** Headers sent on every call (e.g. a tracing id); per-call headers are added after them. */
  headers?: HeadersInit;
}

export interface ReconnectPolicyInit {
  /** First delay; later delays double up to `maxDelayMs`, with full jitter. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Attempts before giving up (status disconnected); 0 means unlimited. */
  maxAttempts?: number;
}

export interface HeartbeatPolicyInit {
  /** Interval of WebSocket pings; 0 disables. */
  pingIntervalMs?: number;
  /** No pong within this time after a ping means the connection is dead. */
  pongTimeoutMs?: number;
  /** No inbound frame for this long means the connection is dead; 0 disables. */
  staleTimeoutMs?: number;
}

export type CorrelationModeName = "json-field" | "uuid-prefix";

export interface CorrelationInit {
  /** Default `"json-field"`. */
  mode?: CorrelationModeName | CorrelationMode;
  /** JSON field mode: the field that carries the key. Default `"id"`. */
  field?: string;
}

/** An on-open message: text, bytes (a binary frame), or a message with its content type. */
export type OutboundInit = Payload | { message: string; contentType?: string };

export interface ConnectOptions extends Omit<CallOptions, "headers"> {
  /** Reconnect after an unexpected close, error or dead heartbeat. Default false. */
  autoReconnect?: boolean;
  /** Metadata of the caller's, never sent upstream. */
  tags?: Record<string, string>;
  /**
   * Extra HTTP headers of the upstream's opening handshake (e.g. an API key); never echoed by
   * List. Not headers of this RPC: those are `callHeaders`.
   */
  headers?: Record<string, string>;
  /** WebSocket subprotocols to offer, in order of preference. */
  subprotocols?: string[];
  /** Messages sent after every open (the first and every reconnect), in order. */
  onOpen?: OutboundInit[];
  /** Overrides of the service's reconnect defaults. */
  reconnect?: ReconnectPolicyInit;
  /** Overrides of the service's heartbeat defaults. */
  heartbeat?: HeartbeatPolicyInit;
  /** How Send matches replies. */
  correlation?: CorrelationInit;
  /** Publish every inbound frame to this topic from the first frame on. */
  topic?: string;
  /** Handshake timeout; the service default when unset or 0. */
  handshakeTimeoutMs?: number;
  /** Publish without keeping the order of frames (faster). Default false. */
  publishUnordered?: boolean;
  /** Request headers of this RPC (not of the upstream handshake: that is `headers`). */
  callHeaders?: HeadersInit;
}

export interface SendOptions extends CallOptions {
  /** How long the service waits for the reply; 0 means its default (10000). Default 5000. */
  timeoutMs?: number;
  /**
   * `application/json`, `text/plain`, or `application/octet-stream` with a base64 message.
   * A Uint8Array message is always sent as `application/octet-stream`.
   */
  contentType?: string;
}

export interface SendRawOptions extends CallOptions {
  /** `text/*`, `application/json` or empty: a text frame; `application/octet-stream`: binary. */
  contentType?: string;
}

/** Tag filters of `list`: a record of key to value, or key/value pairs. All must match. */
export type TagFilters = Record<string, string> | Array<{ key: string; value: string } | [string, string]>;

export class WebSocketManagerClient {
  readonly #rpc: Client<typeof WebSocketManager>;
  readonly #defaultDeadlineMs: number;
  readonly #headers: HeadersInit | undefined;

  /**
   * @param transport Any Connect transport: see `createWebTransport` (browsers, Node's fetch)
   *   and `createNodeTransport` (the `/node` entry: gRPC over HTTP/2, or HTTP/1.1).
   */
  constructor(transport: Transport, options: WebSocketManagerClientOptions = {}) {
    this.#rpc = createClient(WebSocketManager, transport);
    this.#defaultDeadlineMs = options.defaultDeadlineMs ?? 0;
    this.#headers = options.headers;
  }

  // Connections

  /** Opens a WebSocket connection; resolves once the handshake has succeeded. */
  connect(url: string, options: ConnectOptions = {}): Promise<ConnectResponse> {
    return this.#call(() => {
      const request = create(ConnectRequestSchema, {
        url,
        autoReconnect: options.autoReconnect ?? false,
        tags: options.tags ?? {},
        headers: options.headers ?? {},
        subprotocols: options.subprotocols ?? [],
        onOpen: (options.onOpen ?? []).map(toOutbound),
        reconnect: options.reconnect,
        heartbeat: options.heartbeat,
        correlation: options.correlation
          ? { mode: toCorrelationMode(options.correlation.mode), field: options.correlation.field ?? "" }
          : undefined,
        topic: options.topic ?? "",
        handshakeTimeoutMs: options.handshakeTimeoutMs ?? 0,
        publishUnordered: options.publishUnordered ?? false,
      });
      return this.#rpc.connect(request, this.#options({ ...options, headers: options.callHeaders }));
    });
  }

  /** Lists the connections, oldest first; only those with all `filters` tags when given. */
  list(filters?: TagFilters, options: CallOptions = {}): Promise<ListResponse> {
    return this.#call(() => this.#rpc.list({ filters: toTagFilters(filters) }, this.#options(options)));
  }

  /** Closes a connection (code 1000) and removes it. */
  disconnect(id: string, options: CallOptions = {}): Promise<DisconnectResponse> {
    return this.#call(() => this.#rpc.disconnect({ id }, this.#options(options)));
  }

  /**
   * Opens a disconnected connection again (same id, topic, tags and options), or restarts the
   * reconnect cycle of a reconnecting one at once. Resolves once it is connected.
   */
  reconnect(id: string, options: CallOptions = {}): Promise<ReconnectResponse> {
    return this.#call(() => this.#rpc.reconnect({ id }, this.#options(options)));
  }

  // Messages

  /**
   * Sends a message and waits for the correlated reply. The reply is in `response`, its
   * content type in `contentType` (a binary reply comes as base64, `application/octet-stream`).
   * The RPC deadline defaults to the wait plus a margin, so the service's DEADLINE_EXCEEDED
   * arrives first.
   */
  send(id: string, message: Payload, options: SendOptions = {}): Promise<SendResponse> {
    return this.#call(() => {
      const [text, contentType] = toPayload(message, options.contentType ?? "");
      const timeoutMs = options.timeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
      const waitMs = timeoutMs > 0 ? timeoutMs : SERVER_DEFAULT_SEND_TIMEOUT_MS;
      const deadlineMs = options.deadlineMs ?? Math.max(this.#defaultDeadlineMs, waitMs + SEND_DEADLINE_MARGIN_MS);
      return this.#rpc.send({ id, message: text, timeoutMs, contentType }, this.#options({ ...options, deadlineMs }));
    });
  }

  /** Sends a message without waiting for anything. */
  sendRaw(id: string, message: Payload, options: SendRawOptions = {}): Promise<SendRawResponse> {
    return this.#call(() => {
      const [text, contentType] = toPayload(message, options.contentType ?? "");
      return this.#rpc.sendRaw({ id, message: text, contentType }, this.#options(options));
    });
  }

  // Publishing

  /** Publishes every later inbound frame of the connection to a pub/sub topic. */
  startPublish(id: string, topic: string, options: CallOptions = {}): Promise<StartPublishResponse> {
    return this.#call(() => this.#rpc.startPublish({ id, topic }, this.#options(options)));
  }

  /** Stops publishing the connection's inbound frames. */
  stopPublish(id: string, options: CallOptions = {}): Promise<StopPublishResponse> {
    return this.#call(() => this.#rpc.stopPublish({ id }, this.#options(options)));
  }

  /**
   * Streams inbound messages, lifecycle events and snapshots. The call starts at once; iterate
   * the result with `for await`. Each item is a `SubscribeResponse` whose `event.case` is
   * `"message"`, `"lifecycle"` or `"snapshot"`. Iteration ends quietly when `signal` aborts,
   * on `cancel()` or when the loop is left; a failed stream throws its ConnectError.
   */
  subscribe(filter: SubscribeFilter = {}, options: CallOptions = {}): Subscription {
    // Streams have no default deadline: only an explicit one applies.
    const callOptions = this.#options({ ...options, deadlineMs: options.deadlineMs ?? 0 });
    return createSubscription((signal) => this.#rpc.subscribe(filter, { ...callOptions, signal }), options.signal);
  }

  // Tags

  /** Sets one tag of a connection. */
  setTag(id: string, key: string, value: string, options: CallOptions = {}): Promise<SetTagResponse> {
    return this.#call(() => this.#rpc.setTag({ id, key, value }, this.#options(options)));
  }

  /** Gets one tag of a connection; NOT_FOUND when the connection has no such tag. */
  getTag(id: string, key: string, options: CallOptions = {}): Promise<GetTagResponse> {
    return this.#call(() => this.#rpc.getTag({ id, key }, this.#options(options)));
  }

  /** Sets several tags of a connection at once. */
  setTags(id: string, tags: Record<string, string>, options: CallOptions = {}): Promise<SetTagsResponse> {
    return this.#call(() => this.#rpc.setTags({ id, tags }, this.#options(options)));
  }

  /** Gets all tags of a connection. */
  getTags(id: string, options: CallOptions = {}): Promise<GetTagsResponse> {
    return this.#call(() => this.#rpc.getTags({ id }, this.#options(options)));
  }

  #options(options: CallOptions): { signal?: AbortSignal; timeoutMs?: number; headers?: Headers } {
    const headers = new Headers(this.#headers);
    if (options.headers) new Headers(options.headers).forEach((value, key) => headers.append(key, value));
    const deadlineMs = options.deadlineMs ?? this.#defaultDeadlineMs;
    return {
      signal: options.signal,
      // Connect treats a timeout <= 0 as "no deadline", overriding a transport default.
      timeoutMs: deadlineMs > 0 ? deadlineMs : undefined,
      headers,
    };
  }

  // Connect already rejects with ConnectError; a bad argument caught while building the
  // request becomes a rejected promise with one too, so callers handle one error type.
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw ConnectError.from(err);
    }
  }
}

function toPayload(message: Payload, contentType: string): [string, string] {
  if (typeof message === "string") return [message, contentType];
  if (contentType !== "" && contentType !== OCTET_STREAM) {
    throw new ConnectError(`a binary message is sent as ${OCTET_STREAM}, not ${contentType}`, Code.InvalidArgument);
  }
  return [bytesToBase64(message), OCTET_STREAM];
}

function toOutbound(item: OutboundInit): Pick<OutboundMessage, "message" | "contentType"> {
  if (typeof item === "string" || item instanceof Uint8Array) {
    const [message, contentType] = toPayload(item, "");
    return { message, contentType };
  }
  return { message: item.message, contentType: item.contentType ?? "" };
}

function toCorrelationMode(mode: CorrelationInit["mode"]): CorrelationMode {
  switch (mode) {
    case undefined:
      return CorrelationMode.UNSPECIFIED;
    case "json-field":
      return CorrelationMode.JSON_FIELD;
    case "uuid-prefix":
      return CorrelationMode.UUID_PREFIX;
    default:
      if (mode in CorrelationMode) return mode;
      throw new ConnectError(`unknown correlation mode ${String(mode)}`, Code.InvalidArgument);
  }
}

function toTagFilters(filters: TagFilters | undefined): Array<{ key: string; value: string }> {
  if (filters === undefined) return [];
  if (!Array.isArray(filters)) return Object.entries(filters).map(([key, value]) => ({ key, value }));
  return filters.map((f) => (Array.isArray(f) ? { key: f[0], value: f[1] } : { key: f.key, value: f.value }));
}

/** Base64 of bytes without Node's Buffer, so that the client runs in browsers too. */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  // Chunks keep String.fromCharCode's argument count far below engine limits.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Bytes of a base64 string (e.g. a binary reply, `contentType` `application/octet-stream`). */
export function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
