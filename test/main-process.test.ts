/**
 * The service as a newcomer runs it: `node src/main.ts` in its own process, called by
 * independent clients (grpcurl and buf curl by reflection only, curl with JSON over HTTP/1.1
 * and HTTP/2), its logs read as JSON lines, and stopped by SIGTERM.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startWsServer, type TestWsServer } from "./support/ws-servers.ts";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;
const grpcurl = `${root}.cache/bin/grpcurl`;
const buf = `${root}node_modules/.bin/buf`;

let child: ChildProcess;
let port = 0;
const logs: Array<Record<string, unknown>> = [];
let upstream: TestWsServer;

beforeAll(async () => {
  if (!existsSync(grpcurl)) throw new Error("grpcurl is missing: run scripts/install-grpcurl.sh");
  upstream = await startWsServer({ behaviour: "jsonrpc" });
  child = spawn(process.execPath, ["src/main.ts", "--port", "0", "--instance-id", "proc-test", "--log-level", "info"], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const listening = new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`service exited early with ${code}`)));
    lines.on("line", (line) => {
      const record = JSON.parse(line) as Record<string, unknown>;
      logs.push(record);
      if (record.msg === "listening") resolve(record.port as number);
    });
  });
  port = await listening;
});

afterAll(async () => {
  if (child.exitCode === null) {
    child.kill("SIGKILL");
    await once(child, "exit");
  }
  await upstream.close();
});

const target = () => `127.0.0.1:${port}`;

async function grpcurlJson(method: string, body: unknown): Promise<Record<string, unknown>> {
  const { stdout } = await run(grpcurl, ["-plaintext", "-max-time", "10", "-d", JSON.stringify(body), target(), method]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function curlJson(method: string, body: unknown, http2 = false): Promise<{ status: number; body: Record<string, unknown> }> {
  const { stdout } = await run("curl", [
    "-s",
    ...(http2 ? ["--http2-prior-knowledge"] : []),
    "-X",
    "POST",
    "-H",
    "Content-Type: application/json",
    "-d",
    JSON.stringify(body),
    "-w",
    "\n%{http_code} %{http_version}",
    `http://${target()}/virtufin.WebSocketManager/${method}`,
  ]);
  const [json, statusLine] = stdout.split("\n");
  const [status, version] = statusLine!.split(" ");
  expect(version).toBe(http2 ? "2" : "1.1");
  return { status: Number(status), body: JSON.parse(json!) as Record<string, unknown> };
}

describe("node src/main.ts", () => {
  let connectionId = "";

  it("lists and describes its services to grpcurl by reflection", async () => {
    const { stdout } = await run(grpcurl, ["-plaintext", target(), "list"]);
    expect(stdout.split("\n")).toContain("virtufin.WebSocketManager");
    const described = (await run(grpcurl, ["-plaintext", target(), "describe", "virtufin.WebSocketManager.Send"])).stdout;
    expect(described).toContain("rpc Send ( .virtufin.SendRequest ) returns ( .virtufin.SendResponse )");
  });

  it("connects through grpcurl with the snake_case JSON a gateway sends", async () => {
    const res = await grpcurlJson("virtufin.WebSocketManager/Connect", { url: upstream.url, auto_reconnect: true, tags: { via: "grpcurl" } });
    expect(res.status).toBe("connected");
    connectionId = res.id as string;
    const list = await grpcurlJson("virtufin.WebSocketManager/List", {});
    expect(list.connections).toEqual([
      expect.objectContaining({ id: connectionId, url: upstream.url, status: "connected", instanceId: "proc-test", autoReconnect: true }),
    ]);
  });

  it("answers curl with a JSON body over plain HTTP/1.1 and over HTTP/2", async () => {
    const sent = await curlJson("Send", { id: connectionId, message: '{"method":"ping","id":"c1"}', timeoutMs: 5000 });
    expect(sent.status).toBe(200);
    expect(JSON.parse(sent.body.response as string)).toEqual({ id: "c1", result: { method: "ping", id: "c1" } });
    const list = await curlJson("List", {}, true);
    expect(list.status).toBe(200);
    expect((list.body.connections as unknown[]).length).toBe(1);
    const missing = await curlJson("Disconnect", { id: "no-such-id" });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: "not_found" });
  });

  it("answers buf curl by reflection", async () => {
    const { stdout } = await run(buf, [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "--reflect",
      "-d",
      JSON.stringify({ id: connectionId }),
      `http://${target()}/virtufin.WebSocketManager/GetTags`,
    ]);
    expect(JSON.parse(stdout)).toEqual({ tags: { via: "grpcurl" } });
  });

  it("logs JSON lines: control-plane RPCs with connection and instance id, never message bodies", () => {
    expect(logs.every((l) => typeof l.time === "string" && typeof l.level === "string" && l.instance_id === "proc-test")).toBe(true);
    const text = logs.map((l) => JSON.stringify(l)).join("\n");
    expect(text).toContain(connectionId);
    expect(text).not.toContain('\\"method\\":\\"ping\\"');
    const connectLog = logs.find((l) => l.method === "virtufin.WebSocketManager/Connect");
    expect(connectLog).toMatchObject({ level: "info", code: "ok", connection_id: connectionId, instance_id: "proc-test" });
    // Send is data plane, logged at debug only: no line at info.
    expect(logs.some((l) => l.method === "virtufin.WebSocketManager/Send")).toBe(false);
  });

  it("shuts down on SIGTERM: closes upstreams with 1001 and exits 0", async () => {
    const sock = [...upstream.sockets][0]!;
    const closed = once(sock, "close") as Promise<[number, Buffer]>;
    child.kill("SIGTERM");
    const [code] = await closed;
    expect(code).toBe(1001);
    const [exitCode] = (await once(child, "exit")) as [number | null];
    expect(exitCode).toBe(0);
    await vi.waitFor(() => expect(logs.some((l) => l.msg === "stopped")).toBe(true));
  });
});
