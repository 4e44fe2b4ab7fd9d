/**
 * Request/response correlation for Send. A correlator turns an outgoing message into a frame
 * plus a key, and recognises the reply among inbound frames.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { decodeReplyBytes, encodeOutbound, JSON_TYPE } from "./frame-codec.ts";

export type CorrelationMode = "json-field" | "uuid-prefix";

export interface PreparedRequest {
  key: string;
  payload: string | Buffer;
  binary: boolean;
}

export interface MatchedReply {
  key: string;
  data: string;
  contentType: string;
}

export interface Correlator {
  readonly mode: CorrelationMode;
  /** JSON field mode: the field name; "" otherwise. */
  readonly field: string;
  prepare(message: string, contentType: string): PreparedRequest;
  /**
   * The key of an inbound frame if it can be a reply, else undefined. `has` tells whether a
   * key is pending, so a frame is parsed at most once and only when Sends are waiting.
   */
  match(data: Buffer, isBinary: boolean, has: (key: string) => boolean): MatchedReply | undefined;
}

export const DEFAULT_CORRELATION_FIELD = "id";
const PREFIX_BYTES = 16;

/** The key of a JSON field value: typed, so that the number 1 and the string "1" differ. */
function jsonKey(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return "s:" + value;
    case "number":
      return "n:" + String(value);
    case "boolean":
      return "b:" + String(value);
    default:
      return value === null || value === undefined ? undefined : "j:" + JSON.stringify(value);
  }
}

export function createJsonFieldCorrelator(field: string = DEFAULT_CORRELATION_FIELD): Correlator {
  const quotedField = JSON.stringify(field);
  return {
    mode: "json-field",
    field,
    prepare(message, contentType) {
      if (contentType !== "" && !/^application\/(.+\+)?json\b/i.test(contentType) && !/^text\//i.test(contentType)) {
        throw new ConnectError(
          `content_type ${JSON.stringify(contentType)} cannot be correlated by a JSON field; send JSON text`,
          Code.InvalidArgument,
        );
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(message);
      } catch {
        throw new ConnectError(
          `message must be a JSON object to be correlated by field ${quotedField}`,
          Code.InvalidArgument,
        );
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new ConnectError(`message must be a JSON object to be correlated by field ${quotedField}`, Code.InvalidArgument);
      }
      const obj = parsed as Record<string, unknown>;
      let payload = message;
      if (!(field in obj) || obj[field] === null) {
        obj[field] = randomUUID();
        payload = JSON.stringify(obj);
      }
      const key = jsonKey(obj[field]);
      if (key === undefined) throw new ConnectError(`field ${quotedField} has no usable value`, Code.InvalidArgument);
      return { key, payload, binary: false };
    },
    match(data, _isBinary, has) {
      // Binary frames holding JSON text occur (some upstreams send everything binary).
      const first = data[0];
      if (first !== 0x7b /* { */ && first !== 0x20 && first !== 0x0a && first !== 0x0d && first !== 0x09) return undefined;
      const text = data.toString("utf8");
      if (!text.includes(quotedField)) return undefined;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return undefined;
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
      const key = jsonKey((parsed as Record<string, unknown>)[field]);
      if (key === undefined || !has(key)) return undefined;
      return { key, data: text, contentType: JSON_TYPE };
    },
  };
}

export function createUuidPrefixCorrelator(): Correlator {
  return {
    mode: "uuid-prefix",
    field: "",
    prepare(message, contentType) {
      const body = encodeOutbound(message, contentType).payload;
      const prefix = randomBytes(PREFIX_BYTES);
      const bodyBytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
      return { key: prefix.toString("hex"), payload: Buffer.concat([prefix, bodyBytes]), binary: true };
    },
    match(data, _isBinary, has) {
      if (data.length < PREFIX_BYTES) return undefined;
      const key = data.subarray(0, PREFIX_BYTES).toString("hex");
      if (!has(key)) return undefined;
      return { key, ...decodeReplyBytes(data.subarray(PREFIX_BYTES)) };
    },
  };
}
