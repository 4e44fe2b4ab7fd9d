/**
 * Scenario 1, ingest: a local feed server pushes ~300-byte JSON frames over 1 and 100
 * connections; the service (topic set, default in-process publisher) receives, classifies and
 * publishes them.
 *
 * Throughput is measured with bursts: every connection gets a fixed number of frames as fast
 * as TCP takes them, and the clock stops when the consumer has received all of them and its
 * publish queues are empty (the service's /metrics: wsm_frames_received_total,
 * wsm_publish_queue_events). Sampling a rate from /metrics during a saturating stream does not
 * work: the service then answers HTTP only between multi-second event-loop turns.
 * A second, paced run feeds the goal rate (50,000 msg/s in total) and measures the CPU it costs
 * and the service's responsiveness (GET /healthz latency) meanwhile.
 *
 * Baseline: a bare `ws` client process, pinned like the service, that receives and
 * JSON.parses the same stream. Ceiling of the feed server: a raw TCP reader that only counts
 * bytes.
 */
import type { FeedUpstreamAgent } from "./agents/feed-upstream.ts";
import type { RpcLoadAgent } from "./agents/rpc-load.ts";
import type { WsClientAgent } from "./agents/ws-client.ts";
import { startAgent, type AgentProcess } from "./lib/agent.ts";
import type { BenchContext } from "./lib/context.ts";
import type { LoadResult } from "./lib/load.ts";
import { LOAD_CORE, SERVICE_CORE } from "./lib/pin.ts";
import { profileService } from "./lib/profile.ts";
import { cpuPercent, type ProcSample } from "./lib/proc.ts";
import { atLeast, atMost, figure, FIGURE_HEADERS, figureRow, newSection, type Section } from "./lib/report.ts";
import { startService, type ServiceProcess } from "./lib/service.ts";
import { fmtBytes, fmtCount, fmtMs, fmtPct, fmtRatio, median } from "./lib/stats.ts";
import { sleep, waitUntil } from "./lib/time.ts";
import { connectMany, disconnectMany, wsmClient } from "./lib/wsm-client.ts";

const TOPIC = "bench.ingest";
const GOAL_MSGS_PER_CORE = 50_000;
const GOAL_RATIO = 0.6;
const PACED_TOTAL_RATE = GOAL_MSGS_PER_CORE;
const PROBE_HZ = 50;
const POLL_MS = 20;
const BURST_TIMEOUT_MS = 180_000;

interface Reading {
  received: number;
  dropped: number;
  /** Frames still waiting in publish queues. */
  queued: number;
}

interface Consumer {
  read(): Promise<Reading>;
  sample(): ProcSample;
  probeUrl: string;
}

interface BurstResult {
  /** Frames received and handled (published, or dropped by a full queue) per second. */
  rate: number;
  /** The same per CPU-second of the consumer: its rate per core, whatever share of the core it got. */
  perCpuSecond: number;
  dropped: number;
  cpu: number;
  feedCpu: number;
  peakRssBytes: number;
  /** Longest time one poll of the consumer's counters took (a stalled event loop). */
  longestPollMs: number;
}

interface PacedResult {
  rate: number;
  /** Frames the feed skipped because the consumer fell behind. */
  skipped: number;
  dropped: number;
  cpu: number;
  rssBytes: number;
  probe: LoadResult;
}

type Feed = AgentProcess<FeedUpstreamAgent>;

/** Sends `framesPerSocket` to every socket of the group; times until the consumer has them all. */
async function burst(feed: Feed, group: string, consumer: Consumer, framesPerSocket: number, sockets: number): Promise<BurstResult> {
  const total = framesPerSocket * sockets;
  const r0 = await consumer.read();
  const p0 = consumer.sample();
  const f0 = feed.sample();
  const t0 = performance.now();
  await feed.call("burst", { group, framesPerSocket });
  let longestPollMs = 0;
  let last = r0;
  await waitUntil(`${total} frames at ${group}`, async () => {
    const asked = performance.now();
    last = await consumer.read();
    longestPollMs = Math.max(longestPollMs, performance.now() - asked);
    return last.received - r0.received >= total && last.queued === 0;
  }, BURST_TIMEOUT_MS, POLL_MS);
  const t1 = performance.now();
  const p1 = consumer.sample();
  const f1 = feed.sample();
  const frames = last.received - r0.received;
  return {
    rate: frames / ((t1 - t0) / 1000),
    perCpuSecond: frames / Math.max(0.01, p1.cpuSeconds - p0.cpuSeconds),
    dropped: last.dropped - r0.dropped,
    cpu: cpuPercent(p0, p1),
    feedCpu: cpuPercent(f0, f1),
    peakRssBytes: p1.peakRssBytes,
    longestPollMs,
  };
}

