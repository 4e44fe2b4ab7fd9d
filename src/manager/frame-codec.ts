/**
 * How the strings of the RPC API map to WebSocket frames and back. The API carries text; a
 * binary frame travels as base64 with content type application/octet-stream.
 */
import { isUtf8 } from "node:buffer";
import { Code, ConnectError } from "@connectrpc/connect";

export const OCTET_STREAM = "application/octet-stream";
export const JSON_TYPE = "application/json";
export const TEXT_TYPE = "text/plain";

export type FrameKind = "text" | "binary";

/** The frame kind a content type asks for; INVALID_ARGUMENT for one we cannot carry. */
export function frameKindOf(contentType: string): FrameKind {
  const media = contentType.split(";", 1)[0]!.trim().toLowerCase();
  if (media === "" || media === JSON_TYPE || media.startsWith("text/") || media.endsWith("+json")) return "text";
  if (media === OCTET_STREAM) return "binary";
  throw new ConnectError(
    `content_type ${JSON.stringify(contentType)} is not supported; use text/*, application/json or application/octet-stream`,
    Code.InvalidArgument,
  );
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (Buffer.from silently skips bad characters, which would corrupt a frame). */
export function decodeBase64(message: string): Buffer {
  const compact = message.replace(/\s+/g, "");
  if (!base64Pattern.test(compact)) {
    throw new ConnectError("message is not valid base64, as content_type application/octet-stream requires", Code.InvalidArgument);
  }
  return Buffer.from(compact, "base64");
}

/** The payload of an outbound message: a string for a text frame, bytes for a binary one. */
export function encodeOutbound(message: string, contentType: string): { payload: string | Buffer; binary: boolean } {
  return frameKindOf(contentType) === "binary"
    ? { payload: decodeBase64(message), binary: true }
    : { payload: message, binary: false };
}

/**
 * Whether text is a JSON value. JSON.parse is only tried when the first significant character
 * can start one, so plain-text feeds do not pay for a failed parse on every frame.
 */
export function looksLikeJson(text: string): boolean {
  let i = 0;
  while (i < text.length && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 10 || text.charCodeAt(i) === 13 || text.charCodeAt(i) === 9)) i++;
  const c = text.charCodeAt(i);
  // { [ " - 0-9 t f n
  const start = c === 123 || c === 91 || c === 34 || c === 45 || (c >= 48 && c <= 57) || c === 116 || c === 102 || c === 110;
  if (!start) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** An inbound frame as API text: its data string and content type. */
export function decodeInbound(data: Buffer, isBinary: boolean): { data: string; contentType: string } {
  if (isBinary) return { data: data.toString("base64"), contentType: OCTET_STREAM };
  const text = data.toString("utf8");
  return { data: text, contentType: looksLikeJson(text) ? JSON_TYPE : TEXT_TYPE };
}

/** A reply payload (UUID-prefix mode strips the prefix, leaving bytes of unknown kind). */
export function decodeReplyBytes(bytes: Buffer): { data: string; contentType: string } {
  if (isUtf8(bytes)) return decodeInbound(bytes, false);
  return { data: bytes.toString("base64"), contentType: OCTET_STREAM };
}
