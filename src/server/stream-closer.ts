/**
 * Ends streaming RPCs at shutdown. A graceful HTTP/2 GOAWAY waits for open streams, and a
 * server stream (Watch, Subscribe, a reflection session) may never end by itself, so draining
 * would always run into the hard deadline. Unary calls are left alone to finish.
 *
 * Each stream's handler gets a signal that also aborts at shutdown, so that implementations
 * that listen wind down by themselves and end cleanly. Whatever has not produced its next
 * message (or its end) one event-loop turn later is cut off: the client sees `unavailable`.
 *
 * The same cut-off applies when the call's own signal aborts (the client went away, the
 * deadline passed): Connect waits for the implementation's next message before it notices,
 * so a stream that ignores its signal would otherwise stay open until shutdown.
 */
import { ConnectError, type Interceptor } from "@connectrpc/connect";

export interface StreamCloser {
  readonly interceptor: Interceptor;
  /** Ends every open stream with `reason` and refuses new ones; idempotent. */
  close(reason: ConnectError): void;
}

export function createStreamCloser(): StreamCloser {
  const shutdown = new AbortController();

  const interceptor: Interceptor = (next) => (req) => {
    if (!req.stream) return next(req);
    return (async () => {
      if (shutdown.signal.aborted) throw shutdown.signal.reason;
      const signal = AbortSignal.any([req.signal, shutdown.signal]);
      const res = await next({ ...req, signal });
      if (!res.stream) return res;
      return { ...res, message: endOnAbort(res.message, signal) };
    })();
  };

  return {
    interceptor,
    close(reason) {
      if (!shutdown.signal.aborted) shutdown.abort(reason);
    },
  };
}

function endOnAbort<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      // The rejecter of the next() in flight, if any. One listener per stream, not per message.
      let pending: ((reason: unknown) => void) | undefined;
      let timer: NodeJS.Immediate | undefined;
      const cutOff = () => {
        timer = undefined;
        const reject = pending;
        if (reject === undefined) return;
        pending = undefined;
        // Asks the implementation to stop; its pending next() settles whenever it wakes.
        it.return?.().catch(() => undefined);
        reject(signal.reason instanceof ConnectError ? signal.reason : ConnectError.from(signal.reason));
      };
      // One turn of the event loop: enough for an implementation that ends when its signal
      // aborts (or that is already done) to finish cleanly before it is cut off.
      const onAbort = () => void (timer ??= setImmediate(cutOff));
      signal.addEventListener("abort", onAbort, { once: true });
      const stop = () => {
        signal.removeEventListener("abort", onAbort);
        if (timer !== undefined) clearImmediate(timer);
      };
      return {
        next() {
          if (signal.aborted) onAbort();
          return new Promise<IteratorResult<T>>((resolve, reject) => {
            pending = reject;
            it.next().then(
              (r) => {
                if (pending !== reject) return;
                pending = undefined;
                if (r.done === true) stop();
                resolve(r);
              },
              (err: unknown) => {
                if (pending !== reject) return;
                pending = undefined;
                stop();
                reject(err);
              },
            );
          });
        },
        return(value?: unknown) {
          stop();
          return it.return?.(value) ?? Promise.resolve({ done: true, value: undefined });
        },
        throw(err?: unknown) {
          stop();
          return it.throw?.(err) ?? Promise.reject(err);
        },
      };
    },
  };
}