async function paced(feed: Feed, group: string, consumer: Consumer, prober: AgentProcess<RpcLoadAgent>, framesPerSecond: number, durationMs: number): Promise<PacedResult> {
  await feed.call("pace", { group, framesPerSecond });
  await sleep(300);
  const r0 = await consumer.read();
  const p0 = consumer.sample();
  const f0 = await feed.call("stats", {});
  await prober.call("probeStart", { url: consumer.probeUrl, ratePerSecond: PROBE_HZ });
  await sleep(durationMs);
  const probe = (await prober.call("probeStop", {}))!;
  const r1 = await consumer.read();
  const p1 = consumer.sample();
  const f1 = await feed.call("stats", {});
  return {
    rate: (r1.received - r0.received) / ((p1.atMs - p0.atMs) / 1000),
    skipped: f1.skippedFrames - f0.skippedFrames,
    dropped: r1.dropped - r0.dropped,
    cpu: cpuPercent(p0, p1),
    rssBytes: p1.rssBytes,
    probe,
  };
}

function serviceConsumer(service: ServiceProcess): Consumer {
  return {
    async read() {
      const m = await service.metrics();
      return {
        received: m.get("wsm_frames_received_total") ?? 0,
        dropped: m.get("wsm_publish_dropped_total") ?? 0,
        queued: m.get("wsm_publish_queue_events") ?? 0,
      };
    },
    sample: () => service.sample(),
    probeUrl: `${service.baseUrl}/healthz`,
  };
}

function readerConsumer(reader: AgentProcess<WsClientAgent>, probePort: number): Consumer {
  return {
    async read() {
      const c = await reader.call("feedCount", {});
      return { received: c.messages, dropped: 0, queued: 0 };
    },
    sample: () => reader.sample(),
    probeUrl: `http://127.0.0.1:${probePort}/healthz`,
  };
}

/** Opens the service's connections for a group, runs `fn`, resets and removes them. */
async function withServiceConnections<T>(service: ServiceProcess, feed: Feed, feedUrl: string, group: string, n: number, fn: () => Promise<T>): Promise<T> {
  const client = wsmClient(service.baseUrl);
  const requests = Array.from({ length: n }, (_, i) => ({ url: `${feedUrl}/${group}/${i}`, autoReconnect: false, topic: TOPIC }));
  const ids = await connectMany(client, requests, 50);
  try {
    return await fn();
  } finally {
    await feed.call("stop", { group });
    // The reset sockets show up as disconnected; remove them so the next window starts clean.
    await waitUntil("reset connections to show as disconnected", async () => {
      const list = await client.list({});
      return list.connections.every((c) => c.status === "disconnected");
    }, 60_000, 100);
    await disconnectMany(client, ids, 50);
  }
}

async function withReaderConnections<T>(reader: AgentProcess<WsClientAgent>, feed: Feed, feedUrl: string, group: string, n: number, mode: "parse" | "raw", fn: () => Promise<T>): Promise<T> {
  await reader.call("feedOpen", { url: `${feedUrl}/${group}`, connections: n, mode });
  try {
    return await fn();
  } finally {
    await feed.call("stop", { group });
    await reader.call("feedClose", {});
  }
}

