/**
 * The HTTP/1.1 transport under the Dapr publisher: the response parser on hand-written byte
 * streams (every framing the RFC allows, split at every byte), and the pipelined connection
 * against a raw TCP server that answers exactly what a test scripts.
 */
import { createServer, type Server, type Socket } from "node:net";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { Http1ResponseParser, ResponseParseError, type ParsedResponse } from "../src/publish/http1-response-parser.ts";
import { CONNECTION_CLOSED, Http1Connection, type ResponseListener } from "../src/publish/http1-connection.ts";
import { runPipelinedBatch, type BatchOptions } from "../src/publish/pipelined-batch.ts";

function parseAll(chunks: Buffer[], options?: ConstructorParameters<typeof Http1ResponseParser>[1]): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  const parser = new Http1ResponseParser((r) => out.push(r), options);
  for (const c of chunks) parser.push(c);
  return out;
}

const ERROR_BODY = '{"errorCode":"ERR_PUBSUB_PUBLISH_MESSAGE","message":"ünï"}';
/** What daprd sends, and the other framings a server may use, back to back. */
const STREAM = [
  "HTTP/1.1 204 No Content\r\nTraceparent: 00-00000000000000000000000000000000-0000000000000000-00\r\nDate: Sat, 28 Nov 2026 21:13:34 GMT\r\n\r\n",
  `HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(ERROR_BODY)}\r\n\r\n${ERROR_BODY}`,
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n",
  "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
  "HTTP/1.0 404 Not Found\r\nCONTENT-LENGTH: 0\r\nConnection: keep-alive, Close\r\n\r\n",
].join("");
const EXPECTED: ParsedResponse[] = [
  { status: 204, body: "", close: false },
  { status: 500, body: ERROR_BODY, close: false },
  { status: 200, body: "ok", close: false },
  { status: 200, body: "hello, world", close: false },
  { status: 304, body: "", close: false },
  { status: 404, body: "", close: true },
];

