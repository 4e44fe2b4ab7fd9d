/**
 * Logs and counts every RPC: each at debug, control-plane WebSocketManager calls at info (method,
 * code, duration, connection id; never message bodies), anything that ended as `internal` at
 * error with its cause. Metrics: `wsm_rpc_requests_total{method,code}` and
 * `wsm_rpc_duration_seconds{method}`.
 *
 * Per-method state (metric handles, names) is built on a method's first call, so the hot path
 * is a map lookup, two metric writes and a level check.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../logger.ts";
import type { CounterHandle, Histogram, HistogramHandle, Metrics, Counter } from "../metrics.ts";

/**
 * WebSocketManager calls logged at debug only: the read-only ones, and the data plane (Send,
 * SendRaw), which a trading worker calls thousands of times a second; a log line each would
 * cost more than the call. Their counts, codes and durations are always in the metrics. Every
 * other method changes the set of connections or their configuration and is logged at info.
 */
const DEBUG_ONLY_METHODS = new Set(["List", "GetTag", "GetTags", "Subscribe", "Send", "SendRaw"]);
const WEBSOCKET_MANAGER = "virtufin.WebSocketManager";

const DURATION_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface RpcTelemetryOptions {
  logger: Logger;
  metrics: Metrics;
  /** Which calls are logged at info. Default: WebSocketManager methods except List, GetTag, GetTags, Subscribe, Send, SendRaw. */
  isMutating?: (method: DescMethod) => boolean;
}

export interface RpcTelemetry {
  /** Install as the outermost interceptor that should see the final code. */
  readonly interceptor: Interceptor;
  /** Records a call that was refused before any interceptor ran (the auth gate). */
  recordRejected(method: DescMethod, error: ConnectError): void;
}

interface MethodStats {
  readonly name: string;
  readonly mutating: boolean;
  readonly duration: HistogramHandle;
  readonly byCode: (CounterHandle | undefined)[];
}

export function createRpcTelemetry(options: RpcTelemetryOptions): RpcTelemetry {
  const { logger } = options;
  const isMutating = options.isMutating ?? defaultIsMutating;
  const requests: Counter = options.metrics.counter("wsm_rpc_requests_total", "RPCs completed, by method and code.");
  const durations: Histogram = options.metrics.histogram(
    "wsm_rpc_duration_seconds",
    "Time from the start of an RPC to its end (a stream's last message), by method.",
    DURATION_BUCKETS_SECONDS,
  );
  const stats = new Map<DescMethod, MethodStats>();

  const statsOf = (method: DescMethod): MethodStats => {
    let s = stats.get(method);
    if (s === undefined) {
      const name = `${method.parent.typeName}/${method.name}`;
      s = { name, mutating: isMutating(method), duration: durations.labels({ method: name }), byCode: [] };
      stats.set(method, s);
    }
    return s;
  };

  const record = (method: DescMethod, startedAt: number, error: ConnectError | undefined, connectionId: unknown) => {
    const s = statsOf(method);
    const seconds = (performance.now() - startedAt) / 1000;
    const code: number = error === undefined ? 0 : error.code;
    const counter = (s.byCode[code] ??= requests.labels({ method: s.name, code: codeName(code) }));
    counter.inc();
    s.duration.observe(seconds);

    if (code === Code.Internal) {
      const cause = error?.cause instanceof Error ? error.cause : error;
      logger.error("rpc failed", {
        ...fields(s, code, seconds, connectionId),
        err: cause,
        stack: cause instanceof Error ? cause.stack : undefined,
      });
    } else if (s.mutating) {
      logger.info("rpc", fields(s, code, seconds, connectionId));
    } else if (logger.isEnabled("debug")) {
      logger.debug("rpc", fields(s, code, seconds, connectionId));
    }
  };

  const interceptor: Interceptor = (next) => async (req) => {
    const startedAt = performance.now();
    const requestId = req.stream ? undefined : idOf(req.message);
    let res;
    try {
      res = await next(req);
    } catch (err) {
      record(req.method, startedAt, asServerError(err), requestId);
      throw err;
    }
    if (!res.stream) {
      record(req.method, startedAt, undefined, requestId ?? idOf(res.message));
      return res;
    }
    return { ...res, message: recordOnEnd(res.message, (error) => record(req.method, startedAt, error, requestId)) };
  };

  return {
    interceptor,
    recordRejected(method, error) {
      record(method, performance.now(), error, undefined);
    },
  };
}

function defaultIsMutating(method: DescMethod): boolean {
  return method.parent.typeName === WEBSOCKET_MANAGER && !DEBUG_ONLY_METHODS.has(method.name);
}

function fields(s: MethodStats, code: number, seconds: number, connectionId: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {
    method: s.name,
    code: codeName(code),
    duration_ms: Math.round(seconds * 1e6) / 1e3,
  };
  if (typeof connectionId === "string" && connectionId !== "") out.connection_id = connectionId;
  return out;
}

function idOf(message: unknown): unknown {
  return (message as { id?: unknown }).id;
}

/** Wraps a response stream so that its end (normal, error or cancel) is recorded once. */
function recordOnEnd<T>(source: AsyncIterable<T>, done: (error: ConnectError | undefined) => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      let recorded = false;
      const finish = (error: ConnectError | undefined) => {
        if (!recorded) {
          recorded = true;
          done(error);
        }
      };
      return {
        async next() {
          try {
            const r = await it.next();
            if (r.done === true) finish(undefined);
            return r;
          } catch (err) {
            finish(asServerError(err));
            throw err;
          }
        },
        async return(value?: unknown): Promise<IteratorResult<T>> {
          finish(new ConnectError("stream canceled", Code.Canceled));
          return (await it.return?.(value)) ?? { done: true, value: undefined };
        },
        async throw(err?: unknown) {
          finish(asServerError(err));
          if (it.throw) return it.throw(err);
          throw err;
        },
      };
    },
  };
}

/** What the client will see: Connect's handlers turn anything but a ConnectError into `internal`. */
function asServerError(err: unknown): ConnectError {
  return err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

const CODE_NAMES: readonly string[] = (() => {
  const names: string[] = ["ok"];
  for (let code = 1; code <= 16; code++) {
    names[code] = Code[code]!.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase());
  }
  return names;
})();

/** Connect's wire names: "ok" for 0, then "canceled", "not_found", "resource_exhausted"... */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? String(code);
}
