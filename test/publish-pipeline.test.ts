/**
 * The publish pipeline against a controllable publisher of our own Publisher interface:
 * ordering, batching, bounded queues with counted drops, the global byte budget, retries only
 * of retryable failures.
 */
import { describe, expect, it, vi } from "vitest";
import { silentLogger } from "../src/logger.ts";
import { createMetrics, type Metrics } from "../src/metrics.ts";
import { BacklogHeap } from "../src/publish/backlog-heap.ts";
import type { CloudEvent } from "../src/publish/cloud-event.ts";
import type { InboundFrame, LifecycleEvent } from "../src/publish/events.ts";
import { createInProcessPublisher } from "../src/publish/in-process-publisher.ts";
import { createPublishPipeline } from "../src/publish/publish-pipeline.ts";
import type { JsonPublisher } from "../src/publish/json-publisher.ts";
import { PublishError, type Publisher } from "../src/publish/publisher.ts";

interface Call {
  topic: string;
  events: readonly CloudEvent[];
  ordered: boolean | undefined;
  resolve(): void;
  reject(err: unknown): void;
}

/** A publisher whose calls the test completes by hand (or the pipeline aborts, as at close). */
function manualPublisher() {
  const calls: Call[] = [];
  const publisher: Publisher = {
    name: "manual",
    publish: (topic, events, signal, options) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ topic, events, ordered: options?.ordered, resolve, reject });
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
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

function lifecycleEvent(): LifecycleEvent {
  return {
    type: "connected",
    connectionId: "c1",
    url: "ws://x/",
    instanceId: "i",
    status: "connected",
    previousStatus: "connecting",
    attempt: 0,
    errorType: "",
    errorMessage: "",
    timeMs: 0,
  };
}

const seqs = (c: Call) => c.events.map((e) => e.sequence);
const tick = () => new Promise<void>((r) => setImmediate(r));

/** A repeatable random whole number below n (a linear congruential generator). */
function seededRandom(seed: number): (n: number) => number {
  return (n) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
}

/** wsm_publish_queue_bytes: bytes waiting or in flight in all queues. */
function queueBytes(metrics: Metrics): number {
  return Number(/^wsm_publish_queue_bytes (\d+)$/m.exec(metrics.render())![1]);
}

/** wsm_publish_dropped_total of one kind of channel. */
function droppedMetric(metrics: Metrics, kind: string): number {
  return Number(new RegExp(`^wsm_publish_dropped_total\\{kind="${kind}"\\} (\\d+)$`, "m").exec(metrics.render())![1]);
}

/** Acknowledges every call, including those that follow, until nothing is queued or in flight. */
async function acknowledgeAll(calls: Call[], metrics: Metrics): Promise<void> {
  await vi.waitFor(async () => {
    for (const c of calls.splice(0)) c.resolve();
    await tick();
    expect(queueBytes(metrics)).toBe(0);
  });
}

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

  it("tells the publisher whether a batch must keep its order, as the channel was when the batch left", async () => {
    const { publisher, calls } = manualPublisher();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics: createMetrics() });
    const ordered = p.channel("c1");
    const unordered = p.channel("c2", { ordered: false });
    ordered.enqueue("a", frame(1));
    unordered.enqueue("b", frame(2));
    await vi.waitFor(() => expect(calls.length).toBe(2));
    expect(calls.map((c) => [c.topic, c.ordered])).toEqual([
      ["a", true],
      ["b", false],
    ]);
    ordered.setOrdered(false);
    ordered.enqueue("a", frame(3));
    calls[0]!.resolve();
    await vi.waitFor(() => expect(calls.length).toBe(3));
    expect(calls[2]!.ordered).toBe(false);
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

