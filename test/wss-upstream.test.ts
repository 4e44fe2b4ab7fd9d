/**
 * wss:// upstreams: a private CA given with --upstream-ca is trusted, and an untrusted
 * certificate fails Connect with UNAVAILABLE naming TLS.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createManagerFixture } from "./support/manager-fixture.ts";
import { startWsServer, type TestWsServer } from "./support/ws-servers.ts";

const run = promisify(execFile);
let dir: string;
let cert: Buffer;
let upstream: TestWsServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "wsm-wss-"));
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  await run("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout", keyFile, "-out", certFile,
  ]);
  cert = await readFile(certFile);
  upstream = await startWsServer({ behaviour: "echo", tls: { cert, key: await readFile(keyFile) } });
});
afterAll(async () => {
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("wss:// upstreams", () => {
  it("connects to a private CA's server when the CA is given, and echoes over TLS", async () => {
    const f = createManagerFixture({ upstreamCa: cert.toString() });
    try {
      const c = await f.manager.connect({ url: upstream.url, autoReconnect: false });
      expect(c.status).toBe("connected");
      const reply = await c.send('{"id":"tls-1"}', "", 2000);
      expect(JSON.parse(reply.data)).toEqual({ id: "tls-1" });
      // A second connection shares the TLS context instead of building its own.
      const d = await f.manager.connect({ url: upstream.url.replace("127.0.0.1", "localhost"), autoReconnect: false });
      expect(d.status).toBe("connected");
    } finally {
      await f.close();
    }
  });

  it("fails with UNAVAILABLE naming TLS when the certificate is not trusted", async () => {
    const f = createManagerFixture();
    try {
      const err = await f.manager.connect({ url: upstream.url, autoReconnect: false }).catch((e: unknown) => ConnectError.from(e));
      expect((err as ConnectError).code).toBe(Code.Unavailable);
      expect((err as ConnectError).rawMessage).toMatch(/TLS failure/);
      expect(f.manager.size).toBe(0);
    } finally {
      await f.close();
    }
  });
});
