/**
 * The Dapr publisher against a real daprd and a real Redis (test/support/dapr-harness.ts). What
 * the broker holds is read straight from the topic's Redis stream.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startDaprHarness, type DaprHarness, type StreamEntry } from "./support/dapr-harness.ts";
import { createDaprPublisher, type DaprPublisherOptions } from "../src/publish/dapr-publisher.ts";
import { PublishError, type Publisher } from "../src/publish/publisher.ts";
import { messageCloudEvent, type CloudEvent } from "../src/publish/cloud-event.ts";
import { messageCloudEventJson } from "../src/publish/cloud-event-json.ts";
import { isJsonPublisher, type JsonPublisher } from "../src/publish/json-publisher.ts";
import type { InboundFrame } from "../src/publish/events.ts";
import { createMetrics, type Metrics } from "../src/metrics.ts";

/** Long enough for scripts/build-daprd.sh on a cold machine; instant once the binary is cached. */
const HARNESS_START_TIMEOUT_MS = 20 * 60_000;
/** Shortened for the tests (default 5000) so that failure bounds are quick to check. */
const REQUEST_TIMEOUT_MS = 3000;

let harness: DaprHarness;
let metrics: Metrics;
const publishers: Publisher[] = [];
let topicCounter = 0;

function publisher(overrides: Partial<DaprPublisherOptions> = {}): Publisher {
  metrics = createMetrics();
  const p = createDaprPublisher({
    daprHttpPort: harness.daprHttpPort,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    // Shortened probe interval so readiness changes show within a few hundred milliseconds.
    probeIntervalMs: 100,
    metrics,
    ...overrides,
  });
  publishers.push(p);
  return p;
}

const freshTopic = (name: string) => `${name}-${process.pid}-${++topicCounter}`;

function frame(sequence: number, data: string, contentType: string): CloudEvent {
  return messageCloudEvent({
    connectionId: "0b6f4c1e-5d2a-4f7e-9a51-7c2d8e3f1a90",
    url: "wss://stream.example.test/ws?streams=btcusdt@trade",
    instanceId: "wsm-test-1",
    data,
    contentType,
    bytes: Buffer.byteLength(data),
    receivedAtMs: Date.UTC(2026, 0, 2, 3, 4, 5, 6) + sequence,
    topic: "unused",
    sequence,
  });
}

/** JSON objects, arrays, scalars, text and binary, cycling. */
function mixedFrames(count: number, firstSequence = 1): CloudEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const seq = firstSequence + i;
    switch (i % 5) {
      case 0:
        return frame(seq, JSON.stringify({ e: "trade", p: "42000.5", q: 0.001, seq, nested: { ok: true } }), "application/json");
      case 1:
        return frame(seq, JSON.stringify([seq, "two", null]), "application/json");
      case 2:
        return frame(seq, `plain text frame ${seq} with "quotes" and ünïcode`, "text/plain");
      case 3:
        return frame(seq, Buffer.from([0, 1, 2, 255, seq & 0xff]).toString("base64"), "application/octet-stream");
      default:
        return frame(seq, String(seq * 1.5), "application/json");
    }
  });
}

const sequences = (entries: StreamEntry[]) => entries.map((e) => e.event.sequence);

async function rejection(promise: Promise<unknown>): Promise<PublishError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PublishError);
  return err as PublishError;
}

beforeAll(async () => {
  harness = await startDaprHarness();
}, HARNESS_START_TIMEOUT_MS);

