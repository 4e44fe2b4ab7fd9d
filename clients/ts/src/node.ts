/**
 * The WebSocketManager TypeScript client, Node entry: everything of `index.ts` plus the
 * connect-node transports (gRPC over HTTP/2; gRPC-Web and Connect over HTTP/1.1 or HTTP/2).
 */
export * from "./index.ts";
export { createNodeClient, createNodeTransport, type NodeProtocol, type NodeTransportOptions } from "./node-transport.ts";
