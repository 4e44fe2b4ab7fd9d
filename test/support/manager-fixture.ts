/** A connection manager wired like the service's, with the in-process publisher. */
import { silentLogger } from "../../src/logger.ts";
import { createMetrics, type Metrics } from "../../src/metrics.ts";
import { createConnectionManager, type ConnectionDefaults, type ConnectionManager } from "../../src/manager/connection-manager.ts";
import { createUrlPolicy, type UrlPolicyOptions } from "../../src/manager/url-policy.ts";
import type { CloudEvent } from "../../src/publish/cloud-event.ts";
import { createEventHub, type EventHub } from "../../src/publish/event-hub.ts";
import { createInProcessPublisher, type InProcessPublisher } from "../../src/publish/in-process-publisher.ts";
import { createPublishPipeline, type PublishPipeline } from "../../src/publish/publish-pipeline.ts";

export interface ManagerFixture {
  manager: ConnectionManager;
  hub: EventHub;
  pipeline: PublishPipeline;
  publisher: InProcessPublisher;
  metrics: Metrics;
  /** Every event the in-process publisher delivered, by topic. */
  published: Map<string, CloudEvent[]>;
  close(): Promise<void>;
}

// Shortened from the production defaults (1 s base, 15 s ping) so tests run in milliseconds.
export const fastDefaults: ConnectionDefaults = {
  reconnect: { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 0 },
  heartbeat: { pingIntervalMs: 0, pongTimeoutMs: 0, staleTimeoutMs: 0 },
  handshakeTimeoutMs: 2000,
  sendTimeoutMs: 2000,
};

export function createManagerFixture(
  options: { defaults?: Partial<ConnectionDefaults>; urlPolicy?: UrlPolicyOptions; maxConnections?: number; maxFrameBytes?: number; upstreamCa?: string } = {},
): ManagerFixture {
  const metrics = createMetrics();
  const publisher = createInProcessPublisher();
  const published = new Map<string, CloudEvent[]>();
  publisher.onTopic("*", (topic, event) => {
    let list = published.get(topic);
    if (!list) published.set(topic, (list = []));
    list.push(event);
  });
  const hub = createEventHub();
  const pipeline = createPublishPipeline({ publisher, logger: silentLogger, metrics });
  const manager = createConnectionManager({
    instanceId: "test-instance",
    urlPolicy: createUrlPolicy(options.urlPolicy),
    pipeline,
    hub,
    logger: silentLogger,
    metrics,
    defaults: { ...fastDefaults, ...options.defaults },
    maxConnections: options.maxConnections,
    maxFrameBytes: options.maxFrameBytes,
    upstreamCa: options.upstreamCa,
  });
  return {
    manager,
    hub,
    pipeline,
    publisher,
    metrics,
    published,
    async close() {
      manager.close();
      hub.close();
      await pipeline.close(1000);
      await publisher.close();
    },
  };
}
