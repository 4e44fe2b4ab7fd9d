/**
 * Opens one WebSocket to an address that passed the URL policy, and maps every way that can
 * fail (DNS, TCP, TLS, HTTP status, timeout, abort) to an UNAVAILABLE or DEADLINE_EXCEEDED
 * error that names the reason.
 */
import type { LookupFunction } from "node:net";
import type { SecureContext } from "node:tls";
import { Code, ConnectError } from "@connectrpc/connect";
import WebSocket from "ws";
import type { ResolvedTarget } from "./url-policy.ts";

export interface OpenSocketOptions {
  target: ResolvedTarget;
  headers: Record<string, string>;
  subprotocols: readonly string[];
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  /** TLS context for wss:// (shared by every connection: one per socket would cost ~30 KiB each). */
  secureContext?: SecureContext;
  signal?: AbortSignal;
}

/** A failure to open, with a short type for lifecycle events and metrics labels. */
export class OpenError extends ConnectError {
  readonly errorType: string;
  constructor(message: string, code: Code, errorType: string, cause?: unknown) {
    super(message, code, undefined, undefined, cause);
    this.errorType = errorType;
  }
}

export function openSocket(options: OpenSocketOptions): Promise<WebSocket> {
  const { target } = options;
  // Connect to exactly the address the policy checked; the URL's host name still goes into
  // the Host header and TLS SNI.
  const pinnedLookup: LookupFunction = (_hostname, lookupOptions, callback) => {
    if ((lookupOptions as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
        { address: target.address, family: target.family },
      ]);
    } else {
      callback(null, target.address, target.family);
    }
  };

  return new Promise<WebSocket>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortError(options.signal));
      return;
    }
    let settled = false;
    const ws = new WebSocket(target.url, [...options.subprotocols], {
      headers: options.headers,
      handshakeTimeout: options.handshakeTimeoutMs,
      maxPayload: options.maxFrameBytes,
      lookup: pinnedLookup,
      followRedirects: false,
      ...(options.secureContext ? { secureContext: options.secureContext } : {}),
    });

    const fail = (err: OpenError) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener("abort", onAbort);
      ws.removeAllListeners();
      ws.on("error", () => {});
      ws.terminate();
      reject(err);
    };
    const onAbort = () => fail(abortError(options.signal!));
    options.signal?.addEventListener("abort", onAbort, { once: true });

    ws.once("unexpected-response", (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      fail(
        new OpenError(
          `upstream rejected the WebSocket handshake with HTTP ${status}${res.statusMessage ? " " + res.statusMessage : ""}`,
          Code.Unavailable,
          "handshake_rejected",
        ),
      );
    });
    ws.once("error", (err) => fail(describeOpenError(err, options.handshakeTimeoutMs)));
    ws.once("close", (code) => fail(new OpenError(`upstream closed during the handshake (code ${code})`, Code.Unavailable, "closed")));
    ws.once("open", () => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener("abort", onAbort);
      ws.removeAllListeners();
      resolve(ws);
    });
  });
}

function abortError(signal: AbortSignal): OpenError {
  const reason = signal.reason as unknown;
  if (reason instanceof ConnectError) return new OpenError(reason.rawMessage, reason.code, "aborted", reason);
  return new OpenError("the call was cancelled while connecting", Code.Canceled, "aborted", reason);
}

/** One place that turns ws, DNS, TCP and TLS errors into reasons a caller can act on. */
export function describeOpenError(err: Error, handshakeTimeoutMs: number): OpenError {
  const code = (err as NodeJS.ErrnoException).code;
  if (/handshake has timed out/i.test(err.message)) {
    return new OpenError(`WebSocket handshake timed out after ${handshakeTimeoutMs} ms`, Code.Unavailable, "timeout", err);
  }
  switch (code) {
    case "ECONNREFUSED":
      return new OpenError("upstream refused the connection (ECONNREFUSED)", Code.Unavailable, "refused", err);
    case "ECONNRESET":
      return new OpenError("upstream reset the connection (ECONNRESET)", Code.Unavailable, "reset", err);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new OpenError(`cannot resolve upstream host (${code})`, Code.Unavailable, "dns", err);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ETIMEDOUT":
      return new OpenError(`upstream unreachable (${code})`, Code.Unavailable, "unreachable", err);
    default:
      if (code?.startsWith("ERR_TLS") || code?.includes("CERT") || /certificate|ssl|tls/i.test(err.message)) {
        return new OpenError(`TLS failure: ${err.message}`, Code.Unavailable, "tls", err);
      }
      return new OpenError(`cannot open WebSocket: ${err.message}`, Code.Unavailable, code ? code.toLowerCase() : "error", err);
  }
}
