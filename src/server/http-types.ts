/**
 * The request and response types every HTTP handler here receives: Node's HTTP/1 and HTTP/2
 * compatibility objects, as Connect's Node adapter types them, so that one handler serves both.
 */
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";

export type HttpHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
export type HttpRequest = Parameters<HttpHandler>[0];
export type HttpResponse = Parameters<HttpHandler>[1];
