/**
 * One upstream WebSocket and everything that keeps it useful: the status state machine,
 * heartbeat and stale detection, reconnect with backoff and on-open replay, correlated Sends,
 * statistics, and the hand-off of inbound frames to publishing and Subscribe streams.
 *
 * Status moves only through `transition()`, which emits exactly one lifecycle event per
 * change; an error event is always emitted before the transition it causes.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { SecureContext } from "node:tls";
import type WebSocket from "ws";
import type { Logger } from "../logger.ts";
import type { ConnectionStatus, InboundFrame, LifecycleEvent, LifecycleType } from "../publish/events.ts";
import type { PublishChannel } from "../publish/publish-pipeline.ts";
import { attemptsExhausted, backoffDelayMs, type BackoffPolicy } from "./backoff.ts";
import type { Correlator } from "./correlation.ts";
import { decodeInbound, encodeOutbound } from "./frame-codec.ts";
import { OpenError, openSocket } from "./open-socket.ts";
import type { UrlPolicy } from "./url-policy.ts";

export interface OutboundMessage {
  message: string;
  contentType: string;
}

export interface HeartbeatPolicy {
  /** 0 disables pings. */
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /** 0 disables stale detection. */
  staleTimeoutMs: number;
}

export interface ConnectionSettings {
  url: URL;
  autoReconnect: boolean;
  headers: Record<string, string>;
  subprotocols: string[];
  onOpen: OutboundMessage[];
  reconnect: BackoffPolicy;
  heartbeat: HeartbeatPolicy;
  correlator: Correlator;
  handshakeTimeoutMs: number;
  publishUnordered: boolean;
}

/** What a connection needs from the rest of the service. */
export interface ConnectionContext {
  instanceId: string;
  urlPolicy: UrlPolicy;
  logger: Logger;
  /** Inbound frames and lifecycle events go here (publishing and Subscribe streams). */
  sink: ConnectionSink;
  maxFrameBytes: number;
  maxBufferedBytes: number;
  defaultSendTimeoutMs: number;
  /** TLS context for wss:// upstreams; default Node's. */
  secureContext?: SecureContext;
  now?: () => number;
  random?: () => number;
}

export interface ConnectionSink {
  frame(frame: InboundFrame): void;
  /** Whether anyone outside publishing wants this connection's frames (Subscribe streams). */
  wantsFrames(connectionId: string): boolean;
  lifecycle(event: LifecycleEvent): void;
}

export interface ConnectionStatsSnapshot {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  reconnects: number;
  connectedSinceMs: number;
  lastMessageAtMs: number;
  lastError: string;
  pendingSends: number;
  reconnectAttempt: number;
}

interface PendingSend {
  resolve(reply: { data: string; contentType: string }): void;
  reject(err: ConnectError): void;
}

export class ManagedConnection {
  readonly id: string;
  readonly createdAtMs: number;
  readonly settings: ConnectionSettings;
  readonly tags = new Map<string, string>();
  readonly channel: PublishChannel;
  private readonly ctx: ConnectionContext;
  private readonly now: () => number;

  private _status: ConnectionStatus = "connecting";
  private _topic = "";
  private _protocol = "";
  private lastContentType = "";
  private ws: WebSocket | undefined;
  /** The open in progress (first connect, reconnect attempt or Reconnect RPC). */
  private opening: Promise<void> | undefined;
  private openAbort: AbortController | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private removed = false;
  private everOpened = false;
  /** Why the current socket died, recorded before its close event arrives. */
  private deathCause: { type: string; message: string } | undefined;
  private readonly pending = new Map<string, PendingSend>();
  private readonly stats = {
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    reconnects: 0,
    connectedSinceMs: 0,
    lastMessageAtMs: 0,
    lastError: "",
  };

  constructor(id: string, settings: ConnectionSettings, channel: PublishChannel, ctx: ConnectionContext) {
    this.id = id;
    this.settings = settings;
    this.channel = channel;
    this.ctx = ctx;
    this.now = ctx.now ?? Date.now;
    this.createdAtMs = this.now();
  }

  get status(): ConnectionStatus {
    return this._status;
  }
  get topic(): string {
    return this._topic;
  }
  get protocol(): string {
    return this._protocol;
  }
  get contentType(): string {
    return this.lastContentType;
  }
  get instanceId(): string {
    return this.ctx.instanceId;
  }
  get url(): string {
    return this.settings.url.href;
  }

  statsSnapshot(): ConnectionStatsSnapshot {
    return {
      ...this.stats,
      connectedSinceMs: this._status === "connected" ? this.stats.connectedSinceMs : 0,
      pendingSends: this.pending.size,
      reconnectAttempt: this.attempt,
    };
  }

