/**
 * The scenario suite: every RPC and every error code of SPEC section 4, written once and run
 * over gRPC, gRPC-Web and Connect (JSON and binary) on HTTP/1.1 and HTTP/2, against the real
 * server on port 0 and real local WebSocket servers.
 */
import { once } from "node:events";
import { createConnection } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { CorrelationMode, type SubscribeResponse } from "../gen/virtufin/websocketmanager_pb.js";
import { clientFor, startService, transports, type RunningService, type WsmClient } from "./support/service.ts";
import { startWsServer, type Behaviour, type TestWsServer } from "./support/ws-servers.ts";

let service: RunningService;
beforeAll(async () => {
  service = await startService({
    // Small limits so that the limit scenarios need little data.
    maxMessageBytes: 256 * 1024,
    maxFrameBytes: 128 * 1024,
    maxBufferedBytes: 64 * 1024,
  });
});
afterAll(() => service.close());

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  // Each scenario starts with no connections, whatever the one before left.
  for (const c of service.app.manager.list()) service.app.manager.disconnect(c.id);
});

async function upstream(behaviour: Behaviour): Promise<TestWsServer> {
  const s = await startWsServer({ behaviour });
  cleanups.push(() => s.close());
  return s;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: Code | undefined; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  return { code: undefined, message: "" };
}

/** Collects a Subscribe stream in the background until the test ends. */
function subscribe(client: WsmClient, req: Parameters<WsmClient["subscribe"]>[0]): SubscribeResponse[] {
  const events: SubscribeResponse[] = [];
  const abort = new AbortController();
  void (async () => {
    try {
      for await (const ev of client.subscribe(req, { signal: abort.signal })) events.push(ev);
    } catch {
      // cancelled at cleanup
    }
  })();
  cleanups.push(() => abort.abort());
  return events;
}

function lifecycleTypes(events: SubscribeResponse[]): string[] {
  return events.flatMap((e) => (e.event.case === "lifecycle" ? [e.event.value.type] : []));
}

