/**
 * The service publishing through a real daprd sidecar into a real Redis broker: what reaches
 * the Redis stream is read back and checked (order, sequence numbers, CloudEvent attributes),
 * and faults (daprd killed, Redis stopped) are accounted for exactly.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { clientFor, startService, transports, type RunningService, type WsmClient } from "./support/service.ts";
import { startDaprHarness, type DaprHarness, type StreamEntry } from "./support/dapr-harness.ts";
import { startWsServer, type TestWsServer } from "./support/ws-servers.ts";

let dapr: DaprHarness;
let service: RunningService;
let client: WsmClient;

beforeAll(async () => {
  dapr = await startDaprHarness();
  service = await startService({
    daprHttpPort: dapr.daprHttpPort,
    // Short publish timeout and few retries, shortened so that fault scenarios settle fast.
    publishTimeoutMs: 1000,
    publishMaxAttempts: 3,
  });
  client = clientFor(transports[0]!.make(service.baseUrl));
  await vi.waitFor(() => expect(service.app.publisher.isReady()).toBe(true), { timeout: 20_000 });
}, 600_000);

afterAll(async () => {
  await service?.close();
  await dapr?.close();
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function feed(): Promise<TestWsServer> {
  const s = await startWsServer({ behaviour: "silent" });
  cleanups.push(() => s.close());
  return s;
}

function sendNumbered(up: TestWsServer, from: number, to: number): void {
  for (let n = from; n <= to; n++) up.broadcast(JSON.stringify({ n, price: 100 + n / 100, pad: "x".repeat(200) }));
}

async function statsOf(id: string) {
  const c = (await client.list({})).connections.find((x) => x.id === id);
  if (!c?.stats) throw new Error(`connection ${id} not listed`);
  return c.stats;
}

/** Waits until every received frame has left the publish queue (published, failed or dropped). */
async function settled(id: string, expectedIn: number): Promise<void> {
  await vi.waitFor(
    async () => {
      const s = await statsOf(id);
      expect(Number(s.messagesIn)).toBe(expectedIn);
      expect(s.publishQueueLength).toBe(0);
    },
    { timeout: 30_000, interval: 50 },
  );
}

/** Publish requests the service made to daprd so far (answered ok), from its /metrics registry. */
function publishRequests(): number {
  return Number(/^wsm_dapr_publish_duration_seconds_count\{outcome="ok"\} (\d+)$/m.exec(service.app.metrics.render())?.[1] ?? 0);
}

function sequences(entries: StreamEntry[], connectionId: string): number[] {
  return entries.filter((e) => e.event.connectionid === connectionId).map((e) => Number(e.event.sequence));
}

