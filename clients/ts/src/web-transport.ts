/**
 * Transports for browsers (and any runtime with fetch): Connect or gRPC-Web over
 * @connectrpc/connect-web. Both work over plain HTTP/1.1, which is what a browser speaks to a
 * cleartext server.
 */
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { createBearerTokenInterceptor, type TokenSource } from "./bearer-token.ts";
import { WebSocketManagerClient, type WebSocketManagerClientOptions } from "./client.ts";

export type WebProtocol = "grpc-web" | "connect";

export interface WebTransportOptions {
  /** Base URL of the service, e.g. `http://127.0.0.1:5002` or, same origin, `location.origin`. */
  baseUrl: string;
  /** Default `"grpc-web"` (binary, compact); `"connect"` is readable in the browser's tools. */
  protocol?: WebProtocol;
  /** Protobuf binary (default) or JSON on the wire. */
  useBinaryFormat?: boolean;
  /** Bearer token of a service started with one; a function is asked at every call. */
  token?: TokenSource;
  /** More interceptors, run after the token's. */
  interceptors?: Interceptor[];
  /** Override of fetch (e.g. to set `credentials`). */
  fetch?: typeof globalThis.fetch;
}

export function createWebTransport(options: WebTransportOptions): Transport {
  const interceptors = [...(options.token !== undefined ? [createBearerTokenInterceptor(options.token)] : []), ...(options.interceptors ?? [])];
  const common = {
    baseUrl: options.baseUrl,
    useBinaryFormat: options.useBinaryFormat ?? true,
    interceptors,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };
  return (options.protocol ?? "grpc-web") === "connect" ? createConnectTransport(common) : createGrpcWebTransport(common);
}

/** A client over `createWebTransport(options)`. */
export function createWebClient(options: WebTransportOptions & WebSocketManagerClientOptions): WebSocketManagerClient {
  return new WebSocketManagerClient(createWebTransport(options), options);
}
