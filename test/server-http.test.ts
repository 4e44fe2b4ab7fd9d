/**
 * Plain HTTP on the RPC port: /healthz, /readyz, /metrics, the extra handler, and CORS for
 * browser clients on other origins.
 */
import http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocketManager } from "../gen/virtufin/websocketmanager_pb.js";
import { PROMETHEUS_CONTENT_TYPE } from "../src/metrics.ts";
import { startTestServer, transports, type TestServer } from "./support/server-fixture.ts";

describe("built-in endpoints", () => {
  let t: TestServer;
  let up = true;
  beforeAll(async () => {
    t = await startTestServer({
      extraHttpHandler(req, res, context) {
        if (req.url !== "/console") return false;
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(`console authorized=${context.authorized}`);
        return true;
      },
    });
    t.health.addCheck("sidecar", () => up);
  });
  afterAll(() => t.close());
  afterEach(() => {
    up = true;
  });

  it("GET /healthz is 200 while the process lives, even when not ready", async () => {
    up = false;
    const res = await fetch(`${t.baseUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("GET /readyz is 200 when serving and 503 with the failing checks when not", async () => {
    const ready = await fetch(`${t.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
    up = false;
    const notReady = await fetch(`${t.baseUrl}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: "not_ready", reason: "failing checks: sidecar", failing: ["sidecar"] });
  });

  it("answers HEAD without a body and refuses other methods", async () => {
    const head = await fetch(`${t.baseUrl}/healthz`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    const post = await fetch(`${t.baseUrl}/readyz`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("GET /metrics renders Prometheus text that counts RPCs", async () => {
    const client = createClient(WebSocketManager, transports[0]!.make(t.baseUrl));
    await client.list({});
    await client.list({});
    const res = await fetch(`${t.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(PROMETHEUS_CONTENT_TYPE);
    const text = await res.text();
    expect(text).toContain('wsm_rpc_requests_total{code="ok",method="virtufin.WebSocketManager/List"} 2');
    expect(text).toMatch(/wsm_rpc_duration_seconds_count\{method="virtufin.WebSocketManager\/List"\} 2/);
  });

  it("hands other paths to the extra handler, then 404", async () => {
    const page = await fetch(`${t.baseUrl}/console`);
    expect(await page.text()).toBe("console authorized=true");
    expect((await fetch(`${t.baseUrl}/nothing/here`)).status).toBe(404);
  });

  it("serves the endpoints over HTTP/2 as well", async () => {
    const session = http2.connect(t.baseUrl);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ":path": "/readyz" });
        req.on("response", (headers) => resolve(Number(headers[":status"])));
        req.on("error", reject);
        req.resume();
      });
      expect(status).toBe(200);
    } finally {
      session.close();
    }
  });
});

describe("CORS", () => {
  const preflight = (url: string, origin: string) =>
    fetch(url, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version,authorization",
      },
    });

  describe("with a list of origins", () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer({ corsAllowedOrigins: ["https://console.example"] });
    });
    afterAll(() => t.close());

    it("answers a preflight from an allowed origin with the Connect and gRPC-Web headers", async () => {
      const res = await preflight(`${t.baseUrl}/virtufin.WebSocketManager/List`, "https://console.example");
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe("https://console.example");
      expect(res.headers.get("vary")).toBe("Origin");
      expect(res.headers.get("access-control-allow-methods")).toBe("POST, GET");
      const allowed = res.headers.get("access-control-allow-headers")!.toLowerCase().split(", ");
      for (const h of [
        "content-type",
        "connect-protocol-version",
        "connect-timeout-ms",
        "grpc-timeout",
        "x-grpc-web",
        "x-user-agent",
        "authorization",
      ]) {
        expect(allowed).toContain(h);
      }
      expect(res.headers.get("access-control-max-age")).toBe("7200");
    });

    it("gives a refused origin no allow headers", async () => {
      const res = await preflight(`${t.baseUrl}/virtufin.WebSocketManager/List`, "https://evil.example");
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-allow-headers")).toBeNull();
    });

    it("exposes the gRPC-Web status headers on actual responses", async () => {
      const res = await fetch(`${t.baseUrl}/virtufin.WebSocketManager/List`, {
        method: "POST",
        headers: { origin: "https://console.example", "content-type": "application/json" },
        body: "{}",
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBe("https://console.example");
      const exposed = res.headers.get("access-control-expose-headers")!.toLowerCase().split(", ");
      expect(exposed).toEqual(expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin"]));
    });
  });

  describe("with any origin", () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer({ corsAllowedOrigins: ["*"] });
    });
    afterAll(() => t.close());

    it("allows every origin with a wildcard", async () => {
      const res = await preflight(`${t.baseUrl}/virtufin.WebSocketManager/Connect`, "http://localhost:3000");
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("vary")).toBeNull();
    });
  });

  describe("when off", () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer();
    });
    afterAll(() => t.close());

    it("adds no CORS headers and leaves OPTIONS to the RPC handler", async () => {
      const res = await preflight(`${t.baseUrl}/virtufin.WebSocketManager/List`, "https://console.example");
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.status).toBe(405);
    });
  });
});
