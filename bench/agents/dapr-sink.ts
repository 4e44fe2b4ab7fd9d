/**
 * The Dapr side of the Dapr-through-the-service scenario, on the load core: a real redis-server
 * and daprd (test/support/dapr-harness.ts; they inherit this process's pinning), and a reader of
 * the topic's Redis stream on its own RESP connection (XREAD BLOCK from the last id read).
 *
 * For every entry the reader takes the CloudEvent from the stream (Dapr's `data` field), and
 * records: its end-to-end time (this process's monotonic clock when the XREAD reply arrived,
 * minus `data.ts`, the sender's monotonic clock in microseconds), the count, and per
 * `connectionid` the `sequence` extension attribute. An ordered watch fails on the first
 * sequence that is not greater than the connection's previous one (a reorder or a duplicate);
 * an unordered watch counts duplicates and only counts distinct (connection, sequence) pairs.
 * Every watch is bounded by its timeoutMs.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { DaprHarness } from "../../test/support/dapr-harness.ts";
import type { RespClient, RespValue } from "../../test/support/resp-client.ts";
import { summarize } from "../lib/stats.ts";
import { monoUs } from "./timed-feed.ts";

/** Entries per XREAD reply: keeps each reply small (the test RESP client re-concatenates its buffer per chunk). */
const READ_COUNT = 500;
const BLOCK_MS = 200;

export interface WatchParams {
  topic: string;
  /** Distinct entries to wait for. */
  expected: number;
  /** Fail on a sequence that does not increase per connection. */
  ordered: boolean;
  /** Entries whose ts is earlier than this (monotonic µs) are counted but left out of the latency figures (warm-up). */
  latencyFromUs?: number;
  /** Bound of the whole watch, from its start. */
  timeoutMs: number;
  /** Only entries added after the watch started (default: the stream from its first entry). */
  fromEnd?: boolean;
  /** Return every end-to-end time measured (ms), to pool several watches. */
  returnLatencies?: boolean;
}

export interface WatchResult {
  topic: string;
  /** Distinct entries read. */
  count: number;
  /** Entries read that repeated a (connection, sequence) pair already read (unordered watches). */
  duplicates: number;
  connections: number;
  /** Earliest and latest sender timestamp seen (monotonic µs). */
  minTsUs: number;
  maxTsUs: number;
  /** When the reply holding the expected count-th entry arrived (monotonic µs). */
  lastReadUs: number;
  /** End-to-end times of the entries after latencyFromUs, in ms. */
  latency: { count: number; p50Ms: number; p99Ms: number; maxMs: number; meanMs: number };
  /** With returnLatencies: the end-to-end times, in ms. */
  latenciesMs?: number[];
}

interface Watch {
  params: WatchParams;
  /** The last entry id before the watch: reading starts after it. */
  startId: string;
  client: RespClient;
  done: Promise<void>;
  stopped: boolean;
  count: number;
  duplicates: number;
  lastSeq: Map<string, number>;
  seen: Set<string> | undefined;
  latenciesUs: number[];
  minTsUs: number;
  maxTsUs: number;
  lastReadUs: number;
  error: Error | undefined;
}

/** Children of this process whose command name (comm) is `name`. */
function childPid(name: string): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid && comm === name) return Number(entry);
    } catch {
      // the process ended meanwhile
    }
  }
  return undefined;
}