  setTopic(topic: string): void {
    this._topic = topic;
  }

  /** First open. On failure the connection reports disconnected and the error is thrown. */
  async start(signal?: AbortSignal): Promise<void> {
    this.emit("connecting", "connecting", "");
    await this.openOrDisconnect(signal);
  }

  /** An open outside the reconnect cycle: a failure leaves the connection disconnected. */
  private async openOrDisconnect(signal?: AbortSignal): Promise<void> {
    try {
      await this.openOnce(signal);
    } catch (err) {
      const e = toOpenError(err);
      // A Disconnect during the open already reported "disconnected"; its abort is no error.
      if (!this.removed) {
        this.noteError(e.errorType, e.rawMessage);
        this.transition("disconnected");
      }
      throw e;
    }
  }

  /**
   * Reconnect RPC: a disconnected connection opens again; a reconnecting one tries now instead
   * of waiting out its backoff. Resolves once connected.
   */
  async reconnect(signal?: AbortSignal): Promise<void> {
    if (this._status === "connected") return;
    if (this.opening) {
      await this.opening;
      if (this.isConnected()) return;
    }
    this.assertNotRemoved();
    if (this._status === "disconnected") {
      this.attempt = 0;
      this.transition("connecting");
      await this.openOrDisconnect(signal);
      return;
    }
    // reconnecting, between attempts
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    await this.runAttempt(signal);
    if (!this.isConnected()) {
      throw new ConnectError(`reconnect failed: ${this.stats.lastError}`, Code.Unavailable);
    }
  }

