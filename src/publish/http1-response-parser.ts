/**
 * Incremental parser of the HTTP/1.1 responses on one client connection. With pipelining the
 * responses arrive in request order, several packed into one read or one split across reads;
 * the parser hands each complete response to a callback, in order.
 *
 * It covers what a client of a trusted local server needs (RFC 9112 message framing):
 * Content-Length, chunked transfer coding (trailers skipped), bodies delimited by the close of
 * the connection, 1xx interim responses (skipped), 204/304 without a body, and
 * `Connection: close`. Responses to HEAD are not supported: the caller never sends HEAD.
 * Bodies are only wanted for error messages, so at most `maxBodyBytes` of each is kept.
 */

export interface ParsedResponse {
  status: number;
  /** The start of the body as UTF-8 text (at most maxBodyBytes bytes of it). */
  body: string;
  /** The server will close the connection after this response. */
  close: boolean;
}

/** A response that breaks HTTP/1.1 framing rules; the connection cannot be used further. */
export class ResponseParseError extends Error {
  override readonly name = "ResponseParseError";
  readonly code = "ERR_HTTP_RESPONSE_INVALID";
}

export interface Http1ResponseParserOptions {
  /** Largest status line plus header section (and trailer section). Default 65536. */
  maxHeaderBytes?: number;
  /** Body bytes kept per response; the rest is read and dropped. Default 4096. */
  maxBodyBytes?: number;
}

type State =
  | { kind: "head" }
  | { kind: "length"; left: number }
  | { kind: "chunk-size" }
  | { kind: "chunk-data"; left: number }
  | { kind: "chunk-end" }
  | { kind: "trailers"; bytes: number }
  | { kind: "until-close" };

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");
const STATUS_LINE = /^HTTP\/1\.[01] ([1-5]\d\d)(?: |$)/;
const MAX_CHUNK_SIZE_LINE = 1024;

export class Http1ResponseParser {
  private readonly onResponse: (response: ParsedResponse) => void;
  private readonly maxHeaderBytes: number;
  private readonly maxBodyBytes: number;
  private state: State = { kind: "head" };
  /** Bytes of a response element (head, size line) not complete yet. */
  private leftover: Buffer | undefined;
  private status = 0;
  private close = false;
  private bodyParts: Buffer[] = [];
  private bodyKept = 0;

  constructor(onResponse: (response: ParsedResponse) => void, options: Http1ResponseParserOptions = {}) {
    this.onResponse = onResponse;
    this.maxHeaderBytes = options.maxHeaderBytes ?? 65_536;
    this.maxBodyBytes = options.maxBodyBytes ?? 4096;
  }

  /** True while a response has started but is not complete. */
  get midResponse(): boolean {
    return this.state.kind !== "head" || (this.leftover?.length ?? 0) > 0;
  }

