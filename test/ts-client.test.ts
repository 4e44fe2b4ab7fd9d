/**
 * The TypeScript client (clients/ts) against the real service on port 0 and real local
 * WebSocket servers, over every protocol the service serves: gRPC, gRPC-Web and Connect over
 * HTTP/1.1 and HTTP/2 (Node transports), and gRPC-Web and Connect over fetch (the browser
 * transports, as Node's fetch speaks them).
 */
import { build } from "esbuild";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  base64ToBytes,
  bytesToBase64,
  Code,
  codeName,
  ConnectError,
  createNodeTransport,
  createWebTransport,
  describeError,
  WebSocketManagerClient,
  type SubscribeResponse,
  type Subscription,
  type TokenSource,
} from "../clients/ts/src/node.ts";
import { startService, type RunningService } from "./support/service.ts";
import { startWsServer, type Behaviour, type TestWsServer } from "./support/ws-servers.ts";

interface ClientCase {
  name: string;
  make(baseUrl: string, token?: TokenSource): WebSocketManagerClient;
}

// Tiny idle timeouts so that no pooled HTTP/2 session outlives a test.
const h2 = { idleConnectionTimeoutMs: 200 } as const;

const cases: ClientCase[] = [
  { name: "gRPC (HTTP/2)", make: (baseUrl, token) => new WebSocketManagerClient(createNodeTransport({ baseUrl, protocol: "grpc", token, ...h2 })) },
  {
    name: "gRPC-Web (HTTP/1.1)",
    make: (baseUrl, token) => new WebSocketManagerClient(createNodeTransport({ baseUrl, protocol: "grpc-web", httpVersion: "1.1", token })),
  },
  {
    name: "gRPC-Web (HTTP/2)",
    make: (baseUrl, token) => new WebSocketManagerClient(createNodeTransport({ baseUrl, protocol: "grpc-web", httpVersion: "2", token, ...h2 })),
  },
  {
    name: "Connect JSON (HTTP/1.1)",
    make: (baseUrl, token) =>
      new WebSocketManagerClient(createNodeTransport({ baseUrl, protocol: "connect", httpVersion: "1.1", useBinaryFormat: false, token })),
  },
  {
    name: "Connect JSON (HTTP/2)",
    make: (baseUrl, token) =>
      new WebSocketManagerClient(createNodeTransport({ baseUrl, protocol: "connect", httpVersion: "2", useBinaryFormat: false, token, ...h2 })),
  },
  {
    name: "Connect binary (HTTP/2)",
    make: (baseUrl, token) => new WebSocketManagerClient(createNodeTransport({ baseUrl, protocol: "connect", httpVersion: "2", token, ...h2 })),
  },
  {
    name: "gRPC-Web over fetch (browser transport)",
    make: (baseUrl, token) => new WebSocketManagerClient(createWebTransport({ baseUrl, protocol: "grpc-web", token })),
  },
  {
    name: "Connect JSON over fetch (browser transport)",
    make: (baseUrl, token) => new WebSocketManagerClient(createWebTransport({ baseUrl, protocol: "connect", useBinaryFormat: false, token })),
  },
];

let service: RunningService;
beforeAll(async () => {
  service = await startService();
});
afterAll(() => service.close());

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function upstream(behaviour: Behaviour, options: { acceptProtocol?: string } = {}): Promise<TestWsServer> {
  const s = await startWsServer({ behaviour, ...options });
  cleanups.push(() => s.close());
  return s;
}

/** The ConnectError a call rejects with; fails the test when it resolves. */
async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }
  throw new Error("expected the call to fail");
}

/** Reads a subscription in the background until the test ends. */
function collect(sub: Subscription): { events: SubscribeResponse[]; done: Promise<unknown> } {
  const events: SubscribeResponse[] = [];
  const done = (async () => {
    for await (const ev of sub) events.push(ev);
  })().catch((err: unknown) => err);
  cleanups.push(async () => {
    sub.cancel();
    await done;
  });
  return { events, done };
}

const lifecycleOf = (events: SubscribeResponse[], id: string) =>
  events.flatMap((e) => (e.event.case === "lifecycle" && e.event.value.connectionId === id ? [e.event.value] : []));
const messagesOf = (events: SubscribeResponse[], id: string) =>
  events.flatMap((e) => (e.event.case === "message" && e.event.value.connectionId === id ? [e.event.value] : []));