  /** User Disconnect or shutdown: close code 1000 (or 1001 at shutdown), one disconnected event. */
  close(code: 1000 | 1001 = 1000, reason = "client disconnect"): void {
    if (this.removed) return;
    this.removed = true;
    this.openAbort?.abort(new ConnectError("connection was disconnected", Code.Unavailable));
    this.stopTimers();
    this.failPending(new ConnectError(`connection ${this.id} was disconnected`, Code.Unavailable));
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.removeAllListeners();
      ws.on("error", () => {});
      if (ws.readyState === ws.OPEN) {
        ws.close(code, reason);
        // Do not wait forever for the upstream's close frame.
        setTimeout(() => ws.terminate(), 2000).unref();
      } else {
        ws.terminate();
      }
    }
    if (this._status !== "disconnected") this.transition("disconnected");
    this.channel.close();
  }

  // ---- messaging ----

  sendRaw(message: string, contentType: string): void {
    const ws = this.requireOpen();
    const { payload, binary } = encodeOutbound(message, contentType);
    this.write(ws, payload, binary);
  }

  /**
   * Writes a request and waits for its reply: `timeoutMs` (0 = the server default), never
   * longer than `maxWaitMs` (what is left of the RPC deadline).
   */
  async send(
    message: string,
    contentType: string,
    timeoutMs: number,
    signal?: AbortSignal,
    maxWaitMs?: number,
  ): Promise<{ data: string; contentType: string }> {
    const ws = this.requireOpen();
    const prepared = this.settings.correlator.prepare(message, contentType);
    if (this.pending.has(prepared.key)) {
      throw new ConnectError(
        `a Send with the same correlation key is already waiting on connection ${this.id}`,
        Code.AlreadyExists,
      );
    }
    const requested = timeoutMs > 0 ? timeoutMs : this.ctx.defaultSendTimeoutMs;
    const effectiveTimeoutMs = maxWaitMs === undefined ? requested : Math.max(1, Math.min(requested, maxWaitMs));
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.pending.delete(prepared.key);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new ConnectError(`no reply within ${effectiveTimeoutMs} ms`, Code.DeadlineExceeded));
      }, effectiveTimeoutMs);
      const onAbort = () => {
        cleanup();
        const reason = signal?.reason as unknown;
        reject(reason instanceof ConnectError ? reason : new ConnectError("the call was cancelled", Code.Canceled));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(prepared.key, {
        resolve: (reply) => {
          cleanup();
          resolve(reply);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      });
      try {
        this.write(ws, prepared.payload, prepared.binary);
      } catch (err) {
        cleanup();
        reject(err as ConnectError);
      }
    });
  }

  private write(ws: WebSocket, payload: string | Buffer, binary: boolean): void {
    const size = typeof payload === "string" ? Buffer.byteLength(payload) : payload.length;
    if (size > this.ctx.maxFrameBytes) {
      throw new ConnectError(`message is ${size} bytes, over the frame limit of ${this.ctx.maxFrameBytes}`, Code.ResourceExhausted);
    }
    if (ws.bufferedAmount + size > this.ctx.maxBufferedBytes) {
      throw new ConnectError(
        `upstream write buffer is full (${ws.bufferedAmount} bytes waiting, limit ${this.ctx.maxBufferedBytes}); the upstream is not reading`,
        Code.ResourceExhausted,
      );
    }
    ws.send(payload, { binary });
    this.stats.messagesOut++;
    this.stats.bytesOut += size;
  }

  private requireOpen(): WebSocket {
    this.assertNotRemoved();
    const ws = this.ws;
    if (this._status !== "connected" || !ws || ws.readyState !== ws.OPEN) {
      throw new ConnectError(`connection ${this.id} is ${this._status}, not connected`, Code.FailedPrecondition);
    }
    return ws;
  }

  private assertNotRemoved(): void {
    if (this.removed) throw new ConnectError(`connection ${this.id} not found`, Code.NotFound);
  }

  private isConnected(): boolean {
    return this._status === "connected";
  }

  // ---- opening ----

  /** One open: resolve, handshake, on-open replay, then connected. Never two at once. */
  private openOnce(signal?: AbortSignal): Promise<void> {
    if (this.opening) return this.opening;
    const abort = new AbortController();
    this.openAbort = abort;
    const signals = signal ? AbortSignal.any([abort.signal, signal]) : abort.signal;
    const p = (async () => {
      const target = await this.ctx.urlPolicy.resolve(this.settings.url);
      if (signals.aborted) throw signals.reason;
      const ws = await openSocket({
        target,
        headers: this.settings.headers,
        subprotocols: this.settings.subprotocols,
        handshakeTimeoutMs: this.settings.handshakeTimeoutMs,
        maxFrameBytes: this.ctx.maxFrameBytes,
        secureContext: this.ctx.secureContext,
        signal: signals,
      });
      if (this.removed) {
        ws.terminate();
        throw new ConnectError(`connection ${this.id} was disconnected`, Code.Unavailable);
      }
      this.adopt(ws);
      // On-open messages go out in order before anyone is told the connection is usable, so
      // that a subscription is in place before the first Send or published frame.
      for (const m of this.settings.onOpen) {
        const { payload, binary } = encodeOutbound(m.message, m.contentType);
        ws.send(payload, { binary });
        this.stats.messagesOut++;
        this.stats.bytesOut += typeof payload === "string" ? Buffer.byteLength(payload) : payload.length;
      }
      this.stats.connectedSinceMs = this.now();
      if (this.everOpened) this.stats.reconnects++;
      this.everOpened = true;
      this.transition("connected");
      this.attempt = 0;
    })();
    this.opening = p;
    const clear = () => {
      if (this.opening === p) {
        this.opening = undefined;
        this.openAbort = undefined;
      }
    };
    p.then(clear, clear);
    return p;
  }

  private adopt(ws: WebSocket): void {
    this.ws = ws;
    this._protocol = ws.protocol;
    this.deathCause = undefined;
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: Buffer, isBinary: boolean) => this.onFrame(data, isBinary));
    ws.on("pong", () => {
      clearTimeout(this.pongTimer);
      this.pongTimer = undefined;
    });
    ws.on("error", (err: Error) => {
      this.deathCause ??= { type: "socket_error", message: err.message };
    });
    ws.on("close", (code: number, reason: Buffer) => this.onSocketClosed(ws, code, reason.toString("utf8")));
    this.startHeartbeat(ws);
  }

  // ---- inbound ----

  private onFrame(data: Buffer, isBinary: boolean): void {
    const now = this.now();
    this.stats.messagesIn++;
    this.stats.bytesIn += data.length;
    this.stats.lastMessageAtMs = now;
    if (this.pending.size > 0) {
      const reply = this.settings.correlator.match(data, isBinary, (k) => this.pending.has(k));
      if (reply) {
        // A matched reply goes to its caller only, never to publishing.
        this.pending.get(reply.key)!.resolve({ data: reply.data, contentType: reply.contentType });
        return;
      }
    }
    const topic = this._topic;
    const wanted = topic !== "" || this.ctx.sink.wantsFrames(this.id);
    if (!wanted) {
      // Nobody consumes the frame: only its content type is kept, without decoding a binary.
      this.lastContentType = isBinary ? "application/octet-stream" : decodeInbound(data, false).contentType;
      return;
    }
    const decoded = decodeInbound(data, isBinary);
    this.lastContentType = decoded.contentType;
    const frame: InboundFrame = {
      connectionId: this.id,
      url: this.settings.url.href,
      instanceId: this.ctx.instanceId,
      data: decoded.data,
      contentType: decoded.contentType,
      bytes: data.length,
      receivedAtMs: now,
      topic: "",
      sequence: 0,
    };
    if (topic !== "") this.channel.enqueue(topic, frame);
    this.ctx.sink.frame(frame);
  }

  // ---- staying alive ----

  private startHeartbeat(ws: WebSocket): void {
    const { pingIntervalMs, pongTimeoutMs, staleTimeoutMs } = this.settings.heartbeat;
    if (pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => {
        if (ws.readyState !== ws.OPEN) return;
        try {
          ws.ping();
        } catch {
          return;
        }
        if (!this.pongTimer && pongTimeoutMs > 0) {
          this.pongTimer = setTimeout(() => this.kill(ws, "heartbeat", `no pong within ${pongTimeoutMs} ms`), pongTimeoutMs);
        }
      }, pingIntervalMs);
    }
    if (staleTimeoutMs > 0) {
      const check = Math.max(10, Math.floor(staleTimeoutMs / 4));
      const openedAt = this.now();
      this.staleTimer = setInterval(() => {
        const last = Math.max(this.stats.lastMessageAtMs, openedAt);
        if (this.now() - last > staleTimeoutMs) this.kill(ws, "stale", `no inbound frame for ${staleTimeoutMs} ms`);
      }, check);
    }
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearInterval(this.staleTimer);
    clearTimeout(this.reconnectTimer);
    this.pingTimer = this.pongTimer = this.staleTimer = this.reconnectTimer = undefined;
  }

  /** Declares the socket dead; its close event then drives the transition. */
  private kill(ws: WebSocket, type: string, message: string): void {
    if (this.ws !== ws) return;
    this.deathCause = { type, message };
    ws.terminate();
  }

  private onSocketClosed(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws || this.removed) return;
    this.ws = undefined;
    this.stopTimers();
    const cause = this.deathCause ?? {
      type: "closed",
      message: `upstream closed the connection (code ${code}${reason ? ", " + reason : ""})`,
    };
    this.failPending(new ConnectError(`connection lost before the reply: ${cause.message}`, Code.Unavailable));
    this.noteError(cause.type, cause.message);
    if (this.settings.autoReconnect) {
      this.attempt = 0;
      this.transition("reconnecting");
      this.scheduleAttempt();
    } else {
      this.transition("disconnected");
    }
  }

  private scheduleAttempt(): void {
    if (this.removed) return;
    if (attemptsExhausted(this.attempt, this.settings.reconnect)) {
      this.transition("disconnected");
      return;
    }
    const delay = backoffDelayMs(this.attempt + 1, this.settings.reconnect, this.ctx.random);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.runAttempt();
    }, delay);
  }

  private async runAttempt(signal?: AbortSignal): Promise<void> {
    if (this.opening) return this.opening.catch(() => {});
    if (this.removed || this._status !== "reconnecting") return;
    this.attempt++;
    try {
      await this.openOnce(signal);
    } catch (err) {
      if (this.removed) return;
      const e = toOpenError(err);
      this.noteError(e.errorType, e.rawMessage);
      if (!this.reconnectTimer) this.scheduleAttempt();
    }
  }

  private failPending(err: ConnectError): void {
    for (const p of [...this.pending.values()]) p.reject(err);
    this.pending.clear();
  }

  // ---- lifecycle ----

  private noteError(type: string, message: string): void {
    this.stats.lastError = message;
    this.ctx.logger.warn("connection error", { connection_id: this.id, error_type: type, error: message, attempt: this.attempt });
    this.emit("error", this._status, this._status, type, message);
  }

  private transition(next: ConnectionStatus): void {
    const previous = this._status;
    if (previous === next) return;
    this._status = next;
    this.emit(next, next, previous);
  }

  private emit(type: LifecycleType, status: ConnectionStatus, previous: ConnectionStatus | "", errorType = "", errorMessage = ""): void {
    this.ctx.sink.lifecycle({
      type,
      connectionId: this.id,
      url: this.settings.url.href,
      instanceId: this.ctx.instanceId,
      status,
      previousStatus: previous,
      attempt: this.attempt,
      errorType,
      errorMessage,
      timeMs: this.now(),
    });
  }
}

function toOpenError(err: unknown): OpenError {
  if (err instanceof OpenError) return err;
  if (err instanceof ConnectError) return new OpenError(err.rawMessage, err.code, err.code === Code.InvalidArgument ? "policy" : "error", err);
  return new OpenError(`cannot open WebSocket: ${String((err as Error)?.message ?? err)}`, Code.Unavailable, "error", err);
}
