/**
 * The orchestrator's own client of the service (setup and checks, not load): connect-node's
 * gRPC transport, plus opening many connections at a bounded concurrency.
 */
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { WebSocketManager, type ConnectRequest } from "../../gen/virtufin/websocketmanager_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ConnectRequestSchema } from "../../gen/virtufin/websocketmanager_pb.js";

export type WsmClient = Client<typeof WebSocketManager>;
export type ConnectInit = MessageInitShape<typeof ConnectRequestSchema>;

export function wsmClient(baseUrl: string): WsmClient {
  return createClient(WebSocketManager, createGrpcTransport({ baseUrl, idleConnectionTimeoutMs: 1000 }));
}

/** Runs `fn` over `items` with at most `concurrency` at once; results in input order. */
export async function mapConcurrent<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** Opens one connection per request, `concurrency` Connect RPCs in flight; returns the ids. */
export async function connectMany(client: WsmClient, requests: readonly ConnectInit[], concurrency: number): Promise<string[]> {
  return mapConcurrent(requests, concurrency, async (req) => {
    const res = await client.connect(req, { timeoutMs: 60_000 });
    return res.id;
  });
}

/** Closes connections, `concurrency` Disconnect RPCs in flight. */
export async function disconnectMany(client: WsmClient, ids: readonly string[], concurrency: number): Promise<void> {
  await mapConcurrent(ids, concurrency, (id) => client.disconnect({ id }, { timeoutMs: 60_000 }).then(() => undefined));
}

export type { ConnectRequest };