describe("publishing through daprd and Redis", () => {
  it("delivers every frame in order as a CloudEvent with the right data and attributes; StopPublish stops", async () => {
    const up = await feed();
    const topic = "e2e.ordered";
    const c = await client.connect({ url: up.url, topic });
    const N = 500;
    sendNumbered(up, 1, N);
    await settled(c.id, N);
    const entries = await dapr.readTopic(topic);
    expect(entries.length).toBe(N);
    expect(sequences(entries, c.id)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    const first = entries[0]!.event;
    expect(first).toMatchObject({
      specversion: "1.0",
      type: "com.virtufin.websocketmanager.message",
      source: "urn:com.virtufin.websocketmanager",
      datacontenttype: "application/json",
      connectionid: c.id,
      connectionurl: up.url,
      instanceid: "test-instance",
      sequence: 1,
    });
    // A JSON frame arrives as a JSON value, not as a string holding JSON.
    expect(first.data).toEqual({ n: 1, price: 100.01, pad: "x".repeat(200) });
    expect(typeof first.receivedtime).toBe("string");
    expect((entries.map((e) => (e.event.data as { n: number }).n))).toEqual(Array.from({ length: N }, (_, i) => i + 1));

    up.broadcast("plain text frame");
    up.broadcast(Buffer.from([0xde, 0xad, 0xbe, 0xef]), true);
    await settled(c.id, N + 2);
    const more = await dapr.readTopic(topic);
    expect(more[N]!.event).toMatchObject({ datacontenttype: "text/plain", data: "plain text frame", sequence: N + 1 });
    expect(more[N + 1]!.event).toMatchObject({ datacontenttype: "application/octet-stream", data_base64: "3q2+7w==", sequence: N + 2 });

    await client.stopPublish({ id: c.id });
    sendNumbered(up, N + 1, N + 50);
    await settled(c.id, N + 52);
    expect((await dapr.readTopic(topic)).length).toBe(N + 2);
    const s = await statsOf(c.id);
    expect(s).toMatchObject({ published: BigInt(N + 2), publishDropped: 0n, publishFailed: 0n });
  });

  it("an unordered connection delivers every frame exactly once, through daprd's bulk API", async () => {
    const up = await feed();
    const topic = "e2e.unordered";
    const c = await client.connect({ url: up.url, topic, publishUnordered: true });
    const N = 2000;
    const requestsBefore = publishRequests();
    sendNumbered(up, 1, N);
    await settled(c.id, N);
    // Batches of up to 100 frames, one bulk request each, not a request per frame.
    expect(publishRequests() - requestsBefore).toBeLessThanOrEqual(N / 10);
    const entries = await dapr.readTopic(topic);
    expect(entries.length).toBe(N);
    expect([...sequences(entries, c.id)].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    for (const entry of entries) {
      const seq = entry.event.sequence as number;
      expect(entry.event).toMatchObject({ type: "com.virtufin.websocketmanager.message", connectionid: c.id, datacontenttype: "application/json" });
      expect(entry.event.data).toEqual({ n: seq, price: 100 + seq / 100, pad: "x".repeat(200) });
    }
    expect(await statsOf(c.id)).toMatchObject({ published: BigInt(N), publishDropped: 0n, publishFailed: 0n });
  });

  it("publishes lifecycle events for connect, drop, reconnect and disconnect in causal order", async () => {
    const up = await feed();
    const c = await client.connect({ url: up.url, autoReconnect: true });
    up.dropAll("terminate");
    await up.waitForAccepted(2);
    await vi.waitFor(async () => expect((await client.list({})).connections.find((x) => x.id === c.id)?.status).toBe("connected"));
    await client.disconnect({ id: c.id });
    const types = async () =>
      (await dapr.readTopic("websocketmanager.lifecycle"))
        .filter((e) => e.event.connectionid === c.id)
        .map((e) => String(e.event.type).replace("com.virtufin.websocketmanager.lifecycle.", ""));
    await vi.waitFor(async () => expect(await types()).toEqual(["connecting", "connected", "error", "reconnecting", "connected", "disconnected"]), {
      timeout: 15_000,
    });
    const last = (await dapr.readTopic("websocketmanager.lifecycle")).filter((e) => e.event.connectionid === c.id).pop()!;
    expect(last.event.data).toMatchObject({ connection_id: c.id, status: "disconnected", previous_status: "connected", url: up.url });
  });

  it("daprd killed mid-stream: nothing blocks, every frame is published, dropped or failed, and it recovers", async () => {
    const up = await feed();
    const topic = "e2e.daprd-kill";
    const c = await client.connect({ url: up.url, topic });
    sendNumbered(up, 1, 200);
    await settled(c.id, 200);
    await dapr.stopDaprd();
    sendNumbered(up, 201, 400);
    // RPCs answer while the sidecar is gone.
    const started = Date.now();
    await client.list({});
    expect(Date.now() - started).toBeLessThan(1000);
    await vi.waitFor(() => expect(service.app.publisher.isReady()).toBe(false), { timeout: 10_000 });
    const ready = await fetch(`${service.baseUrl}/readyz`);
    expect(ready.status).toBe(503);
    await settled(c.id, 400);
    await dapr.startDaprd();
    await vi.waitFor(() => expect(service.app.publisher.isReady()).toBe(true), { timeout: 20_000 });
    expect((await fetch(`${service.baseUrl}/readyz`)).status).toBe(200);
    sendNumbered(up, 401, 500);
    await settled(c.id, 500);

    const s = await statsOf(c.id);
    const published = Number(s.published);
    const lost = Number(s.publishDropped) + Number(s.publishFailed);
    expect(published + lost).toBe(500);
    expect(lost).toBeGreaterThan(0);
    const seen = sequences(await dapr.readTopic(topic), c.id);
    const unique = [...new Set(seen)];
    // Ordered: what reached the broker is in sequence order (a retried batch may repeat).
    expect(unique).toEqual([...unique].sort((a, b) => a - b));
    // A publish that failed ambiguously (killed mid-request) may still have landed.
    expect(unique.length).toBeGreaterThanOrEqual(published);
    expect(unique.length).toBeLessThanOrEqual(published + Number(s.publishFailed));
    expect(unique.slice(-100)).toEqual(Array.from({ length: 100 }, (_, i) => 401 + i));
  });

  it("Redis stopped: publishes fail and are counted, RPCs keep answering, and it recovers", async () => {
    const up = await feed();
    const topic = "e2e.redis-down";
    const c = await client.connect({ url: up.url, topic });
    await dapr.stopRedis();
    sendNumbered(up, 1, 20);
    await settled(c.id, 20);
    const s = await statsOf(c.id);
    expect(Number(s.publishFailed) + Number(s.publishDropped)).toBe(20);
    expect(await service.app.metrics.render()).toMatch(/wsm_publish_failed_total\{[^}]*kind="message"[^}]*\} [1-9]/);
    await dapr.startRedis();
    await vi.waitFor(
      async () => {
        sendNumbered(up, 21, 21);
        const entries = await dapr.readTopic(topic);
        expect(entries.length).toBeGreaterThan(0);
      },
      { timeout: 30_000, interval: 500 },
    );
  });
});