describe("publish pipeline byte budget", () => {
  it("keeps the bytes waiting and in flight of many channels within the budget, and gives every byte back", async () => {
    const { publisher, calls } = manualPublisher();
    const metrics = createMetrics();
    const budget = 5000;
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics, maxTotalQueueBytes: budget, maxBatchMessages: 5, maxAttempts: 1 });
    const chs = Array.from({ length: 40 }, (_, i) => p.channel(`c${i}`, { ordered: i % 2 === 0 }));
    const random = seededRandom(7);
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 100; i++) {
        chs[random(chs.length)]!.enqueue("t", frame(i, 1 + random(300)));
        if (i % 40 === 0) p.lifecycle(lifecycleEvent());
        expect(queueBytes(metrics)).toBeLessThanOrEqual(budget);
      }
      await tick();
      expect(queueBytes(metrics)).toBeLessThanOrEqual(budget);
      // Some batches are acknowledged, some fail for good, the rest stay in flight.
      for (const c of calls.splice(0, random(calls.length + 1))) {
        if (random(4) === 0) c.reject(new PublishError("bad request", { retryable: false, reason: "http_400" }));
        else c.resolve();
      }
    }
    await acknowledgeAll(calls, metrics);
    let dropped = 0;
    for (const ch of chs) {
      expect(ch.stats.queued).toBe(0);
      expect(ch.stats.published + ch.stats.failed + ch.stats.dropped).toBe(ch.stats.lastSequence);
      dropped += ch.stats.dropped;
    }
    expect(dropped).toBeGreaterThan(0);
    expect(droppedMetric(metrics, "message")).toBe(dropped);
    expect(metrics.render()).toMatch(/^wsm_publish_queue_events 0$/m);
  });

  it("drops the oldest waiting frames of the largest backlog; smaller backlogs keep all theirs", async () => {
    const { publisher, calls } = manualPublisher();
    const metrics = createMetrics();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics, maxTotalQueueBytes: 1000, maxBatchMessages: 100 });
    const [a, b, quiet] = [p.channel("a"), p.channel("b"), p.channel("quiet")];
    // All in one tick, so everything waits: 300 + 500 + 200 bytes fill the budget exactly.
    for (let i = 0; i < 30; i++) a.enqueue("t", frame(i));
    for (let i = 0; i < 50; i++) b.enqueue("t", frame(i));
    for (let i = 0; i < 20; i++) quiet.enqueue("t", frame(i));
    expect(queueBytes(metrics)).toBe(1000);
    for (let i = 0; i < 10; i++) quiet.enqueue("t", frame(i));
    expect([a.stats.dropped, b.stats.dropped, quiet.stats.dropped]).toEqual([0, 10, 0]);
    expect(droppedMetric(metrics, "message")).toBe(10);
    expect(queueBytes(metrics)).toBe(1000);
    await vi.waitFor(() => expect(calls.length).toBe(3));
    const [, fromB, fromQuiet] = calls.map(seqs); // one batch per channel, in order a, b, quiet
    expect(fromB![0]).toBe(11); // b lost 1..10, its oldest
    expect(fromQuiet).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    await acknowledgeAll(calls, metrics);
    expect(quiet.stats).toMatchObject({ published: 30, dropped: 0 });
  });

  it("counts batches in flight against the budget but never drops them", async () => {
    const { publisher, calls } = manualPublisher();
    const metrics = createMetrics();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics, maxTotalQueueBytes: 1000 });
    const stuck = p.channel("stuck");
    for (let i = 0; i < 80; i++) stuck.enqueue("t", frame(i));
    await vi.waitFor(() => expect(calls.length).toBe(1)); // all 80 in flight
    expect(queueBytes(metrics)).toBe(800);
    const other = p.channel("other");
    for (let i = 0; i < 30; i++) other.enqueue("t", frame(i));
    // Nothing of stuck waits, so other has the largest backlog: it pays for its own frames.
    expect(stuck.stats.dropped).toBe(0);
    expect(other.stats).toMatchObject({ dropped: 10, queued: 20 });
    expect(queueBytes(metrics)).toBe(1000);
    calls[0]!.resolve();
    await vi.waitFor(() => expect(stuck.stats.published).toBe(80));
    await acknowledgeAll(calls, metrics);
    expect(other.stats).toMatchObject({ published: 20, dropped: 10, queued: 0 });
  });

  it("drops a frame larger than what the batches in flight leave, alone, without emptying other queues", async () => {
    const { publisher, calls } = manualPublisher();
    const metrics = createMetrics();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics, maxTotalQueueBytes: 1000 });
    const stuck = p.channel("stuck");
    for (let i = 0; i < 80; i++) stuck.enqueue("t", frame(i));
    await vi.waitFor(() => expect(calls.length).toBe(1));
    const big = p.channel("big");
    big.enqueue("t", frame(1, 300)); // nothing waits anywhere: 800 + 300 does not fit
    expect(big.stats).toMatchObject({ dropped: 1, queued: 0, lastSequence: 1 });
    const waiting = p.channel("waiting");
    for (let i = 0; i < 10; i++) waiting.enqueue("t", frame(i)); // 900 bytes now
    big.enqueue("t", frame(2, 250)); // would not fit even with all 100 waiting bytes gone
    expect(big.stats.dropped).toBe(2);
    expect(waiting.stats).toMatchObject({ dropped: 0, queued: 10 });
    big.enqueue("t", frame(3, 200)); // fits once all 100 waiting bytes go
    expect(waiting.stats).toMatchObject({ dropped: 10, queued: 0 });
    expect(big.stats).toMatchObject({ dropped: 2, queued: 1 });
    expect(droppedMetric(metrics, "message")).toBe(12);
    expect(queueBytes(metrics)).toBe(1000);
    await acknowledgeAll(calls, metrics);
  });

  it("counts lifecycle events like frames, and gives back what close abandons or aborts", async () => {
    const { publisher, calls } = manualPublisher();
    const metrics = createMetrics();
    const p = createPublishPipeline({ publisher, logger: silentLogger, metrics, maxTotalQueueBytes: 2048, maxBatchMessages: 1 });
    for (let i = 0; i < 5; i++) p.lifecycle(lifecycleEvent()); // 512 bytes each
    expect(queueBytes(metrics)).toBe(2048);
    expect(droppedMetric(metrics, "lifecycle")).toBe(1);
    const ch = p.channel("c1");
    ch.enqueue("t", frame(1, 100)); // the lifecycle backlog is the largest: it pays
    expect(droppedMetric(metrics, "lifecycle")).toBe(2);
    expect(queueBytes(metrics)).toBe(3 * 512 + 100);
    await vi.waitFor(() => expect(calls.length).toBe(2)); // one batch of each in flight
    await p.close(20);
    // Waiting events are abandoned at once; the aborted batches give theirs back as they fail.
    await vi.waitFor(() => expect(queueBytes(metrics)).toBe(0));
    expect(ch.stats).toMatchObject({ failed: 1, queued: 0 });
    expect(droppedMetric(metrics, "lifecycle")).toBe(4); // 2 by the budget, 2 abandoned
  });
});