  /**
   * Feeds bytes read from the connection. Throws ResponseParseError on a framing violation.
   * `chunk` is not kept: the caller may reuse its memory for the next read.
   */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.leftover) {
      buf = Buffer.concat([this.leftover, chunk]);
      this.leftover = undefined;
    }
    let pos = 0;
    while (pos < buf.length) {
      const state = this.state;
      switch (state.kind) {
        case "head": {
          const end = buf.indexOf(HEAD_END, pos);
          if (end < 0) {
            if (buf.length - pos > this.maxHeaderBytes) throw new ResponseParseError("response header section too large");
            this.leftover = Buffer.from(buf.subarray(pos));
            return;
          }
          if (end - pos > this.maxHeaderBytes) throw new ResponseParseError("response header section too large");
          this.startResponse(buf.toString("latin1", pos, end));
          pos = end + 4;
          break;
        }
        case "length": {
          const take = Math.min(state.left, buf.length - pos);
          this.keepBody(buf, pos, pos + take);
          pos += take;
          state.left -= take;
          if (state.left === 0) this.finishResponse();
          break;
        }
        case "chunk-size": {
          const end = buf.indexOf(CRLF, pos);
          if (end < 0) {
            if (buf.length - pos > MAX_CHUNK_SIZE_LINE) throw new ResponseParseError("chunk size line too long");
            this.leftover = Buffer.from(buf.subarray(pos));
            return;
          }
          const line = buf.toString("latin1", pos, end);
          const size = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
          if (!size) throw new ResponseParseError(`invalid chunk size line ${JSON.stringify(line.slice(0, 40))}`);
          const length = Number.parseInt(size[1]!, 16);
          pos = end + 2;
          this.state = length === 0 ? { kind: "trailers", bytes: 0 } : { kind: "chunk-data", left: length };
          break;
        }
        case "chunk-data": {
          const take = Math.min(state.left, buf.length - pos);
          this.keepBody(buf, pos, pos + take);
          pos += take;
          state.left -= take;
          if (state.left === 0) this.state = { kind: "chunk-end" };
          break;
        }
        case "chunk-end": {
          if (buf.length - pos < 2) {
            this.leftover = Buffer.from(buf.subarray(pos));
            return;
          }
          if (buf[pos] !== 0x0d || buf[pos + 1] !== 0x0a) throw new ResponseParseError("chunk data not followed by CRLF");
          pos += 2;
          this.state = { kind: "chunk-size" };
          break;
        }
        case "trailers": {
          const end = buf.indexOf(CRLF, pos);
          if (end < 0) {
            if (state.bytes + buf.length - pos > this.maxHeaderBytes) throw new ResponseParseError("trailer section too large");
            this.leftover = Buffer.from(buf.subarray(pos));
            return;
          }
          state.bytes += end + 2 - pos;
          if (state.bytes > this.maxHeaderBytes) throw new ResponseParseError("trailer section too large");
          const empty = end === pos;
          pos = end + 2;
          if (empty) this.finishResponse();
          break;
        }
        case "until-close": {
          this.keepBody(buf, pos, buf.length);
          pos = buf.length;
          break;
        }
      }
    }
  }

  /**
   * The server closed the connection. Completes a response whose body runs until the close;
   * returns false when a response was cut off (it is not delivered).
   */
  end(): boolean {
    if (this.state.kind === "until-close") {
      this.finishResponse();
      return true;
    }
    return !this.midResponse;
  }

  private startResponse(head: string): void {
    const lines = head.split("\r\n");
    const statusMatch = STATUS_LINE.exec(lines[0]!);
    if (!statusMatch) throw new ResponseParseError(`invalid status line ${JSON.stringify(lines[0]!.slice(0, 60))}`);
    const status = Number(statusMatch[1]);
    let contentLength: number | undefined;
    let chunked = false;
    let transferEncoding = false;
    let close = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      if (colon <= 0) throw new ResponseParseError(`invalid header line ${JSON.stringify(line.slice(0, 60))}`);
      // Only names starting with c or t matter; skipping the rest early keeps 204s cheap.
      const first = line.charCodeAt(0) | 0x20;
      if (first !== 0x63 && first !== 0x74) continue;
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "content-length") {
        if (!/^\d{1,15}$/.test(value)) throw new ResponseParseError(`invalid content-length ${JSON.stringify(value)}`);
        const length = Number(value);
        if (contentLength !== undefined && contentLength !== length) throw new ResponseParseError("conflicting content-length headers");
        contentLength = length;
      } else if (name === "transfer-encoding") {
        transferEncoding = true;
        // The final coding decides the framing (RFC 9112 section 6.3).
        chunked = value.toLowerCase().split(",").pop()!.trim() === "chunked";
      } else if (name === "connection") {
        close ||= value.toLowerCase().split(",").some((token) => token.trim() === "close");
      }
    }

    if (status < 200) {
      // 101 would switch protocols; this client never asks for that.
      if (status === 101) throw new ResponseParseError("unexpected 101 Switching Protocols");
      return; // interim response: the final one follows
    }
    this.status = status;
    this.close = close;
    this.bodyParts = [];
    this.bodyKept = 0;
    if (status === 204 || status === 304) {
      this.finishResponse();
    } else if (transferEncoding) {
      this.state = chunked ? { kind: "chunk-size" } : { kind: "until-close" };
    } else if (contentLength !== undefined) {
      if (contentLength === 0) this.finishResponse();
      else this.state = { kind: "length", left: contentLength };
    } else {
      this.state = { kind: "until-close" };
    }
  }

  private keepBody(buf: Buffer, start: number, end: number): void {
    const room = this.maxBodyBytes - this.bodyKept;
    if (room <= 0 || end <= start) return;
    const stop = Math.min(end, start + room);
    // Copied: `buf` may be a read buffer that is reused.
    this.bodyParts.push(Buffer.from(buf.subarray(start, stop)));
    this.bodyKept += stop - start;
  }

  private finishResponse(): void {
    const body = this.bodyParts.length === 0 ? "" : Buffer.concat(this.bodyParts).toString("utf8");
    const response: ParsedResponse = { status: this.status, body, close: this.close };
    this.state = { kind: "head" };
    this.bodyParts = [];
    this.bodyKept = 0;
    this.onResponse(response);
  }
}
