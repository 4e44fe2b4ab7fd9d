/**
 * Failure mapping of the Dapr publisher against a small fake sidecar: answers that a real daprd
 * gives only in rare states (500 with a healthy broker, 403 from a topic ACL, a hang) are
 * produced on demand here. The behaviour against a real daprd is in dapr-publisher.test.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { once } from "node:events";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDaprPublisher, type DaprPublisherOptions } from "../src/publish/dapr-publisher.ts";
import { PublishError, type Publisher } from "../src/publish/publisher.ts";
import { messageCloudEvent, type CloudEvent } from "../src/publish/cloud-event.ts";
import { createMetrics, type Metrics } from "../src/metrics.ts";
import { createLogger } from "../src/logger.ts";

interface Received {
  topic: string;
  contentType: string | undefined;
  body: string;
}

interface BulkReceived {
  topic: string;
  contentType: string | undefined;
  bodyBytes: number;
  entries: Array<{ entryId: string; contentType: string; event: CloudEvent }>;
}

/**
 * The fake decides by topic: "ok*" answers 204, "status-NNN" answers NNN with a Dapr-style error
 * body, "hang" never answers, "reset" destroys the socket, "flaky" answers 204 to the first
 * `failAfter` requests and 500 after, "reject-N" answers 500 to the event with sequence N and
 * 204 to the others, "reject-once-N" does so only the first time it sees N, "garbage" answers
 * bytes that are not HTTP. Health answers `healthStatus`, or never when it is 0. `timeline`
 * records "in <sequence>" when a request arrives and "out <sequence>" when it is answered (for
 * the reject topics, whose answers are delayed a little so that pipelining shows).
 */
