/**
 * Scenario 3, scale: the service holds N idle upstream connections (ws:// and wss:// to local
 * servers; a throwaway self-signed certificate passed with --upstream-ca), opened with 50
 * Connect RPCs in flight, heartbeats on. Measured per run, on a fresh service process:
 *  - RSS per connection: (RSS after the connections are held − RSS before) / N,
 *  - event-loop lag seen from outside: latency of GET /healthz probed at a fixed rate, while
 *    connecting and while holding, next to the service's own event-loop delay gauges,
 *  - connect rate.
 * Baseline: a bare `ws` client process (pinned like the service, fresh per run) that opens
 * and holds the same connections with the same pings, probed the same way.
 */
import type { RpcLoadAgent } from "./agents/rpc-load.ts";
import type { UpstreamAgent } from "./agents/upstream.ts";
import type { WsClientAgent } from "./agents/ws-client.ts";
import { startAgent, type AgentProcess } from "./lib/agent.ts";
import type { BenchContext } from "./lib/context.ts";
import type { LoadResult } from "./lib/load.ts";
import { LOAD_CORE, SERVICE_CORE } from "./lib/pin.ts";
import { cpuPercent, openFilesLimit, type ProcSample } from "./lib/proc.ts";
import { atMost, figure, FIGURE_HEADERS, figureRow, newSection, type Section } from "./lib/report.ts";
import { GC_PRELOAD_ARGS, startService } from "./lib/service.ts";
import { fmtBytes, fmtCount, fmtMs, fmtPct, median } from "./lib/stats.ts";
import { makeSelfSignedCert } from "./lib/tls.ts";
import { sleep, waitUntil } from "./lib/time.ts";
import { connectMany, disconnectMany, wsmClient } from "./lib/wsm-client.ts";

const CONNECT_CONCURRENCY = 50;
const PROBE_HZ = 50;
const GOAL_WS_BYTES_PER_CONN = 30 * 1024;
const GOAL_WSS_TOTAL_BYTES = 1024 ** 3;
const GOAL_LAG_P99_MS = 20;

interface Run {
  bytesPerConn: number;
  /** After a forced full GC: RSS and live heap per connection. */
  gcRssPerConn: number;
  gcHeapPerConn: number;
  rssAfter: number;
  connectPerSecond: number;
  connectProbe: LoadResult;
  holdProbe: LoadResult;
  holdCpu: number;
  /** The service's own nodejs_eventloop_lag_p99_seconds / _max_ over the hold, in ms (the bare client has none). */
  ownLagP99Ms?: number;
  ownLagMaxMs?: number;
}

interface Common {
  url: string;
  /** Connection counts, ascending: each run grows to every one in turn and measures there. */
  stages: number[];
  pingIntervalMs: number;
  holdMs: number;
  /** Pause between connecting and holding. */
  settleMs: number;
  prober: AgentProcess<RpcLoadAgent>;
}

interface Holder {
  rssBytes(): number;
  gcMemory(): Promise<NodeJS.MemoryUsage>;
  sample(): ProcSample;
  probeUrl: string;
  /** Opens connections [from, to); resolves when all are open. */
  open(from: number, to: number): Promise<void>;
  /** Throws unless `n` connections are up. */
  check(n: number): Promise<void>;
  /** The holder's own event-loop lag gauges (p99, max in ms) since the previous call, if it has them. */
  ownLag?(): Promise<{ p99Ms: number; maxMs: number }>;
}

/** Grows a holder through the stages; at each: RSS per connection, lag while connecting and while holding. */
async function grow(c: Common, h: Holder): Promise<Run[]> {
  const before = h.rssBytes();
  const gcBefore = await h.gcMemory();
  const runs: Run[] = [];
  let held = 0;
  for (const n of c.stages) {
    await c.prober.call("probeStart", { url: h.probeUrl, ratePerSecond: PROBE_HZ });
    const t0 = performance.now();
    await h.open(held, n);
    const connectSeconds = (performance.now() - t0) / 1000;
    const connectProbe = (await c.prober.call("probeStop", {}))!;
    const opened = n - held;
    held = n;
    await sleep(c.settleMs);
    const s0 = h.sample();
    await h.ownLag?.(); // starts the gauges' window
    await c.prober.call("probeStart", { url: h.probeUrl, ratePerSecond: PROBE_HZ });
    await sleep(c.holdMs);
    const holdProbe = (await c.prober.call("probeStop", {}))!;
    const ownLag = await h.ownLag?.();
    const s1 = h.sample();
    await h.check(n);
    const gcAfter = await h.gcMemory();
    runs.push({
      bytesPerConn: (s1.rssBytes - before) / n,
      gcRssPerConn: (gcAfter.rss - gcBefore.rss) / n,
      gcHeapPerConn: (gcAfter.heapUsed - gcBefore.heapUsed) / n,
      rssAfter: s1.rssBytes,
      connectPerSecond: opened / connectSeconds,
      connectProbe,
      holdProbe,
      holdCpu: cpuPercent(s0, s1),
      ownLagP99Ms: ownLag?.p99Ms,
      ownLagMaxMs: ownLag?.maxMs,
    });
  }
  return runs;
}

