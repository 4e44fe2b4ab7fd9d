/**
 * The WebSocketManager TypeScript client, browser-safe entry: the client, the web transports
 * (Connect and gRPC-Web over fetch), the bearer-token interceptor and error helpers. Node
 * programs that want gRPC over HTTP/2 import `./node.ts` instead, which adds the Node
 * transports to everything exported here.
 */
export {
  WebSocketManagerClient,
  DEFAULT_SEND_TIMEOUT_MS,
  SERVER_DEFAULT_SEND_TIMEOUT_MS,
  SEND_DEADLINE_MARGIN_MS,
  OCTET_STREAM,
  bytesToBase64,
  base64ToBytes,
  type CallOptions,
  type ConnectOptions,
  type CorrelationInit,
  type CorrelationModeName,
  type HeartbeatPolicyInit,
  type OutboundInit,
  type Payload,
  type ReconnectPolicyInit,
  type SendOptions,
  type SendRawOptions,
  type TagFilters,
  type WebSocketManagerClientOptions,
} from "./client.ts";
export { createSubscription, type Subscription, type SubscribeFilter } from "./subscription.ts";
export { createBearerTokenInterceptor, type TokenSource } from "./bearer-token.ts";
export { codeName, describeError } from "./error-code.ts";
export { createWebClient, createWebTransport, type WebProtocol, type WebTransportOptions } from "./web-transport.ts";
export { Code, ConnectError } from "@connectrpc/connect";
export {
  CorrelationMode,
  type ConnectResponse,
  type ConnectionStats,
  type InboundMessage,
  type LifecycleEvent,
  type ListResponse,
  type SendResponse,
  type Snapshot,
  type SubscribeResponse,
  type WebSocketConnection,
} from "../../../gen/virtufin/websocketmanager_pb.js";
