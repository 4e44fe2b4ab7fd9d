/**
 * The transport-layer server on port 0 with a small WebSocketManager of the tests' own (the
 * real one lives elsewhere; these tests are about what sits between the socket and the
 * router), and connect-node clients for every protocol and HTTP version.
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type Interceptor,
  type ServiceImpl,
  type Transport,
} from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { file_virtufin_websocketmanager, WebSocketManager } from "../../gen/virtufin/websocketmanager_pb.js";
import { createLogger, silentLogger, type Logger } from "../../src/logger.ts";
import { createMetrics, type Metrics } from "../../src/metrics.ts";
import { createServer, type ServerOptions, type WsmServer } from "../../src/server/create-server.ts";
import { createHealth, type Health } from "../../src/server/health.ts";

export const FIXED_CONNECTION = {
  id: "11111111-2222-4333-8444-555555555555",
  url: "wss://stream.example/ws",
  status: "connected",
  topic: "ticks",
  instanceId: "test-instance",
  tags: { desk: "fx" },
  createdAt: timestampFromDate(new Date("2024-01-02T03:04:05Z")),
};

/** Holds calls until the test opens it; counts the calls waiting. */
export interface Gate {
  readonly waiting: number;
  open(): void;
  wait(): Promise<void>;
}

export function createGate(): Gate {
  let release!: () => void;
  const opened = new Promise<void>((r) => (release = r));
  let waiting = 0;
  return {
    get waiting() {
      return waiting;
    },
    open: () => release(),
    async wait() {
      waiting++;
      await opened;
      waiting--;
    },
  };
}

export interface FakeControls {
  /** When set, Send waits for this gate before answering. */
  sendGate?: Gate;
}

/**
 * List: one fixed connection. Connect: id derived from the url. Send: echoes, optionally held
 * at a gate. Disconnect "explode": a plain Error (becomes `internal`). GetTags "huge": a reply
 * larger than small write limits. Subscribe: one snapshot, then silence that ignores every
 * signal (a stream only the server's shutdown can end).
 */
export function fakeWebSocketManager(controls: FakeControls = {}): Partial<ServiceImpl<typeof WebSocketManager>> {
  return {
    list: () => ({ connections: [FIXED_CONNECTION] }),
    connect: (req) => ({ id: `id-for:${req.url}`, status: "connected" }),
    async send(req) {
      await controls.sendGate?.wait();
      return { response: `echo:${req.message}`, contentType: "text/plain" };
    },
    disconnect(req) {
      if (req.id === "explode") throw new Error("boom: invariant broken");
      if (req.id === "missing") throw new ConnectError(`connection ${req.id} not found`, Code.NotFound);
      return {};
    },
    getTags(req) {
      if (req.id === "huge") return { tags: { big: "x".repeat(64 * 1024) } };
      return { tags: FIXED_CONNECTION.tags };
    },
    async *subscribe() {
      yield { event: { case: "snapshot", value: { connections: [FIXED_CONNECTION] } } };
      await new Promise(() => undefined);
    },
  };
}

export interface TestServer {
  server: WsmServer;
  health: Health;
  metrics: Metrics;
  baseUrl: string;
  port: number;
  close(): Promise<void>;
}

export async function startTestServer(
  overrides: Partial<ServerOptions> = {},
  controls: FakeControls = {},
): Promise<TestServer> {
  const health = overrides.health ?? createHealth();
  const metrics = overrides.metrics ?? createMetrics();
  const server = createServer({
    logger: silentLogger,
    metrics,
    health,
    host: "127.0.0.1",
    reflectionFiles: [file_virtufin_websocketmanager],
    registerServices(router: ConnectRouter) {
      router.service(WebSocketManager, fakeWebSocketManager(controls));
    },
    // Short so that a failing test does not hang in teardown for the 10 s default.
    shutdownTimeoutMs: 3000,
    ...overrides,
  });
  const { port } = await server.listen(0);
  return { server, health, metrics, port, baseUrl: server.url, close: () => server.close() };
}

export interface LogRecord {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A debug-level logger that keeps parsed records for assertions. */
export function captureLogger(): { logger: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const logger = createLogger({ level: "debug", write: (line) => records.push(JSON.parse(line) as LogRecord) });
  return { logger, records };
}

export interface TransportCase {
  name: string;
  httpVersion: "1.1" | "2";
  make(baseUrl: string, extra?: { nodeOptions?: object; headers?: Record<string, string> }): Transport;
}

// Tiny idle timeout so that no pooled HTTP/2 session outlives a test.
const h2 = { idleConnectionTimeoutMs: 200 } as const;

/** Every protocol and HTTP version the server speaks, as connect-node clients speak them. */
export const transports: TransportCase[] = [
  {
    name: "gRPC over HTTP/2",
    httpVersion: "2",
    make: (baseUrl, extra = {}) => createGrpcTransport({ baseUrl, ...h2, ...withHeaders(extra) }),
  },
  {
    name: "gRPC-Web over HTTP/1.1",
    httpVersion: "1.1",
    make: (baseUrl, extra = {}) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", ...withHeaders(extra) }),
  },
  {
    name: "gRPC-Web over HTTP/2",
    httpVersion: "2",
    make: (baseUrl, extra = {}) => createGrpcWebTransport({ baseUrl, httpVersion: "2", ...h2, ...withHeaders(extra) }),
  },
  {
    name: "Connect JSON over HTTP/1.1",
    httpVersion: "1.1",
    make: (baseUrl, extra = {}) =>
      createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, ...withHeaders(extra) }),
  },
  {
    name: "Connect JSON over HTTP/2",
    httpVersion: "2",
    make: (baseUrl, extra = {}) =>
      createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false, ...h2, ...withHeaders(extra) }),
  },
  {
    name: "Connect binary over HTTP/1.1",
    httpVersion: "1.1",
    make: (baseUrl, extra = {}) =>
      createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true, ...withHeaders(extra) }),
  },
  {
    name: "Connect binary over HTTP/2",
    httpVersion: "2",
    make: (baseUrl, extra = {}) =>
      createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, ...h2, ...withHeaders(extra) }),
  },
];

function withHeaders(extra: { nodeOptions?: object; headers?: Record<string, string> }) {
  const { headers, nodeOptions } = extra;
  const setHeaders: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(headers ?? {})) req.header.set(k, v);
    return next(req);
  };
  return { ...(nodeOptions ? { nodeOptions } : {}), ...(headers ? { interceptors: [setHeaders] } : {}) };
}

/** The code a call failed with, or "ok". */
export async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}
