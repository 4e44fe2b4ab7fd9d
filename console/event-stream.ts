/**
 * Keeps one Subscribe stream open for the page: starts it, hands every event on, and when it
 * fails or the service ends it (a restart), opens it again with a growing delay. A stream the
 * service refuses for want of a token waits for `restart()` instead of retrying.
 */
import {
  Code,
  ConnectError,
  type SubscribeFilter,
  type SubscribeResponse,
  type WebSocketManagerClient,
} from "../clients/ts/src/index.ts";

export type StreamState =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "retrying"; error: ConnectError; delayMs: number }
  | { kind: "unauthenticated"; error: ConnectError }
  | { kind: "stopped" };

export interface EventStreamOptions {
  client: WebSocketManagerClient;
  /**
   * What to subscribe to. It must ask for snapshots (`snapshotIntervalMs` > 0): the first
   * snapshot is what tells that the stream is established ("live").
   */
  filter: SubscribeFilter;
  onEvent(event: SubscribeResponse): void;
  onState(state: StreamState): void;
  /** First retry delay; it doubles up to `maxRetryDelayMs`. Default 500. */
  minRetryDelayMs?: number;
  /** Default 10000. */
  maxRetryDelayMs?: number;
}

export interface EventStream {
  /** Starts the stream (again), at once. */
  restart(): void;
  stop(): void;
}

export function createEventStream(options: EventStreamOptions): EventStream {
  const minDelay = options.minRetryDelayMs ?? 500;
  const maxDelay = options.maxRetryDelayMs ?? 10_000;
  let generation = 0;
  let abort: AbortController | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  let live = false;

  const run = async (mine: number) => {
    abort = new AbortController();
    live = false;
    options.onState({ kind: "connecting" });
    let error: ConnectError;
    try {
      const subscription = options.client.subscribe(options.filter, { signal: abort.signal });
      for await (const event of subscription) {
        if (mine !== generation) return;
        if (event.event.case === "snapshot" && !live) {
          // Established: a later failure starts again from the shortest delay.
          live = true;
          failures = 0;
          options.onState({ kind: "live" });
        }
        options.onEvent(event);
      }
      if (mine !== generation) return;
      error = new ConnectError("the service ended the stream", Code.Unavailable);
    } catch (err) {
      if (mine !== generation) return;
      error = ConnectError.from(err);
    }
    if (error.code === Code.Unauthenticated) {
      options.onState({ kind: "unauthenticated", error });
      return;
    }
    const delayMs = Math.min(maxDelay, minDelay * 2 ** failures++);
    options.onState({ kind: "retrying", error, delayMs });
    timer = setTimeout(() => {
      if (mine === generation) void run(mine);
    }, delayMs);
  };

  const stop = () => {
    generation++;
    clearTimeout(timer);
    abort?.abort();
  };

  return {
    restart() {
      stop();
      failures = 0;
      void run(generation);
    },
    stop() {
      stop();
      options.onState({ kind: "stopped" });
    },
  };
}
