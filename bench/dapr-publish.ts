/**
 * Throughput and latency of the Dapr publisher against a real daprd and Redis (the test
 * harness in test/support/dapr-harness.ts), with the publisher called directly: no WebSocket,
 * no RPC, no publish pipeline. What it reports:
 *
 * - ordered, 1 topic and N topics: one publish call of `batchSize` events in flight per topic
 *   at a time, as the pipeline's ordered channels do; every topic's Redis stream is read back
 *   and must hold sequences 1, 2, 3... in order, or the run fails.
 * - unordered: `unorderedInFlight` publish calls in flight on one topic, as an unordered channel.
 * - latency: events arriving at a fixed rate on one ordered topic, batched the way the pipeline
 *   batches (everything waiting when the previous call ends, up to `batchSize`); p50/p99/max of
 *   arrival to acknowledgement.
 *
 * Each throughput figure comes with the CPU seconds our process, daprd and redis-server used,
 * so "events per service core second" can be read apart from the sidecar's own cost (on a
 * small machine daprd is usually the bottleneck, not us).
 *
 * With `baseline` (CLI --baseline-pipelining 1) every scenario runs a second time with other
 * publisher options on the same harness, and the results include the ratios.
 *
 * CLI: `node bench/dapr-publish.ts [--duration-ms 3000] [--latency-ms 5000] [--rate 1000]
 * [--topics 8] [--batch 100] [--pipelining 32] [--baseline-pipelining 1]
 * [--encoding object|json] [--json]`: progress lines on stderr, with --json the results
 * object on stdout.
 */
import { readFile } from "node:fs/promises";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startDaprHarness, type DaprHarness } from "../test/support/dapr-harness.ts";
import { createRespClient } from "../test/support/resp-client.ts";
import { createDaprPublisher, type DaprPublisherOptions } from "../src/publish/dapr-publisher.ts";
import { messageCloudEvent } from "../src/publish/cloud-event.ts";
import { messageCloudEventJson } from "../src/publish/cloud-event-json.ts";
import { isJsonPublisher } from "../src/publish/json-publisher.ts";
import type { InboundFrame } from "../src/publish/events.ts";
import type { Publisher } from "../src/publish/publisher.ts";

