/**
 * RPC logging and metrics: mutating calls at info with the connection id, reads at debug,
 * internal errors at error with their cause, never message bodies.
 */
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketManager } from "../gen/virtufin/websocketmanager_pb.js";
import { createMetrics } from "../src/metrics.ts";
import { captureLogger, codeOf, startTestServer, transports, type LogRecord, type TestServer } from "./support/server-fixture.ts";

let t: TestServer;
let records: LogRecord[];
const metrics = createMetrics();

beforeAll(async () => {
  const captured = captureLogger();
  records = captured.records;
  t = await startTestServer({ logger: captured.logger, metrics });
});
afterAll(() => t.close());

const rpcRecords = (method: string) => records.filter((r) => r.method === `virtufin.WebSocketManager/${method}`);

describe("RPC telemetry", () => {
  const client = () => createClient(WebSocketManager, transports[0]!.make(t.baseUrl));

  it("logs a mutating call at info with code, duration and the connection id from the response", async () => {
    await client().connect({ url: "ws://upstream.test/secret-path?key=abc" });
    const [record] = rpcRecords("Connect");
    expect(record).toMatchObject({ level: "info", msg: "rpc", code: "ok", connection_id: "id-for:ws://upstream.test/secret-path?key=abc" });
    expect(typeof record?.duration_ms).toBe("number");
  });

  it("takes the connection id from the request when it has one, and logs failures with their code", async () => {
    await client().send({ id: "conn-7", message: '{"op":"subscribe","secret":"do-not-log"}' });
    // Send is data plane: debug only (the control plane is at info).
    expect(rpcRecords("Send")).toEqual([expect.objectContaining({ level: "debug", code: "ok", connection_id: "conn-7" })]);
    expect(JSON.stringify(records)).not.toContain("do-not-log");

    expect(await codeOf(client().disconnect({ id: "missing" }))).toBe(Code.NotFound);
    expect(rpcRecords("Disconnect")).toEqual([expect.objectContaining({ level: "info", code: "not_found", connection_id: "missing" })]);
  });

  it("logs reads and the data plane at debug only", async () => {
    await client().list({});
    await client().getTags({ id: "conn-1" });
    expect(rpcRecords("List").map((r) => r.level)).toEqual(["debug"]);
    expect(rpcRecords("GetTags").map((r) => r.level)).toEqual(["debug"]);
  });

  it("logs an internal error at error with its cause", async () => {
    expect(await codeOf(client().disconnect({ id: "explode" }))).toBe(Code.Internal);
    const [record] = rpcRecords("Disconnect").filter((r) => r.level === "error");
    expect(record).toMatchObject({ code: "internal", connection_id: "explode", err: { message: "boom: invariant broken" } });
    expect(record?.stack).toContain("boom: invariant broken");
  });

  it("counts calls by method and code, and times them", () => {
    const text = metrics.render();
    expect(text).toContain('wsm_rpc_requests_total{code="ok",method="virtufin.WebSocketManager/Connect"} 1');
    expect(text).toContain('wsm_rpc_requests_total{code="not_found",method="virtufin.WebSocketManager/Disconnect"} 1');
    expect(text).toContain('wsm_rpc_requests_total{code="internal",method="virtufin.WebSocketManager/Disconnect"} 1');
    expect(text).toContain('wsm_rpc_duration_seconds_count{method="virtufin.WebSocketManager/Disconnect"} 2');
  });

  it("records a server stream when it ends", async () => {
    const abort = new AbortController();
    const reading = (async () => {
      for await (const _ of client().subscribe({}, { signal: abort.signal })) abort.abort();
    })();
    expect(await codeOf(reading)).toBe(Code.Canceled);
    await expect.poll(() => rpcRecords("Subscribe").map((r) => r.code)).toEqual(["canceled"]);
  });
});
