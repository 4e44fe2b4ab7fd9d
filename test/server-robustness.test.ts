/**
 * Hostile and broken clients: garbage, bogus prefaces, slow or silent senders, oversized
 * messages. None may crash the process or hold up anyone else.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { WebSocketManager } from "../gen/virtufin/websocketmanager_pb.js";
import { createProtocolSniffer } from "../src/server/protocol-sniffer.ts";
import { codeOf, startTestServer, transports, type TestServer } from "./support/server-fixture.ts";

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** A raw TCP client that records everything it receives until the server closes it. */
async function rawClient(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  await once(socket, "connect");
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.on("error", () => undefined);
  const closed = once(socket, "close").then(() => Buffer.concat(chunks).toString("latin1"));
  return { socket, closed, received: () => Buffer.concat(chunks).toString("latin1") };
}

describe("garbage and slow clients", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      // Tiny so that the timeouts fire within the test; production defaults are seconds.
      http1HeadersTimeoutMs: 300,
      http1RequestTimeoutMs: 600,
    });
  });
  afterAll(() => t.close());

  const answersEverywhere = async () => {
    for (const transport of transports) {
      const client = createClient(WebSocketManager, transport.make(t.baseUrl));
      expect((await client.list({})).connections, transport.name).toHaveLength(1);
    }
  };

  it("closes random bytes, bogus prefaces and broken frames while others are served", async () => {
    const random = await rawClient(t.port);
    // Not starting with "P": a random prefix of the HTTP/2 preface would wait for more.
    random.socket.write(Buffer.concat([Buffer.from("X"), randomBytes(4096)]));
    const bogusPreface = await rawClient(t.port);
    bogusPreface.socket.write("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    const brokenFrames = await rawClient(t.port);
    brokenFrames.socket.write(Buffer.concat([Buffer.from(PREFACE, "latin1"), randomBytes(64)]));

    await answersEverywhere();

    expect(await random.closed).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(await bogusPreface.closed).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    // The HTTP/2 server answers with its SETTINGS and a GOAWAY, then hangs up.
    await brokenFrames.closed;
    await answersEverywhere();
  });

  it("times out half-sent headers, slow bodies and silent clients while others are served", async () => {
    const halfHeaders = await rawClient(t.port);
    halfHeaders.socket.write("POST /virtufin.WebSocketManager/List HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: app");
    const slowBody = await rawClient(t.port);
    slowBody.socket.write(
      "POST /virtufin.WebSocketManager/List HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    );
    const silent = await rawClient(t.port);
    const halfPreface = await rawClient(t.port);
    halfPreface.socket.write(PREFACE.slice(0, 10));

    await answersEverywhere();

    expect(await halfHeaders.closed).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    await silent.closed;
    await halfPreface.closed;
    expect(await slowBody.closed).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    await answersEverywhere();
  });

  it("serves a keep-alive HTTP/1.1 client request after request", async () => {
    const client = await rawClient(t.port);
    const request = 'POST /virtufin.WebSocketManager/GetTags HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';
    client.socket.write(request + request);
    await expect.poll(() => client.received().match(/HTTP\/1\.1 200 OK/g)?.length).toBe(2);
    client.socket.destroy();
  });
});

