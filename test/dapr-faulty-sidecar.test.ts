/**
 * The whole service against a sidecar that misbehaves on purpose (an HTTP server of ours on
 * port 0 speaking the Dapr publish API): 500s are retried, 403s are not, and a sidecar that
 * stops answering costs bounded memory with every drop counted. The real-daprd tests prove the
 * happy path and real crashes; this one makes each failure mode exact and repeatable.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { clientFor, startService, transports, type RunningService } from "./support/service.ts";
import { startWsServer, type TestWsServer } from "./support/ws-servers.ts";

type Mode = "ok" | "500" | "403" | "hang";

interface FakeSidecar {
  port: number;
  mode: Mode;
  /** Publish requests received, by topic. */
  requests: Map<string, number>;
  held: ServerResponse[];
  close(): Promise<void>;
}

async function startFakeSidecar(): Promise<FakeSidecar> {
  const sidecar: FakeSidecar = {
    port: 0,
    mode: "ok",
    requests: new Map(),
    held: [],
    close: async () => {},
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith("/v1.0/healthz")) {
      res.writeHead(204).end();
      return;
    }
    const m = /^\/v1\.0\/publish\/[^/]+\/(.+)$/.exec(req.url ?? "");
    req.resume();
    req.once("end", () => {
      if (!m) {
        res.writeHead(404).end();
        return;
      }
      const topic = decodeURIComponent(m[1]!);
      sidecar.requests.set(topic, (sidecar.requests.get(topic) ?? 0) + 1);
      switch (sidecar.mode) {
        case "ok":
          res.writeHead(204).end();
          return;
        case "500":
          res.writeHead(500, { "Content-Type": "application/json" }).end('{"errorCode":"ERR_PUBSUB_PUBLISH_MESSAGE","message":"broker down"}');
          return;
        case "403":
          res.writeHead(403, { "Content-Type": "application/json" }).end('{"errorCode":"ERR_PUBSUB_FORBIDDEN","message":"topic not allowed"}');
          return;
        case "hang":
          sidecar.held.push(res);
          return;
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  sidecar.port = (server.address() as AddressInfo).port;
  sidecar.close = async () => {
    for (const r of sidecar.held) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return sidecar;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(overrides: Parameters<typeof startService>[0] = {}) {
  const sidecar = await startFakeSidecar();
  cleanups.push(() => sidecar.close());
  const service: RunningService = await startService({
    daprHttpPort: sidecar.port,
    // Short timeouts and retry delays, shortened from production so failures settle fast.
    publishTimeoutMs: 300,
    publishMaxAttempts: 3,
    ...overrides,
  });
  cleanups.push(() => service.close());
  const up: TestWsServer = await startWsServer({ behaviour: "silent" });
  cleanups.push(() => up.close());
  const client = clientFor(transports[0]!.make(service.baseUrl));
  return { sidecar, service, up, client };
}

async function statsOf(client: ReturnType<typeof clientFor>, id: string) {
  return (await client.list({})).connections.find((c) => c.id === id)!.stats!;
}

describe("the service with a faulty sidecar", () => {
  it("retries 500s up to the attempt limit, then counts the frames as failed", async () => {
    const { sidecar, up, client } = await setup();
    sidecar.mode = "500";
    const c = await client.connect({ url: up.url, topic: "t.500" });
    up.broadcast('{"n":1}');
    await vi.waitFor(async () => expect((await statsOf(client, c.id)).publishFailed).toBe(1n), { timeout: 10_000 });
    expect(sidecar.requests.get("t.500")).toBe(3);
  });

  it("does not retry 403s: one request per frame, each counted as failed", async () => {
    const { sidecar, up, client, service } = await setup();
    sidecar.mode = "403";
    const c = await client.connect({ url: up.url, topic: "t.403" });
    for (let i = 0; i < 5; i++) up.broadcast(`{"n":${i}}`);
    await vi.waitFor(async () => expect((await statsOf(client, c.id)).publishFailed).toBe(5n), { timeout: 10_000 });
    expect(sidecar.requests.get("t.403")).toBe(5);
    expect(service.app.metrics.render()).toMatch(/wsm_publish_failed_total\{kind="message",reason="[^"]*403[^"]*"\} 5/);
  });

  it("a sidecar that stops answering costs bounded memory; drops are counted; RPCs stay fast", async () => {
    const { sidecar, up, client, service } = await setup({ publishQueueMessages: 200, publishTimeoutMs: 60_000 });
    sidecar.mode = "hang";
    const c = await client.connect({ url: up.url, topic: "t.slow" });
    const N = 5000;
    for (let n = 1; n <= N; n++) up.broadcast(JSON.stringify({ n, pad: "p".repeat(100) }));
    await vi.waitFor(async () => expect((await statsOf(client, c.id)).messagesIn).toBe(BigInt(N)), { timeout: 20_000 });
    const s = await statsOf(client, c.id);
    // At most the queue bound waits, plus the one batch held by the sidecar.
    expect(s.publishQueueLength).toBeLessThanOrEqual(200 + 100);
    expect(Number(s.publishDropped)).toBe(N - s.publishQueueLength);
    expect(service.app.metrics.render()).toMatch(/wsm_publish_dropped_total\{kind="message"\} [1-9]\d*/);
    const t0 = performance.now();
    await client.list({});
    expect(performance.now() - t0).toBeLessThan(500);
    // The sidecar recovers: the held requests answer and the rest of the queue drains.
    sidecar.mode = "ok";
    for (const r of sidecar.held.splice(0)) r.writeHead(204).end();
    await vi.waitFor(async () => expect((await statsOf(client, c.id)).publishQueueLength).toBe(0), { timeout: 20_000 });
    const after = await statsOf(client, c.id);
    expect(Number(after.published) + Number(after.publishDropped) + Number(after.publishFailed)).toBe(N);
  });
});
