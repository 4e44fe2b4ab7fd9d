/**
 * The one-port server: gRPC, gRPC-Web and Connect over HTTP/1.1 and HTTP/2 (cleartext with
 * prior knowledge, or TLS with ALPN), plus reflection, health, `/healthz`, `/readyz` and
 * `/metrics`. Built apart from listening; `close()` drains in order under a hard deadline.
 *
 * One front listener owns the port. Cleartext sockets are routed by their first bytes (see
 * protocol-sniffer.ts), TLS sockets by ALPN, to a plain `http.Server` or `http2.Server` that
 * never listens itself; both run the same Connect handler. Routing TLS ourselves rather than
 * using `createSecureServer({ allowHTTP1 })` gives HTTP/1 over TLS the same slow-client
 * timeouts as cleartext, and one drain path for both.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { DescFile } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { file_grpc_health_v1_health, Health as HealthDesc } from "../../gen/grpc/health/v1/health_pb.js";
import {
  file_grpc_reflection_v1_reflection,
  ServerReflection as ServerReflectionV1,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  file_grpc_reflection_v1alpha_reflection,
  ServerReflection as ServerReflectionV1alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { createBearerAuth } from "../rpc/bearer-auth.ts";
import { createHealthService } from "../rpc/health-service.ts";
import { createReflectionServices } from "../rpc/reflection-service.ts";
import { createRpcTelemetry } from "../rpc/rpc-telemetry.ts";
import { createConnectionTracker } from "./connection-tracker.ts";
import { createCors } from "./cors.ts";
import type { Health } from "./health.ts";
import { createHttpEndpoints, type ExtraHttpHandler } from "./http-endpoints.ts";
import type { HttpRequest } from "./http-types.ts";
import { createProtocolSniffer } from "./protocol-sniffer.ts";
import { createStreamCloser } from "./stream-closer.ts";

export interface ServerOptions {
  logger: Logger;
  metrics: Metrics;
  /** Registers the application's services (WebSocketManager). */
  registerServices(router: ConnectRouter): void;
  /**
   * Files served by reflection (with their dependencies), e.g. `[file_virtufin_websocketmanager]`.
   * Health's and reflection's own files are added.
   */
  reflectionFiles: readonly DescFile[];
  /** Readiness shared with the application (its checks, the shutdown flag). */
  health: Health;
  /** Address to bind. Default "127.0.0.1". */
  host?: string;
  /** PEM certificate chain and key: serve TLS only, h2 and http/1.1 by ALPN. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Origins allowed by CORS; "*" for any; empty (the default): no CORS headers. */
  corsAllowedOrigins?: readonly string[];
  /** When set, every RPC except health, and `/metrics`, need `Authorization: Bearer <token>`. */
  authToken?: string;
  /** Largest RPC message read or written, in bytes. Default 4 MiB. */
  maxMessageBytes?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. Default 1000. */
  maxConcurrentStreams?: number;
  /**
   * Time for a new connection to send its first bytes (and finish TLS), and for an HTTP/1
   * request to send its complete headers. Default 10000.
   */
  http1HeadersTimeoutMs?: number;
  /** Time for an HTTP/1 request to arrive completely, body included. Default 60000. */
  http1RequestTimeoutMs?: number;
  /** Idle HTTP/1 keep-alive sockets and HTTP/2 sessions without open streams close after this. Default 60000. */
  idleTimeoutMs?: number;
  /** Hard deadline of `close()`, in ms; whatever is still open then is destroyed. Default 10000. */
  shutdownTimeoutMs?: number;
  /** Called by `close()` after health turned NOT_SERVING, before connections drain. */
  onDrain?: () => Promise<void>;
  /** Called by `close()` last, after connections are gone (or the deadline passed). */
  onClosed?: () => Promise<void>;
  /**
   * Serves paths that are neither RPCs nor the built-in endpoints; returns true when it
   * handled the request. Its context says whether the request carries the token.
   */
  extraHttpHandler?: ExtraHttpHandler;
}

