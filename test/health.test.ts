/**
 * Health: the readiness object on its own, then grpc.health.v1 over gRPC on the real server.
 */
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { createHealth, type HealthReport } from "../src/server/health.ts";
import { codeOf, startTestServer, type TestServer } from "./support/server-fixture.ts";

describe("createHealth", () => {
  it("is serving with no checks and fails while any check fails or throws", () => {
    const health = createHealth();
    expect(health.evaluate()).toEqual({ serving: true, shuttingDown: false, failing: [] });
    let sidecarUp = false;
    health.addCheck("sidecar", () => sidecarUp);
    health.addCheck("broken", () => {
      throw new Error("probe crashed");
    });
    expect(health.evaluate()).toEqual({ serving: false, shuttingDown: false, failing: ["sidecar", "broken"] });
    sidecarUp = true;
    expect(health.evaluate().failing).toEqual(["broken"]);
  });

  it("removes checks", () => {
    const health = createHealth();
    const remove = health.addCheck("down", () => false);
    expect(health.evaluate().serving).toBe(false);
    remove();
    expect(health.evaluate().serving).toBe(true);
  });

  it("tells watchers about changes only, and stays NOT_SERVING after shutdown", () => {
    const health = createHealth({ checkIntervalMs: 0 });
    let up = true;
    health.addCheck("dep", () => up);
    const seen: HealthReport[] = [];
    const unwatch = health.watch((r) => seen.push(r));
    health.evaluate();
    up = false;
    health.evaluate();
    health.evaluate();
    up = true;
    health.evaluate();
    health.setShuttingDown();
    health.setShuttingDown();
    expect(seen.map((r) => [r.serving, r.shuttingDown])).toEqual([
      [false, false],
      [true, false],
      [false, true],
    ]);
    expect(health.evaluate()).toMatchObject({ serving: false, shuttingDown: true });
    unwatch();
  });

  it("re-runs checks periodically while watched", async () => {
    const health = createHealth({ checkIntervalMs: 5 });
    let up = true;
    health.addCheck("dep", () => up);
    const seen: boolean[] = [];
    const unwatch = health.watch((r) => seen.push(r.serving));
    up = false;
    await expect.poll(() => seen).toEqual([false]);
    unwatch();
  });

  it("always answers for the whole server", () => {
    expect(createHealth().serviceNames).toEqual(["", "virtufin.WebSocketManager"]);
    expect(createHealth({ serviceNames: ["a.B", ""] }).serviceNames).toEqual(["", "a.B"]);
  });
});

describe("grpc.health.v1.Health over gRPC", () => {
  let t: TestServer;
  afterEach(() => t.close());

  const client = () => createClient(Health, createGrpcTransport({ baseUrl: t.baseUrl, idleConnectionTimeoutMs: 200 }));

  it("Check answers for known services and NOT_FOUND for others", async () => {
    t = await startTestServer();
    let up = true;
    t.health.addCheck("dep", () => up);
    const health = client();
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await health.check({ service: "virtufin.WebSocketManager" })).status).toBe(ServingStatus.SERVING);
    up = false;
    expect((await health.check({ service: "virtufin.WebSocketManager" })).status).toBe(ServingStatus.NOT_SERVING);
    expect(await codeOf(health.check({ service: "no.Such" }))).toBe(Code.NotFound);
    const list = await health.list({});
    expect(Object.keys(list.statuses).sort()).toEqual(["", "virtufin.WebSocketManager"]);
    expect(list.statuses[""]?.status).toBe(ServingStatus.NOT_SERVING);
  });

  it("Watch sends the current status, each change, and ends at shutdown", async () => {
    t = await startTestServer();
    let up = true;
    t.health.addCheck("dep", () => up);
    const seen: ServingStatus[] = [];
    for await (const res of client().watch({ service: "" })) {
      seen.push(res.status);
      if (seen.length === 1) {
        up = false;
        t.health.evaluate();
      } else if (seen.length === 2) {
        up = true;
        t.health.evaluate();
      } else if (seen.length === 3) {
        void t.close();
      }
    }
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
  });

  it("Watch of an unknown service says SERVICE_UNKNOWN and stays open", async () => {
    t = await startTestServer();
    const abort = new AbortController();
    const seen: ServingStatus[] = [];
    const watching = (async () => {
      for await (const res of client().watch({ service: "no.Such" }, { signal: abort.signal })) seen.push(res.status);
    })();
    await expect.poll(() => seen).toEqual([ServingStatus.SERVICE_UNKNOWN]);
    abort.abort();
    expect(await codeOf(watching)).toBe(Code.Canceled);
  });
});
