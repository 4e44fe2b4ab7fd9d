/**
 * Two load shapes for request/response work, shared by every generator (gRPC, Connect, the
 * bare ws baseline, HTTP probes): a closed loop with a fixed number of requests in flight, and
 * an open loop at a fixed rate whose latencies count from each request's scheduled start (so a
 * stalled server cannot hide its queueing delay: no coordinated omission).
 */
import { summarize, type LatencySummary } from "./stats.ts";

export type Call = () => Promise<void>;

export interface LoadResult {
  /** Completions inside the measured window. */
  requests: number;
  errors: number;
  seconds: number;
  /** requests / seconds. */
  rate: number;
  latencyMs: LatencySummary;
  firstError?: string;
  /** Open loop only: requests not issued because maxInFlight was reached. */
  skipped?: number;
}

export interface ClosedLoopOptions {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Stop after this many measured requests (e.g. a few Lists of 10,000 connections). */
  maxRequests?: number;
}

const MAX_ERRORS = 1000;

export async function runClosedLoop(call: Call, o: ClosedLoopOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const measureFrom = start + o.warmupMs;
  const end = measureFrom + o.durationMs;
  let stopped = false;
  let lastCompletion = measureFrom;

  const worker = async () => {
    while (!stopped) {
      const t0 = performance.now();
      if (t0 >= end) return;
      try {
        await call();
        const t1 = performance.now();
        if (t1 >= measureFrom && t1 <= end) {
          latencies.push(t1 - t0);
          lastCompletion = t1;
          if (o.maxRequests !== undefined && latencies.length >= o.maxRequests) stopped = true;
        }
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
        // A target that fails at once would otherwise spin this loop for the whole window.
        if (errors >= MAX_ERRORS) stopped = true;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const seconds = ((o.maxRequests !== undefined && stopped ? lastCompletion : end) - measureFrom) / 1000;
  return { requests: latencies.length, errors, seconds, rate: latencies.length / seconds, latencyMs: summarize(latencies), firstError };
}

export interface OpenLoopOptions {
  ratePerSecond: number;
  /** Requests scheduled in the first warmupMs are not measured. */
  warmupMs: number;
  /** Requests in flight above which new ones are skipped (and counted). Default 10000. */
  maxInFlight?: number;
}

export interface OpenLoop {
  /** Stops issuing, waits (bounded) for what is in flight, and summarizes. */
  stop(): Promise<LoadResult>;
}

const STOP_WAIT_MS = 15_000;

export function startOpenLoop(call: Call, o: OpenLoopOptions): OpenLoop {
  const intervalMs = 1000 / o.ratePerSecond;
  const maxInFlight = o.maxInFlight ?? 10_000;
  const latencies: number[] = [];
  let issued = 0;
  let inFlight = 0;
  let errors = 0;
  let skipped = 0;
  let firstError: string | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let idle: (() => void) | undefined;
  const start = performance.now();
  const measureFrom = start + o.warmupMs;

  const tick = () => {
    const now = performance.now();
    while (!stopped && start + issued * intervalMs <= now) {
      const scheduled = start + issued * intervalMs;
      issued++;
      if (inFlight >= maxInFlight) {
        skipped++;
        continue;
      }
      inFlight++;
      call()
        .then(
          () => {
            if (scheduled >= measureFrom) latencies.push(performance.now() - scheduled);
          },
          (err: unknown) => {
            errors++;
            firstError ??= err instanceof Error ? err.message : String(err);
          },
        )
        .finally(() => {
          inFlight--;
          if (inFlight === 0) idle?.();
        });
    }
    if (!stopped) timer = setTimeout(tick, Math.max(0, start + issued * intervalMs - performance.now()));
  };
  tick();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      const stoppedAt = performance.now();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, STOP_WAIT_MS);
          idle = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      const seconds = Math.max(0, stoppedAt - measureFrom) / 1000;
      return { requests: latencies.length, errors, seconds, rate: latencies.length / seconds, latencyMs: summarize(latencies), firstError, skipped };
    },
  };
}

export interface FixedRateOptions extends OpenLoopOptions {
  durationMs: number;
}

/** An open loop for warmupMs + durationMs. */
export async function runFixedRate(call: Call, o: FixedRateOptions): Promise<LoadResult> {
  const loop = startOpenLoop(call, o);
  await new Promise<void>((resolve) => setTimeout(resolve, o.warmupMs + o.durationMs));
  return loop.stop();
}
