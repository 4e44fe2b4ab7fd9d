/**
 * TLS on the one port: h2 and http/1.1 by ALPN, HTTP/1.1 for a client that offers no ALPN.
 * The certificate is self-signed and made by the openssl CLI for this run.
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketManager } from "../gen/virtufin/websocketmanager_pb.js";
import { startTestServer, transports, type TestServer } from "./support/server-fixture.ts";

const run = promisify(execFile);

let t: TestServer;
let ca: Buffer;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "wsm-tls-"));
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  ca = await readFile(cert);
  t = await startTestServer({ tls: { cert: ca, key: await readFile(key) } });
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

async function negotiate(protocols: string[]): Promise<string | false> {
  const socket = tls.connect({ host: "127.0.0.1", port: t.port, ca, ALPNProtocols: protocols });
  await once(socket, "secureConnect");
  const chosen = socket.alpnProtocol;
  socket.destroy();
  return chosen ?? false;
}

describe("TLS", () => {
  it("serves an https URL", () => {
    expect(t.baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("negotiates h2 and http/1.1 by ALPN on the same port", async () => {
    expect(await negotiate(["h2", "http/1.1"])).toBe("h2");
    expect(await negotiate(["http/1.1"])).toBe("http/1.1");
  });

  describe.each(transports)("$name", (transport) => {
    it("answers unary calls", async () => {
      const client = createClient(WebSocketManager, transport.make(t.baseUrl, { nodeOptions: { ca } }));
      expect((await client.list({})).connections).toHaveLength(1);
    });
  });

  it("serves curl over HTTP/1.1 and HTTP/2", async () => {
    for (const flag of ["--http1.1", "--http2"]) {
      const { stdout } = await run("curl", [
        "-sS",
        "--max-time",
        "10",
        flag,
        "--cacert",
        path.join(dir, "cert.pem"),
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
        "-w",
        "\n%{http_version}",
        `${t.baseUrl}/virtufin.WebSocketManager/List`,
      ]);
      const lines = stdout.trimEnd().split("\n");
      expect(lines.pop(), flag).toBe(flag === "--http2" ? "2" : "1.1");
      expect((JSON.parse(lines.join("\n")) as { connections: unknown[] }).connections).toHaveLength(1);
    }
  });

  it("serves HTTP/1.1 to a client that offers no ALPN", async () => {
    // Node's https client sends no ALPN extension.
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      https.get(`${t.baseUrl}/healthz`, { ca }, resolve).on("error", reject);
    });
    expect(res.statusCode).toBe(200);
    expect(res.httpVersion).toBe("1.1");
    expect((res.socket as tls.TLSSocket).alpnProtocol).toBe(false);
    res.resume();
    await once(res, "end");
  });
});
