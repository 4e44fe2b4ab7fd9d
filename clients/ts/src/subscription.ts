/**
 * The result of `WebSocketManagerClient.subscribe`: an async iterable over the events of one
 * Subscribe call that started at once, with `cancel()`.
 */
import { ConnectError } from "@connectrpc/connect";
import type { SubscribeResponse } from "../../../gen/virtufin/websocketmanager_pb.js";

export interface SubscribeFilter {
  /** Only these connections; all when empty. */
  connectionIds?: string[];
  /** Only messages published to these topics; every inbound message when empty. Lifecycle
   * events are not filtered by topic. */
  topics?: string[];
  /** Leave out inbound messages. */
  excludeMessages?: boolean;
  /** Leave out lifecycle events. */
  excludeLifecycle?: boolean;
  /** When > 0, a snapshot of the matching connections comes at once and then every this many
   * milliseconds (at least 100). The first snapshot also shows that the stream is established. */
  snapshotIntervalMs?: number;
}

export interface Subscription extends AsyncIterable<SubscribeResponse> {
  /** Ends the stream; a loop over it ends quietly. Idempotent. */
  cancel(): void;
  /** Whether `cancel()` was called or the caller's signal aborted. */
  readonly cancelled: boolean;
}

/**
 * @param start Starts the call with the signal it must honour.
 * @param callerSignal The caller's signal; its abort ends the stream like `cancel()`.
 */
export function createSubscription(
  start: (signal: AbortSignal) => AsyncIterable<SubscribeResponse>,
  callerSignal: AbortSignal | undefined,
): Subscription {
  const abort = new AbortController();
  const onCallerAbort = () => abort.abort(callerSignal?.reason);
  if (callerSignal?.aborted) onCallerAbort();
  else callerSignal?.addEventListener("abort", onCallerAbort, { once: true });
  const iterator = start(abort.signal)[Symbol.asyncIterator]();
  // Pulling the first event now starts the call at once (as the Python client does), and the
  // no-op catch keeps a stream that fails or is cancelled before anyone iterates it from
  // becoming an unhandled rejection; iterating still throws the error.
  let next = iterator.next();
  next.catch(() => {});
  let iterated = false;

  return {
    get cancelled() {
      return abort.signal.aborted;
    },
    cancel() {
      abort.abort();
    },
    async *[Symbol.asyncIterator]() {
      if (iterated) throw new Error("a Subscription can be iterated once");
      iterated = true;
      try {
        for (;;) {
          const result = await next;
          if (result.done) return;
          yield result.value;
          next = iterator.next();
        }
      } catch (err) {
        // A cancel of ours is the end of the stream, not a failure.
        if (abort.signal.aborted) return;
        throw ConnectError.from(err);
      } finally {
        // Leaving the loop early (break, throw) ends the call on the server too.
        abort.abort();
        callerSignal?.removeEventListener("abort", onCallerAbort);
        iterator.return?.().catch(() => {});
      }
    },
  };
}