afterEach(async () => {
  await Promise.all(publishers.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await harness?.close();
});

describe("dapr publisher with a real daprd and Redis", () => {
  it("delivers JSON, text and binary events in order with the envelope intact", async () => {
    const p = publisher();
    const topic = freshTopic("frames");
    const events = mixedFrames(40);
    await p.publish(topic, events.slice(0, 25));
    await p.publish(topic, events.slice(25));

    const entries = await harness.readTopic(topic);
    expect(sequences(entries)).toEqual(events.map((e) => e.sequence));
    entries.forEach((entry, i) => {
      const sent = events[i]!;
      // Every attribute we set survives unchanged; Dapr only adds its own routing/tracing ones.
      const { topic: t, pubsubname, traceid, traceparent, tracestate, ...ours } = entry.event;
      expect(ours).toEqual(sent);
      expect([t, pubsubname]).toEqual([topic, "pubsub"]);
      expect([traceid, traceparent, tracestate].every((v) => typeof v === "string")).toBe(true);
    });

    // JSON frames are JSON values in the stored envelope, never strings holding JSON.
    const first = entries[0]!;
    expect(first.event.data).toEqual({ e: "trade", p: "42000.5", q: 0.001, seq: 1, nested: { ok: true } });
    expect(first.fields.data).toContain('"data":{');
    expect(entries[1]!.event.data).toEqual([2, "two", null]);
    expect(entries[4]!.event.data).toBe(7.5);
    expect(entries[2]!.event.data).toBe('plain text frame 3 with "quotes" and ünïcode');
    expect(entries[3]!.event.data_base64).toBe(Buffer.from([0, 1, 2, 255, 4]).toString("base64"));
    expect(entries[3]!.event.datacontenttype).toBe("application/octet-stream");
    expect(metrics.render()).toContain('wsm_dapr_publish_requests_total{result="ok"} 40');
  });

  it("publishes pre-serialized events (publishJson) with the same stored envelope", async () => {
    const p = publisher();
    expect(isJsonPublisher(p)).toBe(true);
    const topic = freshTopic("json");
    const frames = mixedFrames(10).map((event, i): InboundFrame => {
      const binary = event.datacontenttype === "application/octet-stream";
      return {
        connectionId: event.connectionid!,
        url: event.connectionurl!,
        instanceId: event.instanceid!,
        data: binary ? event.data_base64! : event.datacontenttype === "application/json" ? JSON.stringify(event.data) : (event.data as string),
        contentType: event.datacontenttype,
        bytes: 0,
        receivedAtMs: Date.parse(event.time),
        topic,
        sequence: i + 1,
      };
    });
    await (p as JsonPublisher).publishJson(topic, frames.map((f) => messageCloudEventJson(f)));
    const entries = await harness.readTopic(topic);
    expect(sequences(entries)).toEqual(frames.map((f) => f.sequence));
    entries.forEach((entry, i) => {
      const { topic: _t, pubsubname: _p, traceid: _ti, traceparent: _tp, tracestate: _ts, ...ours } = entry.event;
      expect(ours).toEqual({ ...messageCloudEvent(frames[i]!), id: ours.id });
    });
  });

  it("publishes every topic under exactly its name, whatever characters it has", async () => {
    const p = publisher();
    for (const name of ["md.binance:btcusdt/trades", "plus+space %25 percent?#", "ünï/cødé"]) {
      const topic = `${name}-${process.pid}`;
      await p.publish(topic, mixedFrames(2));
      expect(sequences(await harness.readTopic(topic))).toEqual([1, 2]);
    }
  });

  it("keeps each topic's order when topics are published concurrently", async () => {
    const p = publisher({ connections: 4 });
    const topics = [freshTopic("par"), freshTopic("par"), freshTopic("par")];
    await Promise.all(topics.map((t) => p.publish(t, mixedFrames(15))));
    for (const t of topics) {
      expect(sequences(await harness.readTopic(t))).toEqual(mixedFrames(15).map((e) => e.sequence));
    }
  });

  it("keeps each topic's order with thousands of pipelined events on several topics at once", async () => {
    const p = publisher({ connections: 4, pipelining: 32 });
    const topics = Array.from({ length: 4 }, () => freshTopic("pipelined"));
    const perTopic = 2000;
    // Every topic publishes batches of 100 back to back, as an ordered pipeline channel does.
    await Promise.all(
      topics.map(async (t) => {
        for (let first = 1; first <= perTopic; first += 100) await p.publish(t, mixedFrames(100, first));
      }),
    );
    const sent = mixedFrames(perTopic);
    for (const t of topics) {
      const entries = await harness.readTopic(t);
      expect(sequences(entries)).toEqual(sent.map((e) => e.sequence));
      // Bodies are not mixed up between pipelined requests either.
      expect(entries.map((e) => e.event.data ?? e.event.data_base64)).toEqual(sent.map((e) => e.data ?? e.data_base64));
    }
    expect(metrics.render()).toContain(`wsm_dapr_publish_requests_total{result="ok"} ${4 * perTopic}`);
  }, 120_000);

  it("reports events stored ahead of one daprd rejects mid-batch, and the retry does not store them again", async () => {
    const p = publisher();
    const topic = freshTopic("hole");
    const events = mixedFrames(10);
    // A body over daprd's 4 MiB request limit gets a 500; the excess is small enough (< 256 KiB)
    // for Go to read past it and keep the connection, so the pipelined events after it are
    // processed: a real hole in the stream.
    events[4] = frame(5, "x".repeat(4 * 1024 * 1024 + 64 * 1024), "text/plain");
    const err = await rejection(p.publish(topic, events));
    expect([err.reason, err.retryable, err.deliveredCount]).toEqual(["http_500", true, 4]);
    expect(err.message).toContain("5 later event(s) of the batch were stored ahead of it (sequence 6..10)");
    expect(sequences(await harness.readTopic(topic))).toEqual([1, 2, 3, 4, 6, 7, 8, 9, 10]);
    expect(metrics.render()).toContain("wsm_dapr_publish_stored_ahead_total 5");

    // The pipeline's retry starts at the failed event: it goes alone, fails again, and nothing
    // after it is sent, so the stored-ahead events are not stored a second time.
    const again = await rejection(p.publish(topic, events.slice(4)));
    expect([again.reason, again.deliveredCount]).toEqual(["http_500", 0]);
    expect(again.message).not.toContain("stored ahead");
    expect(sequences(await harness.readTopic(topic))).toEqual([1, 2, 3, 4, 6, 7, 8, 9, 10]);
  }, 60_000);

  it("stores nothing after a failed event when daprd closes the connection behind it", async () => {
    const p = publisher();
    const topic = freshTopic("closed-behind");
    const events = mixedFrames(10);
    // Too much excess for Go to discard: daprd answers 500 with Connection: close and never
    // reads the pipelined requests behind it.
    events[4] = frame(5, "x".repeat(5 * 1024 * 1024), "text/plain");
    const err = await rejection(p.publish(topic, events));
    expect([err.reason, err.retryable, err.deliveredCount]).toEqual(["http_500", true, 4]);
    expect(err.message).not.toContain("stored ahead");
    expect(sequences(await harness.readTopic(topic))).toEqual([1, 2, 3, 4]);
    // A fresh connection carries the retry of the rest.
    await p.publish(topic, events.slice(5));
    expect(sequences(await harness.readTopic(topic))).toEqual([1, 2, 3, 4, 6, 7, 8, 9, 10]);
  }, 60_000);

  it("publishes unordered calls with the bulk API: every event once, envelope intact, in requests of at most 1 MiB", async () => {
    const p = publisher() as JsonPublisher;
    const topic = freshTopic("bulk");
    // ~6 KiB each: 400 of them need several bulk requests.
    const big = (seq: number) => frame(seq, JSON.stringify({ seq, pad: "x".repeat(6000) }), "application/json");
    const events = [...mixedFrames(100), ...Array.from({ length: 300 }, (_, i) => big(101 + i))];
    await p.publish(topic, events.slice(0, 200), undefined, { ordered: false });
    await p.publishJson(topic, events.slice(200).map((e) => JSON.stringify(e)), undefined, { ordered: false });

    const entries = await harness.readTopic(topic);
    expect([...sequences(entries)].sort((a, b) => Number(a) - Number(b))).toEqual(events.map((e) => e.sequence));
    const bySequence = new Map(entries.map((e) => [e.event.sequence, e.event]));
    for (const sent of events) {
      const { topic: t, pubsubname, traceid, traceparent, tracestate, ...ours } = bySequence.get(sent.sequence)!;
      expect(ours).toEqual(sent);
      expect([t, pubsubname]).toEqual([topic, "pubsub"]);
      expect([traceid, traceparent, tracestate].every((v) => typeof v === "string")).toBe(true);
    }
    const text = metrics.render();
    expect(text).toContain('wsm_dapr_publish_requests_total{result="ok"} 400');
    // One request per MiB: the first call's 0.6 MiB in one, the second call's 1.2 MiB in two.
    expect(text).toContain('wsm_dapr_publish_duration_seconds_count{outcome="ok"} 3');
  });

  it("reports an unordered call that daprd could not store (Redis stopped) as retryable, with every event counted", async () => {
    const p = publisher({ requestTimeoutMs: 15_000 });
    const topic = freshTopic("bulk-redis");
    await harness.stopRedis();
    try {
      const err = await rejection(p.publish(topic, mixedFrames(5), undefined, { ordered: false }));
      expect([err.retryable, err.reason, err.deliveredCount]).toEqual([true, "http_500", 0]);
      expect(err.message).toContain("ERR_PUBSUB_PUBLISH_MESSAGE");
      expect(metrics.render()).toContain('wsm_dapr_publish_requests_total{result="http_500"} 5');
    } finally {
      await harness.startRedis();
    }
    // daprd's Redis client redials on its own schedule (seconds): one attempt can outlast the default 1 s poll.
    await expect.poll(() => p.publish(topic, mixedFrames(3, 10), undefined, { ordered: false }).then(() => true, () => false), { timeout: 20_000 }).toBe(true);
    // An attempt made while Redis was coming back may have stored some entries and failed
    // others: those are stored again by the next attempt (at least once), and every such
    // duplicate was counted as stored ahead.
    const stored = sequences(await harness.readTopic(topic));
    expect(new Set(stored)).toEqual(new Set([10, 11, 12]));
    const storedAhead = Number(/^wsm_dapr_publish_stored_ahead_total (\d+)$/m.exec(metrics.render())?.[1]);
    expect(stored.length - 3).toBe(storedAhead);
  }, 60_000);

  it("refuses an unknown pub/sub component as not retryable", async () => {
    const p = publisher({ pubsubName: "no-such-pubsub" });
    const err = await rejection(p.publish(freshTopic("nope"), mixedFrames(1)));
    expect([err.retryable, err.reason]).toEqual([false, "http_404"]);
    expect(err.message).toContain("ERR_PUBSUB_NOT_FOUND");
  });
});

describe("dapr publisher when daprd or Redis fail", () => {
  it("tracks sidecar readiness without blocking, across a kill and a restart", async () => {
    await harness.stopDaprd();
    const p = publisher();
    expect(p.isReady()).toBe(false);
    const started = performance.now();
    const err = await rejection(p.publish(freshTopic("down"), mixedFrames(1)));
    expect(performance.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS);
    expect([err.retryable, err.reason]).toEqual([true, "unreachable"]);
    expect(p.isReady()).toBe(false);

    await harness.startDaprd();
    await expect.poll(() => p.isReady(), { timeout: 5000 }).toBe(true);
    await harness.stopDaprd();
    await expect.poll(() => p.isReady(), { timeout: 5000 }).toBe(false);
    await harness.startDaprd();
    await expect.poll(() => p.isReady(), { timeout: 5000 }).toBe(true);
  });

  it("fails fast and retryably when daprd is killed mid-stream, and recovers after a restart", async () => {
    const p = publisher();
    const topic = freshTopic("kill");
    const acknowledged: number[] = [];
    let failure: PublishError | undefined;
    let failureMs = 0;
    let sequence = 0;
    // Publish one event at a time, as the pipeline does, until the sidecar dies under us.
    const stream = (async () => {
      for (;;) {
        const event = mixedFrames(1, ++sequence)[0]!;
        const started = performance.now();
        try {
          await p.publish(topic, [event]);
          acknowledged.push(event.sequence!);
        } catch (err) {
          failure = err as PublishError;
          failureMs = performance.now() - started;
          return;
        }
      }
    })();
    await expect.poll(() => acknowledged.length).toBeGreaterThanOrEqual(20);
    await harness.stopDaprd();
    await stream;

    expect(failure).toBeInstanceOf(PublishError);
    expect(failure!.retryable).toBe(true);
    expect(["unreachable", "connection_lost"]).toContain(failure!.reason);
    expect(failureMs).toBeLessThan(REQUEST_TIMEOUT_MS);

    await harness.startDaprd();
    await p.publish(topic, mixedFrames(3, 1000));
    const stored = sequences(await harness.readTopic(topic)) as number[];
    // Every acknowledged event reached the broker, in order; the failed one may or may not have.
    expect(stored.slice(0, acknowledged.length)).toEqual(acknowledged);
    expect(stored.slice(-3)).toEqual([1000, 1001, 1002]);
    expect(stored.length - 3 - acknowledged.length).toBeLessThanOrEqual(1);
  });

  it("leaves an in-order prefix without holes when daprd is killed under pipelined batches", async () => {
    const p = publisher({ pipelining: 32 });
    const topic = freshTopic("kill-pipelined");
    let acknowledged = 0;
    let failure: PublishError | undefined;
    const stream = (async () => {
      for (let first = 1; ; first += 100) {
        try {
          await p.publish(topic, mixedFrames(100, first));
          acknowledged = first + 99;
        } catch (err) {
          failure = err as PublishError;
          acknowledged = first - 1 + failure.deliveredCount;
          return;
        }
      }
    })();
    await expect.poll(() => acknowledged, { timeout: 20_000 }).toBeGreaterThanOrEqual(500);
    await harness.stopDaprd();
    await stream;
    await harness.startDaprd();

    expect(failure!.retryable).toBe(true);
    expect(["unreachable", "connection_lost"]).toContain(failure!.reason);
    const stored = sequences(await harness.readTopic(topic)) as number[];
    // daprd handled the requests of the connection one by one and died somewhere in the
    // middle: Redis holds 1..m, every acknowledged event and at most a window of unconfirmed
    // ones after them, and no gap.
    expect(stored).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    expect(stored.length).toBeGreaterThanOrEqual(acknowledged);
    expect(stored.length).toBeLessThanOrEqual(acknowledged + 32);
  }, 60_000);

  it("reports a stopped Redis as retryable, counts it, and delivers again once Redis is back", async () => {
    // daprd's Redis client spends ~2 s on its own dial retries before answering 500; the wider
    // request timeout keeps that answer from racing our timeout on a loaded machine.
    const p = publisher({ requestTimeoutMs: 15_000 });
    const topic = freshTopic("redis");
    await p.publish(topic, mixedFrames(2));
    await harness.stopRedis();
    try {
      for (const attempt of [1, 2]) {
        const err = await rejection(p.publish(topic, mixedFrames(1, 10 + attempt)));
        expect([err.retryable, err.reason]).toEqual([true, "http_500"]);
        expect(err.message).toContain("ERR_PUBSUB_PUBLISH_MESSAGE");
      }
      expect(metrics.render()).toContain('wsm_dapr_publish_requests_total{result="http_500"} 2');
      // The sidecar itself is healthy: readiness is about daprd, the broker error is per request.
      expect(p.isReady()).toBe(true);
    } finally {
      await harness.startRedis();
    }
    // Redis restarted empty (no persistence in tests): only what follows is in the stream.
    await expect.poll(() => p.publish(topic, mixedFrames(1, 20)).then(() => true, () => false), { timeout: 20_000 }).toBe(true);
    expect(sequences(await harness.readTopic(topic))).toContain(20);
  }, 60_000);
});