async function serviceRun(c: Common, caFile: string | undefined): Promise<Run[]> {
  const flags = ["--ping-interval-ms", String(c.pingIntervalMs), "--max-connections", String(Math.max(...c.stages) + 1000)];
  if (caFile) flags.push("--upstream-ca", caFile);
  const service = await startService({ flags, nodeArgs: GC_PRELOAD_ARGS });
  try {
    const client = wsmClient(service.baseUrl);
    // Warm up the code paths (and the JIT) so that "before" is a service that has connected.
    const warm = await connectMany(client, Array.from({ length: 20 }, (_, i) => ({ url: `${c.url}/warm/${i}`, autoReconnect: true })), 20);
    await disconnectMany(client, warm, 20);
    await sleep(c.settleMs);
    return await grow(c, {
      rssBytes: () => service.sample().rssBytes,
      gcMemory: () => service.gcMemory(),
      sample: () => service.sample(),
      probeUrl: `${service.baseUrl}/healthz`,
      async open(from, to) {
        const requests = Array.from({ length: to - from }, (_, i) => ({ url: `${c.url}/h/${from + i}`, autoReconnect: true }));
        await connectMany(client, requests, CONNECT_CONCURRENCY);
      },
      async check(n) {
        const connected = (await client.list({})).connections.filter((x) => x.status === "connected").length;
        if (connected !== n) throw new Error(`only ${connected} of ${n} connections are connected after the hold`);
      },
      async ownLag() {
        const m = await service.metrics();
        return { p99Ms: (m.get("nodejs_eventloop_lag_p99_seconds") ?? NaN) * 1000, maxMs: (m.get("nodejs_eventloop_lag_max_seconds") ?? NaN) * 1000 };
      },
    });
  } finally {
    await service.stop(20_000);
  }
}

async function baselineRun(c: Common, caPem: string | undefined): Promise<Run[]> {
  const bare = await startAgent<WsClientAgent>("ws-hold", new URL("./agents/ws-client.ts", import.meta.url), { core: SERVICE_CORE, nodeArgs: ["--expose-gc"] });
  try {
    const { port } = await bare.call("probeServer", {});
    await bare.call("hold", { url: `${c.url}/warm`, from: 0, count: 20, concurrency: 20, caPem, pingIntervalMs: 0 });
    await bare.call("holdClose", {});
    await sleep(c.settleMs);
    return await grow(c, {
      rssBytes: () => bare.sample().rssBytes,
      gcMemory: () => bare.call("gcMemory", {}),
      sample: () => bare.sample(),
      probeUrl: `http://127.0.0.1:${port}/healthz`,
      async open(from, to) {
        await bare.call("hold", { url: c.url, from, count: to - from, concurrency: CONNECT_CONCURRENCY, caPem, pingIntervalMs: c.pingIntervalMs });
      },
      async check(n) {
        const { open } = await bare.call("holdCount", {});
        if (open !== n) throw new Error(`the bare client holds ${open} of ${n} connections`);
      },
    });
  } finally {
    await bare.stop();
  }
}

