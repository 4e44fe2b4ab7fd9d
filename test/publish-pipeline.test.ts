/**
 * The publish pipeline against a controllable publisher of our own Publisher interface:
 * ordering, batching, bounded queues with counted drops, retries only of retryable failures.
 */
import { describe, expect, it, vi } from "vitest";
import { silentLogger } from "../src/logger.ts";
import { createMetrics } from "../src/metrics.ts";
import type { CloudEvent } from "../src/publish/cloud-event.ts";
import type { InboundFrame } from "../src/publish/events.ts";
import { createInProcessPublisher } from "../src/publish/in-process-publisher.ts";
import { createPublishPipeline } from "../src/publish/publish-pipeline.ts";
import type { JsonPublisher } from "../src/publish/json-publisher.ts";
import { PublishError, type Publisher } from "../src/publish/publisher.ts";

interface Call {
  topic: string;
  events: readonly CloudEvent[];
  resolve(): void;
  reject(err: unknown): void;
}

/** A publisher whose calls the test completes by hand. */
function manualPublisher() {
  const calls: Call[] = [];
  const publisher: Publisher = {
    name: "manual",
    publish: (topic, events) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ topic, events, resolve, reject });
      }),
    isReady: () => true,
    close: async () => {},
  };
  return { publisher, calls };
}

function frame(n: number, bytes = 10): InboundFrame {
  return {
    connectionId: "c1",
    url: "ws://x/",
    instanceId: "i",
    data: JSON.stringify({ n }),
    contentType: "application/json",
    bytes,
    receivedAtMs: Date.now(),
    topic: "",
    sequence: 0,
  };
}

const seqs = (c: Call) => c.events.map((e) => e.sequence);