describe.each(transports)("over $name", (transportCase) => {
  let client: WsmClient;
  beforeAll(() => {
    client = clientFor(transportCase.make(service.baseUrl));
  });

  it("Connect, List, Send, SendRaw, Disconnect: the manual's flow", async () => {
    const up = await upstream("jsonrpc");
    const res = await client.connect({ url: up.url, autoReconnect: true, tags: { desk: "fx" } });
    expect(res.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(res.status).toBe("connected");

    const list = await client.list({});
    const mine = list.connections.find((c) => c.id === res.id)!;
    expect(mine).toMatchObject({ url: up.url, status: "connected", topic: "", instanceId: "test-instance", tags: { desk: "fx" } });
    expect(mine.autoReconnect).toBe(true);
    expect(mine.createdAt).toBeDefined();

    const reply = await client.send({ id: res.id, message: '{"type":"request","id":"123","data":"hello"}', timeoutMs: 2000 });
    expect(JSON.parse(reply.response)).toEqual({ id: "123", result: { type: "request", id: "123", data: "hello" } });
    expect(reply.contentType).toBe("application/json");

    await client.sendRaw({ id: res.id, message: '{"type":"notification"}' });
    await up.waitForReceived(2);
    expect(up.received[1]!.data.toString()).toBe('{"type":"notification"}');

    const stats = (await client.list({})).connections.find((c) => c.id === res.id)!.stats!;
    expect(stats.messagesOut).toBe(2n);
    expect(stats.messagesIn).toBe(1n);
    expect(stats.connectedSince).toBeDefined();

    await client.disconnect({ id: res.id });
    expect((await client.list({})).connections.some((c) => c.id === res.id)).toBe(false);
    expect((await codeOf(client.disconnect({ id: res.id }))).code).toBe(Code.NotFound);
    await vi.waitFor(() => expect(up.sockets.size).toBe(0));
  });

  it("Connect refuses bad URLs with INVALID_ARGUMENT and unreachable upstreams with UNAVAILABLE", async () => {
    for (const url of ["", "no scheme", "http://127.0.0.1:1/", "ws://169.254.169.254/", "ws://[fe80::1]:80/", "ws://metadata.google.internal/x"]) {
      const r = await codeOf(client.connect({ url }));
      expect(r.code, url).toBe(Code.InvalidArgument);
      expect(r.message.length).toBeGreaterThan(5);
    }
    const refusing = await upstream("refuse");
    const r403 = await codeOf(client.connect({ url: refusing.url }));
    expect(r403.code).toBe(Code.Unavailable);
    expect(r403.message).toContain("403");
    // A port nobody listens on: take a server's port and close it.
    const gone = await startWsServer({ behaviour: "echo" });
    await gone.close();
    const refused = await codeOf(client.connect({ url: gone.url }));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.message).toContain("ECONNREFUSED");
    // Nothing is left behind by a failed Connect.
    expect((await client.list({})).connections.filter((c) => c.url === refusing.url || c.url === gone.url)).toEqual([]);
  });

  it("Send correlates by JSON field, adds the id when absent, and times out with DEADLINE_EXCEEDED", async () => {
    const rpc = await upstream("jsonrpc");
    const c = await client.connect({ url: rpc.url });
    const added = JSON.parse((await client.send({ id: c.id, message: '{"type":"ping"}' })).response) as { id: string };
    expect(added.id).toMatch(/^[0-9a-f-]{36}$/);

    const custom = await client.connect({ url: rpc.url, correlation: { mode: CorrelationMode.JSON_FIELD, field: "req_id" } });
    const r = JSON.parse((await client.send({ id: custom.id, message: '{"req_id":42,"op":"q"}' })).response) as { req_id: number };
    expect(r.req_id).toBe(42);

    const silent = await upstream("silent");
    const s = await client.connect({ url: silent.url });
    expect((await codeOf(client.send({ id: s.id, message: '{"a":1}', timeoutMs: 50 }))).code).toBe(Code.DeadlineExceeded);
    // The RPC deadline bounds the wait even when timeout_ms is longer.
    expect((await codeOf(client.send({ id: s.id, message: '{"a":2}', timeoutMs: 60_000 }, { timeoutMs: 100 }))).code).toBe(
      Code.DeadlineExceeded,
    );
    const pending = codeOf(client.send({ id: s.id, message: '{"id":"dup"}', timeoutMs: 2000 }));
    await silent.waitForReceived(3);
    expect((await codeOf(client.send({ id: s.id, message: '{"id":"dup"}', timeoutMs: 2000 }))).code).toBe(Code.AlreadyExists);
    expect((await codeOf(client.send({ id: s.id, message: "not json" }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.send({ id: s.id, message: "[1]" }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.send({ id: s.id, message: "" }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.send({ id: s.id, message: "{}", timeoutMs: -1 }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.send({ id: "no-such-id", message: "{}" }))).code).toBe(Code.NotFound);
    // Disconnect fails the pending Send with UNAVAILABLE.
    await client.disconnect({ id: s.id });
    expect((await pending).code).toBe(Code.Unavailable);
  });

  it("Send in UUID-prefix mode returns the reply without its prefix", async () => {
    const up = await upstream("uuid-prefix");
    const c = await client.connect({ url: up.url, correlation: { mode: CorrelationMode.UUID_PREFIX } });
    const r = await client.send({ id: c.id, message: "hello" });
    expect(r.response).toBe("reply:hello");
    expect(r.contentType).toBe("text/plain");
    const bin = await client.send({ id: c.id, message: Buffer.from([0xff, 0xfe, 0x00]).toString("base64"), contentType: "application/octet-stream" });
    expect(bin.contentType).toBe("application/octet-stream");
    expect([...Buffer.from(bin.response, "base64")]).toEqual([...Buffer.from("reply:"), 0xff, 0xfe, 0x00]);
  });

  it("SendRaw writes text and binary frames and refuses what it cannot write", async () => {
    const up = await upstream("echo");
    const c = await client.connect({ url: up.url });
    await client.sendRaw({ id: c.id, message: "AAEC/w==", contentType: "application/octet-stream" });
    await client.sendRaw({ id: c.id, message: "plain", contentType: "text/plain" });
    await up.waitForReceived(2);
    expect(up.received[0]!.isBinary).toBe(true);
    expect([...up.received[0]!.data]).toEqual([0, 1, 2, 255]);
    expect(up.received[1]!.isBinary).toBe(false);
    expect((await codeOf(client.sendRaw({ id: c.id, message: "%%%", contentType: "application/octet-stream" }))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await codeOf(client.sendRaw({ id: c.id, message: "" }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.sendRaw({ id: c.id, message: "x", contentType: "image/png" }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.sendRaw({ id: "nope", message: "x" }))).code).toBe(Code.NotFound);
    // Over the frame limit (128 KiB here) but under the RPC limit.
    expect((await codeOf(client.sendRaw({ id: c.id, message: "x".repeat(150 * 1024) }))).code).toBe(Code.ResourceExhausted);
    // Over the RPC message limit (256 KiB here).
    expect((await codeOf(client.sendRaw({ id: c.id, message: "x".repeat(300 * 1024) }))).code).toBe(Code.ResourceExhausted);
    // The connection still works after all of that.
    await client.sendRaw({ id: c.id, message: "still here" });
    await up.waitForReceived(3);
  });

  it("SendRaw fails with RESOURCE_EXHAUSTED when the upstream stops reading", async () => {
    const up = await upstream("stalled");
    const c = await client.connect({ url: up.url });
    const chunk = "y".repeat(60 * 1024);
    let code: Code | undefined;
    for (let i = 0; i < 200 && code === undefined; i++) {
      code = (await codeOf(client.sendRaw({ id: c.id, message: chunk }))).code;
    }
    expect(code).toBe(Code.ResourceExhausted);
  });

  it("StartPublish publishes later frames with sequence numbers; StopPublish stops; topics are validated", async () => {
    const up = await upstream("silent");
    const c = await client.connect({ url: up.url });
    const events = subscribe(client, { topics: ["md.btc"] , excludeLifecycle: true });
    for (const bad of ["", "has space", "x".repeat(257), "semi;colon"]) {
      expect((await codeOf(client.startPublish({ id: c.id, topic: bad }))).code, bad).toBe(Code.InvalidArgument);
    }
    expect((await codeOf(client.startPublish({ id: "nope", topic: "t" }))).code).toBe(Code.NotFound);
    expect((await codeOf(client.stopPublish({ id: "nope" }))).code).toBe(Code.NotFound);
    await client.startPublish({ id: c.id, topic: "md.btc" });
    expect((await client.list({})).connections.find((x) => x.id === c.id)!.topic).toBe("md.btc");
    await vi.waitFor(() => expect(service.app.hub.subscriberCount).toBeGreaterThan(0));
    up.broadcast('{"p":1}');
    up.broadcast("two");
    await vi.waitFor(() => expect(events.length).toBe(2));
    const msgs = events.map((e) => (e.event.case === "message" ? e.event.value : undefined));
    expect(msgs.map((m) => m?.sequence)).toEqual([1n, 2n]);
    expect(msgs.map((m) => m?.contentType)).toEqual(["application/json", "text/plain"]);
    expect(msgs[0]).toMatchObject({ connectionId: c.id, topic: "md.btc", data: '{"p":1}' });
    await client.stopPublish({ id: c.id });
    up.broadcast('{"p":3}');
    await vi.waitFor(async () => {
      const s = (await client.list({})).connections.find((x) => x.id === c.id)!.stats!;
      expect(s.messagesIn).toBe(3n);
      expect(s.published).toBe(2n);
    });
    expect(events.length).toBe(2);
    // Free-form topics of the manual are valid.
    await client.startPublish({ id: c.id, topic: "ws-events" });
  });

  it("tags: set, get, replace, filter, and limits", async () => {
    const up = await upstream("echo");
    const a = await client.connect({ url: up.url, tags: { venue: "kraken" } });
    const b = await client.connect({ url: up.url, tags: { venue: "binance" } });
    await client.setTag({ id: a.id, key: "kind", value: "md" });
    expect((await client.getTag({ id: a.id, key: "kind" })).value).toBe("md");
    await client.setTags({ id: b.id, tags: { kind: "md", desk: "x" } });
    expect((await client.getTags({ id: b.id })).tags).toEqual({ venue: "binance", kind: "md", desk: "x" });
    const filtered = await client.list({ filters: [{ key: "kind", value: "md" }, { key: "venue", value: "binance" }] });
    expect(filtered.connections.map((c) => c.id)).toEqual([b.id]);
    const both = await client.list({ filters: [{ key: "kind", value: "md" }] });
    expect(both.connections.map((c) => c.id).filter((id) => id === a.id || id === b.id)).toEqual([a.id, b.id]);
    expect((await codeOf(client.getTag({ id: a.id, key: "absent" }))).code).toBe(Code.NotFound);
    expect((await codeOf(client.setTag({ id: a.id, key: "", value: "v" }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.setTag({ id: a.id, key: "k".repeat(129), value: "v" }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.setTag({ id: a.id, key: "k", value: "v".repeat(1025) }))).code).toBe(Code.InvalidArgument);
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`t${i}`, "v"]));
    expect((await codeOf(client.setTags({ id: a.id, tags: many }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.connect({ url: up.url, tags: many }))).code).toBe(Code.InvalidArgument);
    expect((await codeOf(client.getTags({ id: "nope" }))).code).toBe(Code.NotFound);
    // Tags never go upstream: the echo server saw no frame.
    expect(up.received.length).toBe(0);
  });

  it("a dropped upstream reconnects, replays on-open messages, and reports it on the Subscribe stream", async () => {
    const up = await upstream("echo");
    const c = await client.connect({
      url: up.url,
      autoReconnect: true,
      onOpen: [{ message: '{"op":"subscribe","ch":"trades"}' }],
      topic: "trades",
      headers: { "X-Api-Key": "secret-value" },
    });
    const events = subscribe(client, { connectionIds: [c.id] });
    await up.waitForReceived(1);
    await vi.waitFor(() => expect(service.app.hub.subscriberCount).toBeGreaterThan(0));
    up.dropAll("terminate");
    await up.waitForAccepted(2);
    await up.waitForReceived(2);
    await vi.waitFor(() => expect(lifecycleTypes(events)).toEqual(["error", "reconnecting", "connected"]));
    expect(up.received.map((r) => r.data.toString())).toEqual(['{"op":"subscribe","ch":"trades"}', '{"op":"subscribe","ch":"trades"}']);
    expect(up.handshakes[1]!.headers["x-api-key"]).toBe("secret-value");
    const conn = (await client.list({})).connections.find((x) => x.id === c.id)!;
    expect(conn).toMatchObject({ status: "connected", topic: "trades" });
    expect(conn.stats!.reconnects).toBe(1n);
    // Request headers are never shown by List.
    expect(JSON.stringify(conn, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))).not.toContain("secret-value");
  });

  it("without auto_reconnect a drop leaves the connection listed as disconnected; Reconnect reopens it", async () => {
    const up = await upstream("echo");
    const c = await client.connect({ url: up.url, autoReconnect: false });
    up.dropAll("close", 1011);
    await vi.waitFor(async () => {
      expect((await client.list({})).connections.find((x) => x.id === c.id)?.status).toBe("disconnected");
    });
    expect((await codeOf(client.sendRaw({ id: c.id, message: "x" }))).code).toBe(Code.FailedPrecondition);
    const r = await client.reconnect({ id: c.id });
    expect(r).toMatchObject({ id: c.id, status: "connected" });
    await client.sendRaw({ id: c.id, message: "back" });
    await up.waitForReceived(1);
    expect((await codeOf(client.reconnect({ id: "nope" }))).code).toBe(Code.NotFound);
  });

  it("a dead heartbeat is detected and the connection reconnects", async () => {
    const up = await upstream("ping-deaf");
    // Pings every 30 ms, 60 ms pong timeout (shortened from 15 s / 10 s).
    const c = await client.connect({ url: up.url, autoReconnect: true, heartbeat: { pingIntervalMs: 30, pongTimeoutMs: 60 } });
    const events = subscribe(client, { connectionIds: [c.id], excludeMessages: true });
    await vi.waitFor(() => {
      const errs = events.filter((e) => e.event.case === "lifecycle" && e.event.value.errorType === "heartbeat");
      expect(errs.length).toBeGreaterThan(0);
    });
    await up.waitForAccepted(2);
  });

  it("Subscribe sends snapshots when asked, and validates its filter", async () => {
    const up = await upstream("echo");
    const c = await client.connect({ url: up.url });
    const events = subscribe(client, { connectionIds: [c.id], snapshotIntervalMs: 100, excludeMessages: true });
    await vi.waitFor(() => expect(events.filter((e) => e.event.case === "snapshot").length).toBeGreaterThanOrEqual(2));
    const snap = events.find((e) => e.event.case === "snapshot")!;
    expect(snap.event.case === "snapshot" && snap.event.value.connections.map((x) => x.id)).toEqual([c.id]);
  });

  it("ids are required", async () => {
    for (const call of [
      client.disconnect({ id: "" }),
      client.sendRaw({ id: "", message: "x" }),
      client.getTags({ id: "" }),
      client.startPublish({ id: "", topic: "t" }),
    ]) {
      expect((await codeOf(call)).code).toBe(Code.InvalidArgument);
    }
  });
});

describe("malformed input", () => {
  it("never disturbs other connections: a feed keeps flowing while garbage arrives", async () => {
    const client = clientFor(transports[0]!.make(service.baseUrl));
    const up = await upstream("silent");
    const c = await client.connect({ url: up.url, topic: "steady.feed" });
    const events = subscribe(client, { connectionIds: [c.id], excludeLifecycle: true });
    await vi.waitFor(() => expect(service.app.hub.subscriberCount).toBeGreaterThan(0));

    // Raw garbage, a bogus HTTP/2 preface, and HTTP/1.1 headers that never finish.
    const sockets = await Promise.all(
      ["\x00\xff garbage \r\n\r\n", "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", "POST /virtufin.WebSocketManager/List HTTP/1.1\r\nHost: x\r\nContent-"].map(
        async (bytes) => {
          const s = createConnection({ host: "127.0.0.1", port: service.port });
          s.on("error", () => {});
          await once(s, "connect");
          s.write(Buffer.from(bytes, "latin1"));
          return s;
        },
      ),
    );
    cleanups.push(() => sockets.forEach((s) => s.destroy()));
    // Malformed JSON and a truncated binary message get clear errors, not a crash.
    const badJson = await fetch(`${service.baseUrl}/virtufin.WebSocketManager/Connect`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: '{"url": "ws://x", ',
    });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { code: string }).code).toBe("invalid_argument");
    const badProto = await fetch(`${service.baseUrl}/virtufin.WebSocketManager/Connect`, {
      method: "POST",
      headers: { "Content-Type": "application/proto" },
      body: new Uint8Array([0x0a, 0x50, 0x77]),
    });
    // connect-es reports an unparseable binary message as internal, as grpc-go does.
    expect(badProto.status).toBe(500);
    expect(await badProto.json()).toMatchObject({ code: "internal", message: expect.stringContaining("parse binary") });
    const wrongType = await fetch(`${service.baseUrl}/virtufin.WebSocketManager/List`, {
      method: "POST",
      headers: { "Content-Type": "text/html" },
      body: "<html>",
    });
    expect(wrongType.status).toBe(415);

    for (let n = 1; n <= 100; n++) up.broadcast(JSON.stringify({ n }));
    await vi.waitFor(() => expect(events.length).toBe(100));
    const seq = events.map((e) => (e.event.case === "message" ? Number(e.event.value.sequence) : 0));
    expect(seq).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect((await client.list({})).connections.find((x) => x.id === c.id)?.status).toBe("connected");
  });
});
