/**
 * The connection manager against real local WebSocket servers, below the RPC layer: state
 * machine, reconnect, heartbeat, correlation and publishing details that are awkward to reach
 * through RPC. The protocol-level scenario suite covers the same behaviour end to end.
 */
import { once } from "node:events";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { LifecycleEvent } from "../src/publish/events.ts";
import { createManagerFixture, type ManagerFixture } from "./support/manager-fixture.ts";
import { startWsServer, type TestWsServer } from "./support/ws-servers.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(behaviour: Parameters<typeof startWsServer>[0]["behaviour"]): Promise<TestWsServer> {
  const s = await startWsServer({ behaviour });
  cleanups.push(() => s.close());
  return s;
}

function fixture(options?: Parameters<typeof createManagerFixture>[0]): ManagerFixture {
  const f = createManagerFixture(options);
  cleanups.push(() => f.close());
  return f;
}

function lifecycleOf(f: ManagerFixture, id?: string): LifecycleEvent[] {
  const events: LifecycleEvent[] = [];
  const sub = f.hub.subscribe({ messages: false, ...(id ? { connectionIds: [id] } : {}) });
  void (async () => {
    for await (const ev of sub) if (ev.kind === "lifecycle") events.push(ev.event);
  })();
  cleanups.push(() => sub.close());
  return events;
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<Code | undefined> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    return ConnectError.from(err).code;
  }
  return undefined;
}

