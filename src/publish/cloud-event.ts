/** CloudEvents 1.0 envelopes of what the service publishes (structured JSON mode). */
import { randomUUID } from "node:crypto";
import type { InboundFrame, LifecycleEvent } from "./events.ts";

export const MESSAGE_EVENT_TYPE = "com.virtufin.websocketmanager.message";
export const LIFECYCLE_EVENT_TYPE_PREFIX = "com.virtufin.websocketmanager.lifecycle.";
export const EVENT_SOURCE = "urn:com.virtufin.websocketmanager";

export interface CloudEvent {
  specversion: "1.0";
  id: string;
  type: string;
  source: string;
  subject?: string;
  time: string;
  datacontenttype: string;
  /** A JSON value (parsed JSON frame, or lifecycle data) or a string (text frame). */
  data?: unknown;
  /** Base64 of a binary frame (CloudEvents JSON format, section 3.1). */
  data_base64?: string;
  /** Extension attributes: lower-case alphanumeric names (CloudEvents naming rule). */
  connectionid?: string;
  connectionurl?: string;
  instanceid?: string;
  /** Per-connection sequence number; a string would break numeric comparison in consumers. */
  sequence?: number;
  receivedtime?: string;
  [extension: string]: unknown;
}

/**
 * The envelope of one inbound frame. JSON text becomes a JSON value (never a string holding
 * JSON), other text stays text, binary travels as data_base64 with its content type.
 */
export function messageCloudEvent(frame: InboundFrame): CloudEvent {
  const receivedTime = new Date(frame.receivedAtMs).toISOString();
  const event: CloudEvent = {
    specversion: "1.0",
    id: randomUUID(),
    type: MESSAGE_EVENT_TYPE,
    source: EVENT_SOURCE,
    subject: frame.connectionId,
    time: receivedTime,
    datacontenttype: frame.contentType,
    connectionid: frame.connectionId,
    connectionurl: frame.url,
    instanceid: frame.instanceId,
    sequence: frame.sequence,
    receivedtime: receivedTime,
  };
  if (frame.contentType === "application/octet-stream") {
    event.data_base64 = frame.data;
  } else if (frame.contentType === "application/json") {
    event.data = JSON.parse(frame.data) as unknown;
  } else {
    event.data = frame.data;
  }
  return event;
}

export function lifecycleCloudEvent(event: LifecycleEvent): CloudEvent {
  const time = new Date(event.timeMs).toISOString();
  return {
    specversion: "1.0",
    id: randomUUID(),
    type: LIFECYCLE_EVENT_TYPE_PREFIX + event.type,
    source: EVENT_SOURCE,
    subject: event.connectionId,
    time,
    datacontenttype: "application/json",
    connectionid: event.connectionId,
    connectionurl: event.url,
    instanceid: event.instanceId,
    data: {
      connection_id: event.connectionId,
      url: event.url,
      instance_id: event.instanceId,
      status: event.status,
      previous_status: event.previousStatus,
      attempt: event.attempt,
      error_type: event.errorType,
      error_message: event.errorMessage,
    },
  };
}
