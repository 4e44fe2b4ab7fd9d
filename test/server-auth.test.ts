/**
 * The bearer token: required for every RPC (reflection included) and /metrics over every
 * protocol, never for health.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { WebSocketManager } from "../gen/virtufin/websocketmanager_pb.js";
import { codeOf, startTestServer, transports, type TestServer } from "./support/server-fixture.ts";

const TOKEN = "s3cret-token";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({
    authToken: TOKEN,
    extraHttpHandler(req, res, context) {
      if (req.url !== "/console") return false;
      res.writeHead(context.authorized ? 200 : 401);
      res.end();
      return true;
    },
  });
});
afterAll(() => t.close());

describe.each(transports)("$name", (transport) => {
  const wsm = (headers?: Record<string, string>) => createClient(WebSocketManager, transport.make(t.baseUrl, { headers }));

  it("refuses a call without a token or with a wrong one", async () => {
    expect(await codeOf(wsm().list({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(wsm({ authorization: `Bearer ${TOKEN}x` }).list({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(wsm({ authorization: TOKEN }).list({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(wsm({ authorization: "Basic czNjcmV0" }).connect({ url: "ws://x" }))).toBe(Code.Unauthenticated);
  });

  it("accepts the token, whatever the case of the scheme", async () => {
    expect((await wsm({ authorization: `Bearer ${TOKEN}` }).list({})).connections).toHaveLength(1);
    expect(await codeOf(wsm({ authorization: `bearer ${TOKEN}` }).list({}))).toBe("ok");
  });

  it("lets health through without a token", async () => {
    const health = createClient(Health, transport.make(t.baseUrl));
    expect((await health.check({ service: "" })).status).toBe(ServingStatus.SERVING);
  });
});

describe("reflection", () => {
  it("needs the token too", async () => {
    const reflect = (headers?: Record<string, string>) => {
      const client = createClient(ServerReflection, transports[0]!.make(t.baseUrl, { headers }));
      async function* one() {
        yield { host: "", messageRequest: { case: "listServices" as const, value: "" } };
      }
      return (async () => {
        for await (const _ of client.serverReflectionInfo(one()));
      })();
    };
    expect(await codeOf(reflect())).toBe(Code.Unauthenticated);
    expect(await codeOf(reflect({ authorization: `Bearer ${TOKEN}` }))).toBe("ok");
  });
});

describe("@grpc/grpc-js", () => {
  it("gets UNAUTHENTICATED without metadata and an answer with it", async () => {
    const definition = await protoLoader.load("virtufin/websocketmanager.proto", {
      includeDirs: [new URL("../proto", import.meta.url).pathname],
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      virtufin: { WebSocketManager: grpc.ServiceClientConstructor };
    };
    const client = new pkg.virtufin.WebSocketManager(`127.0.0.1:${t.port}`, grpc.credentials.createInsecure());
    const list = (metadata: grpc.Metadata) =>
      new Promise<grpc.status>((resolve) => {
        client.List({}, metadata, (err: grpc.ServiceError | null) => resolve(err ? err.code : grpc.status.OK));
      });
    try {
      expect(await list(new grpc.Metadata())).toBe(grpc.status.UNAUTHENTICATED);
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${TOKEN}`);
      expect(await list(md)).toBe(grpc.status.OK);
    } finally {
      client.close();
    }
  });
});

describe("HTTP endpoints", () => {
  it("guards /metrics and tells the extra handler, but leaves /healthz and /readyz open", async () => {
    const denied = await fetch(`${t.baseUrl}/metrics`);
    expect(denied.status).toBe(401);
    expect(denied.headers.get("www-authenticate")).toBe("Bearer");
    const metrics = await fetch(`${t.baseUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(metrics.status).toBe(200);
    // Refused calls are counted too.
    expect(await metrics.text()).toMatch(/wsm_rpc_requests_total\{code="unauthenticated",method="virtufin.WebSocketManager\/List"\} [1-9]/);

    expect((await fetch(`${t.baseUrl}/console`)).status).toBe(401);
    expect((await fetch(`${t.baseUrl}/console`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${t.baseUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.baseUrl}/readyz`)).status).toBe(200);
  });
});
