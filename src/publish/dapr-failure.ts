/**
 * The one place where failures of the Dapr sidecar's HTTP API become PublishErrors. The rule:
 * whatever may succeed when tried again (sidecar down or restarting, broker down, timeouts,
 * 5xx, 408, 429) is retryable; what will fail again the same way (other 4xx: unknown pub/sub
 * component, topic not allowed for this app, malformed request) is not.
 */
import { PublishError } from "./publisher.ts";
import { CONNECT_TIMEOUT, CONNECTION_CLOSED } from "./http1-connection.ts";
import { ResponseParseError } from "./http1-response-parser.ts";

export interface DaprFailureContext {
  /** "<pubsub>/<topic>" or what else was called, for the message. */
  target: string;
  /** Events delivered before this failure. */
  deliveredCount: number;
  /** The per-request timer fired (as opposed to the caller aborting). */
  timedOut?: boolean;
  timeoutMs?: number;
  /** The caller's signal: when aborted, its reason explains the failure. */
  signal?: AbortSignal | undefined;
}

/** An HTTP answer from daprd that was not 2xx. */
export interface DaprHttpFailure {
  status: number;
  body: string;
}

/** Socket-level codes meaning the request never reached daprd. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EADDRNOTAVAIL",
  CONNECT_TIMEOUT,
]);

/** Codes meaning the connection broke while the request was in flight: it may have been delivered. */
const CONNECTION_LOST_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", CONNECTION_CLOSED]);

export function daprFailure(failure: unknown, context: DaprFailureContext): PublishError {
  const { target, deliveredCount } = context;
  const make = (message: string, retryable: boolean, reason: string, cause?: unknown) =>
    new PublishError(message, { retryable, reason, deliveredCount, cause });

  if (isHttpFailure(failure)) {
    const { status } = failure;
    const detail = describeDaprBody(failure.body);
    const retryable = status >= 500 || status === 408 || status === 429;
    return make(`dapr publish to ${target} failed: HTTP ${status}${detail ? ` ${detail}` : ""}`, retryable, `http_${status}`);
  }

  if (context.signal?.aborted) {
    const why: unknown = context.signal.reason;
    if (why instanceof PublishError) {
      return make(why.message, why.retryable, why.reason, why);
    }
    if (why instanceof DOMException && why.name === "TimeoutError") {
      return make(`dapr publish to ${target} timed out (caller deadline)`, true, "timeout", why);
    }
    return make(`dapr publish to ${target} aborted by the caller`, false, "aborted", why);
  }
  if (context.timedOut) {
    return make(`dapr publish to ${target} timed out after ${context.timeoutMs} ms`, true, "timeout", failure);
  }

  const code = errorCode(failure);
  const text = failure instanceof Error ? failure.message : String(failure);
  if (code !== undefined && UNREACHABLE_CODES.has(code)) {
    return make(`dapr sidecar unreachable for ${target}: ${code}`, true, "unreachable", failure);
  }
  if (code !== undefined && CONNECTION_LOST_CODES.has(code)) {
    return make(`connection to dapr sidecar lost during publish to ${target}: ${code} ${text}`, true, "connection_lost", failure);
  }
  if (failure instanceof ResponseParseError) {
    return make(`dapr sidecar sent an invalid HTTP response for ${target}: ${text}`, true, "bad_response", failure);
  }
  // Unknown transport trouble: retrying is the safer bet, the pipeline bounds the attempts.
  return make(`dapr publish to ${target} failed: ${code ?? ""} ${text}`.trim(), true, "unknown", failure);
}

function isHttpFailure(value: unknown): value is DaprHttpFailure {
  return typeof value === "object" && value !== null && typeof (value as DaprHttpFailure).status === "number";
}

/** Node reports a failed multi-address connect as an AggregateError; its first cause has the code. */
function errorCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") return code;
  if (err instanceof AggregateError) return errorCode(err.errors[0]);
  return errorCode((err as { cause?: unknown }).cause);
}

/** Dapr answers errors as {"errorCode": "...", "message": "..."}; keep both for the log. */
function describeDaprBody(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errorCode?: unknown; message?: unknown };
    const parts = [parsed.errorCode, parsed.message].filter((p) => typeof p === "string");
    if (parts.length) return parts.join(": ");
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.trim().slice(0, 200);
}