export async function runIngest(ctx: BenchContext): Promise<Section> {
  const section = newSection("ingest", "1. Ingest: upstream frames → publish");
  const totalFrames = ctx.quick ? 30_000 : 300_000;
  const pacedMs = ctx.quick ? 500 : 5000;
  const connectionCounts = [1, 100];
  section.intro.push(
    "A local feed server pushes distinct 300-byte JSON trade messages (pre-encoded frames written to the raw socket). " +
      `The service holds the connections with topic \`${TOPIC}\` and the default in-process publisher.`,
    `**Burst** (throughput): ${fmtCount(totalFrames)} frames spread over the connections, sent as fast as TCP takes them, after a ` +
      "10% warm-up burst; the clock stops when the consumer has received every frame and its publish queues are empty. " +
      "The headline figure is frames per CPU-second of the consumer's process (its rate per core, robust to other work " +
      "taking part of the core); the wall-clock rate and the CPU share are shown next to it. On a quiet machine the two agree.",
    `**Paced** (cost at the goal rate): ${fmtCount(PACED_TOTAL_RATE)} msg/s in total for ${pacedMs} ms; CPU of the consumer ` +
      `and the latency of \`GET /healthz\` probed at ${PROBE_HZ}/s (an outside view of event-loop lag).`,
    "Baseline: a bare `ws` client process pinned to the same core, receiving and `JSON.parse`-ing the same stream. " +
      `Ceiling: a raw TCP reader (no WebSocket parsing) shows the feed server's own maximum. ${ctx.runs} runs per figure, interleaved.`,
  );

  const feed = await startAgent<FeedUpstreamAgent>("feed-upstream", new URL("./agents/feed-upstream.ts", import.meta.url), { core: LOAD_CORE });
  const prober = await startAgent<RpcLoadAgent>("prober", new URL("./agents/rpc-load.ts", import.meta.url), { core: LOAD_CORE });
  const reader = await startAgent<WsClientAgent>("ws-reader", new URL("./agents/ws-client.ts", import.meta.url), { core: SERVICE_CORE });
  const service = await startService();
  try {
    const { port } = await feed.call("listen", {});
    const feedUrl = `ws://127.0.0.1:${port}`;
    const { port: probePort } = await reader.call("probeServer", {});
    const svcConsumer = serviceConsumer(service);
    const baseConsumer = readerConsumer(reader, probePort);
    const rows: string[][] = [];
    let missed = false;
    for (const n of connectionCounts) {
      const perSocket = Math.ceil(totalFrames / n);
      const warm = Math.max(1, Math.ceil(perSocket / 10));
      const pacedPerSocket = PACED_TOTAL_RATE / n;
      const svc: Array<{ b: BurstResult; p: PacedResult }> = [];
      const base: Array<{ b: BurstResult; p: PacedResult }> = [];
      const raw: BurstResult[] = [];
      for (let run = 1; run <= ctx.runs; run++) {
        ctx.log(`ingest: ${n} connection(s), run ${run}/${ctx.runs}`);
        const g = (kind: string) => `${kind}-${n}-${run}`;
        svc.push(
          await withServiceConnections(service, feed, feedUrl, g("svc"), n, async () => {
            await burst(feed, g("svc"), svcConsumer, warm, n);
            const b = await burst(feed, g("svc"), svcConsumer, perSocket, n);
            return { b, p: await paced(feed, g("svc"), svcConsumer, prober, pacedPerSocket, pacedMs) };
          }),
        );
        base.push(
          await withReaderConnections(reader, feed, feedUrl, g("base"), n, "parse", async () => {
            await burst(feed, g("base"), baseConsumer, warm, n);
            const b = await burst(feed, g("base"), baseConsumer, perSocket, n);
            return { b, p: await paced(feed, g("base"), baseConsumer, prober, pacedPerSocket, pacedMs) };
          }),
        );
        raw.push(
          await withReaderConnections(reader, feed, feedUrl, g("raw"), n, "raw", async () => {
            await burst(feed, g("raw"), baseConsumer, warm, n);
            return burst(feed, g("raw"), baseConsumer, perSocket, n);
          }),
        );
      }
      const med = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));
      const svcFig = figure(svc.map((x) => x.b.perCpuSecond));
      const baseFig = figure(base.map((x) => x.b.perCpuSecond));
      const svcWall = figure(svc.map((x) => x.b.rate));
      const baseWall = figure(base.map((x) => x.b.rate));
      const rawFig = figure(raw.map((x) => x.rate));
      const drops = svc.reduce((a, x) => a + x.b.dropped, 0);
      rows.push(
        figureRow(`service, ${n} conn, burst: msg per CPU-second (= per core)`, svcFig, fmtCount, { name: "bare ws + JSON.parse", value: baseFig },
          `peak RSS ${fmtBytes(med(svc, (x) => x.b.peakRssBytes))}, dropped by full queues ${drops}; ` +
            `longest /metrics answer during the burst ${fmtMs(med(svc, (x) => x.b.longestPollMs))}`),
        figureRow(`service, ${n} conn, burst: msg/s (wall clock)`, svcWall, fmtCount, { name: "bare ws + JSON.parse", value: baseWall },
          `CPU: service ${fmtPct(med(svc, (x) => x.b.cpu))}, bare client ${fmtPct(med(base, (x) => x.b.cpu))} of their core; ` +
            `feed ${fmtPct(med(svc, (x) => x.b.feedCpu))}`),
        figureRow(`feed server ceiling (raw TCP reader), ${n} conn: msg/s`, rawFig, fmtCount, undefined,
          `${fmtRatio(rawFig.median / svcWall.median)} the service's rate; feed CPU ${fmtPct(med(raw, (x) => x.feedCpu))}`),
        figureRow(`service, ${n} conn, paced ${fmtCount(PACED_TOTAL_RATE)} msg/s: CPU % of its core`, figure(svc.map((x) => x.p.cpu)), fmtPct,
          { name: "bare ws + JSON.parse", value: figure(base.map((x) => x.p.cpu)) },
          `received ${fmtCount(med(svc, (x) => x.p.rate))}/s (bare ${fmtCount(med(base, (x) => x.p.rate))}/s), ` +
            `skipped by the feed (consumer behind) ${svc.reduce((a, x) => a + x.p.skipped, 0)}, dropped ${svc.reduce((a, x) => a + x.p.dropped, 0)}, ` +
            `RSS ${fmtBytes(med(svc, (x) => x.p.rssBytes))}`),
        figureRow(`service, ${n} conn, paced: GET /healthz p99`, figure(svc.map((x) => x.p.probe.latencyMs.p99)), fmtMs,
          { name: "bare ws process, same probe", value: figure(base.map((x) => x.p.probe.latencyMs.p99)) },
          `p50 ${fmtMs(med(svc, (x) => x.p.probe.latencyMs.p50))}, max ${fmtMs(med(svc, (x) => x.p.probe.latencyMs.max))}`),
      );
      const perCore = atLeast(`${n} conn: ≥ ${fmtCount(GOAL_MSGS_PER_CORE)} msg/s per service core`, svcFig.median, GOAL_MSGS_PER_CORE, fmtCount);
      const ratio = atLeast(`${n} conn: ≥ ${GOAL_RATIO} of the bare ws baseline`, svcFig.median / baseFig.median, GOAL_RATIO, (r) => r.toFixed(2));
      section.goals.push(perCore, ratio);
      if (!perCore.met || !ratio.met) missed = true;
      const lag = med(svc, (x) => x.p.probe.latencyMs.p99);
      section.notes.push(
        `${n} conn at the goal rate (${fmtCount(PACED_TOTAL_RATE)} msg/s): ` +
          `${atMost("lag", lag, 20, fmtMs).met ? "the service stays responsive" : "the service's responsiveness suffers"} ` +
          `(/healthz p99 ${fmtMs(lag)}), using ${fmtPct(med(svc, (x) => x.p.cpu))} of its core vs ${fmtPct(med(base, (x) => x.p.cpu))} for the bare client.`,
      );
    }
    section.tables.push({ headers: FIGURE_HEADERS, rows });
    section.notes.push(
      "Overload: the service reads every readable socket greedily (libuv reads up to 32 × 64 KiB per socket per loop turn), " +
        "so with many connections faster than it can publish, one event-loop turn holds seconds of work and HTTP/RPC answers " +
        "wait for it (see \"longest /metrics answer during the burst\"). Frames then wait in publish queues bounded only per " +
        "connection (10,000 frames each by default), so RSS grows with the connection count.",
    );
    if (missed && ctx.quick && !ctx.profile) {
      section.notes.push("A goal was missed: a full run (or --profile) adds a CPU profile of the service here.");
    }
    if ((missed && !ctx.quick) || ctx.profile) {
      ctx.log("ingest: profiling the service (100 connections, burst)");
      const prof = await profileService([], async (p) => {
        const c = serviceConsumer(p);
        await withServiceConnections(p, feed, feedUrl, "prof", 100, async () => {
          await burst(feed, "prof", c, Math.ceil(totalFrames / 1000), 100);
          await burst(feed, "prof", c, Math.ceil(Math.max(totalFrames, 200_000) / 100), 100);
        });
      });
      section.appendix.push(
        `**Profile.** The service under the 100-connection burst (\`node --cpu-prof\`, ${(prof.totalMs / 1000).toFixed(1)} s profiled, ` +
          `${prof.idlePercent.toFixed(0)}% idle, start-up ${prof.startupPercent.toFixed(0)}% of the busy time; percentages are of the busy time):`,
        { title: "Ingest profile: top functions by self time", ...prof.functions },
        { title: "Ingest profile: self time by area", ...prof.areas },
        { title: "Ingest profile: our src/ functions by total time", ...prof.ours },
      );
    }
    const problems = service.problems().filter((l) => !l.includes("connection error"));
    if (problems.length) section.notes.push(`Service warnings: ${problems.slice(-3).join(" ")}`);
  } finally {
    await service.stop();
    await Promise.all([feed.stop(), reader.stop(), prober.stop()]);
  }
  return section;
}
