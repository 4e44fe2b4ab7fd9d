/**
 * The JSON text of a message CloudEvent, built without the object: the same envelope as
 * JSON.stringify(messageCloudEvent(frame)) (it parses to an equal object), at a fraction of
 * the cost. A JSON frame's text is embedded as it came, not parsed and re-serialized; besides
 * saving the work, that keeps what JSON.parse would round off (integers beyond 2^53).
 *
 * Precondition: when frame.contentType is application/json, frame.data is valid JSON text.
 * The frame codec only gives that content type to text that parsed as JSON.
 */
import { randomUUID } from "node:crypto";
import { EVENT_SOURCE, MESSAGE_EVENT_TYPE } from "./cloud-event.ts";
import type { InboundFrame } from "./events.ts";

/** Strings that need no escaping in JSON: no quote, backslash, control character or surrogate. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON must escape
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

const PREFIX = `{"specversion":"1.0","id":"`;
const AFTER_ID = `","type":${JSON.stringify(MESSAGE_EVENT_TYPE)},"source":${JSON.stringify(EVENT_SOURCE)},"subject":`;

/** `id` defaults to a random UUID, as in messageCloudEvent. */
export function messageCloudEventJson(frame: InboundFrame, id: string = randomUUID()): string {
  const time = isoTime(frame.receivedAtMs);
  const connectionId = jsonString(frame.connectionId);
  let data: string;
  if (frame.contentType === "application/octet-stream") {
    data = `,"data_base64":${jsonString(frame.data)}}`;
  } else if (frame.contentType === "application/json") {
    data = `,"data":${frame.data}}`;
  } else {
    data = `,"data":${JSON.stringify(frame.data)}}`;
  }
  return (
    PREFIX +
    (PLAIN.test(id) ? id : JSON.stringify(id).slice(1, -1)) +
    AFTER_ID +
    connectionId +
    `,"time":"${time}","datacontenttype":${jsonString(frame.contentType)},"connectionid":${connectionId}` +
    `,"connectionurl":${jsonString(frame.url)},"instanceid":${jsonString(frame.instanceId)}` +
    `,"sequence":${JSON.stringify(frame.sequence)},"receivedtime":"${time}"` +
    data
  );
}

function jsonString(value: string): string {
  return PLAIN.test(value) ? `"${value}"` : JSON.stringify(value);
}

/**
 * Frames of one burst share their millisecond, and formatting a Date is the costliest step
 * here: the last result is reused. Per module, but only a pure function's cache.
 */
let lastTimeMs = Number.NaN;
let lastTime = "";
function isoTime(ms: number): string {
  if (ms !== lastTimeMs) {
    lastTime = new Date(ms).toISOString();
    lastTimeMs = ms;
  }
  return lastTime;
}
