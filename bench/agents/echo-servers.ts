/**
 * The bare RPC baselines, pinned to the service's core like the service: the same
 * virtufin.WebSocketManager Send (and List) methods with nothing behind them.
 *  - @grpc/grpc-js server (h2c) with protobuf-es codecs,
 *  - connect-node adapter on node:http2 (h2c: gRPC, Connect) and node:http (HTTP/1.1: Connect JSON).
 * Send echoes the message back; List returns a stored ListResponse (`setList`: the service's
 * own List answer, so the baseline serializes exactly the same message).
 */
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttp2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
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

const toBuffer = (u8: Uint8Array) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

function unary<Req, Res>(name: string, req: Parameters<typeof toBinary>[0], res: Parameters<typeof toBinary>[0]): grpc.MethodDefinition<Req, Res> {
  return {
    path: `/virtufin.WebSocketManager/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: Req) => toBuffer(toBinary(req, m as never)),
    requestDeserialize: (b: Buffer) => fromBinary(req, b) as Req,
    responseSerialize: (m: Res) => toBuffer(toBinary(res, m as never)),
    responseDeserialize: (b: Buffer) => fromBinary(res, b) as Res,
  };
}

export function createAgent() {
  let listResponse: ListResponse = create(ListResponseSchema);
  const closers: Array<() => void> = [];

  return {
    async start(_: object) {
      const grpcServer = new grpc.Server({ "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1 });
      grpcServer.addService(
        {
          Send: unary<SendRequest, SendResponse>("Send", SendRequestSchema, SendResponseSchema),
          List: unary<ListRequest, ListResponse>("List", ListRequestSchema, ListResponseSchema),
        },
        {
          Send: (call: grpc.ServerUnaryCall<SendRequest, SendResponse>, cb: grpc.sendUnaryData<SendResponse>) =>
            cb(null, create(SendResponseSchema, { response: call.request.message })),
          List: (_call: grpc.ServerUnaryCall<ListRequest, ListResponse>, cb: grpc.sendUnaryData<ListResponse>) => cb(null, listResponse),
        },
      );
      const grpcPort = await new Promise<number>((resolve, reject) =>
        grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
      );
      closers.push(() => grpcServer.forceShutdown());

      const handler = connectNodeAdapter({
        routes(router) {
          router.service(WebSocketManager, {
            send: (req) => ({ response: req.message }),
            list: () => listResponse,
          });
        },
      });
      const h2 = createHttp2Server({ settings: { maxConcurrentStreams: 1000 } }, handler);
      h2.listen(0, "127.0.0.1");
      await once(h2, "listening");
      closers.push(() => h2.close());
      const h1 = createHttpServer({ keepAliveTimeout: 60_000 }, handler);
      h1.listen(0, "127.0.0.1");
      await once(h1, "listening");
      closers.push(() => {
        h1.closeAllConnections();
        h1.close();
      });
      return {
        grpcJsAddress: `127.0.0.1:${grpcPort}`,
        connectH2Url: `http://127.0.0.1:${(h2.address() as AddressInfo).port}`,
        connectH1Url: `http://127.0.0.1:${(h1.address() as AddressInfo).port}`,
      };
    },

    /** Stores the ListResponse List answers with (protobuf binary, base64). */
    async setList(p: { base64: string }) {
      listResponse = fromBinary(ListResponseSchema, Buffer.from(p.base64, "base64"));
      return { connections: listResponse.connections.length };
    },

    async close(_: object) {
      for (const c of closers.splice(0)) c();
      return {};
    },
  };
}

export type EchoServersAgent = ReturnType<typeof createAgent>;
