/**
 * Sends one batch of requests over one leased Http1Connection with at most `window` of them
 * unanswered at a time, and reports exactly what the server said about each.
 *
 * Failure semantics, the reason this file exists. Responses come back in request order, so
 * when request k fails every request before k has already been acknowledged: the delivered
 * prefix is k. Requests after k may already be on the wire, though, and the server goes on
 * processing them: a pipelined batch can leave a hole (k failed, k+1... stored). So after a
 * failed response nothing more is written, the requests already written are waited for (within
 * their deadline) and those acknowledged are reported as `storedAhead`, which makes the
 * reordering visible instead of silent. When the connection breaks instead (killed sidecar,
 * timeout, abort), the server processed some prefix of what it read and nothing after: there
 * is no hole, only requests whose outcome is unknown (`unconfirmed`).
 */
import { CONNECTION_CLOSED, connectionError, type Http1Connection, type ResponseListener } from "./http1-connection.ts";

export interface BatchOptions {
  /** Most requests written and unanswered at once. 1 = wait for each answer. */
  window: number;
  /** Send the first request alone and wait for its answer before pipelining the rest. */
  firstAlone: boolean;
  /** Bound of one request, from the moment it is written until its answer. */
  requestTimeoutMs: number;
  /** The caller's signal: abort tears the connection down. */
  signal: AbortSignal | undefined;
  /** Polled before each write: true stops writing (what is written is still waited for). */
  stopWriting(): boolean;
  /** Each answered request: its index, HTTP status and seconds from write to answer. */
  onAnswer(index: number, status: number, seconds: number): void;
  /** Each request written and never answered (the connection broke): seconds from write to the break. */
  onUnanswered(index: number, seconds: number): void;
}

export interface BatchOutcome {
  /** Leading run of acknowledged (2xx) requests. Equal to the request count on success. */
  delivered: number;
  /** Requests written to the connection. */
  written: number;
  /** What ended the run of successes, undefined when all requests were acknowledged. */
  failure?: BatchFailure;
  /** Indices after the failed request that were acknowledged: stored ahead of it. */
  storedAhead: number[];
  /** Requests after `delivered` that were written and never answered: stored or not, unknown. */
  unconfirmed: number;
}

export type BatchFailure =
  /** The server answered request `index` with a non-2xx status. */
  | { kind: "http"; index: number; status: number; body: string }
  /** The connection broke (or was torn down: timeout, abort) with request `index` unanswered. */
  | { kind: "transport"; index: number; error: Error; timedOut: boolean }
  /** stopWriting() ended the batch before request `index` was written. */
  | { kind: "stopped"; index: number };

export class RequestTimeoutError extends Error {
  override readonly name = "RequestTimeoutError";
  readonly code = "ERR_REQUEST_TIMEOUT";
}

/** Runs the batch; never rejects (every failure is in the outcome). */
export function runPipelinedBatch(connection: Http1Connection, requests: readonly string[], options: BatchOptions): Promise<BatchOutcome> {
  return new Promise((resolve) => {
    const count = requests.length;
    const sentAt = new Float64Array(count);
    const storedAhead: number[] = [];
    let written = 0;
    let answered = 0;
    let delivered = 0;
    let failure: BatchFailure | undefined;
    let timer: NodeJS.Timeout | undefined;
    let done = false;

    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      connection.setListener(undefined);
      const now = performance.now();
      for (let i = answered; i < written; i++) options.onUnanswered(i, (now - sentAt[i]!) / 1000);
      resolve({ delivered, written, failure, storedAhead, unconfirmed: written - answered });
    };

    const broken = (error: Error) => {
      // A failed answer stays the headline; what was written after it remains unknown.
      if (failure === undefined || failure.kind === "stopped") {
        failure = { kind: "transport", index: answered, error, timedOut: error instanceof RequestTimeoutError };
      }
      finish();
    };

    const armTimer = () => {
      if (timer !== undefined || answered >= written) return;
      const delay = Math.max(0, sentAt[answered]! + options.requestTimeoutMs - performance.now());
      timer = setTimeout(onTimer, delay);
    };
    // One timer for the oldest unanswered request, re-armed lazily: no timer per request.
    const onTimer = () => {
      timer = undefined;
      if (done || answered >= written) return;
      if (performance.now() >= sentAt[answered]! + options.requestTimeoutMs) {
        connection.destroy(new RequestTimeoutError(`no answer within ${options.requestTimeoutMs} ms`));
      } else {
        armTimer();
      }
    };

    const onAbort = () => {
      const error = new Error("aborted by the caller");
      if (connection.unanswered > 0) connection.destroy(error);
      else broken(error);
    };

    /** Writes what the window allows, in one socket write; finishes when nothing is left to do. */
    const pump = () => {
      if (done) return;
      if (failure === undefined && written < count) {
        if (options.stopWriting()) {
          failure = { kind: "stopped", index: written };
        } else if (!connection.writable) {
          const error = connectionError("the server closed the connection after an answer", CONNECTION_CLOSED);
          failure = { kind: "transport", index: written, error, timedOut: false };
        } else {
          const limit = options.firstAlone && delivered === 0 ? 1 : options.window;
          const end = Math.min(count, answered + limit);
          // Refill once half the window is free, not per answer: one write (one syscall here,
          // one read in daprd) then carries many requests.
          if (end > written && (written - answered) * 2 <= limit) {
            const now = performance.now();
            for (let i = written; i < end; i++) sentAt[i] = now;
            const chunk = end - written === 1 ? requests[written]! : requests.slice(written, end).join("");
            const first = written;
            written = end;
            connection.write(chunk, end - first);
            armTimer();
          }
        }
      }
      if (answered === written && (failure !== undefined || written === count)) finish();
    };

    const listener: ResponseListener = {
      onResponse(status, body) {
        const index = answered++;
        options.onAnswer(index, status, (performance.now() - sentAt[index]!) / 1000);
        // Stopping only ends the writing: answers to what was written still count in order.
        const inPrefix = failure === undefined || failure.kind === "stopped";
        if (status >= 200 && status < 300) {
          if (inPrefix) delivered++;
          else storedAhead.push(index);
        } else if (inPrefix) {
          failure = { kind: "http", index, status, body };
        }
      },
      onReadDone: pump,
      onFailure: broken,
    };

    if (options.signal?.aborted) {
      broken(new Error("aborted by the caller"));
      return;
    }
    connection.setListener(listener);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    pump();
  });
}