export function createAgent() {
  let harness: DaprHarness | undefined;
  let watch: Watch | undefined;

  async function read(w: Watch): Promise<void> {
    const { parseStream } = await import("../../test/support/dapr-harness.ts");
    const { topic, expected, ordered, timeoutMs } = w.params;
    const latencyFromUs = w.params.latencyFromUs ?? 0;
    const deadline = performance.now() + timeoutMs;
    let lastId = w.startId;
    while (w.count < expected) {
      if (w.stopped) return;
      if (performance.now() > deadline) {
        throw new Error(`topic ${topic}: ${w.count} of ${expected} entries read from Redis within ${timeoutMs} ms`);
      }
      const reply = await w.client.command("XREAD", "COUNT", READ_COUNT, "BLOCK", BLOCK_MS, "STREAMS", topic, lastId);
      const readUs = monoUs();
      if (reply === null) continue;
      const stream = (reply as RespValue[][])[0]!;
      const entries = parseStream(stream[1]!);
      for (const entry of entries) {
        lastId = entry.id;
        const event = entry.event as { connectionid?: unknown; sequence?: unknown; data?: { ts?: unknown } };
        const cid = event.connectionid;
        const seq = event.sequence;
        const ts = event.data?.ts;
        if (typeof cid !== "string" || typeof seq !== "number" || typeof ts !== "number") {
          throw new Error(`topic ${topic}: entry ${entry.id} lacks connectionid, sequence or data.ts: ${entry.fields.data?.slice(0, 400)}`);
        }
        if (ordered) {
          const last = w.lastSeq.get(cid) ?? 0;
          if (seq <= last) {
            throw new Error(`topic ${topic}: out of order: connection ${cid} sequence ${seq} after ${last} (entry ${entry.id})`);
          }
          w.lastSeq.set(cid, seq);
        } else {
          const key = `${cid}:${seq}`;
          if (w.seen!.has(key)) {
            w.duplicates++;
            continue;
          }
          w.seen!.add(key);
          if (!w.lastSeq.has(cid)) w.lastSeq.set(cid, seq);
        }
        w.count++;
        if (ts < w.minTsUs) w.minTsUs = ts;
        if (ts > w.maxTsUs) w.maxTsUs = ts;
        if (ts >= latencyFromUs) w.latenciesUs.push(readUs - ts);
        if (w.count === expected) w.lastReadUs = readUs;
      }
    }
  }

  return {
    async start(_: object) {
      const { startDaprHarness } = await import("../../test/support/dapr-harness.ts");
      harness = await startDaprHarness();
      const daprdPid = childPid("daprd");
      const redisPid = childPid("redis-server");
      if (daprdPid === undefined || redisPid === undefined) throw new Error(`cannot find the pids of daprd (${daprdPid}) and redis-server (${redisPid})`);
      return { daprHttpPort: harness.daprHttpPort, redisPort: harness.redisPort, daprdPid, redisPid };
    },

    /** Starts reading a topic (from its first entry) in the background; one watch at a time. */
    async watch(p: WatchParams) {
      if (!harness) throw new Error("start first");
      if (watch) throw new Error(`a watch of ${watch.params.topic} is still running`);
      const { createRespClient } = await import("../../test/support/resp-client.ts");
      const client = await createRespClient({ port: harness.redisPort });
      let startId = "0-0";
      if (p.fromEnd) {
        const last = (await client.command("XREVRANGE", p.topic, "+", "-", "COUNT", 1)) as Array<[string, string[]]> | null;
        if (last && last.length > 0) startId = last[0]![0];
      }
      const w: Watch = {
        params: p,
        startId,
        client,
        done: Promise.resolve(),
        stopped: false,
        count: 0,
        duplicates: 0,
        lastSeq: new Map(),
        seen: p.ordered ? undefined : new Set(),
        latenciesUs: [],
        minTsUs: Number.POSITIVE_INFINITY,
        maxTsUs: Number.NEGATIVE_INFINITY,
        lastReadUs: Number.NaN,
        error: undefined,
      };
      w.done = read(w).catch((err: unknown) => {
        if (!w.stopped) w.error = err instanceof Error ? err : new Error(String(err));
      });
      watch = w;
      return {};
    },

    /** Waits for the watch (bounded by its timeoutMs) and returns its figures; throws on a failed watch. */
    async result(_: object): Promise<WatchResult> {
      const w = watch;
      if (!w) throw new Error("no watch");
      try {
        await w.done;
      } finally {
        w.stopped = true;
        w.client.close();
        watch = undefined;
      }
      if (w.error) throw w.error;
      const l = summarize(w.latenciesUs);
      return {
        topic: w.params.topic,
        count: w.count,
        duplicates: w.duplicates,
        connections: w.lastSeq.size,
        minTsUs: w.minTsUs,
        maxTsUs: w.maxTsUs,
        lastReadUs: w.lastReadUs,
        latency: { count: l.count, p50Ms: l.p50 / 1000, p99Ms: l.p99 / 1000, maxMs: l.max / 1000, meanMs: l.mean / 1000 },
        latenciesMs: w.params.returnLatencies ? w.latenciesUs.map((us) => us / 1000) : undefined,
      };
    },

    /** Abandons a running watch (after a failure elsewhere). */
    async cancel(_: object) {
      if (watch) {
        watch.stopped = true;
        watch.client.close();
        await watch.done;
        watch = undefined;
      }
      return {};
    },

    /** Recent daprd output, for failure messages. */
    async daprdLog(_: object) {
      return { log: harness?.daprdLog() ?? "" };
    },

    async close(_: object) {
      if (watch) {
        watch.stopped = true;
        watch.client.close();
        watch = undefined;
      }
      await harness?.close();
      harness = undefined;
      return {};
    },
  };
}

export type DaprSinkAgent = ReturnType<typeof createAgent>;
