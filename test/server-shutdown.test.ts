/**
 * close(): stop accepting, NOT_SERVING, onDrain, drain connections (in-flight calls finish,
 * streams end), onClosed; all under the hard deadline, whatever the clients do.
 */
import { once } from "node:events";
import net from "node:net";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { WebSocketManager } from "../gen/virtufin/websocketmanager_pb.js";
import { createMetrics } from "../src/metrics.ts";
import { createServer } from "../src/server/create-server.ts";
import { createHealth } from "../src/server/health.ts";
import { silentLogger } from "../src/logger.ts";
import { captureLogger, codeOf, createGate, startTestServer } from "./support/server-fixture.ts";

/** Resolves with the error code of a connection attempt, or "connected". */
async function tryConnect(port: number): Promise<string> {
  const socket = net.connect(port, "127.0.0.1");
  try {
    await once(socket, "connect");
    return "connected";
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? "error";
  } finally {
    socket.destroy();
  }
}

/** Collects a stream's messages; resolves with them and the code it ended with. */
function collect<T>(stream: AsyncIterable<T>) {
  const messages: T[] = [];
  const ended = (async () => {
    for await (const m of stream) messages.push(m);
  })();
  return { messages, code: codeOf(ended) };
}

describe("graceful close", () => {
  it("runs in order: refuse, NOT_SERVING, onDrain, finish calls, end streams, onClosed", async () => {
    const gate = createGate();
    const events: string[] = [];
    const { logger, records } = captureLogger();
    const t = await startTestServer(
      {
        logger,
        async onDrain() {
          events.push(`drain serving=${t.health.evaluate().serving}`);
        },
        async onClosed() {
          events.push("closed");
        },
      },
      { sendGate: gate },
    );
    const grpc = createGrpcTransport({ baseUrl: t.baseUrl });
    const connectH1 = createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1" });

    const sendH2 = createClient(WebSocketManager, grpc).send({ id: "c1", message: "over h2" });
    const sendH1 = createClient(WebSocketManager, connectH1).send({ id: "c2", message: "over h1" });
    const watch = collect(createClient(Health, grpc).watch({ service: "" }));
    const subscribe = collect(createClient(WebSocketManager, grpc).subscribe({}));
    const reflection = collect(
      createClient(ServerReflection, grpc).serverReflectionInfo(
        (async function* () {
          yield { host: "", messageRequest: { case: "listServices" as const, value: "" } };
          // The client keeps its side of the stream open, as grpcurl does.
          await new Promise(() => undefined);
        })(),
      ),
    );
    await expect.poll(() => gate.waiting).toBe(2);
    await expect.poll(() => [watch.messages.length, subscribe.messages.length, reflection.messages.length]).toEqual([1, 1, 1]);

    const closing = t.close();
    expect(t.close()).toBe(closing);
    await expect.poll(() => events).toEqual(["drain serving=false"]);
    expect(await tryConnect(t.port)).toBe("ECONNREFUSED");

    gate.open();
    expect(await sendH2).toMatchObject({ response: "echo:over h2" });
    expect(await sendH1).toMatchObject({ response: "echo:over h1" });
    expect(watch.messages.map((m) => m.status)).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    expect(await watch.code).toBe("ok");
    // Subscribe here ignores every signal: only the server's cut-off ends it.
    expect(await subscribe.code).toBe(Code.Unavailable);
    expect(await reflection.code).toBe(Code.Unavailable);

    await closing;
    expect(events).toEqual(["drain serving=false", "closed"]);
    expect(records.find((r) => r.msg === "server closed")).toMatchObject({ graceful: true });
  });

  it("is idempotent and works without ever listening", async () => {
    const server = createServer({
      logger: silentLogger,
      metrics: createMetrics(),
      health: createHealth(),
      reflectionFiles: [],
      registerServices: () => undefined,
    });
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    await expect(server.listen(0)).rejects.toThrow("server is closed");
    expect(() => server.url).toThrow("not listening");
  });
});

describe("the hard deadline", () => {
  // Tiny so that the test does not wait ten seconds; the default is 10000.
  const shutdownTimeoutMs = 400;

  it("destroys stuck calls and clients, still runs onClosed, and resolves in time", async () => {
    const gate = createGate();
    const events: string[] = [];
    const { logger, records } = captureLogger();
    const t = await startTestServer(
      {
        logger,
        shutdownTimeoutMs,
        onClosed: async () => void events.push("closed"),
      },
      { sendGate: gate },
    );
    const stuckSend = codeOf(createClient(WebSocketManager, createGrpcTransport({ baseUrl: t.baseUrl })).send({ id: "c1" }));
    const stuckH1 = codeOf(
      createClient(WebSocketManager, createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "1.1" })).send({ id: "c2" }),
    );
    // A client that sent half a body and then nothing.
    const raw = net.connect(t.port, "127.0.0.1");
    raw.on("error", () => undefined);
    await once(raw, "connect");
    raw.write("POST /virtufin.WebSocketManager/List HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{");
    const rawClosed = once(raw, "close");
    await expect.poll(() => gate.waiting).toBe(2);

    const startedAt = performance.now();
    await t.close();
    const tookMs = performance.now() - startedAt;

    expect(tookMs).toBeGreaterThanOrEqual(shutdownTimeoutMs - 5);
    // Generous slack for a loaded machine; without the deadline this would never resolve.
    expect(tookMs).toBeLessThan(shutdownTimeoutMs + 2000);
    expect(events).toEqual(["closed"]);
    expect(await stuckSend).not.toBe("ok");
    expect(await stuckH1).not.toBe("ok");
    await rawClosed;
    expect(records.find((r) => r.msg === "server closed")).toMatchObject({ graceful: false });
    expect(records.some((r) => r.level === "warn" && String(r.msg).includes("deadline"))).toBe(true);
    gate.open();
  });

  it("does not wait past the deadline for an onDrain that hangs", async () => {
    const events: string[] = [];
    const t = await startTestServer({
      shutdownTimeoutMs,
      onDrain: () => new Promise(() => undefined),
      onClosed: async () => void events.push("closed"),
    });
    const startedAt = performance.now();
    await t.close();
    expect(performance.now() - startedAt).toBeLessThan(shutdownTimeoutMs + 2000);
    expect(events).toEqual(["closed"]);
  });
});