export interface DaprPublishBenchOptions {
  /** Length of each throughput measurement. Default 3000. */
  durationMs?: number;
  /** Untimed run before each measurement (connections, JIT). Default 500. */
  warmupMs?: number;
  /** Events per publish call, as the pipeline's maxBatchMessages. Default 100. */
  batchSize?: number;
  /** Topic count of the multi-topic ordered run. Default 8. */
  topics?: number;
  /** Publish calls in flight in the unordered run, as the pipeline's maxInFlightUnordered. Default 8. */
  unorderedInFlight?: number;
  /** Arrival rate of the latency run, events per second. Default 1000. */
  latencyRatePerSecond?: number;
  /** Length of the latency run. Default 5000. */
  latencyDurationMs?: number;
  /** Size of the padding field of each JSON frame, in characters. Default 200. */
  paddingChars?: number;
  /**
   * How events reach the publisher: "object" = messageCloudEvent objects through publish(), as
   * the pipeline does today; "json" = messageCloudEventJson texts through publishJson(). Default "object".
   */
  encoding?: "object" | "json";
  /** Read every ordered topic back from Redis and fail on any out-of-order entry. Default true. */
  verifyOrder?: boolean;
  /** Passed to createDaprPublisher (daprHttpPort is the harness's). */
  publisherOptions?: Partial<DaprPublisherOptions>;
  /**
   * Also run every scenario with these publisher options (merged over publisherOptions), on the
   * same harness, and report ratios against them: `{ pipelining: 1 }` is one request at a time
   * per batch, the protocol before pipelining. Default: no baseline.
   */
  baseline?: Partial<DaprPublisherOptions>;
  /** Replaces createDaprPublisher, to measure another implementation against the same harness. */
  createPublisher?: (options: DaprPublisherOptions) => Publisher;
  /** An already running harness; default: one is started and closed by the run. */
  harness?: DaprHarness;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

export interface CpuSeconds {
  /** This process (the publisher). */
  service: number;
  daprd: number;
  redis: number;
}

export interface ThroughputResult {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  cpuSeconds: CpuSeconds;
  /** events / service CPU seconds: throughput one fully used core of ours would give. */
  eventsPerServiceCoreSecond: number;
}

export interface LatencyResult {
  ratePerSecond: number;
  events: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Service CPU used, as a fraction of one core. */
  serviceCores: number;
}

export interface ScenarioResults {
  publisherOptions: Partial<DaprPublisherOptions>;
  orderedOneTopic: ThroughputResult;
  orderedManyTopics: ThroughputResult & { topics: number };
  unordered: ThroughputResult & { inFlight: number };
  latency: LatencyResult;
}

/** Measured / baseline: >1 is better for throughput, <1 is better for latency. */
export interface Ratios {
  orderedOneTopic: { eventsPerSecond: number; eventsPerServiceCoreSecond: number };
  orderedManyTopics: { eventsPerSecond: number; eventsPerServiceCoreSecond: number };
  unordered: { eventsPerSecond: number; eventsPerServiceCoreSecond: number };
  latency: { p50Ms: number; p99Ms: number };
}

export interface DaprPublishBenchResults extends ScenarioResults {
  encoding: "object" | "json";
  baseline?: ScenarioResults;
  ratios?: Ratios;
}

export async function runDaprPublishBench(options: DaprPublishBenchOptions = {}): Promise<DaprPublishBenchResults> {
  const durationMs = options.durationMs ?? 3000;
  const warmupMs = options.warmupMs ?? 500;
  const batchSize = options.batchSize ?? 100;
  const topicCount = options.topics ?? 8;
  const inFlight = options.unorderedInFlight ?? 8;
  const verifyOrder = options.verifyOrder ?? true;
  const log = options.log ?? (() => {});
  const padding = "x".repeat(options.paddingChars ?? 200);

  const encoding = options.encoding ?? "object";
  const make = options.createPublisher ?? createDaprPublisher;
  const harness = options.harness ?? (await startDaprHarness());
  const cpu = createCpuProbe(harness);
  const runId = `${process.pid}-${Date.now().toString(36)}`;
  let topicCounter = 0;
  const freshTopic = (what: string) => `bench.${what}.${runId}.${++topicCounter}`;

  const frame = (sequence: number): InboundFrame => ({
    connectionId: "6a1f0c2e-8d4b-4c3a-9e7f-1b2c3d4e5f60",
    url: "wss://stream.example.test/ws?streams=btcusdt@trade",
    instanceId: "wsm-bench",
    data: `{"e":"trade","s":"BTCUSDT","t":${sequence},"p":"42000.${sequence % 100}","q":"0.001","pad":"${padding}"}`,
    contentType: "application/json",
    bytes: 0,
    receivedAtMs: Date.now(),
    topic: "",
    sequence,
  });

  /** Every scenario against one publisher made with `publisherOptions`. */
  async function runScenarios(publisherOptions: Partial<DaprPublisherOptions>): Promise<ScenarioResults> {
    const publisher = make({ daprHttpPort: harness.daprHttpPort, ...publisherOptions });
    if (encoding === "json" && !isJsonPublisher(publisher)) throw new Error(`publisher ${publisher.name} has no publishJson`);
    /** Builds the batch's events from frames, as the pipeline would, and publishes them. */
    const publishFrames: (topic: string, frames: InboundFrame[]) => Promise<void> =
      encoding === "json" && isJsonPublisher(publisher)
        ? (topic, frames) => publisher.publishJson(topic, frames.map((f) => messageCloudEventJson(f)))
        : (topic, frames) => publisher.publish(topic, frames.map(messageCloudEvent));

    /** One ordered channel: one batch in flight, until the deadline; returns events published. */
    async function orderedLoop(topic: string, untilMs: number, first = 1): Promise<number> {
      let sequence = first - 1;
      while (performance.now() < untilMs) {
        const batch: InboundFrame[] = [];
        for (let i = 0; i < batchSize; i++) batch.push(frame(++sequence));
        await publishFrames(topic, batch);
      }
      return sequence - first + 1;
    }

    async function measure(what: string, run: (untilMs: number) => Promise<number>): Promise<ThroughputResult> {
      await run(performance.now() + warmupMs);
      const before = await cpu.sample();
      const started = performance.now();
      const events = await run(started + durationMs);
      const seconds = (performance.now() - started) / 1000;
      const used = cpu.since(before, await cpu.sample());
      const result: ThroughputResult = {
        events,
        seconds,
        eventsPerSecond: events / seconds,
        cpuSeconds: used,
        eventsPerServiceCoreSecond: events / used.service,
      };
      log(`${what}: ${Math.round(result.eventsPerSecond)} events/s, ${Math.round(result.eventsPerServiceCoreSecond)} per service core second (cpu s: service ${used.service.toFixed(2)}, daprd ${used.daprd.toFixed(2)}, redis ${used.redis.toFixed(2)})`);
      return result;
    }

    try {
      // Readiness first, so that the first measurement does not include the sidecar's start.
      await orderedLoop(freshTopic("warmup"), performance.now() + warmupMs);

      const oneTopic = freshTopic("ordered1");
      let oneNext = 1;
      const orderedOneTopic = await measure("ordered, 1 topic", async (untilMs) => {
        const n = await orderedLoop(oneTopic, untilMs, oneNext);
        oneNext += n;
        return n;
      });
      if (verifyOrder) await assertOrdered(harness, oneTopic, oneNext - 1);

      const manyTopics = Array.from({ length: topicCount }, () => freshTopic("orderedN"));
      const manyNext = manyTopics.map(() => 1);
      const orderedMany = await measure(`ordered, ${topicCount} topics`, async (untilMs) => {
        const counts = await Promise.all(manyTopics.map((t, i) => orderedLoop(t, untilMs, manyNext[i])));
        counts.forEach((n, i) => (manyNext[i]! += n));
        return counts.reduce((a, b) => a + b, 0);
      });
      if (verifyOrder) {
        for (const [i, t] of manyTopics.entries()) await assertOrdered(harness, t, manyNext[i]! - 1);
      }

      const unorderedTopic = freshTopic("unordered");
      let unorderedSequence = 0;
      const unordered = await measure(`unordered, ${inFlight} in flight`, async (untilMs) => {
        const lanes = Array.from({ length: inFlight }, async () => {
          let n = 0;
          while (performance.now() < untilMs) {
            const batch: InboundFrame[] = [];
            for (let i = 0; i < batchSize; i++) batch.push(frame(++unorderedSequence));
            await publishFrames(unorderedTopic, batch);
            n += batch.length;
          }
          return n;
        });
        return (await Promise.all(lanes)).reduce((a, b) => a + b, 0);
      });

      const latency = await measureLatency({
        publishFrames,
        topic: freshTopic("latency"),
        ratePerSecond: options.latencyRatePerSecond ?? 1000,
        durationMs: options.latencyDurationMs ?? 5000,
        batchSize,
        frame,
      });
      log(`latency at ${latency.ratePerSecond}/s: p50 ${latency.p50Ms.toFixed(3)} ms, p99 ${latency.p99Ms.toFixed(3)} ms, max ${latency.maxMs.toFixed(3)} ms, service ${(latency.serviceCores * 100).toFixed(1)}% of a core`);

      return {
        publisherOptions,
        orderedOneTopic,
        orderedManyTopics: { ...orderedMany, topics: topicCount },
        unordered: { ...unordered, inFlight },
        latency,
      };
    } finally {
      await publisher.close();
    }
  }

  try {
    log(`publisher options ${JSON.stringify(options.publisherOptions ?? {})}, encoding ${encoding}`);
    const measured = await runScenarios(options.publisherOptions ?? {});
    if (!options.baseline) return { encoding, ...measured };
    const baselineOptions = { ...options.publisherOptions, ...options.baseline };
    log(`baseline: publisher options ${JSON.stringify(baselineOptions)}`);
    const baseline = await runScenarios(baselineOptions);
    const ratios = ratiosOf(measured, baseline);
    const x = (r: number) => `${r.toFixed(2)}x`;
    log(
      `ratios to baseline: events/s ordered 1 topic ${x(ratios.orderedOneTopic.eventsPerSecond)}, ${topicCount} topics ${x(ratios.orderedManyTopics.eventsPerSecond)}, unordered ${x(ratios.unordered.eventsPerSecond)}; ` +
        `per service core ${x(ratios.orderedOneTopic.eventsPerServiceCoreSecond)}, ${x(ratios.orderedManyTopics.eventsPerServiceCoreSecond)}, ${x(ratios.unordered.eventsPerServiceCoreSecond)}; ` +
        `latency p50 ${x(ratios.latency.p50Ms)}, p99 ${x(ratios.latency.p99Ms)}`,
    );
    return { encoding, ...measured, baseline, ratios };
  } finally {
    if (!options.harness) await harness.close();
  }
}

function ratiosOf(measured: ScenarioResults, baseline: ScenarioResults): Ratios {
  const throughput = (m: ThroughputResult, b: ThroughputResult) => ({
    eventsPerSecond: m.eventsPerSecond / b.eventsPerSecond,
    eventsPerServiceCoreSecond: m.eventsPerServiceCoreSecond / b.eventsPerServiceCoreSecond,
  });
  return {
    orderedOneTopic: throughput(measured.orderedOneTopic, baseline.orderedOneTopic),
    orderedManyTopics: throughput(measured.orderedManyTopics, baseline.orderedManyTopics),
    unordered: throughput(measured.unordered, baseline.unordered),
    latency: { p50Ms: measured.latency.p50Ms / baseline.latency.p50Ms, p99Ms: measured.latency.p99Ms / baseline.latency.p99Ms },
  };
}

/**
 * Events arrive at a fixed rate and are batched as an ordered pipeline channel does: one call
 * in flight, the next takes everything that arrived meanwhile (up to batchSize).
 */
async function measureLatency(args: {
  publishFrames: (topic: string, frames: InboundFrame[]) => Promise<void>;
  topic: string;
  ratePerSecond: number;
  durationMs: number;
  batchSize: number;
  frame: (sequence: number) => InboundFrame;
}): Promise<LatencyResult> {
  const { publishFrames, topic, ratePerSecond, durationMs, batchSize } = args;
  const waiting: Array<{ frame: InboundFrame; arrivedMs: number }> = [];
  const latencies: number[] = [];
  let inFlight = false;
  let sequence = 0;
  let failure: unknown;

  const pump = () => {
    if (inFlight || waiting.length === 0) return;
    inFlight = true;
    const batch = waiting.splice(0, batchSize);
    publishFrames(topic, batch.map((w) => w.frame)).then(
      () => {
        const now = performance.now();
        for (const w of batch) latencies.push(now - w.arrivedMs);
        inFlight = false;
        pump();
      },
      (err: unknown) => {
        failure ??= err;
        inFlight = false;
      },
    );
  };

  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const total = Math.round((ratePerSecond * durationMs) / 1000);
  while (sequence < total && failure === undefined) {
    // Emit what is due by now; the 1 ms timer is coarse, so a late tick catches up.
    const due = Math.min(total, Math.floor(((performance.now() - started) * ratePerSecond) / 1000));
    while (sequence < due) {
      waiting.push({ frame: args.frame(++sequence), arrivedMs: performance.now() });
    }
    // The pipeline batches what arrived within one tick, then publishes.
    setImmediate(pump);
    await new Promise((r) => setTimeout(r, 1));
  }
  while ((inFlight || waiting.length > 0) && failure === undefined) await new Promise((r) => setTimeout(r, 5));
  if (failure !== undefined) throw failure;
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpuBefore);

  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return {
    ratePerSecond,
    events: latencies.length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: latencies[latencies.length - 1]!,
    serviceCores: (used.user + used.system) / 1000 / wallMs,
  };
}

