/**
 * Transports for Node over @connectrpc/connect-node: gRPC (HTTP/2), gRPC-Web and Connect over
 * HTTP/1.1 or HTTP/2. Imported only through the `node.ts` entry, so that browser bundles of
 * `index.ts` never pull in Node modules.
 */
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { createBearerTokenInterceptor, type TokenSource } from "./bearer-token.ts";
import { WebSocketManagerClient, type WebSocketManagerClientOptions } from "./client.ts";

export type NodeProtocol = "grpc" | "grpc-web" | "connect";

export interface NodeTransportOptions {
  /** Base URL of the service: `http://127.0.0.1:5002`, or `https://...` for a TLS service. */
  baseUrl: string;
  /** Default `"grpc"`. */
  protocol?: NodeProtocol;
  /** `"2"` (default) or `"1.1"`; gRPC always uses HTTP/2. */
  httpVersion?: "1.1" | "2";
  /** Protobuf binary (default) or JSON on the wire (gRPC-Web and Connect). */
  useBinaryFormat?: boolean;
  /** Bearer token of a service started with one; a function is asked at every call. */
  token?: TokenSource;
  /** More interceptors, run after the token's. */
  interceptors?: Interceptor[];
  /**
   * HTTP/2 only: close the connection after this long without calls. Default 15 minutes (as
   * connect-node); short values let short-lived programs and tests exit at once.
   */
  idleConnectionTimeoutMs?: number;
  /** HTTP/2 only: ping interval that detects a dead connection during long streams. Default
   * connect-node's (none). */
  pingIntervalMs?: number;
  /** Largest response message accepted, in bytes. Default connect-node's (4 GiB). */
  readMaxBytes?: number;
}

export function createNodeTransport(options: NodeTransportOptions): Transport {
  const protocol = options.protocol ?? "grpc";
  const httpVersion = protocol === "grpc" ? "2" : (options.httpVersion ?? "2");
  if (protocol === "grpc" && options.httpVersion === "1.1") {
    throw new Error("gRPC needs HTTP/2; use grpc-web or connect over HTTP/1.1");
  }
  const interceptors = [...(options.token !== undefined ? [createBearerTokenInterceptor(options.token)] : []), ...(options.interceptors ?? [])];
  const common = {
    baseUrl: options.baseUrl,
    useBinaryFormat: options.useBinaryFormat ?? true,
    interceptors,
    ...(options.readMaxBytes !== undefined ? { readMaxBytes: options.readMaxBytes } : {}),
  };
  const h2 = {
    ...(options.idleConnectionTimeoutMs !== undefined ? { idleConnectionTimeoutMs: options.idleConnectionTimeoutMs } : {}),
    ...(options.pingIntervalMs !== undefined ? { pingIntervalMs: options.pingIntervalMs } : {}),
  };
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ ...common, ...h2 });
    case "grpc-web":
      return httpVersion === "2"
        ? createGrpcWebTransport({ ...common, ...h2, httpVersion: "2" })
        : createGrpcWebTransport({ ...common, httpVersion: "1.1" });
    case "connect":
      return httpVersion === "2"
        ? createConnectTransport({ ...common, ...h2, httpVersion: "2" })
        : createConnectTransport({ ...common, httpVersion: "1.1" });
  }
}

/** A client over `createNodeTransport(options)`. */
export function createNodeClient(options: NodeTransportOptions & WebSocketManagerClientOptions): WebSocketManagerClient {
  return new WebSocketManagerClient(createNodeTransport(options), options);
}