describe("backlog heap", () => {
  it("always has the largest backlog on top, through growth, shrinkage, removal and relaxing", () => {
    interface Entry {
      waitingBytes: number;
      heapIndex: number;
    }
    const heap = new BacklogHeap<Entry>();
    const members = new Set<Entry>();
    const random = seededRandom(3);
    for (let step = 0; step < 2000; step++) {
      const all = [...members];
      const pick = all[random(all.length || 1)];
      const op = random(10);
      if (!pick || op === 0) {
        const e = { waitingBytes: random(1000), heapIndex: -1 };
        members.add(e);
        heap.add(e);
      } else if (op === 1) {
        members.delete(pick);
        heap.delete(pick);
        heap.delete(pick); // a second delete is a no-op
      } else if (op === 2) {
        heap.relax(); // changes go unordered until the next largest()
        pick.waitingBytes = random(2000);
        heap.grew(pick);
      } else if (op < 6) {
        pick.waitingBytes += random(500);
        heap.grew(pick);
      } else {
        pick.waitingBytes -= random(pick.waitingBytes + 1);
        heap.shrank(pick);
      }
      if (random(3) === 0) continue; // some changes pile up between two looks at the top
      const max = Math.max(-1, ...[...members].map((m) => m.waitingBytes));
      expect(heap.largest()?.waitingBytes ?? -1).toBe(max);
      expect(heap.values().length).toBe(members.size);
    }
  });
});
