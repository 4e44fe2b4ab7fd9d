/** What the connection manager reports: inbound frames and lifecycle changes. */

export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "disconnected";
export type LifecycleType = ConnectionStatus | "error";

export const LIFECYCLE_TYPES: readonly LifecycleType[] = [
  "connecting",
  "connected",
  "reconnecting",
  "disconnected",
  "error",
];

/** One inbound frame that is not a Send reply. */
export interface InboundFrame {
  connectionId: string;
  url: string;
  instanceId: string;
  /** Text as received, or base64 of a binary frame. */
  data: string;
  /** application/json (text that parses as JSON), text/plain, or application/octet-stream. */
  contentType: string;
  /** Size of the frame on the wire, for queue byte limits. */
  bytes: number;
  /** Epoch milliseconds. */
  receivedAtMs: number;
  /** Topic it is published to, "" when the connection is not publishing. */
  topic: string;
  /** Per-connection publish sequence number (1, 2, 3...); 0 when not published. */
  sequence: number;
}

export interface LifecycleEvent {
  type: LifecycleType;
  connectionId: string;
  url: string;
  instanceId: string;
  status: ConnectionStatus;
  previousStatus: ConnectionStatus | "";
  attempt: number;
  errorType: string;
  errorMessage: string;
  /** Epoch milliseconds. */
  timeMs: number;
}