describe.each(cases)("TypeScript client over $name", ({ make }) => {
  let client: WebSocketManagerClient;
  beforeAll(() => {
    client = make(service.baseUrl);
  });

  async function open(url: string, options: Parameters<WebSocketManagerClient["connect"]>[1] = {}): Promise<string> {
    const r = await client.connect(url, options);
    cleanups.push(() => client.disconnect(r.id).then(() => undefined, () => undefined));
    return r.id;
  }

  it("connects, lists with tag filters, manages tags and disconnects", async () => {
    const up = await upstream("echo");
    const r = await client.connect(up.url, { autoReconnect: true, tags: { venue: "test", kind: "md" } });
    expect(r.status).toBe("connected");
    expect(r.id).toMatch(/^[0-9a-f-]{36}$/);

    const listed = await client.list({ venue: "test" });
    const c = listed.connections.find((x) => x.id === r.id);
    expect(c).toMatchObject({ url: up.url, status: "connected", autoReconnect: true, tags: { venue: "test", kind: "md" } });
    expect((await client.list([["venue", "other"]])).connections.map((x) => x.id)).not.toContain(r.id);
    expect((await client.list([{ key: "kind", value: "md" }])).connections.map((x) => x.id)).toContain(r.id);

    await client.setTag(r.id, "owner", "alice");
    expect((await client.getTag(r.id, "owner")).value).toBe("alice");
    expect((await failure(client.getTag(r.id, "absent"))).code).toBe(Code.NotFound);
    await client.setTags(r.id, { owner: "bob", desk: "fx" });
    expect((await client.getTags(r.id)).tags).toEqual({ venue: "test", kind: "md", owner: "bob", desk: "fx" });

    await client.disconnect(r.id);
    expect((await client.list()).connections.map((x) => x.id)).not.toContain(r.id);
    const gone = await failure(client.disconnect(r.id));
    expect(gone.code).toBe(Code.NotFound);
    expect((await failure(client.getTags(r.id))).code).toBe(Code.NotFound);
  });

  it("surfaces the service's error codes as ConnectError", async () => {
    const bad = await failure(client.connect("http://127.0.0.1:1/"));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(describeError(bad)).toMatch(/^INVALID_ARGUMENT: /);

    const refusing = await upstream("refuse");
    const refused = await failure(client.connect(refusing.url));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.rawMessage).toMatch(/403/);

    const id = await open((await upstream("echo")).url);
    expect((await failure(client.startPublish(id, "bad topic!"))).code).toBe(Code.InvalidArgument);
    expect((await failure(client.setTag(id, "", "x"))).code).toBe(Code.InvalidArgument);
    expect((await failure(client.send("no-such-id", "{}"))).code).toBe(Code.NotFound);
    expect((await failure(client.sendRaw(id, new Uint8Array([1]), { contentType: "text/plain" }))).code).toBe(Code.InvalidArgument);
  });

  it("sends: correlated replies, timeouts with DEADLINE_EXCEEDED, raw text and binary frames", async () => {
    const rpc = await upstream("jsonrpc");
    const id = await open(rpc.url);
    const reply = await client.send(id, JSON.stringify({ id: "r-1", method: "ping" }));
    expect(JSON.parse(reply.response)).toEqual({ id: "r-1", result: { id: "r-1", method: "ping" } });
    expect(reply.contentType).toBe("application/json");
    // Without an id the service adds one, and still matches the reply.
    const added = JSON.parse((await client.send(id, '{"method":"time"}', { timeoutMs: 2000 })).response) as { id: unknown; result: { method: string } };
    expect(added.result.method).toBe("time");
    expect(added.id).toBeTruthy();
    expect((await failure(client.send(id, "not json"))).code).toBe(Code.InvalidArgument);

    const silent = await upstream("silent");
    const quiet = await open(silent.url);
    // Short wait: the service answers DEADLINE_EXCEEDED itself, before the client's deadline.
    const timedOut = await failure(client.send(quiet, '{"id":1}', { timeoutMs: 150 }));
    expect(timedOut.code).toBe(Code.DeadlineExceeded);
    // An explicit, shorter RPC deadline bounds the call from the client side as well.
    const deadline = await failure(client.send(quiet, '{"id":2}', { timeoutMs: 5000, deadlineMs: 150 }));
    expect(deadline.code).toBe(Code.DeadlineExceeded);

    await client.sendRaw(quiet, "hello");
    await client.sendRaw(quiet, new Uint8Array([0, 1, 2, 255]));
    await silent.waitForReceived(4);
    const raw = silent.received.slice(-2);
    expect(raw[0]).toMatchObject({ isBinary: false });
    expect(raw[0]!.data.toString()).toBe("hello");
    expect(raw[1]!.isBinary).toBe(true);
    expect([...raw[1]!.data]).toEqual([0, 1, 2, 255]);
  });

  it("passes connect options through: headers, subprotocols, on-open messages, correlation field, topic", async () => {
    const rpc = await upstream("jsonrpc", { acceptProtocol: "v2.test" });
    const id = await open(rpc.url, {
      headers: { "x-api-key": "k-123" },
      subprotocols: ["v1.test", "v2.test"],
      onOpen: ['{"op":"subscribe"}', { message: '{"op":"auth"}', contentType: "application/json" }],
      correlation: { mode: "json-field", field: "req_id" },
      topic: "md.test",
      handshakeTimeoutMs: 2000,
    });
    await rpc.waitForReceived(2);
    expect(rpc.received.map((r) => r.data.toString())).toEqual(['{"op":"subscribe"}', '{"op":"auth"}']);
    expect(rpc.handshakes[0]!.headers["x-api-key"]).toBe("k-123");
    const c = (await client.list()).connections.find((x) => x.id === id)!;
    expect(c).toMatchObject({ protocol: "v2.test", topic: "md.test", correlationField: "req_id" });
    const reply = await client.send(id, '{"req_id":"a7","q":1}');
    expect(JSON.parse(reply.response)).toMatchObject({ req_id: "a7" });
  });

  it("starts and stops publishing; subscribe filtered by topic sees published messages with sequence numbers", async () => {
    const echo = await upstream("echo");
    const id = await open(echo.url);
    const { events } = collect(client.subscribe({ topics: ["ws-events"], excludeLifecycle: true, snapshotIntervalMs: 100_000 }));
    // The first snapshot shows that the stream is established on the server.
    await vi.waitFor(() => expect(events.some((e) => e.event.case === "snapshot")).toBe(true));

    await client.startPublish(id, "ws-events");
    expect((await client.list()).connections.find((x) => x.id === id)!.topic).toBe("ws-events");
    await client.sendRaw(id, "one");
    await client.sendRaw(id, "two");
    await vi.waitFor(() => expect(messagesOf(events, id).map((m) => m.data)).toEqual(["one", "two"]));
    const [first, second] = messagesOf(events, id);
    expect(first!.topic).toBe("ws-events");
    expect(second!.sequence).toBe(first!.sequence + 1n);

    await client.stopPublish(id);
    expect((await client.list()).connections.find((x) => x.id === id)!.topic).toBe("");
    await client.sendRaw(id, "three");
    // The stream only carries published messages: a later published one proves "three" was skipped.
    await client.startPublish(id, "ws-events");
    await client.sendRaw(id, "four");
    await vi.waitFor(() => expect(messagesOf(events, id).map((m) => m.data)).toEqual(["one", "two", "four"]));
  });

  it("subscribe yields messages and lifecycle events, and ends quietly when cancelled", async () => {
    const echo = await upstream("echo");
    const abort = new AbortController();
    const sub = client.subscribe({ snapshotIntervalMs: 100 }, { signal: abort.signal });
    const { events, done } = collect(sub);
    await vi.waitFor(() => expect(events.some((e) => e.event.case === "snapshot")).toBe(true));

    const id = await open(echo.url, { autoReconnect: true, reconnect: { baseDelayMs: 10, maxDelayMs: 50 } });
    await client.sendRaw(id, "ping-1");
    await vi.waitFor(() => expect(messagesOf(events, id).map((m) => m.data)).toContain("ping-1"));
    const m = messagesOf(events, id)[0]!;
    expect(m.url).toBe(echo.url);
    expect(m.receivedAt).toBeDefined();

    echo.dropAll();
    await vi.waitFor(() => {
      const statuses = lifecycleOf(events, id).map((e) => e.status);
      expect(statuses).toContain("reconnecting");
      expect(statuses.lastIndexOf("connected")).toBeGreaterThan(statuses.indexOf("reconnecting"));
    });
    await vi.waitFor(() => {
      const snap = events.findLast((e) => e.event.case === "snapshot");
      const c = snap?.event.case === "snapshot" ? snap.event.value.connections.find((x) => x.id === id) : undefined;
      expect(c?.stats?.reconnects).toBe(1n);
    });

    abort.abort();
    // Cancelled by the caller: the loop ends without an error.
    expect(await done).toBeUndefined();
    expect(sub.cancelled).toBe(true);
  });

  it("reconnects a disconnected connection; a write to it before fails with FAILED_PRECONDITION", async () => {
    const echo = await upstream("echo");
    const id = await open(echo.url, { autoReconnect: false });
    echo.dropAll();
    await vi.waitFor(async () => {
      expect((await client.list()).connections.find((x) => x.id === id)?.status).toBe("disconnected");
    });
    const write = await failure(client.sendRaw(id, "x"));
    expect(write.code).toBe(Code.FailedPrecondition);
    expect(write.rawMessage).toMatch(/disconnected/);

    const r = await client.reconnect(id);
    expect(r).toMatchObject({ id, status: "connected" });
    await client.sendRaw(id, "after");
    await echo.waitForReceived(1);
    expect(echo.received.at(-1)!.data.toString()).toBe("after");
    expect((await failure(client.reconnect("no-such-id"))).code).toBe(Code.NotFound);
  });

  it("a call cancelled by its signal fails with CANCELED", async () => {
    const silent = await upstream("silent");
    const id = await open(silent.url);
    const abort = new AbortController();
    const pending = client.send(id, '{"id":"c1"}', { timeoutMs: 10_000, signal: abort.signal });
    await silent.waitForReceived(1);
    abort.abort();
    expect((await failure(pending)).code).toBe(Code.Canceled);
  });
});