function createFakeSidecar() {
  const received: Received[] = [];
  const bulk: BulkReceived[] = [];
  const rawPaths: string[] = [];
  const sockets = new Set<Socket>();
  let healthStatus = 204;
  let healthRequests = 0;
  let flakyBudget = 0;
  const timeline: string[] = [];
  const rejectedOnce = new Set<string>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = req.url ?? "";
      if (url === "/v1.0/healthz/outbound") {
        healthRequests++;
        if (healthStatus !== 0) res.writeHead(healthStatus).end();
        return;
      }
      rawPaths.push(url);
      // Bulk: "ok*" answers 204, "bulk-partial" 500 listing the entries with an even sequence as
      // failed (as daprd does when the broker refuses some), "status-NNN" answers NNN.
      const bulkMatch = /^\/v1\.0-alpha1\/publish\/bulk\/([^/]+)\/(.+)$/.exec(url);
      if (bulkMatch) {
        const topic = decodeURIComponent(bulkMatch[2]!);
        const body = Buffer.concat(chunks);
        const entries = JSON.parse(body.toString()) as BulkReceived["entries"];
        bulk.push({ topic, contentType: req.headers["content-type"], bodyBytes: body.length, entries });
        if (topic.startsWith("ok")) return void res.writeHead(204).end();
        if (topic === "bulk-partial") {
          const failedEntries = entries.filter((e) => e.event.sequence! % 2 === 0).map((e) => ({ entryId: e.entryId, error: "broker said no" }));
          const answer = JSON.stringify({ failedEntries, errorCode: "ERR_PUBSUB_PUBLISH_MESSAGE" });
          return void res.writeHead(500, { "content-type": "application/json" }).end(answer);
        }
        const status = /^status-(\d{3})$/.exec(topic);
        return void res.writeHead(status ? Number(status[1]) : 400).end();
      }
      const match = /^\/v1\.0\/publish\/([^/]+)\/(.+)$/.exec(url);
      if (!match) return void res.writeHead(404).end();
      // daprd percent-decodes the topic; so does the fake, to compare with what was published.
      const topic = decodeURIComponent(match[2]!);
      received.push({ topic, contentType: req.headers["content-type"], body: Buffer.concat(chunks).toString() });
      if (topic.startsWith("ok")) return void res.writeHead(204).end();
      if (topic === "flaky") return void res.writeHead(flakyBudget-- > 0 ? 204 : 500).end();
      const reject = /^reject-(once-)?(\d+)$/.exec(topic);
      if (reject) {
        const sequence = (JSON.parse(received.at(-1)!.body) as CloudEvent).sequence!;
        timeline.push(`in ${sequence}`);
        let fail = sequence === Number(reject[2]);
        if (fail && reject[1]) fail = !rejectedOnce.has(topic) && Boolean(rejectedOnce.add(topic));
        // Shortened delay, only so that requests pipelined behind this one arrive before it is answered.
        setTimeout(() => {
          timeline.push(`out ${sequence}`);
          res.writeHead(fail ? 500 : 204).end();
        }, 20);
        return;
      }
      if (topic === "garbage") return void req.socket.end("HTTP/1.1 2OO NOT A STATUS\r\n\r\n");
      if (topic === "hang") return;
      if (topic === "reset") return void req.socket.destroy();
      const status = /^status-(\d{3})$/.exec(topic);
      if (status) {
        const body = JSON.stringify({ errorCode: `ERR_FAKE_${status[1]}`, message: `fake answer ${status[1]}` });
        return void res.writeHead(Number(status[1]), { "content-type": "application/json" }).end(body);
      }
      res.writeHead(400).end();
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return {
    received,
    bulk,
    rawPaths,
    timeline,
    server,
    setHealth: (status: number) => void (healthStatus = status),
    failAfter: (requests: number) => void (flakyBudget = requests),
    healthRequests: () => healthRequests,
    async listen(): Promise<number> {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      return (server.address() as AddressInfo).port;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function event(n: number): CloudEvent {
  return messageCloudEvent({
    connectionId: "c-1",
    url: "wss://example.test/feed",
    instanceId: "i-1",
    data: JSON.stringify({ n }),
    contentType: "application/json",
    bytes: 8,
    receivedAtMs: Date.now(),
    topic: "t",
    sequence: n,
  });
}

async function publishError(promise: Promise<unknown>): Promise<PublishError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PublishError);
  return err as PublishError;
}

describe("dapr publisher against a fake sidecar", () => {
  const fake = createFakeSidecar();
  let port = 0;
  const open: Publisher[] = [];
  let metrics: Metrics;

  const publisher = (overrides: Partial<DaprPublisherOptions> = {}) => {
    metrics = createMetrics();
    // Timings shortened for the test: a 300 ms request timeout keeps the hang cases quick.
    const p = createDaprPublisher({ daprHttpPort: port, requestTimeoutMs: 300, probeIntervalMs: 50, metrics, ...overrides });
    open.push(p);
    return p;
  };

  beforeAll(async () => {
    port = await fake.listen();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((p) => p.close()));
    fake.received.length = 0;
    fake.bulk.length = 0;
    fake.rawPaths.length = 0;
    fake.timeline.length = 0;
    fake.setHealth(204);
  });
  afterAll(() => fake.close());

  it("posts each event as structured CloudEvents JSON, in order, one request each", async () => {
    const p = publisher();
    const events = Array.from({ length: 20 }, (_, i) => event(i + 1));
    await p.publish("ok.topic:a/b", events);
    expect(fake.received.map((r) => r.topic)).toEqual(events.map(() => "ok.topic:a/b"));
    expect(fake.rawPaths[0]).toBe("/v1.0/publish/pubsub/ok.topic%3Aa/b");
    expect(fake.received.every((r) => r.contentType === "application/cloudevents+json")).toBe(true);
    expect(fake.received.map((r) => JSON.parse(r.body) as CloudEvent)).toEqual(events);
    expect(metrics.render()).toContain('wsm_dapr_publish_requests_total{result="ok"} 20');
    expect(metrics.render()).toContain('wsm_dapr_publish_duration_seconds_count{outcome="ok"} 20');
  });

  it("sends unordered calls as bulk requests of at most 1 MiB, and ordered ones one event per request", async () => {
    const p = publisher();
    const padded = (n: number) => ({ ...event(n), data: { n, pad: "y".repeat(20_000) } });
    const events = Array.from({ length: 120 }, (_, i) => padded(i + 1));
    await p.publish("ok.bulk:a/b", events, undefined, { ordered: false });
    expect(fake.rawPaths[0]).toBe("/v1.0-alpha1/publish/bulk/pubsub/ok.bulk%3Aa/b");
    expect(fake.received).toHaveLength(0);
    // 120 × 20 KB = 2.4 MB: three requests, each under the bound, every event once and intact.
    expect(fake.bulk.map((b) => b.bodyBytes).every((bytes) => bytes <= 1024 * 1024)).toBe(true);
    expect(fake.bulk).toHaveLength(3);
    expect(fake.bulk.every((b) => b.contentType === "application/json" && b.topic === "ok.bulk:a/b")).toBe(true);
    const entries = fake.bulk.flatMap((b) => b.entries);
    expect(entries.map((e) => e.event)).toEqual(events);
    expect(entries.every((e) => e.contentType === "application/cloudevents+json")).toBe(true);
    expect(new Set(entries.map((e) => e.entryId)).size).toBe(120);
    expect(metrics.render()).toContain('wsm_dapr_publish_requests_total{result="ok"} 120');

    // Ordered (the default), a single event, or bulk turned off: one request per event.
    await p.publish("ok.single", events.slice(0, 3));
    await p.publish("ok.single", events.slice(0, 1), undefined, { ordered: false });
    const off = publisher({ bulkUnordered: false });
    await off.publish("ok.single", events.slice(0, 2), undefined, { ordered: false });
    expect(fake.received).toHaveLength(6);
    expect(fake.bulk).toHaveLength(3);
  });

  it("counts the entries of a failed bulk request that were stored anyway, and fails retryably from the first request", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({ level: "warn", write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const p = publisher({ logger });
    // 100 failed entries make an answer of several KiB: it must be read whole to know which.
    const err = await publishError(p.publish("bulk-partial", Array.from({ length: 200 }, (_, i) => event(i + 1)), undefined, { ordered: false }));
    expect([err.reason, err.retryable, err.deliveredCount]).toEqual(["http_500", true, 0]);
    expect(err.message).toContain("100 event(s) of the call were stored anyway (sequences 1, 3, 5, 7,");
    const text = metrics.render();
    expect(text).toContain("wsm_dapr_publish_stored_ahead_total 100");
    expect(text).toContain('wsm_dapr_publish_requests_total{result="ok"} 100');
    expect(text).toContain('wsm_dapr_publish_requests_total{result="http_500"} 100');
    const odd = Array.from({ length: 100 }, (_, i) => 2 * i + 1);
    expect(lines).toContainEqual(expect.objectContaining({ level: "warn", topic: "bulk-partial", stored_sequences: odd }));

    // A refusal of the whole request (no failedEntries) stores nothing and is not retryable for 403.
    const refused = await publishError(p.publish("status-403", [event(1), event(2)], undefined, { ordered: false }));
    expect([refused.reason, refused.retryable, refused.deliveredCount]).toEqual(["http_403", false, 0]);
    expect(metrics.render()).toContain('wsm_dapr_publish_requests_total{result="http_403"} 2');
  });

  it.each([
    [500, true],
    [503, true],
    [429, true],
    [408, true],
    [400, false],
    [403, false],
    [404, false],
  ])("maps HTTP %i to retryable=%s", async (status, retryable) => {
    const p = publisher();
    const err = await publishError(p.publish(`status-${status}`, [event(1)]));
    expect(err.retryable).toBe(retryable);
    expect(err.reason).toBe(`http_${status}`);
    expect(err.deliveredCount).toBe(0);
    expect(err.message).toContain(`ERR_FAKE_${status}`);
    expect(metrics.render()).toContain(`wsm_dapr_publish_requests_total{result="http_${status}"} 1`);
  });

  it("pipelines a batch and reports the delivered prefix when a request fails", async () => {
    const p = publisher();
    fake.failAfter(2);
    const err = await publishError(p.publish("flaky", [event(1), event(2), event(3), event(4)]));
    expect([err.reason, err.retryable, err.deliveredCount]).toEqual(["http_500", true, 2]);
    // All four were on the wire before the first answer; 3 and 4 both failed: no hole.
    expect(fake.received.map((r) => (JSON.parse(r.body) as CloudEvent).sequence)).toEqual([1, 2, 3, 4]);
    expect(err.message).not.toContain("stored ahead");
    expect(metrics.render()).toContain('wsm_dapr_publish_requests_total{result="http_500"} 2');
  });

  it("names the events stored ahead of a failed one, and sends a retry's first event alone", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({ level: "warn", write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const p = publisher({ logger });
    const events = Array.from({ length: 6 }, (_, i) => event(i + 1));
    const err = await publishError(p.publish("reject-once-3", events));
    expect([err.reason, err.retryable, err.deliveredCount]).toEqual(["http_500", true, 2]);
    expect(err.message).toContain("3 later event(s) of the batch were stored ahead of it (sequence 4..6)");
    expect(metrics.render()).toContain("wsm_dapr_publish_stored_ahead_total 3");
    expect(lines).toContainEqual(
      expect.objectContaining({ level: "warn", failed_sequence: 3, stored_ahead_sequences: [4, 5, 6], topic: "reject-once-3" }),
    );
    // Pipelined: every request arrived before the first answer.
    expect(fake.timeline.slice(0, 6)).toEqual(["in 1", "in 2", "in 3", "in 4", "in 5", "in 6"]);

    // The pipeline's retry of the rest starts with the failed event: alone, then the others pipelined.
    fake.timeline.length = 0;
    await p.publish("reject-once-3", events.slice(err.deliveredCount));
    expect(fake.timeline).toEqual(["in 3", "out 3", "in 4", "in 5", "in 6", "out 4", "out 5", "out 6"]);
  });

  it("does not send past an event that keeps failing on a retry", async () => {
    const p = publisher();
    const events = Array.from({ length: 5 }, (_, i) => event(i + 1));
    const first = await publishError(p.publish("reject-2", events));
    expect(first.deliveredCount).toBe(1);
    fake.received.length = 0;
    const retry = await publishError(p.publish("reject-2", events.slice(1)));
    expect([retry.reason, retry.deliveredCount]).toEqual(["http_500", 0]);
    expect(fake.received.map((r) => (JSON.parse(r.body) as CloudEvent).sequence)).toEqual([2]);
    // Other batches are not slowed down by it.
    fake.received.length = 0;
    await expect(p.publish("reject-2", [event(10), event(11), event(12)])).resolves.toBeUndefined();
    expect(fake.received).toHaveLength(3);
  });

  it("gives each call a connection of its own: calls beyond the connection count wait their turn", async () => {
    const p = publisher({ connections: 1 });
    const calls = ["ok-a", "ok-b", "ok-c"].map((topic) => p.publish(topic, Array.from({ length: 5 }, (_, i) => event(i + 1))));
    await Promise.all(calls);
    // One connection, one call at a time: each call's requests arrive together, never interleaved.
    expect(fake.received.map((r) => r.topic).join(",")).toMatch(/^(ok-(a|b|c),){4}ok-\2,(ok-(a|b|c),){4}ok-\4,(ok-(a|b|c),){4}ok-\6$/);
    expect(new Set(fake.received.map((r) => r.topic))).toEqual(new Set(["ok-a", "ok-b", "ok-c"]));

    // A call waiting for the busy connection honours its deadline and sends nothing.
    const hanging = publishError(p.publish("hang", [event(1)]));
    await expect.poll(() => fake.received.length).toBe(16);
    const waited = await publishError(p.publish("ok-late", [event(1)], AbortSignal.timeout(100)));
    expect([waited.reason, waited.retryable, waited.deliveredCount]).toEqual(["timeout", true, 0]);
    // Closing fails the waiters at once; the call in flight ends with its own request timeout.
    const waiting = publishError(p.publish("ok-later", [event(1)]));
    await p.close();
    expect((await waiting).reason).toBe("closed");
    expect((await hanging).reason).toBe("timeout");
    expect(fake.received.map((r) => r.topic)).not.toContain("ok-late");
    expect(fake.received.map((r) => r.topic)).not.toContain("ok-later");
  });

  it("maps a response that is not HTTP to bad_response, retryable", async () => {
    const p = publisher();
    const err = await publishError(p.publish("garbage", [event(1), event(2)]));
    expect([err.reason, err.retryable, err.deliveredCount]).toEqual(["bad_response", true, 0]);
    // The next call gets a fresh connection.
    await expect(p.publish("ok", [event(3)])).resolves.toBeUndefined();
  });

  it("refuses non-integer pipelining and connection counts", () => {
    expect(() => createDaprPublisher({ daprHttpPort: port, pipelining: 0 })).toThrow(RangeError);
    expect(() => createDaprPublisher({ daprHttpPort: port, connections: 1.5 })).toThrow(RangeError);
  });

  it("times out a hanging sidecar within the request timeout, retryable", async () => {
    const p = publisher({ requestTimeoutMs: 200 });
    const started = performance.now();
    const err = await publishError(p.publish("hang", [event(1)]));
    const elapsedMs = performance.now() - started;
    expect(err.reason).toBe("timeout");
    expect(err.retryable).toBe(true);
    expect(elapsedMs).toBeGreaterThanOrEqual(190);
    expect(elapsedMs).toBeLessThan(2000);
    expect(metrics.render()).toContain('wsm_dapr_publish_requests_total{result="timeout"} 1');
    expect(metrics.render()).toContain('wsm_dapr_publish_duration_seconds_count{outcome="error"} 1');
  });

  it("maps a connection dropped mid-request to connection_lost, retryable", async () => {
    const p = publisher();
    const err = await publishError(p.publish("reset", [event(1)]));
    expect(err.reason).toBe("connection_lost");
    expect(err.retryable).toBe(true);
  });

  it("maps a refused connection to unreachable, retryable, and not ready", async () => {
    const closed = createFakeSidecar();
    const deadPort = await closed.listen();
    await closed.close();
    const p = publisher({ daprHttpPort: deadPort });
    const err = await publishError(p.publish("ok", [event(1)]));
    expect(err.reason).toBe("unreachable");
    expect(err.retryable).toBe(true);
    expect(p.isReady()).toBe(false);
    expect(metrics.render()).toContain('wsm_dapr_publish_requests_total{result="unreachable"} 1');
  });

  it("honours the caller's signal: its PublishError or deadline decides the outcome", async () => {
    const p = publisher({ requestTimeoutMs: 5000 });
    const shutdown = new AbortController();
    const pending = p.publish("hang", [event(1)], shutdown.signal);
    await expect.poll(() => fake.received.length).toBe(1);
    shutdown.abort(new PublishError("service is shutting down", { retryable: false, reason: "shutdown" }));
    const err = await publishError(pending);
    expect([err.reason, err.retryable]).toEqual(["shutdown", false]);

    // Shortened caller deadline for the test (the pipeline's per-batch timeout in production).
    const deadline = await publishError(p.publish("hang", [event(1)], AbortSignal.timeout(100)));
    expect([deadline.reason, deadline.retryable]).toEqual(["timeout", true]);

    const already = await publishError(p.publish("ok", [event(1)], AbortSignal.abort()));
    expect([already.reason, already.retryable, already.deliveredCount]).toEqual(["aborted", false, 0]);
  });

  it("refuses topics that daprd's path normalisation would rename, without a request", async () => {
    const p = publisher();
    for (const topic of ["", "/lead", "trail/", "a//b", "a/./b", "../up", "."]) {
      const err = await publishError(p.publish(topic, [event(1)]));
      expect([err.reason, err.retryable]).toEqual(["invalid_topic", false]);
    }
    expect(fake.received).toEqual([]);
  });

  it("probes readiness in the background without blocking creation, logging each change once", async () => {
    const lines: Array<{ level: string; msg: string }> = [];
    const logger = createLogger({ level: "debug", write: (line) => void lines.push(JSON.parse(line) as { level: string; msg: string }) });
    fake.setHealth(503);
    const p = publisher({ logger });
    // The first probe has started but cannot have finished: creation does not wait for it.
    expect(p.isReady()).toBe(false);
    await expect.poll(() => lines.length).toBe(1);
    fake.setHealth(204);
    await expect.poll(() => p.isReady()).toBe(true);
    expect(metrics.render()).toContain('wsm_dapr_sidecar_ready{pubsub="pubsub"} 1');
    fake.setHealth(500);
    await expect.poll(() => p.isReady()).toBe(false);
    fake.setHealth(204);
    await expect.poll(() => p.isReady()).toBe(true);
    await p.close();
    expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual([
      "warn dapr sidecar is not ready",
      "info dapr sidecar is ready",
      "warn dapr sidecar is not ready",
      "info dapr sidecar is ready",
    ]);
  });

  it("counts a hanging probe as not ready and closes promptly while one is in flight", async () => {
    fake.setHealth(0);
    const p = publisher({ requestTimeoutMs: 2000 });
    await expect.poll(() => fake.healthRequests()).toBeGreaterThan(0);
    const started = performance.now();
    await p.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(p.isReady()).toBe(false);
  });

  it("close is idempotent, ends probing and rejects later publishes", async () => {
    const own = createFakeSidecar();
    const p = publisher({ daprHttpPort: await own.listen() });
    await expect.poll(() => p.isReady()).toBe(true);
    await Promise.all([p.close(), p.close()]);
    await p.close();
    expect(p.isReady()).toBe(false);
    const err = await publishError(p.publish("ok", [event(1)]));
    expect([err.reason, err.retryable]).toEqual(["closed", false]);
    // Another publisher probing every 50 ms is the clock: after it has probed several times,
    // the closed one would have probed too if its timer were still running.
    const probesAtClose = own.healthRequests();
    const witness = publisher();
    const witnessStart = fake.healthRequests();
    await expect.poll(() => fake.healthRequests()).toBeGreaterThan(witnessStart + 4);
    expect(own.healthRequests()).toBe(probesAtClose);
    await own.close();
    await witness.close();
  });

  it("closing during a batch lets the request in flight finish and stops the rest", async () => {
    const p = publisher();
    const events = Array.from({ length: 500 }, (_, i) => event(i + 1));
    const outcome = publishError(p.publish("ok", events));
    await expect.poll(() => fake.received.length).toBeGreaterThanOrEqual(5);
    await p.close();
    const err = await outcome;
    expect([err.reason, err.retryable]).toEqual(["closed", false]);
    expect(err.deliveredCount).toBeLessThan(events.length);
    expect(fake.received.length).toBe(err.deliveredCount);
  });

  it("validates the port", () => {
    expect(() => createDaprPublisher({ daprHttpPort: 0 })).toThrow(RangeError);
    expect(() => createDaprPublisher({ daprHttpPort: 70000 })).toThrow(RangeError);
  });
});