/** The topic's stream must hold exactly sequences 1..count, in that order. */
async function assertOrdered(harness: DaprHarness, topic: string, count: number): Promise<void> {
  const client = await createRespClient({ port: harness.redisPort });
  try {
    let expected = 1;
    let start = "-";
    for (;;) {
      // Pages keep each reply small: the test client re-concatenates its buffer per chunk.
      const page = (await client.command("XRANGE", topic, start, "+", "COUNT", 500)) as Array<[string, string[]]> | null;
      if (!page || page.length === 0) break;
      for (const [id, fields] of page) {
        const data = fields[fields.indexOf("data") + 1]!;
        const sequence = (JSON.parse(data) as { sequence: number }).sequence;
        if (sequence !== expected) {
          throw new Error(`topic ${topic}: entry ${id} has sequence ${sequence}, expected ${expected}`);
        }
        expected++;
        start = `(${id}`;
      }
    }
    if (expected - 1 !== count) throw new Error(`topic ${topic}: ${expected - 1} entries in the stream, published ${count}`);
  } finally {
    client.close();
  }
}

/** CPU time of this process and of the harness's daprd and redis-server (found by their ports). */
function createCpuProbe(harness: DaprHarness) {
  const ticksPerSecond = 100; // USER_HZ: 100 on every Linux this runs on
  /** The pid whose command line (NUL-separated arguments joined by spaces) matches. */
  const findPid = (matches: (commandLine: string) => boolean): number | undefined => {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (matches(readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" "))) return Number(entry);
      } catch {
        // the process ended meanwhile
      }
    }
    return undefined;
  };
  const processSeconds = async (pid: number | undefined): Promise<number> => {
    if (pid === undefined) return Number.NaN;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
    } catch {
      return Number.NaN;
    }
  };
  type Sample = { service: number; daprd: number; redis: number };
  return {
    async sample(): Promise<Sample> {
      // Looked up per sample: a fault test may have restarted either process.
      const daprd = findPid((c) => c.includes("daprd ") && c.includes(` --dapr-http-port ${harness.daprHttpPort} `));
      // redis-server rewrites its command line to "redis-server 127.0.0.1:<port>".
      const redis = findPid((c) => c.startsWith("redis-server ") && c.includes(`:${harness.redisPort}`));
      const own = process.cpuUsage();
      return { service: (own.user + own.system) / 1e6, daprd: await processSeconds(daprd), redis: await processSeconds(redis) };
    },
    since(a: Sample, b: Sample): CpuSeconds {
      return { service: b.service - a.service, daprd: b.daprd - a.daprd, redis: b.redis - a.redis };
    },
  };
}

function cliOptions(argv: string[]): DaprPublishBenchOptions & { json: boolean } {
  const out: DaprPublishBenchOptions & { json: boolean } = { json: false, log: (l) => console.error(l) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v)) throw new Error(`${arg} needs a number`);
      return v;
    };
    if (arg === "--json") out.json = true;
    else if (arg === "--duration-ms") out.durationMs = value();
    else if (arg === "--topics") out.topics = value();
    else if (arg === "--batch") out.batchSize = value();
    else if (arg === "--rate") out.latencyRatePerSecond = value();
    else if (arg === "--latency-ms") out.latencyDurationMs = value();
    else if (arg === "--pipelining") out.publisherOptions = { ...out.publisherOptions, pipelining: value() };
    else if (arg === "--baseline-pipelining") out.baseline = { pipelining: value() };
    else if (arg === "--encoding") {
      const v = argv[++i];
      if (v !== "object" && v !== "json") throw new Error("--encoding is object or json");
      out.encoding = v;
    }
    else throw new Error(`unknown argument ${arg}`);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { json, ...options } = cliOptions(process.argv.slice(2));
  const results = await runDaprPublishBench(options);
  if (json) console.log(JSON.stringify(results, null, 2));
}