export interface WsmServer {
  /** Binds `port` (0: any free port). Resolves with the bound address. */
  listen(port: number): Promise<{ port: number; host: string }>;
  /** Graceful shutdown in order, under `shutdownTimeoutMs`; idempotent. */
  close(): Promise<void>;
  /** Base URL once listening, e.g. "http://127.0.0.1:5002". */
  readonly url: string;
}

const SHUTTING_DOWN = new ConnectError("server is shutting down", Code.Unavailable);

export function createServer(options: ServerOptions): WsmServer {
  const { logger, health } = options;
  const host = options.host ?? "127.0.0.1";
  const headersTimeoutMs = options.http1HeadersTimeoutMs ?? 10_000;
  const requestTimeoutMs = Math.max(options.http1RequestTimeoutMs ?? 60_000, headersTimeoutMs);
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;

  const telemetry = createRpcTelemetry({ logger, metrics: options.metrics });
  const streams = createStreamCloser();
  const auth = options.authToken ? createBearerAuth({ token: options.authToken }) : undefined;
  const reflection = createReflectionServices({
    files: [
      ...options.reflectionFiles,
      file_grpc_health_v1_health,
      file_grpc_reflection_v1_reflection,
      file_grpc_reflection_v1alpha_reflection,
    ],
  });
  const isAuthorized = (req: HttpRequest) => auth === undefined || auth.isAuthorized(req.headers.authorization);

  const handleRpc = connectNodeAdapter({
    routes(router) {
      options.registerServices(router);
      router.service(HealthDesc, createHealthService(health));
      router.service(ServerReflectionV1, reflection.v1);
      router.service(ServerReflectionV1alpha, reflection.v1alpha);
    },
    // Outermost first: telemetry sees the final code, including the shutdown of a stream.
    interceptors: [telemetry.interceptor, streams.interceptor],
    requestGate:
      auth === undefined
        ? undefined
        : (context: HandlerContext) => {
            try {
              auth.gate(context);
            } catch (err) {
              telemetry.recordRejected(context.method, ConnectError.from(err));
              throw err;
            }
          },
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    fallback: createHttpEndpoints({
      health,
      metrics: options.metrics,
      isAuthorized,
      extraHttpHandler: options.extraHttpHandler,
    }),
  });
  const cors = createCors({ allowedOrigins: options.corsAllowedOrigins ?? [] });
  const tracker = createConnectionTracker({ idleTimeoutMs });

  const http1Server = http.createServer({
    headersTimeout: headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: idleTimeoutMs,
    // Node checks both timeouts on this interval (default 30 s, far coarser than a short
    // headers timeout).
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeoutMs / 4))),
  });
  http1Server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    tracker.onHttp1Request(res);
    if (cors !== undefined && cors.handle(req, res)) return;
    handleRpc(req, res);
  });

  const http2Server = http2.createServer({ settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 1000 } });
  http2Server.on("request", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    if (cors !== undefined && cors.handle(req, res)) return;
    handleRpc(req, res);
  });
  http2Server.on("session", (session: http2.ServerHttp2Session) => tracker.addHttp2Session(session));
  http2Server.on("sessionError", (err: Error) => logger.debug("http2 session error", { err }));

  const toHttp1 = (socket: net.Socket) => {
    tracker.addHttp1Socket(socket);
    http1Server.emit("connection", socket);
    // The HTTP/1 parser reads the socket's handle directly; the bytes the sniffer pushed back
    // sit in the stream's buffer and only flow (before any newer bytes) once resumed.
    socket.resume();
  };
  const toHttp2 = (socket: net.Socket) => http2Server.emit("connection", socket);
  const sniffer = createProtocolSniffer({ onHttp1: toHttp1, onHttp2: toHttp2, firstBytesTimeoutMs: headersTimeoutMs });

  // Errors on a socket (a reset mid-sniff, say) must never become uncaught exceptions; the
  // HTTP servers add their own handling once they own the socket.
  const ignoreSocketError = () => undefined;
  let front: net.Server;
  if (options.tls === undefined) {
    front = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      socket.on("error", ignoreSocketError);
      sniffer.accept(socket);
    });
  } else {
    front = tls.createServer({
      cert: options.tls.cert,
      key: options.tls.key,
      ALPNProtocols: ["h2", "http/1.1"],
      allowHalfOpen: true,
      noDelay: true,
      handshakeTimeout: headersTimeoutMs,
    });
    front.on("secureConnection", (socket: tls.TLSSocket) => {
      socket.on("error", ignoreSocketError);
      // A handshake that began before close() finishes after it: too late to be served.
      if (closing !== undefined) return void socket.destroy();
      // HTTP/2 over TLS requires ALPN (RFC 9113), so a client that offers none speaks HTTP/1.
      if (socket.alpnProtocol === "h2") toHttp2(socket);
      else toHttp1(socket);
    });
    front.on("tlsClientError", (err: Error) => logger.debug("tls handshake failed", { err }));
  }

  let bound: { port: number; host: string } | undefined;
  let closing: Promise<void> | undefined;

  const listen = (port: number) =>
    new Promise<{ port: number; host: string }>((resolve, reject) => {
      if (closing !== undefined) return reject(new Error("server is closed"));
      if (bound !== undefined) return reject(new Error("server is already listening"));
      front.once("error", reject);
      front.listen(port, host, () => {
        front.off("error", reject);
        front.on("error", (err) => logger.error("listener error", { err }));
        // The HTTP/1 request and headers timeouts are enforced by a connection list that Node
        // sets up when a server emits "listening". This one never listens (the front listener
        // hands it sockets), so it is told when the port is open.
        http1Server.emit("listening");
        tracker.start();
        const address = front.address() as net.AddressInfo;
        bound = { port: address.port, host };
        resolve(bound);
      });
    });

  const shutdown = async () => {
    const startedAt = performance.now();
    let deadlineTimer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"deadline">((resolve) => {
      deadlineTimer = setTimeout(() => resolve("deadline"), shutdownTimeoutMs);
    });
    const beforeDeadline = async (step: string, work: () => Promise<unknown>) => {
      const outcome = await Promise.race([
        Promise.resolve().then(work).then(
          () => "done" as const,
          (err: unknown) => {
            logger.error(`shutdown: ${step} failed`, { err });
            return "done" as const;
          },
        ),
        deadline,
      ]);
      if (outcome === "deadline") logger.warn(`shutdown: deadline reached during ${step}`, { shutdown_timeout_ms: shutdownTimeoutMs });
      return outcome === "done";
    };

    // 1. No new connections; the ones still deciding their protocol have sent no request.
    if (bound !== undefined) front.close();
    sniffer.close();
    // 2. Load balancers and watchers learn first.
    health.setShuttingDown();
    // 3. The application closes its upstream connections while RPCs still work.
    const { onDrain, onClosed } = options;
    let inTime = onDrain === undefined || (await beforeDeadline("onDrain", onDrain));
    // 4. End streams, GOAWAY to HTTP/2 sessions, close HTTP/1 sockets after their responses.
    if (inTime) {
      streams.close(SHUTTING_DOWN);
      inTime = await beforeDeadline("draining connections", () => tracker.drain());
    }
    streams.close(SHUTTING_DOWN);
    tracker.destroyAll();
    http1Server.close();
    // 5. The application stops what outlives connections (the publisher).
    if (onClosed !== undefined) await beforeDeadline("onClosed", onClosed);
    clearTimeout(deadlineTimer);
    logger.info("server closed", { duration_ms: Math.round(performance.now() - startedAt), graceful: inTime });
  };

  return {
    listen,
    close() {
      closing ??= shutdown();
      return closing;
    },
    get url() {
      if (bound === undefined) throw new Error("server is not listening");
      const scheme = options.tls === undefined ? "http" : "https";
      const h = net.isIPv6(bound.host) ? `[${bound.host}]` : bound.host;
      return `${scheme}://${h}:${bound.port}`;
    },
  };
}
