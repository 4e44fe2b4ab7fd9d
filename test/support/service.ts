/** The real service on port 0, as main.ts builds it, plus connect-node clients for it. */
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { WebSocketManager } from "../../gen/virtufin/websocketmanager_pb.js";
import { createApp, type App, type AppDeps } from "../../src/app.ts";
import { defaultConfig, type Config } from "../../src/config.ts";
import { silentLogger } from "../../src/logger.ts";

export interface RunningService {
  app: App;
  port: number;
  baseUrl: string;
  close(): Promise<void>;
}

// Test defaults, shortened from production (1 s reconnect base, 15 s pings) so that
// reconnect scenarios finish in milliseconds.
export const testConfig: Partial<Config> = {
  port: 0,
  host: "127.0.0.1",
  instanceId: "test-instance",
  logLevel: "silent",
  reconnectBaseDelayMs: 20,
  reconnectMaxDelayMs: 200,
  pingIntervalMs: 0,
  handshakeTimeoutMs: 3000,
  shutdownTimeoutMs: 3000,
};

export async function startService(overrides: Partial<Config> = {}, deps: AppDeps = {}): Promise<RunningService> {
  const app = createApp(defaultConfig({ ...testConfig, ...overrides }), { logger: silentLogger, ...deps });
  const { port } = await app.listen();
  const scheme = overrides.tlsCertFile ? "https" : "http";
  return { app, port, baseUrl: `${scheme}://127.0.0.1:${port}`, close: () => app.close() };
}

export interface TransportCase {
  name: string;
  make(baseUrl: string): Transport;
}

// Tiny idle timeouts so that no pooled HTTP/2 session outlives a test.
const h2 = { idleConnectionTimeoutMs: 200 } as const;

/** Every protocol and HTTP version the service serves, as connect-node clients speak them. */
export const transports: TransportCase[] = [
  { name: "gRPC (HTTP/2)", make: (baseUrl) => createGrpcTransport({ baseUrl, ...h2 }) },
  { name: "gRPC-Web (HTTP/1.1)", make: (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }) },
  { name: "gRPC-Web (HTTP/2)", make: (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "2", ...h2 }) },
  {
    name: "Connect JSON (HTTP/1.1)",
    make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false }),
  },
  {
    name: "Connect JSON (HTTP/2)",
    make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false, ...h2 }),
  },
  {
    name: "Connect binary (HTTP/2)",
    make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, ...h2 }),
  },
];

export type WsmClient = Client<typeof WebSocketManager>;

export function clientFor(transport: Transport): WsmClient {
  return createClient(WebSocketManager, transport);
}