describe("Http1ResponseParser", () => {
  it("parses pipelined responses of every framing, in order", () => {
    expect(parseAll([Buffer.from(STREAM)])).toEqual(EXPECTED);
  });

  it("gives the same result however the bytes are split", () => {
    const bytes = Buffer.from(STREAM);
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(parseAll([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(EXPECTED);
    }
    expect(parseAll([...bytes].map((b) => Buffer.from([b])))).toEqual(EXPECTED);
  });

  it("reads a body without length until the close, and says when a response was cut off", () => {
    const out: ParsedResponse[] = [];
    const parser = new Http1ResponseParser((r) => out.push(r));
    parser.push(Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil the"));
    parser.push(Buffer.from(" end"));
    expect(out).toEqual([]);
    expect(parser.end()).toBe(true);
    expect(out).toEqual([{ status: 200, body: "until the end", close: false }]);

    const cut = new Http1ResponseParser(() => {});
    cut.push(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"));
    expect(cut.end()).toBe(false);
    const idle = new Http1ResponseParser(() => {});
    idle.push(Buffer.from("HTTP/1.1 204 No Content\r\n\r\n"));
    expect(idle.end()).toBe(true);
  });

  it("keeps at most maxBodyBytes of a body but reads all of it", () => {
    const body = "x".repeat(5000);
    const out = parseAll([Buffer.from(`HTTP/1.1 500 E\r\nContent-Length: 5000\r\n\r\n${body}HTTP/1.1 204 No Content\r\n\r\n`)], { maxBodyBytes: 10 });
    expect(out).toEqual([
      { status: 500, body: "xxxxxxxxxx", close: false },
      { status: 204, body: "", close: false },
    ]);
  });

  it.each([
    ["a bad status line", "HTTP/1.1 2OO OK\r\n\r\n"],
    ["a version that is not 1.x", "HTTP/2 200\r\n\r\n"],
    ["a header line without a colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n"],
    ["an invalid content-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
    ["conflicting content-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
    ["a bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
    ["chunk data without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY"],
    ["a protocol switch nobody asked for", "HTTP/1.1 101 Switching Protocols\r\n\r\n"],
  ])("rejects %s", (_what, text) => {
    expect(() => parseAll([Buffer.from(text)])).toThrow(ResponseParseError);
  });

  it("bounds the header section", () => {
    const huge = `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(2000)}`;
    expect(() => parseAll([Buffer.from(huge)], { maxHeaderBytes: 1000 })).toThrow(/too large/);
    expect(() => parseAll([Buffer.from(`${huge}\r\n\r\n`)], { maxHeaderBytes: 1000 })).toThrow(/too large/);
  });
});

describe("Http1Connection", () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  /** A TCP server whose every accepted socket is handed to `onSocket`. */
  async function rawServer(onSocket: (socket: Socket) => void): Promise<number> {
    const server: Server = createServer(onSocket);
    const sockets = new Set<Socket>();
    server.on("connection", (s) => sockets.add(s));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    return (server.address() as { port: number }).port;
  }

  function recorder() {
    const events: string[] = [];
    let failure: Error | undefined;
    const listener: ResponseListener = {
      onResponse: (status, body) => void events.push(`${status}${body ? ` ${body}` : ""}`),
      onReadDone: () => void events.push("read"),
      onFailure: (err) => {
        events.push("failure");
        failure = err;
      },
    };
    return { events, listener, failure: () => failure };
  }

  const request = (n: number) => `POST /n/${n} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`;

  it("writes pipelined requests in one go and hands back the answers in order", async () => {
    let seen = "";
    const port = await rawServer((socket) => {
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => {
        seen += chunk;
        // Answer once all three arrived: proof that they were pipelined, not sent one by one.
        if ((seen.match(/POST/g) ?? []).length === 3) {
          socket.write("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 500 E\r\nContent-Length: 4\r\n\r\noops");
          socket.write("HTTP/1.1 204 No Content\r\n\r\n");
        }
      });
    });
    const connection = await Http1Connection.open({ host: "127.0.0.1", port, connectTimeoutMs: 2000 });
    cleanups.push(() => connection.destroy(new Error("test over")));
    const r = recorder();
    connection.setListener(r.listener);
    connection.write(request(1) + request(2) + request(3), 3);
    expect(connection.unanswered).toBe(3);
    await expect.poll(() => connection.unanswered).toBe(0);
    expect(r.events.filter((e) => e !== "read")).toEqual(["204", "500 oops", "204"]);
    expect(seen.indexOf("/n/1") < seen.indexOf("/n/2") && seen.indexOf("/n/2") < seen.indexOf("/n/3")).toBe(true);
    expect(connection.reusable).toBe(true);
  });

  it("reports unanswered requests once when the server closes, and is not reused", async () => {
    const port = await rawServer((socket) => {
      socket.once("data", () => socket.end("HTTP/1.1 204 No Content\r\n\r\n"));
    });
    const connection = await Http1Connection.open({ host: "127.0.0.1", port, connectTimeoutMs: 2000 });
    const r = recorder();
    connection.setListener(r.listener);
    connection.write(request(1) + request(2), 2);
    await expect.poll(() => r.failure()).toBeDefined();
    expect(r.events.filter((e) => e !== "read")).toEqual(["204", "failure"]);
    expect((r.failure() as Error & { code?: string }).code).toBe(CONNECTION_CLOSED);
    expect(connection.reusable).toBe(false);
    expect(connection.writable).toBe(false);
  });

  it("stops after a Connection: close answer and fails what is still owed", async () => {
    const port = await rawServer((socket) => {
      socket.once("data", () => socket.write("HTTP/1.1 500 E\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
    });
    const connection = await Http1Connection.open({ host: "127.0.0.1", port, connectTimeoutMs: 2000 });
    cleanups.push(() => connection.destroy(new Error("test over")));
    const r = recorder();
    connection.setListener(r.listener);
    connection.write(request(1) + request(2), 2);
    await expect.poll(() => r.failure()).toBeDefined();
    expect(r.events.filter((e) => e !== "read")).toEqual(["500", "failure"]);
    expect((r.failure() as Error & { code?: string }).code).toBe(CONNECTION_CLOSED);
  });

  it("completes a batch whose last answer is delimited by the close of the connection", async () => {
    const port = await rawServer((socket) => {
      socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\n\r\nbody until close"));
    });
    const connection = await Http1Connection.open({ host: "127.0.0.1", port, connectTimeoutMs: 2000 });
    const answers: number[] = [];
    const options: BatchOptions = {
      window: 8,
      firstAlone: false,
      requestTimeoutMs: 2000,
      signal: undefined,
      stopWriting: () => false,
      onAnswer: (_i, status) => void answers.push(status),
      onUnanswered: () => {},
    };
    const outcome = await runPipelinedBatch(connection, [request(1)], options);
    expect(outcome).toMatchObject({ delivered: 1, written: 1, failure: undefined, unconfirmed: 0 });
    expect(answers).toEqual([200]);
    expect(connection.reusable).toBe(false);
  });

  it("times out the oldest unanswered request and tears the connection down", async () => {
    const port = await rawServer((socket) => {
      socket.once("data", () => socket.write("HTTP/1.1 204 No Content\r\n\r\n"));
    });
    const connection = await Http1Connection.open({ host: "127.0.0.1", port, connectTimeoutMs: 2000 });
    const started = performance.now();
    const outcome = await runPipelinedBatch(connection, [request(1), request(2), request(3)], {
      window: 8,
      firstAlone: false,
      // Shortened for the test.
      requestTimeoutMs: 150,
      signal: undefined,
      stopWriting: () => false,
      onAnswer: () => {},
      onUnanswered: () => {},
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(outcome).toMatchObject({ delivered: 1, written: 3, unconfirmed: 2, failure: { kind: "transport", timedOut: true } });
    expect(connection.writable).toBe(false);
  });

  it("treats an answer nobody asked for as a broken connection", async () => {
    const port = await rawServer((socket) => void socket.write("HTTP/1.1 204 No Content\r\n\r\n"));
    const connection = await Http1Connection.open({ host: "127.0.0.1", port, connectTimeoutMs: 2000 });
    cleanups.push(() => connection.destroy(new Error("test over")));
    await expect.poll(() => connection.reusable).toBe(false);
  });

  it("fails to open with the socket's error code", async () => {
    const port = await rawServer(() => {});
    cleanups.splice(0).forEach((c) => c());
    await expect(Http1Connection.open({ host: "127.0.0.1", port, connectTimeoutMs: 2000 })).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});
