/**
 * Scenario 6, Dapr publish: runs `runDaprPublishBench` from bench/dapr-publish.ts (written for
 * the Dapr publisher issue) against a real daprd + Redis, with the publisher process on the
 * service core and daprd + redis-server on the load core, and reports its figures with their
 * ratios to its baseline (the same runs with the publisher's previous protocol options).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { DaprPublishBenchResults, ThroughputResult } from "./dapr-publish.ts";
import type { DaprPublisherAgent } from "./agents/dapr-publisher.ts";
import { startAgent } from "./lib/agent.ts";
import type { BenchContext } from "./lib/context.ts";
import { LOAD_CORE } from "./lib/pin.ts";
import { figure, FIGURE_HEADERS, figureRow, newSection, type Section } from "./lib/report.ts";
import { fmtCount, fmtMs, median } from "./lib/stats.ts";

const BENCH_FILE = fileURLToPath(new URL("./dapr-publish.ts", import.meta.url));

export async function runDapr(ctx: BenchContext): Promise<Section> {
  const section = newSection("dapr-publish", "6. Dapr publish (bench/dapr-publish.ts)");
  if (!existsSync(BENCH_FILE)) {
    section.notes.push("bench/dapr-publish.ts does not exist in this tree: the Dapr publish scenario was not run.");
    return section;
  }
  const options = {
    durationMs: ctx.quick ? 300 : 3000,
    warmupMs: ctx.quick ? 100 : 500,
    latencyDurationMs: ctx.quick ? 400 : 5000,
    baseline: { pipelining: 1 },
  };
  const results: DaprPublishBenchResults[] = [];
  const agent = await startAgent<DaprPublisherAgent>("dapr-publish", new URL("./agents/dapr-publisher.ts", import.meta.url), { core: LOAD_CORE });
  try {
    ctx.log("dapr-publish: starting daprd and redis-server");
    await agent.call("start", {});
    for (let run = 1; run <= ctx.runs; run++) {
      ctx.log(`dapr-publish: run ${run}/${ctx.runs}`);
      results.push(await agent.call("run", { options }));
    }
  } finally {
    await agent.call("close", {}).catch(() => undefined);
    await agent.stop();
  }
  section.intro.push(
    "The Dapr publisher called directly (no WebSocket, RPC or pipeline) against a real daprd + Redis from the test harness; " +
      "see the header of bench/dapr-publish.ts for what each figure means. The publisher's process runs on core 0, daprd and " +
      `redis-server on core 1. Baseline: the same runs with the publisher options \`${JSON.stringify(options.baseline)}\` ` +
      `(one request at a time per batch). ${ctx.runs} runs on one harness (fresh topics each run); ` +
      `${options.durationMs} ms per throughput figure, ${options.latencyDurationMs} ms for latency.`,
  );
  const fig = (f: (r: DaprPublishBenchResults) => number) => figure(results.map(f));
  const has = results.every((r) => r.baseline);
  const base = (f: (r: NonNullable<DaprPublishBenchResults["baseline"]>) => number) => (has ? figure(results.map((r) => f(r.baseline!))) : undefined);
  const rows: string[][] = [];
  const throughput = (name: string, pick: (r: { orderedOneTopic: ThroughputResult; orderedManyTopics: ThroughputResult; unordered: ThroughputResult }) => ThroughputResult) => {
    const b = base((r) => pick(r).eventsPerSecond);
    const bc = base((r) => pick(r).eventsPerServiceCoreSecond);
    rows.push(
      figureRow(`${name}: events/s`, fig((r) => pick(r).eventsPerSecond), fmtCount, b && { name: "previous protocol", value: b },
        `CPU s: publisher ${median(results.map((r) => pick(r).cpuSeconds.service)).toFixed(2)}, daprd ${median(results.map((r) => pick(r).cpuSeconds.daprd)).toFixed(2)}, ` +
          `redis ${median(results.map((r) => pick(r).cpuSeconds.redis)).toFixed(2)}`),
      figureRow(`${name}: events per publisher CPU-second`, fig((r) => pick(r).eventsPerServiceCoreSecond), fmtCount, bc && { name: "previous protocol", value: bc }),
    );
  };
  throughput("ordered, 1 topic", (r) => r.orderedOneTopic);
  throughput(`ordered, ${results[0]!.orderedManyTopics.topics} topics`, (r) => r.orderedManyTopics);
  throughput(`unordered, ${results[0]!.unordered.inFlight} calls in flight`, (r) => r.unordered);
  const l = results[0]!.latency;
  rows.push(
    figureRow(`latency at ${fmtCount(l.ratePerSecond)} events/s: p50`, fig((r) => r.latency.p50Ms), fmtMs, has ? { name: "previous protocol", value: base((r) => r.latency.p50Ms)! } : undefined),
    figureRow(`latency at ${fmtCount(l.ratePerSecond)} events/s: p99`, fig((r) => r.latency.p99Ms), fmtMs, has ? { name: "previous protocol", value: base((r) => r.latency.p99Ms)! } : undefined,
      `max ${fmtMs(median(results.map((r) => r.latency.maxMs)))}`),
  );
  section.tables.push({ headers: FIGURE_HEADERS, rows });
  return section;
}
