/**
 * The bare `ws` baselines, run pinned to the service's core like the service itself:
 *  - feed reading (JSON.parse every frame; or counting only; or raw TCP bytes, the feed
 *    server's ceiling),
 *  - correlated request/response straight to the JSON-RPC upstream,
 *  - holding N idle connections with pings (memory and event-loop lag),
 *  - open/close churn,
 *  - a fleet of reconnecting clients with the service's backoff (equal jitter).
 * It also serves GET /healthz so that lag is probed the same way as the service's.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { connect as netConnect, type AddressInfo, type Socket } from "node:net";
import WebSocket from "ws";
import { runClosedLoop, runFixedRate, type LoadResult } from "../lib/load.ts";
import { FEED_FRAME_BYTES, onOpenText, rpcRequestText } from "../lib/payloads.ts";
import { sleep } from "../lib/time.ts";

type FeedMode = "parse" | "count" | "raw";

function openWs(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once("open", () => {
      ws.off("error", reject);
      resolve(ws);
    });
    ws.once("error", reject);
  });
}

async function mapConcurrent<T>(count: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** Delay before reconnect attempt n (1-based): between half and all of min(max, base·2ⁿ⁻¹). */
function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const d = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return d / 2 + Math.random() * (d / 2);
}

export function createAgent() {
  let feedMessages = 0;
  let feedBytes = 0;
  const feedSockets: Array<WebSocket | Socket> = [];
  const held: WebSocket[] = [];
  const pingTimers: NodeJS.Timeout[] = [];
  let probe: Server | undefined;
  let fleet: { stop(): void; connected(): number } | undefined;

  return {
    /** Opens `connections` feed readers on `${url}/${i}`. */
    async feedOpen(p: { url: string; connections: number; mode: FeedMode }) {
      feedMessages = 0;
      feedBytes = 0;
      for (let i = 0; i < p.connections; i++) {
        const url = `${p.url}/${i}`;
        if (p.mode === "raw") {
          feedSockets.push(await openRaw(url, (n) => (feedBytes += n)));
          continue;
        }
        const ws = await openWs(url);
        ws.on("error", () => {});
        if (p.mode === "parse") {
          ws.on("message", (data: Buffer) => {
            JSON.parse(data.toString("utf8"));
            feedMessages++;
          });
        } else {
          ws.on("message", () => feedMessages++);
        }
        feedSockets.push(ws);
      }
      return { open: feedSockets.length };
    },

    async feedCount(_: object) {
      const messages = feedMessages + Math.floor(feedBytes / FEED_FRAME_BYTES);
      return { messages, atMs: performance.now() };
    },

    async feedClose(_: object) {
      for (const s of feedSockets.splice(0)) {
        if (s instanceof WebSocket) s.terminate();
        else s.destroy();
      }
      return {};
    },

    /** Send/reply straight to the JSON-RPC upstream over one connection. */
    async rpc(p: {
      url: string;
      concurrency?: number;
      ratePerSecond?: number;
      maxInFlight?: number;
      warmupMs: number;
      durationMs: number;
      timeoutMs?: number;
    }): Promise<LoadResult> {
      const ws = await openWs(p.url);
      const pending = new Map<number, () => void>();
      ws.on("message", (data: Buffer) => {
        const reply = JSON.parse(data.toString("utf8")) as { id?: number };
        const done = pending.get(reply.id!);
        if (done) {
          pending.delete(reply.id!);
          done();
        }
      });
      let nextId = 0;
      const timeoutMs = p.timeoutMs ?? 10_000;
      const call = () =>
        new Promise<void>((resolve, reject) => {
          const id = ++nextId;
          // A timer per request, as the service arms one per Send.
          const timer = setTimeout(() => {
            pending.delete(id);
            reject(new Error("timeout"));
          }, timeoutMs);
          pending.set(id, () => {
            clearTimeout(timer);
            resolve();
          });
          ws.send(rpcRequestText(id));
        });
      try {
        return p.ratePerSecond
          ? await runFixedRate(call, { ratePerSecond: p.ratePerSecond, warmupMs: p.warmupMs, durationMs: p.durationMs, maxInFlight: p.maxInFlight })
          : await runClosedLoop(call, { concurrency: p.concurrency ?? 1, warmupMs: p.warmupMs, durationMs: p.durationMs });
      } finally {
        ws.terminate();
      }
    },

    /** Opens and holds `count` more connections to `${url}/h/${from + i}`, pinging each every pingIntervalMs. */
    async hold(p: { url: string; from: number; count: number; concurrency: number; caPem?: string; pingIntervalMs: number }) {
      const started = performance.now();
      // Like the service: a `ca` option per connection (ws hands it to tls.connect).
      const opened = await mapConcurrent(p.count, p.concurrency, (i) => openWs(`${p.url}/h/${p.from + i}`, p.caPem ? { ca: p.caPem } : {}));
      for (const ws of opened) {
        ws.on("error", () => {});
        held.push(ws);
        if (p.pingIntervalMs > 0) pingTimers.push(setInterval(() => ws.ping(), p.pingIntervalMs));
      }
      return { open: held.length, ms: performance.now() - started };
    },

    /** Full GC (the agent runs with --expose-gc), then process.memoryUsage(). */
    async gcMemory(_: object) {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (!gc) throw new Error("start the agent with --expose-gc");
      gc();
      gc();
      return process.memoryUsage();
    },

    async holdCount(_: object) {
      return { open: held.filter((ws) => ws.readyState === WebSocket.OPEN).length };
    },

    async holdClose(_: object) {
      for (const t of pingTimers.splice(0)) clearInterval(t);
      for (const ws of held.splice(0)) ws.terminate();
      return {};
    },

    /** GET /healthz on a port of this process: lag is probed here as on the service. */
    async probeServer(_: object) {
      if (!probe) {
        probe = createServer((_req, res) => {
          res.writeHead(200, { "content-type": "application/json", "content-length": 15 });
          res.end('{"status":"ok"}');
        });
        probe.listen(0, "127.0.0.1");
        await once(probe, "listening");
      }
      return { port: (probe.address() as AddressInfo).port };
    },

    /** Open, close (1000), repeat: `concurrency` at once. */
    async churn(p: { url: string; concurrency: number; warmupMs: number; durationMs: number }): Promise<LoadResult> {
      const call = async () => {
        const ws = await openWs(p.url);
        const closed = once(ws, "close");
        ws.close(1000);
        await closed;
      };
      return runClosedLoop(call, { concurrency: p.concurrency, warmupMs: p.warmupMs, durationMs: p.durationMs });
    },

    /**
     * `count` clients on `${url}/c/${i}`, each sending its on-open message (for its URL path) after every open and
     * reconnecting with the service's backoff; one attempt in flight per client.
     */
    async fleetStart(p: { url: string; count: number; concurrency: number; baseDelayMs: number; maxDelayMs: number }) {
      let stopped = false;
      let connected = 0;
      const sockets = new Set<WebSocket>();
      const run = (i: number, first: () => void) => {
        const url = `${p.url}/c/${i}`;
        const path = new URL(url).pathname;
        let attempt = 0;
        const tryOpen = () => {
          if (stopped) return;
          const ws = new WebSocket(url);
          sockets.add(ws);
          let opened = false;
          ws.on("error", () => {});
          ws.once("open", () => {
            opened = true;
            attempt = 0;
            ws.send(onOpenText(path));
            connected++;
            first();
          });
          ws.once("close", () => {
            sockets.delete(ws);
            if (opened) connected--;
            if (stopped) return;
            attempt++;
            setTimeout(tryOpen, backoffMs(attempt, p.baseDelayMs, p.maxDelayMs));
          });
        };
        tryOpen();
      };
      await mapConcurrent(p.count, p.concurrency, (i) => new Promise<void>((resolve) => run(i, resolve)));
      fleet = {
        stop() {
          stopped = true;
          for (const ws of sockets) ws.terminate();
        },
        connected: () => connected,
      };
      return { connected };
    },

    async fleetStats(_: object) {
      return { connected: fleet?.connected() ?? 0 };
    },

    async fleetStop(_: object) {
      fleet?.stop();
      fleet = undefined;
      await sleep(50);
      return {};
    },
  };
}

/** A WebSocket client on a raw TCP socket that only counts the bytes after the handshake. */
async function openRaw(url: string, onBytes: (n: number) => void): Promise<Socket> {
  const u = new URL(url);
  const socket = netConnect(Number(u.port), u.hostname);
  await once(socket, "connect");
  socket.write(
    `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let inHeaders = true;
  let head = "";
  await new Promise<void>((resolve, reject) => {
    socket.on("data", (chunk: Buffer) => {
      if (!inHeaders) {
        onBytes(chunk.length);
        return;
      }
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      inHeaders = false;
      if (!head.startsWith("HTTP/1.1 101")) reject(new Error(`raw client: ${head.split("\r\n")[0]}`));
      onBytes(Buffer.byteLength(head, "latin1") - end - 4);
      resolve();
    });
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  return socket;
}

export type WsClientAgent = ReturnType<typeof createAgent>;