describe("publish pipeline", () => {
  it("keeps one batch in flight per ordered channel and delivers in order", async () => {
    const { publisher, calls } = manualPublisher();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics(), maxBatchMessages: 3 });
    const ch = p.channel("c1");
    for (let i = 1; i <= 5; i++) ch.enqueue("t", frame(i));
    await vi.waitFor(() => expect(calls.length).toBe(1));
    expect(seqs(calls[0]!)).toEqual([1, 2, 3]);
    ch.enqueue("t", frame(6));
    // Nothing else goes out until the first batch is acknowledged.
    await new Promise((r) => setImmediate(r));
    expect(calls.length).toBe(1);
    calls[0]!.resolve();
    await vi.waitFor(() => expect(calls.length).toBe(2));
    expect(seqs(calls[1]!)).toEqual([4, 5, 6]);
    calls[1]!.resolve();
    await vi.waitFor(() => expect(ch.stats).toMatchObject({ published: 6, queued: 0, dropped: 0, lastSequence: 6 }));
  });

  it("drops the oldest waiting frames when full, counts them, and keeps the newest", async () => {
    const { publisher, calls } = manualPublisher();
    const metrics = createMetrics();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics, maxQueueMessages: 3, maxBatchMessages: 1 });
    const ch = p.channel("c1");
    ch.enqueue("t", frame(1));
    await vi.waitFor(() => expect(calls.length).toBe(1)); // frame 1 in flight
    for (let i = 2; i <= 7; i++) ch.enqueue("t", frame(i));
    expect(ch.stats.dropped).toBe(3); // 2, 3, 4 dropped; 5, 6, 7 wait
    for (let i = 0; i < 4; i++) {
      calls[i]!.resolve();
      await vi.waitFor(() => expect(calls.length).toBe(Math.min(i + 2, 4)));
    }
    expect(calls.map((c) => c.events[0]!.sequence)).toEqual([1, 5, 6, 7]);
    expect(metrics.render()).toMatch(/wsm_publish_dropped_total\{kind="message"\} 3/);
  });

  it("bounds the queue by bytes too", () => {
    const { publisher } = manualPublisher();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics(), maxQueueBytes: 100 });
    const ch = p.channel("c1");
    for (let i = 0; i < 10; i++) ch.enqueue("t", frame(i, 30));
    expect(ch.stats.queued).toBeLessThanOrEqual(4);
    expect(ch.stats.dropped + ch.stats.queued).toBe(10);
  });

  it("retries retryable failures from the first undelivered event, and gives up on the others", async () => {
    const { publisher, calls } = manualPublisher();
    const p = createPublishPipeline({
      publisher,
      logger: silentLogger,
      metrics: createMetrics(),
      retryBaseDelayMs: 1,
      retryMaxDelayMs: 2,
    });
    const ch = p.channel("c1");
    for (let i = 1; i <= 3; i++) ch.enqueue("t", frame(i));
    await vi.waitFor(() => expect(calls.length).toBe(1));
    calls[0]!.reject(new PublishError("sidecar restarting", { retryable: true, reason: "http_503", deliveredCount: 1 }));
    await vi.waitFor(() => expect(calls.length).toBe(2));
    expect(seqs(calls[1]!)).toEqual([2, 3]);
    calls[1]!.reject(new PublishError("forbidden", { retryable: false, reason: "http_403" }));
    await vi.waitFor(() => expect(ch.stats).toMatchObject({ published: 1, failed: 2, queued: 0 }));
    expect(calls.length).toBe(2);
  });

  it("gives up after maxAttempts and counts the batch as failed", async () => {
    const { publisher, calls } = manualPublisher();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics(), maxAttempts: 2, retryBaseDelayMs: 1 });
    const ch = p.channel("c1");
    ch.enqueue("t", frame(1));
    await vi.waitFor(() => expect(calls.length).toBe(1));
    calls[0]!.reject(new PublishError("down", { retryable: true, reason: "unreachable" }));
    await vi.waitFor(() => expect(calls.length).toBe(2));
    calls[1]!.reject(new PublishError("down", { retryable: true, reason: "unreachable" }));
    await vi.waitFor(() => expect(ch.stats.failed).toBe(1));
  });

  it("unordered channels keep several batches in flight", async () => {
    const { publisher, calls } = manualPublisher();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics(), maxBatchMessages: 1, maxInFlightUnordered: 4 });
    const ch = p.channel("c1", { ordered: false });
    for (let i = 1; i <= 6; i++) ch.enqueue("t", frame(i));
    await vi.waitFor(() => expect(calls.length).toBe(4));
  });

  it("a topic change starts a new batch", async () => {
    const { publisher, calls } = manualPublisher();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics() });
    const ch = p.channel("c1");
    ch.enqueue("a", frame(1));
    ch.enqueue("a", frame(2));
    ch.enqueue("b", frame(3));
    await vi.waitFor(() => expect(calls.length).toBe(1));
    expect(calls[0]!.topic).toBe("a");
    calls[0]!.resolve();
    await vi.waitFor(() => expect(calls.length).toBe(2));
    expect(calls[1]!.topic).toBe("b");
    expect(seqs(calls[1]!)).toEqual([3]);
  });

  it("close waits for queued frames up to its deadline, then counts the rest as dropped", async () => {
    const { publisher, calls } = manualPublisher();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics(), maxBatchMessages: 1 });
    const ch = p.channel("c1");
    ch.enqueue("t", frame(1));
    ch.enqueue("t", frame(2));
    await vi.waitFor(() => expect(calls.length).toBe(1));
    await p.close(50);
    expect(ch.stats.dropped).toBe(1);
  });

  it("publishes lifecycle events as CloudEvents on the lifecycle topic", async () => {
    const { publisher, calls } = manualPublisher();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics(), lifecycleTopic: "life" });
    p.lifecycle({
      type: "error",
      connectionId: "c1",
      url: "ws://x/",
      instanceId: "i",
      status: "connected",
      previousStatus: "connected",
      attempt: 0,
      errorType: "heartbeat",
      errorMessage: "no pong",
      timeMs: 0,
    });
    await vi.waitFor(() => expect(calls.length).toBe(1));
    expect(calls[0]!.topic).toBe("life");
    expect(calls[0]!.events[0]).toMatchObject({
      type: "com.virtufin.websocketmanager.lifecycle.error",
      source: "urn:com.virtufin.websocketmanager",
      data: { connection_id: "c1", error_type: "heartbeat", status: "connected" },
    });
  });

  it("hands a JSON publisher each event as CloudEvents JSON text, the frame embedded as is", async () => {
    const received: Array<{ topic: string; events: readonly string[] }> = [];
    const publisher: JsonPublisher = {
      name: "json",
      publish: () => Promise.reject(new Error("publish must not be called for a JSON publisher")),
      publishJson: async (topic, events) => void received.push({ topic, events }),
      isReady: () => true,
      close: async () => {},
    };
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics() });
    const ch = p.channel("c1");
    ch.enqueue("t", frame(7));
    await vi.waitFor(() => expect(received.length).toBe(1));
    const event = JSON.parse(received[0]!.events[0]!) as CloudEvent;
    expect(event).toMatchObject({ type: "com.virtufin.websocketmanager.message", sequence: 1, data: { n: 7 }, datacontenttype: "application/json" });
    await vi.waitFor(() => expect(ch.stats.published).toBe(1));
  });

  it("acknowledges without building envelopes when the publisher says nobody consumes the topic", async () => {
    const publisher = createInProcessPublisher();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics() });
    const ch = p.channel("c1");
    // Not JSON: building this frame's envelope would throw, so the test fails if one is built.
    const broken = { ...frame(1), data: "{not json" };
    ch.enqueue("nobody.listens", broken);
    await vi.waitFor(() => expect(ch.stats).toMatchObject({ published: 1, failed: 0, queued: 0 }));
    const seen: CloudEvent[] = [];
    publisher.onTopic("someone.listens", (_t, e) => seen.push(e));
    ch.enqueue("someone.listens", frame(2));
    await vi.waitFor(() => expect(seen.map((e) => e.sequence)).toEqual([2]));
  });
});

