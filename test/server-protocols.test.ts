/**
 * The same calls over every protocol and HTTP version on one port: connect-node clients,
 * @grpc/grpc-js and curl.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { WebSocketManager } from "../gen/virtufin/websocketmanager_pb.js";
import { FIXED_CONNECTION, startTestServer, transports, type TestServer } from "./support/server-fixture.ts";

const run = promisify(execFile);

let t: TestServer;
let readyFlag = true;

beforeAll(async () => {
  t = await startTestServer();
  t.health.addCheck("test-dependency", () => readyFlag);
});
afterAll(() => t.close());

describe.each(transports)("$name", (transport) => {
  it("answers unary calls", async () => {
    const client = createClient(WebSocketManager, transport.make(t.baseUrl));
    const list = await client.list({});
    expect(list.connections).toHaveLength(1);
    expect(list.connections[0]).toMatchObject({ id: FIXED_CONNECTION.id, url: FIXED_CONNECTION.url, tags: { desk: "fx" } });
    expect(list.connections[0]?.createdAt?.seconds).toBe(FIXED_CONNECTION.createdAt.seconds);
    const connected = await client.connect({ url: "ws://upstream.test/feed", autoReconnect: true });
    expect(connected).toMatchObject({ id: "id-for:ws://upstream.test/feed", status: "connected" });
  });

  it("streams health Watch updates", async () => {
    const health = createClient(Health, transport.make(t.baseUrl));
    const abort = new AbortController();
    const seen: ServingStatus[] = [];
    try {
      for await (const res of health.watch({ service: "virtufin.WebSocketManager" }, { signal: abort.signal })) {
        seen.push(res.status);
        if (seen.length === 1) {
          readyFlag = false;
          t.health.evaluate();
        } else if (seen.length === 2) {
          readyFlag = true;
          t.health.evaluate();
        } else {
          break;
        }
      }
    } finally {
      abort.abort();
      readyFlag = true;
    }
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
  });
});

describe("@grpc/grpc-js client", () => {
  it("calls List with a proto loaded by @grpc/proto-loader", async () => {
    const definition = await protoLoader.load("virtufin/websocketmanager.proto", {
      includeDirs: [new URL("../proto", import.meta.url).pathname],
      keepCase: false,
      longs: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      virtufin: { WebSocketManager: grpc.ServiceClientConstructor };
    };
    const client = new pkg.virtufin.WebSocketManager(`127.0.0.1:${t.port}`, grpc.credentials.createInsecure());
    try {
      const res = await new Promise<{ connections: Array<{ id: string; tags: Record<string, string> }> }>(
        (resolve, reject) => {
          client.List({}, (err: grpc.ServiceError | null, value: never) => (err ? reject(err) : resolve(value)));
        },
      );
      expect(res.connections.map((c) => c.id)).toEqual([FIXED_CONNECTION.id]);
      expect(res.connections[0]?.tags).toEqual({ desk: "fx" });
    } finally {
      client.close();
    }
  });
});

describe("curl with a JSON body", () => {
  const listWithCurl = async (extraArgs: string[]) => {
    const { stdout } = await run("curl", [
      "-sS",
      "--max-time",
      "10",
      ...extraArgs,
      "-X",
      "POST",
      "-H",
      "Content-Type: application/json",
      "-d",
      "{}",
      "-w",
      "\n%{http_version} %{http_code}",
      `${t.baseUrl}/virtufin.WebSocketManager/List`,
    ]);
    const lines = stdout.trimEnd().split("\n");
    const [version, status] = lines.pop()!.split(" ");
    return { version, status, body: JSON.parse(lines.join("\n")) as { connections: Array<Record<string, unknown>> } };
  };

  it("works over HTTP/1.1 with no flags", async () => {
    const res = await listWithCurl([]);
    expect(res.version).toBe("1.1");
    expect(res.status).toBe("200");
    expect(res.body.connections[0]).toMatchObject({
      id: FIXED_CONNECTION.id,
      instanceId: "test-instance",
      createdAt: "2024-01-02T03:04:05Z",
    });
  });

  it("works over HTTP/2 with prior knowledge", async () => {
    const res = await listWithCurl(["--http2-prior-knowledge"]);
    expect(res.version).toBe("2");
    expect(res.status).toBe("200");
    expect(res.body.connections[0]).toMatchObject({ id: FIXED_CONNECTION.id });
  });
});