describe("TypeScript client with a bearer token", () => {
  let secured: RunningService;
  beforeAll(async () => {
    secured = await startService({ authToken: "s3cret-token" });
  });
  afterAll(() => secured.close());

  it.each(cases)("over $name: UNAUTHENTICATED without the token or with a wrong one, works with it", async ({ make }) => {
    const anonymous = make(secured.baseUrl);
    expect((await failure(anonymous.list())).code).toBe(Code.Unauthenticated);
    const stream = anonymous.subscribe({ snapshotIntervalMs: 100 });
    const streamError = await failure(
      (async () => {
        for await (const _ of stream) return;
      })(),
    );
    expect(streamError.code).toBe(Code.Unauthenticated);

    expect((await failure(make(secured.baseUrl, "wrong").list())).code).toBe(Code.Unauthenticated);

    // A function is asked at every call: a token set later applies to the next call.
    const tokens: string[] = [];
    const authorized = make(secured.baseUrl, () => tokens.at(-1));
    expect((await failure(authorized.list())).code).toBe(Code.Unauthenticated);
    tokens.push("s3cret-token");
    const echo = await upstream("echo");
    const r = await authorized.connect(echo.url);
    cleanups.push(() => authorized.disconnect(r.id).then(() => undefined, () => undefined));
    expect((await authorized.list()).connections.map((c) => c.id)).toContain(r.id);
    for await (const ev of authorized.subscribe({ snapshotIntervalMs: 100, connectionIds: [r.id] })) {
      expect(ev.event.case).toBe("snapshot");
      break;
    }
  });

  it("a per-call Authorization header works without a configured token", async () => {
    const client = cases[0]!.make(secured.baseUrl);
    expect((await client.list(undefined, { headers: { authorization: "Bearer s3cret-token" } })).connections).toBeInstanceOf(Array);
  });
});