describe("connection manager", () => {
  it("connects, reports connected, and correlates a Send by the id it adds", async () => {
    const f = fixture();
    const up = await server("jsonrpc");
    const c = await f.manager.connect({ url: up.url, autoReconnect: false });
    expect(c.status).toBe("connected");
    const reply = await c.send('{"type":"ping"}', "", 1000);
    const parsed = JSON.parse(reply.data) as { id: string; result: { type: string; id: string } };
    expect(parsed.result.type).toBe("ping");
    expect(parsed.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(reply.contentType).toBe("application/json");
  });

  it("correlates by a configured field and refuses a duplicate pending key", async () => {
    const f = fixture();
    const up = await server("silent");
    const c = await f.manager.connect({ url: up.url, autoReconnect: false, correlation: { mode: "json-field", field: "req_id" } });
    const first = c.send('{"req_id":7,"op":"x"}', "", 5000);
    expect(await codeOf(c.send('{"req_id":7,"op":"y"}', "", 5000))).toBe(Code.AlreadyExists);
    await up.waitForReceived(1);
    up.broadcast('{"req_id":"7","note":"string 7 is another key"}');
    up.broadcast('{"req_id":7,"ok":true}');
    expect(JSON.parse((await first).data)).toEqual({ req_id: 7, ok: true });
    // The unmatched frame was published as an ordinary inbound frame, not swallowed.
    expect(c.statsSnapshot().messagesIn).toBe(2);
  });

  it("UUID-prefix mode sends a binary frame and strips the prefix from the reply", async () => {
    const f = fixture();
    const up = await server("uuid-prefix");
    const c = await f.manager.connect({ url: up.url, autoReconnect: false, correlation: { mode: "uuid-prefix" } });
    const reply = await c.send('{"q":1}', "application/json", 1000);
    expect(reply.data).toBe('reply:{"q":1}');
    expect(up.received[0]!.isBinary).toBe(true);
    expect(up.received[0]!.data.length).toBe(16 + 7);
  });

  it("times out a Send with DEADLINE_EXCEEDED and leaves no pending entry", async () => {
    const f = fixture();
    const up = await server("silent");
    const c = await f.manager.connect({ url: up.url, autoReconnect: false });
    expect(await codeOf(c.send('{"a":1}', "", 50))).toBe(Code.DeadlineExceeded);
    expect(c.statsSnapshot().pendingSends).toBe(0);
  });

  it("fails pending Sends with UNAVAILABLE on Disconnect and emits one disconnected event", async () => {
    const f = fixture();
    const up = await server("silent");
    const c = await f.manager.connect({ url: up.url, autoReconnect: true });
    const events = lifecycleOf(f, c.id);
    const pending = c.send('{"a":1}', "", 5000);
    await up.waitForReceived(1);
    f.manager.disconnect(c.id);
    expect(await codeOf(pending)).toBe(Code.Unavailable);
    await vi.waitFor(() => expect(events.map((e) => e.type)).toEqual(["disconnected"]));
    expect(await codeOf(() => f.manager.get(c.id))).toBe(Code.NotFound);
    await vi.waitFor(() => expect(up.sockets.size).toBe(0));
  });

  it("fails Connect with UNAVAILABLE on a 403 and leaves nothing behind", async () => {
    const f = fixture();
    const up = await server("refuse");
    const err = await f.manager.connect({ url: up.url, autoReconnect: true }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Unavailable);
    expect((err as ConnectError).rawMessage).toContain("403");
    expect(f.manager.size).toBe(0);
  });

  it("reconnects after a drop, replays on-open messages in order, keeps id, topic and tags", async () => {
    const f = fixture();
    const up = await server("echo");
    const c = await f.manager.connect({
      url: up.url,
      autoReconnect: true,
      tags: { desk: "fx" },
      topic: "feed.a",
      onOpen: [
        { message: '{"op":"auth"}', contentType: "" },
        { message: '{"op":"subscribe"}', contentType: "application/json" },
      ],
    });
    const events = lifecycleOf(f, c.id);
    await up.waitForReceived(2);
    up.dropAll("terminate");
    await up.waitForAccepted(2);
    await vi.waitFor(() => expect(c.status).toBe("connected"));
    await up.waitForReceived(4);
    expect(up.received.map((r) => `${r.socket}:${r.data.toString()}`)).toEqual([
      '1:{"op":"auth"}',
      '1:{"op":"subscribe"}',
      '2:{"op":"auth"}',
      '2:{"op":"subscribe"}',
    ]);
    await vi.waitFor(() => expect(events.map((e) => e.type)).toEqual(["error", "reconnecting", "connected"]));
    expect(c.topic).toBe("feed.a");
    expect(f.manager.getTags(c.id)).toEqual({ desk: "fx" });
    expect(c.statsSnapshot().reconnects).toBe(1);
  });

  it("detects a dead heartbeat and reconnects", async () => {
    // Pings every 30 ms with a 60 ms pong timeout, shortened from 15 s / 10 s.
    const f = fixture({ defaults: { heartbeat: { pingIntervalMs: 30, pongTimeoutMs: 60, staleTimeoutMs: 0 } } });
    const up = await server("ping-deaf");
    const c = await f.manager.connect({ url: up.url, autoReconnect: true });
    const events = lifecycleOf(f, c.id);
    await vi.waitFor(() => expect(events.some((e) => e.type === "error" && e.errorType === "heartbeat")).toBe(true));
    await up.waitForAccepted(2);
    await vi.waitFor(() => expect(c.statsSnapshot().reconnects).toBeGreaterThanOrEqual(1));
  });

  it("detects a stale feed", async () => {
    const f = fixture();
    const up = await server("silent");
    // 80 ms of silence means dead (shortened for the test).
    const c = await f.manager.connect({ url: up.url, autoReconnect: false, heartbeat: { staleTimeoutMs: 80 } });
    await vi.waitFor(() => expect(c.status).toBe("disconnected"));
    expect(c.statsSnapshot().lastError).toContain("no inbound frame");
  });

  it("gives up after max attempts and stays listed as disconnected until Reconnect", async () => {
    const f = fixture();
    const up = await server("echo");
    const c = await f.manager.connect({ url: up.url, autoReconnect: true, reconnect: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 } });
    up.setRefusing(true);
    up.dropAll();
    await vi.waitFor(() => expect(c.status).toBe("disconnected"));
    expect(f.manager.list().map((x) => x.id)).toEqual([c.id]);
    expect(await codeOf(f.manager.reconnect(c.id))).toBe(Code.Unavailable);
    expect(c.status).toBe("disconnected");
    up.setRefusing(false);
    await f.manager.reconnect(c.id);
    expect(c.status).toBe("connected");
  });

  it("publishes inbound frames with sequence numbers that continue across reconnects", async () => {
    const f = fixture();
    const up = await server("silent");
    const c = await f.manager.connect({ url: up.url, autoReconnect: true });
    f.manager.startPublish(c.id, "md.trades");
    up.broadcast('{"n":1}');
    up.broadcast("plain text");
    up.broadcast(Buffer.from([1, 2, 3]), true);
    await vi.waitFor(() => expect(f.published.get("md.trades")?.length).toBe(3));
    up.dropAll();
    await up.waitForAccepted(2);
    await vi.waitFor(() => expect(c.status).toBe("connected"));
    up.broadcast('{"n":4}');
    await vi.waitFor(() => expect(f.published.get("md.trades")?.length).toBe(4));
    const events = f.published.get("md.trades")!;
    expect(events.map((e) => e.sequence)).toEqual([1, 2, 3, 4]);
    expect(events[0]!.data).toEqual({ n: 1 });
    expect(events[0]!.datacontenttype).toBe("application/json");
    expect(events[1]!.data).toBe("plain text");
    expect(events[2]!.data_base64).toBe(Buffer.from([1, 2, 3]).toString("base64"));
    expect(events[2]!.datacontenttype).toBe("application/octet-stream");
    expect(events[0]!.connectionid).toBe(c.id);
    expect(events[0]!.type).toBe("com.virtufin.websocketmanager.message");
    f.manager.stopPublish(c.id);
    up.broadcast('{"n":5}');
    await vi.waitFor(() => expect(c.statsSnapshot().messagesIn).toBe(5));
    expect(f.published.get("md.trades")!.length).toBe(4);
    expect(c.channel.stats.published).toBe(4);
  });

  it("publishes lifecycle events to the lifecycle topic", async () => {
    const f = fixture();
    const up = await server("echo");
    const c = await f.manager.connect({ url: up.url, autoReconnect: false });
    f.manager.disconnect(c.id);
    await vi.waitFor(() => expect(f.published.get("websocketmanager.lifecycle")?.length).toBe(3));
    const types = f.published.get("websocketmanager.lifecycle")!.map((e) => e.type);
    expect(types).toEqual([
      "com.virtufin.websocketmanager.lifecycle.connecting",
      "com.virtufin.websocketmanager.lifecycle.connected",
      "com.virtufin.websocketmanager.lifecycle.disconnected",
    ]);
    const data = f.published.get("websocketmanager.lifecycle")![2]!.data as Record<string, unknown>;
    expect(data).toMatchObject({ connection_id: c.id, status: "disconnected", previous_status: "connected", instance_id: "test-instance" });
  });

  it("validates topics, tags and URLs with INVALID_ARGUMENT", async () => {
    const f = fixture({ urlPolicy: { blockPrivateAddresses: false } });
    const up = await server("echo");
    const c = await f.manager.connect({ url: up.url, autoReconnect: false });
    expect(await codeOf(() => f.manager.startPublish(c.id, ""))).toBe(Code.InvalidArgument);
    expect(await codeOf(() => f.manager.startPublish(c.id, "a b"))).toBe(Code.InvalidArgument);
    expect(await codeOf(() => f.manager.startPublish(c.id, "x".repeat(257)))).toBe(Code.InvalidArgument);
    f.manager.startPublish(c.id, "ws-events");
    f.manager.startPublish(c.id, "a.b_c:d/e-f");
    expect(await codeOf(() => f.manager.setTag(c.id, "k".repeat(129), "v"))).toBe(Code.InvalidArgument);
    expect(await codeOf(() => f.manager.setTag(c.id, "k", "v".repeat(1025)))).toBe(Code.InvalidArgument);
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, "v"]));
    f.manager.setTags(c.id, fifty);
    expect(await codeOf(() => f.manager.setTag(c.id, "one-more", "v"))).toBe(Code.InvalidArgument);
    f.manager.setTag(c.id, "k1", "replaced");
    expect(f.manager.getTag(c.id, "k1")).toBe("replaced");
    expect(await codeOf(() => f.manager.getTag(c.id, "absent"))).toBe(Code.NotFound);
    for (const url of ["", "not a url", "http://127.0.0.1/", "ftp://x/", "ws://169.254.169.254/latest", "ws://[fe80::1]/", "ws://metadata.google.internal/"]) {
      expect(await codeOf(f.manager.connect({ url, autoReconnect: false })), url).toBe(Code.InvalidArgument);
    }
  });

  it("refuses loopback when private addresses are blocked, checking the resolved address", async () => {
    const f = fixture({ urlPolicy: { blockPrivateAddresses: true } });
    const up = await server("echo");
    expect(await codeOf(f.manager.connect({ url: up.url, autoReconnect: false }))).toBe(Code.InvalidArgument);
    const named = up.url.replace("127.0.0.1", "localhost");
    expect(await codeOf(f.manager.connect({ url: named, autoReconnect: false }))).toBe(Code.InvalidArgument);
    expect(up.accepted).toBe(0);
  });

  it("filters List by tags (ANDed), oldest first", async () => {
    const f = fixture();
    const up = await server("echo");
    const a = await f.manager.connect({ url: up.url, autoReconnect: false, tags: { venue: "x", kind: "md" } });
    const b = await f.manager.connect({ url: up.url, autoReconnect: false, tags: { venue: "x", kind: "orders" } });
    const c = await f.manager.connect({ url: up.url, autoReconnect: false, tags: { venue: "y", kind: "md" } });
    expect(f.manager.list().map((x) => x.id)).toEqual([a.id, b.id, c.id]);
    expect(f.manager.list([{ key: "venue", value: "x" }]).map((x) => x.id)).toEqual([a.id, b.id]);
    expect(f.manager.list([{ key: "venue", value: "x" }, { key: "kind", value: "md" }]).map((x) => x.id)).toEqual([a.id]);
    expect(f.manager.list([{ key: "kind", value: "" }]).length).toBe(3);
    expect(f.manager.list([{ key: "nope", value: "" }]).length).toBe(0);
  });

  it("enforces the connection limit with RESOURCE_EXHAUSTED", async () => {
    const f = fixture({ maxConnections: 1 });
    const up = await server("echo");
    await f.manager.connect({ url: up.url, autoReconnect: false });
    expect(await codeOf(f.manager.connect({ url: up.url, autoReconnect: false }))).toBe(Code.ResourceExhausted);
  });

  it("sends binary frames for application/octet-stream and refuses bad base64", async () => {
    const f = fixture();
    const up = await server("echo");
    const c = await f.manager.connect({ url: up.url, autoReconnect: false });
    c.sendRaw(Buffer.from([0, 255, 7]).toString("base64"), "application/octet-stream");
    c.sendRaw("hello", "text/plain");
    await up.waitForReceived(2);
    expect(up.received[0]).toMatchObject({ isBinary: true });
    expect([...up.received[0]!.data]).toEqual([0, 255, 7]);
    expect(up.received[1]).toMatchObject({ isBinary: false });
    expect(await codeOf(() => c.sendRaw("not base64!", "application/octet-stream"))).toBe(Code.InvalidArgument);
    expect(await codeOf(() => c.sendRaw("x", "image/png"))).toBe(Code.InvalidArgument);
    expect(await codeOf(c.send("[1,2]", "", 100))).toBe(Code.InvalidArgument);
    expect(await codeOf(c.send("not json", "", 100))).toBe(Code.InvalidArgument);
  });

  it("refuses writes with FAILED_PRECONDITION while reconnecting", async () => {
    const f = fixture({ defaults: { reconnect: { baseDelayMs: 60_000, maxDelayMs: 60_000, maxAttempts: 0 } } });
    const up = await server("echo");
    const c = await f.manager.connect({ url: up.url, autoReconnect: true });
    up.dropAll();
    await vi.waitFor(() => expect(c.status).toBe("reconnecting"));
    const err = await codeOf(() => c.sendRaw("x", ""));
    expect(err).toBe(Code.FailedPrecondition);
    // Reconnect skips the (minute-long) backoff and opens now.
    await f.manager.reconnect(c.id);
    expect(c.status).toBe("connected");
  });

  it("never has two attempts in flight for one connection", async () => {
    const f = fixture({ defaults: { reconnect: { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: 0 } } });
    const up = await server("echo");
    const c = await f.manager.connect({ url: up.url, autoReconnect: true });
    up.setRefusing(true);
    up.dropAll();
    await vi.waitFor(() => expect(c.statsSnapshot().reconnectAttempt).toBeGreaterThanOrEqual(3));
    // Concurrent Reconnect calls join the in-flight attempt instead of starting their own.
    up.setRefusing(false);
    const before = up.accepted;
    await Promise.all([f.manager.reconnect(c.id), f.manager.reconnect(c.id), f.manager.reconnect(c.id)]);
    expect(c.status).toBe("connected");
    expect(up.accepted - before).toBe(1);
  });

  it("a Disconnect during Connect fails the Connect and reports one disconnected event, no error", async () => {
    const f = fixture();
    // Accepts TCP and never answers the upgrade, so the Connect stays in its handshake.
    const mute = createNetServer((socket) => socket.on("error", () => {}));
    mute.listen(0, "127.0.0.1");
    await once(mute, "listening");
    cleanups.push(() => new Promise<void>((r) => mute.close(() => r())));
    const port = (mute.address() as AddressInfo).port;
    const pending = codeOf(f.manager.connect({ url: `ws://127.0.0.1:${port}/`, autoReconnect: false, handshakeTimeoutMs: 10_000 }));
    const id = await vi.waitFor(() => {
      const c = f.manager.list()[0];
      if (!c) throw new Error("not listed yet");
      return c.id;
    });
    const events = lifecycleOf(f, id);
    f.manager.disconnect(id);
    expect(await pending).toBe(Code.Unavailable);
    await vi.waitFor(() => expect(events.map((e) => e.type)).toEqual(["disconnected"]));
    expect(f.manager.size).toBe(0);
  });
});