export async function runScale(ctx: BenchContext): Promise<Section> {
  const section = newSection("scale", "3. Scale: many idle upstream connections");
  const counts = ctx.quick ? [100, 200] : [1000, 5000];
  const pingIntervalMs = 5000;
  const holdMs = ctx.quick ? 400 : 6000;
  const limit = openFilesLimit();
  const needed = Math.max(...counts) + 1000;
  if (limit < needed) {
    throw new Error(`the open files limit is ${limit}; ${needed} are needed: run \`ulimit -n ${needed * 2}\` before the bench`);
  }
  section.intro.push(
    `Each run grows a fresh service process to ${counts.join(", then ")} idle connections, opened with ${CONNECT_CONCURRENCY} ` +
      `Connect RPCs in flight, and measures at each size; heartbeats on (\`--ping-interval-ms ${pingIntervalMs}\`, harsher than the 15 s default, so every ` +
      `connection pings during the ${holdMs} ms hold). wss:// uses a self-signed ECDSA P-256 certificate made with openssl at run ` +
      "time and given to the service with `--upstream-ca`.",
    "RSS per connection = (RSS after connecting and holding − RSS after a 20-connection warm-up) / N, read from /proc " +
      "(garbage not yet collected counts, the same way for the baseline). A second figure is taken after a forced full GC " +
      "(the service runs with `--expose-gc --import bench/lib/gc-preload.ts`, which collects and reports " +
      "`process.memoryUsage()` on SIGUSR2; src/ is unchanged): it separates retained memory from garbage. " +
      "Event-loop lag is seen from outside: the latency " +
      `of \`GET /healthz\` probed ${PROBE_HZ} times a second, plus the service's own event-loop delay gauges from /metrics.`,
    "Baseline: a bare `ws` client process (pinned like the service, fresh per run) opening and holding the same " +
      `connections at the same concurrency with the same pings, probed the same way. ${ctx.runs} runs per figure.`,
  );

  const cert = makeSelfSignedCert();
  const ws = await startAgent<UpstreamAgent>("upstream-ws", new URL("./agents/upstream.ts", import.meta.url), { core: LOAD_CORE });
  const wss = await startAgent<UpstreamAgent>("upstream-wss", new URL("./agents/upstream.ts", import.meta.url), { core: LOAD_CORE });
  const prober = await startAgent<RpcLoadAgent>("prober", new URL("./agents/rpc-load.ts", import.meta.url), { core: LOAD_CORE });
  try {
    const wsUrl = (await ws.call("listen", {})).url;
    const wssUrl = (await wss.call("listen", { tls: { certPem: cert.certPem, keyPem: cert.keyPem } })).url;
    const rows: string[][] = [];
    for (const scheme of ["ws", "wss"] as const) {
      const common: Common = { url: scheme === "ws" ? wsUrl : wssUrl, stages: counts, pingIntervalMs, holdMs, settleMs: ctx.quick ? 200 : 1000, prober };
      const upstream = scheme === "ws" ? ws : wss;
      const svcRuns: Run[][] = [];
      const baseRuns: Run[][] = [];
      for (let run = 1; run <= ctx.runs; run++) {
        ctx.log(`scale: ${scheme}:// up to ${Math.max(...counts)} connections, run ${run}/${ctx.runs}`);
        svcRuns.push(await serviceRun(common, scheme === "wss" ? cert.certFile : undefined));
        await waitUntil("the upstream to see the service's sockets closed", async () => (await upstream.call("open", {})).open === 0, 30_000, 100);
        baseRuns.push(await baselineRun(common, scheme === "wss" ? cert.certPem : undefined));
        await waitUntil("the upstream to see the baseline's sockets closed", async () => (await upstream.call("open", {})).open === 0, 30_000, 100);
      }
      for (const [stage, n] of counts.entries()) {
        const svc = svcRuns.map((r) => r[stage]!);
        const base = baseRuns.map((r) => r[stage]!);
        const med = (runs: Run[], f: (r: Run) => number) => median(runs.map(f));
        const fig = (runs: Run[], f: (r: Run) => number) => figure(runs.map(f));
        const label = `${n} ${scheme}://`;
        rows.push(
          figureRow(`${label}: RSS per connection`, fig(svc, (r) => r.bytesPerConn), fmtBytes, { name: "bare ws client", value: fig(base, (r) => r.bytesPerConn) },
            `service RSS after: ${fmtBytes(med(svc, (r) => r.rssAfter))} (bare ${fmtBytes(med(base, (r) => r.rssAfter))})`),
          figureRow(`${label}: after a forced full GC: RSS per connection`, fig(svc, (r) => r.gcRssPerConn), fmtBytes,
            { name: "bare ws client", value: fig(base, (r) => r.gcRssPerConn) },
            `live JS heap per connection: service ${fmtBytes(med(svc, (r) => r.gcHeapPerConn))}, bare ${fmtBytes(med(base, (r) => r.gcHeapPerConn))}`),
          figureRow(`${label}: /healthz p99 while holding`, fig(svc, (r) => r.holdProbe.latencyMs.p99), fmtMs,
            { name: "bare ws client", value: fig(base, (r) => r.holdProbe.latencyMs.p99) },
            `p50 ${fmtMs(med(svc, (r) => r.holdProbe.latencyMs.p50))}, max ${fmtMs(med(svc, (r) => r.holdProbe.latencyMs.max))}; ` +
              `service CPU while holding ${fmtPct(med(svc, (r) => r.holdCpu))} (bare ${fmtPct(med(base, (r) => r.holdCpu))}); ` +
              `the service's own event-loop delay over the hold (its /metrics gauges): p99 ${fmtMs(med(svc, (r) => r.ownLagP99Ms ?? NaN))}, ` +
              `max ${fmtMs(med(svc, (r) => r.ownLagMaxMs ?? NaN))}`),
          figureRow(`${label}: /healthz p99 while connecting`, fig(svc, (r) => r.connectProbe.latencyMs.p99), fmtMs,
            { name: "bare ws client", value: fig(base, (r) => r.connectProbe.latencyMs.p99) },
            `max ${fmtMs(med(svc, (r) => r.connectProbe.latencyMs.max))}`),
          figureRow(`${label}: connections opened per second${stage ? ` (${counts[stage - 1]} → ${n})` : ""}`, fig(svc, (r) => r.connectPerSecond), fmtCount,
            { name: "bare ws client", value: fig(base, (r) => r.connectPerSecond) }),
        );
        if (stage > 0) {
          // What one more connection costs, without the fixed growth of the first stage (the V8
          // young generation and code space reach their working size during the first burst of Connects).
          const prev = counts[stage - 1]!;
          const marginal = (runs: Run[][]) => figure(runs.map((r) => (r[stage]!.rssAfter - r[stage - 1]!.rssAfter) / (n - prev)));
          rows.push(
            figureRow(`${prev} → ${n} ${scheme}://: RSS per added connection`, marginal(svcRuns), fmtBytes, { name: "bare ws client", value: marginal(baseRuns) },
              "(RSS at the second stage − RSS at the first) / the connections added; not a goal figure"),
          );
        }
        const perConn = med(svc, (r) => r.bytesPerConn);
        if (scheme === "ws") section.goals.push(atMost(`${label}: ≤ 30 KB RSS per idle connection`, perConn, GOAL_WS_BYTES_PER_CONN, fmtBytes));
        if (scheme === "wss" && n === Math.max(...counts)) {
          // The goal is stated for 5,000; with a smaller N (quick) the total is extrapolated from the per-connection figure.
          const total = n === 5000 ? med(svc, (r) => r.rssAfter) : med(svc, (r) => r.rssAfter - r.bytesPerConn * n) + perConn * 5000;
          section.goals.push(atMost(`5,000 wss:// within 1 GiB RSS${n === 5000 ? "" : ` (extrapolated from ${n})`}`, total, GOAL_WSS_TOTAL_BYTES, fmtBytes));
        }
        section.goals.push(atMost(`${label}: event-loop lag p99 ≤ 20 ms while holding`, med(svc, (r) => r.holdProbe.latencyMs.p99), GOAL_LAG_P99_MS, fmtMs));
      }
    }
    section.tables.push({ headers: FIGURE_HEADERS, rows });
    section.notes.push(
      "RSS per connection at the first stage includes growth that does not scale with connections: the young generation of " +
        "the V8 heap (capped at 2 × 8 MiB by `npm start`'s `--max-semi-space-size=8`) and compiled code reach their working " +
        "size during the first burst of Connect calls. Spread over 1,000 connections that is up to ~16 KiB each; the " +
        "\"per added connection\" row shows the cost of one more connection without it.",
      "The bare client opens its connections several times faster than the service, so its per-connection ping timers fire " +
        "in tighter bursts; that, not the service being better at pinging, is why its lag while holding can be the higher one.",
      "Lag is measured from outside with an HTTP probe, which adds the probe's own round trip (the bare baseline pays the same); " +
        "the goal is judged on it. The service's own event-loop delay gauges (`nodejs_eventloop_lag_p99_seconds` and " +
        "`_max_seconds` on /metrics, read at the start and end of the hold) are shown next to it.",
    );
  } finally {
    cert.remove();
    await Promise.all([ws.stop(), wss.stop(), prober.stop()]);
  }
  return section;
}
