/**
 * The RPC load generator, pinned to the load core. Clients:
 *  - "grpc-js": @grpc/grpc-js with protobuf-es codecs (h2c),
 *  - "connect-grpc": connect-node's gRPC transport (h2c),
 *  - "connect-json": connect-node's Connect transport, JSON, HTTP/1.1,
 *  - "undici-json": hand-made Connect unary JSON POSTs over an undici pool, HTTP/1.1,
 *  - "http-get": GET of a URL (lag probes of /healthz).
 * Operations: Send (a JSON-RPC request with a unique id), List, Connect+Disconnect churn.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { Pool } from "undici";
import {
  ListRequestSchema,
  ListResponseSchema,
  SendRequestSchema,
  SendResponseSchema,
  WebSocketManager,
  type ListRequest,
  type ListResponse,
  type SendRequest,
  type SendResponse,
} from "../../gen/virtufin/websocketmanager_pb.js";
import { runClosedLoop, runFixedRate, startOpenLoop, type Call, type LoadResult } from "../lib/load.ts";
import { rpcRequestText } from "../lib/payloads.ts";

export type Target =
  | { kind: "grpc-js"; address: string }
  | { kind: "connect-grpc"; baseUrl: string }
  | { kind: "connect-json"; baseUrl: string }
  | { kind: "undici-json"; baseUrl: string }
  | { kind: "http-get"; url: string };

export type Op =
  | { op: "send"; connectionId: string }
  | { op: "list" }
  | { op: "get" }
  | { op: "churn"; upstreamUrl: string };

export interface LoadParams {
  target: Target;
  op: Op;
  concurrency?: number;
  ratePerSecond?: number;
  warmupMs: number;
  durationMs: number;
  maxRequests?: number;
  /** Open loop: requests in flight above which new ones are skipped (and counted). */
  maxInFlight?: number;
}

const PATH = "/virtufin.WebSocketManager/";
const SEND_TIMEOUT_MS = 10_000;

const toBuffer = (u8: Uint8Array) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

