/**
 * A local upstream WebSocket server (ws:// or wss://) for the send, scale, reconnect-storm and
 * control-plane scenarios. It can answer JSON-RPC requests ({"id": n, "result": request}), and
 * it records what a reconnect storm needs, per URL path (each connection gets its own path,
 * /c/<n>, since the service's connection id never reaches the upstream):
 *  - every handshake attempt's arrival time,
 *  - how many attempts of one path were in flight at once (an attempt is in flight from its
 *    HTTP upgrade request until its TCP socket closes),
 *  - whether the first message on each accepted socket was that path's on-open message.
 * `restart` closes the listener and every socket, waits, and listens again on the same port.
 */
import { once } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { onOpenText } from "../lib/payloads.ts";
import { epochMs, sleep } from "../lib/time.ts";

interface PathState {
  inFlight: number;
  maxInFlight: number;
  /** Arrival times (epoch ms) of handshake requests. */
  attempts: number[];
  /** Times the on-open message arrived as the first message of a socket. */
  onOpenAt: number[];
  /** Sockets whose first message was something else. */
  wrongFirst: number;
}

export interface ListenParams {
  tls?: { certPem: string; keyPem: string };
  /** Answer JSON-RPC requests. */
  jsonRpc?: boolean;
  /** Check the first message of each socket against onOpenText(path). */
  checkOnOpen?: boolean;
}

export function createAgent() {
  const paths = new Map<string, PathState>();
  const sockets = new Set<WebSocket>();
  const raw = new Set<Socket>();
  let http: Server | undefined;
  let port = 0;
  let options: ListenParams = {};
  let accepted = 0;

  const stateOf = (path: string): PathState => {
    let s = paths.get(path);
    if (!s) paths.set(path, (s = { inFlight: 0, maxInFlight: 0, attempts: [], onOpenAt: [], wrongFirst: 0 }));
    return s;
  };

  const onUpgrade = (wss: WebSocketServer) => (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const st = stateOf(path);
    st.attempts.push(epochMs());
    st.inFlight++;
    st.maxInFlight = Math.max(st.maxInFlight, st.inFlight);
    raw.add(socket);
    socket.once("close", () => {
      st.inFlight--;
      raw.delete(socket);
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      accepted++;
      sockets.add(ws);
      ws.on("error", () => {});
      ws.once("close", () => sockets.delete(ws));
      if (options.checkOnOpen) {
        const expected = onOpenText(path);
        ws.once("message", (data: Buffer) => {
          if (data.toString("utf8") === expected) st.onOpenAt.push(epochMs());
          else st.wrongFirst++;
        });
      }
      if (options.jsonRpc) {
        ws.on("message", (data: Buffer) => {
          let req: { id?: unknown };
          try {
            req = JSON.parse(data.toString("utf8")) as { id?: unknown };
          } catch {
            return;
          }
          if (req && typeof req === "object" && "id" in req) ws.send(JSON.stringify({ id: req.id, result: req }));
        });
      }
    });
  };

  const startListening = async (listenPort: number) => {
    const wss = new WebSocketServer({ noServer: true });
    http = options.tls ? createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }) : createHttpServer();
    http.on("upgrade", onUpgrade(wss));
    http.listen(listenPort, "127.0.0.1");
    await once(http, "listening");
    port = (http.address() as AddressInfo).port;
  };

  return {
    async listen(p: ListenParams) {
      options = p;
      await startListening(0);
      return { port, url: `${p.tls ? "wss" : "ws"}://127.0.0.1:${port}` };
    },

    async open(_: object) {
      return { open: sockets.size, accepted };
    },

    /**
     * What happened to paths starting with `prefix` (default: all): attempts and on-open
     * messages since `sinceEpochMs` (default: ever); in-flight maxima are over all time.
     */
    async stats(p: { sinceEpochMs?: number; prefix?: string }) {
      const since = p.sinceEpochMs ?? 0;
      const prefix = p.prefix ?? "";
      const attemptOffsetsMs: number[] = [];
      let maxInFlight = 0;
      let pathCount = 0;
      let pathsOnOpen = 0;
      let lastOnOpen = 0;
      let wrongFirst = 0;
      let maxAttemptsPerPath = 0;
      for (const [path, st] of paths) {
        if (!path.startsWith(prefix)) continue;
        pathCount++;
        maxInFlight = Math.max(maxInFlight, st.maxInFlight);
        wrongFirst += st.wrongFirst;
        let n = 0;
        for (const t of st.attempts) {
          if (t >= since) {
            attemptOffsetsMs.push(t - since);
            n++;
          }
        }
        maxAttemptsPerPath = Math.max(maxAttemptsPerPath, n);
        let seen = false;
        for (const t of st.onOpenAt) {
          if (t >= since) {
            seen = true;
            lastOnOpen = Math.max(lastOnOpen, t);
          }
        }
        if (seen) pathsOnOpen++;
      }
      attemptOffsetsMs.sort((a, b) => a - b);
      return {
        open: sockets.size,
        paths: pathCount,
        maxInFlightPerPath: maxInFlight,
        maxAttemptsPerPath,
        attemptOffsetsMs,
        pathsWithOnOpen: pathsOnOpen,
        lastOnOpenOffsetMs: lastOnOpen ? lastOnOpen - since : Number.NaN,
        wrongFirstMessages: wrongFirst,
      };
    },

    /** Drops every socket, stops listening for `downMs`, then listens again on the same port. */
    async restart(p: { downMs: number }) {
      const dropAt = epochMs();
      const server = http!;
      for (const ws of sockets) ws.terminate();
      for (const s of raw) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sleep(p.downMs);
      await startListening(port);
      return { dropAt, upAt: epochMs() };
    },

    async close(_: object) {
      for (const ws of sockets) ws.terminate();
      for (const s of raw) s.destroy();
      http?.closeAllConnections();
      http?.close();
      return {};
    },
  };
}

export type UpstreamAgent = ReturnType<typeof createAgent>;
