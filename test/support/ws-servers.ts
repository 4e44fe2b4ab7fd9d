/**
 * Real local WebSocket servers for tests, each on its own port 0 listener on 127.0.0.1.
 * Every server records what it received and whom it accepted, so tests can assert what the
 * service really sent upstream.
 */
import { once } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

export type Behaviour =
  /** Echoes every frame as received (text stays text, binary stays binary). */
  | "echo"
  /** JSON-RPC style: replies {"id": <request id>, "result": <request>}; ignores non-JSON and notifications. */
  | "jsonrpc"
  /** Accepts, never answers anything (Send times out). */
  | "silent"
  /** Accepts, answers nothing, and never answers pings either (dead heartbeat). */
  | "ping-deaf"
  /** Echoes the 16-byte prefix of each binary frame back with "reply:" + the payload. */
  | "uuid-prefix"
  /** Refuses every handshake with HTTP 403. */
  | "refuse"
  /** Accepts, then stops reading from the socket (the service's write buffer fills up). */
  | "stalled";

export interface TestWsServer {
  readonly url: string;
  readonly port: number;
  /** Every frame received, in order, across all sockets. */
  readonly received: Array<{ data: Buffer; isBinary: boolean; socket: number }>;
  /** Handshake requests accepted (headers, url), in order. */
  readonly handshakes: IncomingMessage[];
  /** Sockets open now. */
  readonly sockets: Set<WebSocket>;
  /** Total sockets ever accepted. */
  readonly accepted: number;
  /** Sends a frame to every open socket. */
  broadcast(data: string | Buffer, binary?: boolean): void;
  /** Closes every open socket with `code` (1006-like abrupt close with terminate()). */
  dropAll(mode?: "close" | "terminate", code?: number): void;
  /** Waits until `count` sockets were accepted in total. */
  waitForAccepted(count: number): Promise<void>;
  /** Waits until `count` frames were received in total. */
  waitForReceived(count: number): Promise<void>;
  /** Refuse (403) or accept handshakes from now on. */
  setRefusing(refusing: boolean): void;
  close(): Promise<void>;
}

export interface TestWsServerOptions {
  behaviour: Behaviour;
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Subprotocol to accept when offered. */
  acceptProtocol?: string;
}

export async function startWsServer(options: TestWsServerOptions): Promise<TestWsServer> {
  let refusing = options.behaviour === "refuse";
  const http: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }) : createHttpServer();
  const wss = new WebSocketServer({
    noServer: true,
    autoPong: options.behaviour !== "ping-deaf",
    handleProtocols: (protocols) => (options.acceptProtocol && protocols.has(options.acceptProtocol) ? options.acceptProtocol : false),
  });
  const received: TestWsServer["received"] = [];
  const handshakes: IncomingMessage[] = [];
  const sockets = new Set<WebSocket>();
  let accepted = 0;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const waitFor = (done: () => boolean) =>
    new Promise<void>((resolve) => {
      if (done()) return resolve();
      const check = () => {
        if (done()) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
    });

  http.on("upgrade", (req, socket, head) => {
    if (refusing) {
      socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      handshakes.push(req);
      const n = ++accepted;
      if (options.behaviour === "stalled") socket.pause();
      sockets.add(ws);
      ws.on("close", () => sockets.delete(ws));
      ws.on("error", () => {});
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        received.push({ data, isBinary, socket: n });
        respond(options.behaviour, ws, data, isBinary);
        notify();
      });
      notify();
    });
  });

  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const port = (http.address() as AddressInfo).port;
  const scheme = options.tls ? "wss" : "ws";

  return {
    url: `${scheme}://127.0.0.1:${port}/`,
    port,
    received,
    handshakes,
    sockets,
    get accepted() {
      return accepted;
    },
    broadcast(data, binary = false) {
      for (const s of sockets) s.send(data, { binary });
    },
    dropAll(mode = "terminate", code = 1001) {
      for (const s of [...sockets]) {
        if (mode === "terminate") s.terminate();
        else s.close(code, "test drop");
      }
    },
    waitForAccepted: (count) => waitFor(() => accepted >= count),
    waitForReceived: (count) => waitFor(() => received.length >= count),
    setRefusing(value) {
      refusing = value;
    },
    async close() {
      for (const s of sockets) s.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

function respond(behaviour: Behaviour, ws: WebSocket, data: Buffer, isBinary: boolean): void {
  switch (behaviour) {
    case "echo":
      ws.send(data, { binary: isBinary });
      return;
    case "jsonrpc": {
      let req: unknown;
      try {
        req = JSON.parse(data.toString("utf8"));
      } catch {
        return;
      }
      if (typeof req !== "object" || req === null) return;
      const r = req as Record<string, unknown>;
      // Replies carry whichever correlation field the request used; a request without one is
      // a notification and gets no reply, as in JSON-RPC.
      const key = "req_id" in r ? "req_id" : "id";
      if (!(key in r)) return;
      ws.send(JSON.stringify({ [key]: r[key], result: r }));
      return;
    }
    case "uuid-prefix": {
      if (!isBinary || data.length < 16) return;
      ws.send(Buffer.concat([data.subarray(0, 16), Buffer.from("reply:"), data.subarray(16)]), { binary: true });
      return;
    }
    default:
      return;
  }
}