export function createAgent() {
  let nextId = 0;
  const closers: Array<() => void> = [];
  const grpcClients = new Map<string, grpc.Client>();
  const connectClients = new Map<string, Client<typeof WebSocketManager>>();
  const pools = new Map<string, Pool>();
  let probe: { stop(): Promise<LoadResult> } | undefined;

  const grpcClient = (address: string) => {
    let c = grpcClients.get(address);
    if (!c) {
      c = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": -1 });
      grpcClients.set(address, c);
      closers.push(() => c!.close());
    }
    return c;
  };
  const connectClient = (kind: "connect-grpc" | "connect-json", baseUrl: string) => {
    const key = `${kind} ${baseUrl}`;
    let c = connectClients.get(key);
    if (!c) {
      const transport =
        kind === "connect-grpc"
          ? createGrpcTransport({ baseUrl, idleConnectionTimeoutMs: 1000, readMaxBytes: 1 << 30 })
          : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, readMaxBytes: 1 << 30 });
      c = createClient(WebSocketManager, transport);
      connectClients.set(key, c);
    }
    return c;
  };
  const pool = (origin: string, connections: number) => {
    const key = `${origin} ${connections}`;
    let p = pools.get(key);
    if (!p) {
      p = new Pool(origin, { connections, pipelining: 1 });
      pools.set(key, p);
      const created = p;
      closers.push(() => void created.close());
    }
    return p;
  };

  const sendRequest = (connectionId: string): SendRequest =>
    create(SendRequestSchema, { id: connectionId, message: rpcRequestText(++nextId), timeoutMs: SEND_TIMEOUT_MS });

  const grpcUnary = <Req, Res>(
    client: grpc.Client,
    method: string,
    serialize: (m: Req) => Buffer,
    deserialize: (b: Buffer) => Res,
    message: Req,
  ) =>
    new Promise<Res>((resolve, reject) => {
      client.makeUnaryRequest(PATH + method, serialize, deserialize, message, (err, res) => (err ? reject(err) : resolve(res!)));
    });

  const makeCall = (t: Target, op: Op, connections: number): Call => {
    if (t.kind === "http-get") {
      const u = new URL(t.url);
      const p = pool(u.origin, connections);
      return async () => {
        const res = await p.request({ method: "GET", path: u.pathname });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`GET ${u.pathname}: HTTP ${res.statusCode}`);
      };
    }
    if (op.op === "send") {
      switch (t.kind) {
        case "grpc-js": {
          const c = grpcClient(t.address);
          const ser = (m: SendRequest) => toBuffer(toBinary(SendRequestSchema, m));
          const de = (b: Buffer): SendResponse => fromBinary(SendResponseSchema, b);
          return async () => {
            const res = await grpcUnary(c, "Send", ser, de, sendRequest(op.connectionId));
            if (res.response === "") throw new Error("empty reply");
          };
        }
        case "connect-grpc":
        case "connect-json": {
          const c = connectClient(t.kind, t.baseUrl);
          return async () => {
            const res = await c.send(sendRequest(op.connectionId));
            if (res.response === "") throw new Error("empty reply");
          };
        }
        case "undici-json": {
          const p = pool(t.baseUrl, connections);
          return async () => {
            const body = JSON.stringify({ id: op.connectionId, message: rpcRequestText(++nextId), timeoutMs: SEND_TIMEOUT_MS });
            const res = await p.request({ method: "POST", path: PATH + "Send", headers: { "content-type": "application/json" }, body });
            const reply = (await res.body.json()) as { response?: string };
            if (res.statusCode !== 200 || !reply.response) throw new Error(`Send: HTTP ${res.statusCode}`);
          };
        }
      }
    }
    if (op.op === "list") {
      switch (t.kind) {
        case "grpc-js": {
          const c = grpcClient(t.address);
          const ser = (m: ListRequest) => toBuffer(toBinary(ListRequestSchema, m));
          const de = (b: Buffer): ListResponse => fromBinary(ListResponseSchema, b);
          return async () => void (await grpcUnary(c, "List", ser, de, create(ListRequestSchema)));
        }
        case "connect-grpc":
        case "connect-json": {
          const c = connectClient(t.kind, t.baseUrl);
          return async () => void (await c.list({}));
        }
        case "undici-json": {
          const p = pool(t.baseUrl, connections);
          return async () => {
            const res = await p.request({ method: "POST", path: PATH + "List", headers: { "content-type": "application/json" }, body: "{}" });
            await res.body.json();
            if (res.statusCode !== 200) throw new Error(`List: HTTP ${res.statusCode}`);
          };
        }
      }
    }
    if (op.op === "churn" && (t.kind === "connect-grpc" || t.kind === "connect-json")) {
      const c = connectClient(t.kind, t.baseUrl);
      return async () => {
        const { id } = await c.connect({ url: op.upstreamUrl, autoReconnect: false });
        await c.disconnect({ id });
      };
    }
    throw new Error(`${t.kind} cannot do ${op.op}`);
  };

  return {
    async closed(p: LoadParams): Promise<LoadResult> {
      const concurrency = p.concurrency ?? 1;
      return runClosedLoop(makeCall(p.target, p.op, concurrency), {
        concurrency,
        warmupMs: p.warmupMs,
        durationMs: p.durationMs,
        maxRequests: p.maxRequests,
      });
    },

    async rate(p: LoadParams): Promise<LoadResult> {
      return runFixedRate(makeCall(p.target, p.op, 8), {
        ratePerSecond: p.ratePerSecond ?? 1000,
        warmupMs: p.warmupMs,
        durationMs: p.durationMs,
        maxInFlight: p.maxInFlight,
      });
    },

    /** Starts an open-loop probe (GET at a fixed rate) that runs until probeStop. */
    async probeStart(p: { url: string; ratePerSecond: number }) {
      probe = startOpenLoop(makeCall({ kind: "http-get", url: p.url }, { op: "get" }, 4), { ratePerSecond: p.ratePerSecond, warmupMs: 0 });
      return {};
    },

    async probeStop(_: object): Promise<LoadResult | undefined> {
      const r = await probe?.stop();
      probe = undefined;
      return r;
    },

    /** Closes every client (a new target gets new connections). */
    async reset(_: object) {
      for (const close of closers.splice(0)) close();
      grpcClients.clear();
      connectClients.clear();
      pools.clear();
      return {};
    },
  };
}

export type RpcLoadAgent = ReturnType<typeof createAgent>;
