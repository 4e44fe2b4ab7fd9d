/**
 * Builds the whole service from a Config: publisher, publish pipeline, event hub, connection
 * manager, RPC services and the one-port server. Nothing listens until `listen()`. main.ts
 * calls this with the parsed configuration; tests call it with port 0 and their overrides.
 */
import { readFileSync } from "node:fs";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_virtufin_websocketmanager, WebSocketManager } from "../gen/virtufin/websocketmanager_pb.js";
import type { Config } from "./config.ts";
import { createConsoleHandler } from "./console/console-handler.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createConnectionManager, type ConnectionManager } from "./manager/connection-manager.ts";
import { createUrlPolicy } from "./manager/url-policy.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { registerRuntimeMetrics } from "./runtime-metrics.ts";
import { createDaprPublisher } from "./publish/dapr-publisher.ts";
import { createEventHub, type EventHub } from "./publish/event-hub.ts";
import { createInProcessPublisher } from "./publish/in-process-publisher.ts";
import { createPublishPipeline, type PublishPipeline } from "./publish/publish-pipeline.ts";
import type { Publisher } from "./publish/publisher.ts";
import { createWebSocketManagerService } from "./rpc/websocket-manager-service.ts";
import { createServer, type WsmServer } from "./server/create-server.ts";
import { createHealth, type Health } from "./server/health.ts";

export interface AppDeps {
  logger?: Logger;
  /** Replaces the publisher chosen from the config (tests inject their own). */
  publisher?: Publisher;
  /** Extra HTTP routes on the same port (the web console). */
  extraHttpHandler?: Parameters<typeof createServer>[0]["extraHttpHandler"];
}

export interface App {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly manager: ConnectionManager;
  readonly hub: EventHub;
  readonly pipeline: PublishPipeline;
  readonly publisher: Publisher;
  readonly health: Health;
  readonly server: WsmServer;
  listen(): Promise<{ port: number; host: string }>;
  /** Graceful shutdown in order; idempotent. */
  close(): Promise<void>;
}

export function createApp(config: Config, deps: AppDeps = {}): App {
  const logger = deps.logger ?? createLogger({ level: config.logLevel, base: { instance_id: config.instanceId } });
  const metrics = createMetrics();
  const runtimeMetrics = registerRuntimeMetrics(metrics);
  const publisher: Publisher =
    deps.publisher ??
    (config.daprHttpPort > 0
      ? createDaprPublisher({
          daprHttpPort: config.daprHttpPort,
          daprHost: config.daprHost,
          pubsubName: config.pubsubName,
          connections: config.daprConnections,
          pipelining: config.daprPipelining,
          bulkUnordered: config.daprBulkUnordered,
          requestTimeoutMs: config.publishTimeoutMs,
          logger,
          metrics,
        })
      : createInProcessPublisher());
  const hub = createEventHub({
    onDrop: (() => {
      const dropped = metrics.counter("wsm_subscribe_dropped_total", "Events a slow Subscribe stream lost.").labels();
      return (n: number) => dropped.inc(n);
    })(),
  });
  const pipeline = createPublishPipeline({
    publisher,
    logger,
    metrics,
    lifecycleTopic: config.lifecycleTopic,
    maxQueueMessages: config.publishQueueMessages,
    maxQueueBytes: config.publishQueueBytes,
    maxTotalQueueBytes: config.publishQueueTotalBytes,
    publishTimeoutMs: config.publishTimeoutMs,
    maxAttempts: config.publishMaxAttempts,
  });
  const manager = createConnectionManager({
    instanceId: config.instanceId,
    urlPolicy: createUrlPolicy({ blockPrivateAddresses: config.blockPrivateAddresses, allowedHosts: config.allowedHosts }),
    pipeline,
    hub,
    logger,
    metrics,
    defaults: {
      reconnect: {
        baseDelayMs: config.reconnectBaseDelayMs,
        maxDelayMs: config.reconnectMaxDelayMs,
        maxAttempts: config.reconnectMaxAttempts,
      },
      heartbeat: { pingIntervalMs: config.pingIntervalMs, pongTimeoutMs: config.pongTimeoutMs, staleTimeoutMs: config.staleTimeoutMs },
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      sendTimeoutMs: config.sendTimeoutMs,
    },
    maxConnections: config.maxConnections,
    maxFrameBytes: config.maxFrameBytes,
    maxBufferedBytes: config.maxBufferedBytes,
    upstreamCa: config.upstreamCaFile ? readFileSync(config.upstreamCaFile) : undefined,
  });
  const health = createHealth();
  health.addCheck("publisher", () => publisher.isReady());

  const server = createServer({
    logger,
    metrics,
    health,
    host: config.host,
    tls: config.tlsCertFile ? { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) } : undefined,
    corsAllowedOrigins: config.corsOrigins,
    authToken: config.authToken || undefined,
    maxMessageBytes: config.maxMessageBytes,
    maxConcurrentStreams: config.maxConcurrentStreams,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    http1HeadersTimeoutMs: config.http1HeadersTimeoutMs,
    http1RequestTimeoutMs: config.http1RequestTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    reflectionFiles: [file_virtufin_websocketmanager],
    registerServices(router: ConnectRouter) {
      router.service(WebSocketManager, createWebSocketManagerService({ manager, hub }));
    },
    // The web console at /, unless --console=false; tests may pass their own handler.
    extraHttpHandler: deps.extraHttpHandler ?? (config.console ? createConsoleHandler({ logger }).handle : undefined),
    // Shutdown order: upstream sockets close with 1001 (their lifecycle events still go out),
    // Subscribe streams end, then queued frames get what is left of the deadline.
    async onDrain() {
      manager.close();
      hub.close();
    },
    async onClosed() {
      await pipeline.close(Math.max(100, Math.floor(config.shutdownTimeoutMs / 2)));
      await publisher.close();
      runtimeMetrics.close();
    },
  });

  return {
    config,
    logger,
    metrics,
    manager,
    hub,
    pipeline,
    publisher,
    health,
    server,
    listen: () => server.listen(config.port),
    close: () => server.close(),
  };
}
