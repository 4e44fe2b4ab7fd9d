/**
 * Message rates from the counters of periodic snapshots: the difference of a counter over a
 * sliding window divided by the time it spans. Counters only grow; a smaller value (another
 * instance answered, or the service restarted) starts the connection's window anew.
 */
export interface RateTrackerOptions {
  /** Span of the sliding window in milliseconds. Default 3000: smooth, yet quick to follow. */
  windowMs?: number;
}

export interface Rates {
  inPerSecond: number;
  outPerSecond: number;
}

export interface RateTracker {
  /** Records counters seen at `nowMs`; returns the rates, undefined until two samples exist. */
  update(id: string, messagesIn: number, messagesOut: number, nowMs: number): Rates | undefined;
  forget(id: string): void;
}

interface Sample {
  t: number;
  in: number;
  out: number;
}

export function createRateTracker(options: RateTrackerOptions = {}): RateTracker {
  const windowMs = options.windowMs ?? 3000;
  const samples = new Map<string, Sample[]>();
  return {
    update(id, messagesIn, messagesOut, nowMs) {
      let list = samples.get(id);
      const last = list?.at(-1);
      if (!list || (last && (messagesIn < last.in || messagesOut < last.out || nowMs < last.t))) {
        list = [];
        samples.set(id, list);
      }
      list.push({ t: nowMs, in: messagesIn, out: messagesOut });
      // Keep the newest sample that is at least a window old, as the window's start.
      while (list.length > 2 && nowMs - list[1]!.t >= windowMs) list.shift();
      const first = list[0]!;
      const spanMs = nowMs - first.t;
      if (list.length < 2 || spanMs <= 0) return undefined;
      return {
        inPerSecond: ((messagesIn - first.in) * 1000) / spanMs,
        outPerSecond: ((messagesOut - first.out) * 1000) / spanMs,
      };
    },
    forget(id) {
      samples.delete(id);
    },
  };
}