describe("TypeScript client helpers", () => {
  it("names codes as gRPC does", () => {
    expect(codeName(Code.NotFound)).toBe("NOT_FOUND");
    expect(codeName(Code.DeadlineExceeded)).toBe("DEADLINE_EXCEEDED");
    expect(codeName(Code.Unauthenticated)).toBe("UNAUTHENTICATED");
    expect(codeName(99 as Code)).toBe("CODE_99");
    expect(describeError(new Error("boom"))).toBe("UNKNOWN: boom");
  });

  it("encodes base64 like Node's Buffer, for any length", () => {
    for (const length of [0, 1, 2, 3, 100, 70_000]) {
      const bytes = new Uint8Array(length).map((_, i) => (i * 7919) % 256);
      const b64 = bytesToBase64(bytes);
      expect(b64).toBe(Buffer.from(bytes).toString("base64"));
      expect([...base64ToBytes(b64)]).toEqual([...bytes]);
    }
  });

  it("the browser entry bundles for browsers without any Node module", async () => {
    // esbuild fails to resolve node: built-ins for the browser platform, so a Node import
    // anywhere in the browser entry's graph fails this build.
    const result = await build({
      entryPoints: ["clients/ts/src/index.ts"],
      bundle: true,
      write: false,
      platform: "browser",
      format: "esm",
      logLevel: "silent",
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((p) => p.includes("connect-node") || p.startsWith("node:"))).toBe(false);
    expect(inputs.some((p) => p.includes("connect-web"))).toBe(true);
  });
});