describe("idle connections", () => {
  let t: TestServer;
  let up = true;
  beforeAll(async () => {
    // Tiny so that idleness is reached within the test; the default is a minute.
    t = await startTestServer({ idleTimeoutMs: 150 });
    t.health.addCheck("dep", () => up);
  });
  afterAll(() => t.close());

  it("closes an HTTP/2 session without streams but keeps one with a quiet stream open", async () => {
    const idle = http2.connect(t.baseUrl);
    idle.on("error", () => undefined);
    const idleClosed = once(idle, "close");
    const busy = createClient(Health, transports[0]!.make(t.baseUrl));
    const abort = new AbortController();
    const seen: ServingStatus[] = [];
    const watching = (async () => {
      for await (const res of busy.watch({ service: "" }, { signal: abort.signal })) seen.push(res.status);
    })();
    await expect.poll(() => seen).toEqual([ServingStatus.SERVING]);

    await idleClosed;
    // The quiet stream outlived the idle session, and still delivers.
    up = false;
    t.health.evaluate();
    await expect.poll(() => seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    abort.abort();
    expect(await codeOf(watching)).toBe(Code.Canceled);
  });

  it("closes an idle HTTP/1.1 keep-alive socket", async () => {
    const client = await rawClient(t.port);
    client.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    // The server hangs up by itself once the socket has been idle for idleTimeoutMs.
    expect(await client.closed).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});

describe("message size limits", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ maxMessageBytes: 1024 });
  });
  afterAll(() => t.close());

  describe.each(transports)("$name", (transport) => {
    it("refuses an oversized request and an oversized reply with RESOURCE_EXHAUSTED", async () => {
      const client = createClient(WebSocketManager, transport.make(t.baseUrl));
      expect(await codeOf(client.connect({ url: `ws://upstream.test/${"a".repeat(4096)}` }))).toBe(Code.ResourceExhausted);
      expect(await codeOf(client.getTags({ id: "huge" }))).toBe(Code.ResourceExhausted);
      expect((await client.connect({ url: "ws://upstream.test/small" })).status).toBe("connected");
    });
  });
});

describe("protocol sniffer", () => {
  /** A connected socket pair whose server end goes to a sniffer. */
  async function pair(firstBytesTimeoutMs = 5000) {
    const handed = { protocol: undefined as "h1" | "h2" | undefined, socket: undefined as net.Socket | undefined };
    const sniffer = createProtocolSniffer({
      firstBytesTimeoutMs,
      onHttp1: (s) => Object.assign(handed, { protocol: "h1", socket: s }),
      onHttp2: (s) => Object.assign(handed, { protocol: "h2", socket: s }),
    });
    const server = net.createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
    const [serverSide] = (await once(server, "connection")) as [net.Socket];
    server.close();
    sniffer.accept(serverSide);
    return { client, serverSide, handed, sniffer };
  }

  /** Writes a chunk and waits until the server side has read it: separate reads, for sure. */
  async function writeSeparately(client: net.Socket, serverSide: net.Socket, chunk: string) {
    const seen = once(serverSide, "data");
    client.write(chunk);
    await seen;
  }

  async function readAll(socket: net.Socket, bytes: number): Promise<string> {
    let text = "";
    socket.resume();
    socket.on("data", (c: Buffer) => (text += c.toString("latin1")));
    await expect.poll(() => text.length).toBeGreaterThanOrEqual(bytes);
    return text;
  }

  it("recognises a preface split across reads and gives every byte back", async () => {
    const { client, serverSide, handed } = await pair();
    await writeSeparately(client, serverSide, PREFACE.slice(0, 5));
    await writeSeparately(client, serverSide, PREFACE.slice(5, 17));
    expect(handed.protocol).toBeUndefined();
    await writeSeparately(client, serverSide, PREFACE.slice(17) + "frames");
    expect(handed.protocol).toBe("h2");
    expect(await readAll(handed.socket!, PREFACE.length + 6)).toBe(PREFACE + "frames");
    client.destroy();
  });

  it("hands HTTP/1 over at the first byte that differs, split or not", async () => {
    const { client, serverSide, handed } = await pair();
    await writeSeparately(client, serverSide, "P");
    expect(handed.protocol).toBeUndefined();
    await writeSeparately(client, serverSide, "OST / HTTP/1.1\r\n");
    expect(handed.protocol).toBe("h1");
    expect(await readAll(handed.socket!, 17)).toBe("POST / HTTP/1.1\r\n");
    client.destroy();
  });

  it("destroys a socket that sends nothing in time, and the undecided ones at close", async () => {
    // Tiny so that the timeout fires within the test.
    const quiet = await pair(50);
    await once(quiet.serverSide, "close");
    expect(quiet.handed.protocol).toBeUndefined();
    quiet.client.destroy();

    const pending = await pair();
    pending.sniffer.close();
    await once(pending.serverSide, "close");
    pending.client.destroy();
  });
});
