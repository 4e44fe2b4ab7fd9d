/**
 * Scenario 2, send: correlated request/response through the service to a local JSON-RPC echo
 * upstream (one upstream connection; every request has a unique "id"), 10 and 100 requests in
 * flight, over gRPC (h2c) and Connect JSON (HTTP/1.1), plus latency at a fixed 1,000 req/s.
 *
 * Baselines, each in the same run:
 *  - the same request/response straight to the upstream with `ws` (no service), pinned like it;
 *  - a bare @grpc/grpc-js unary echo server and a bare connect-node unary echo server (the same
 *    Send method, nothing behind it), pinned like the service: the RPC stack's own floor;
 *  - the load generators' ceilings: for each protocol two clients are tried against the bare
 *    echo server and the faster one drives every figure.
 */
import type { EchoServersAgent } from "./agents/echo-servers.ts";
import type { LoadParams, RpcLoadAgent, Target } from "./agents/rpc-load.ts";
import type { UpstreamAgent } from "./agents/upstream.ts";
import type { WsClientAgent } from "./agents/ws-client.ts";
import { startAgent } from "./lib/agent.ts";
import type { BenchContext } from "./lib/context.ts";
import type { LoadResult } from "./lib/load.ts";
import { LOAD_CORE, SERVICE_CORE } from "./lib/pin.ts";
import { cpuPercent, type ProcSample } from "./lib/proc.ts";
import { profileService } from "./lib/profile.ts";
import { atLeast, atMost, figure, newSection, type Figure, type Section } from "./lib/report.ts";
import { startService, type ServiceProcess } from "./lib/service.ts";
import { fmtCount, fmtMs, fmtPct, fmtRatio, median } from "./lib/stats.ts";
import { wsmClient } from "./lib/wsm-client.ts";

const GOAL_GRPC = 10_000;
const GOAL_JSON = 5_000;
const GOAL_P99_MS = 10;
const FIXED_RATE = 1000;
const CONCURRENCIES = [10, 100] as const;
/** A target that cannot keep up with the fixed rate gets at most one second of backlog; the rest is skipped (and reported). */
const MAX_IN_FLIGHT_AT_RATE = FIXED_RATE;

interface Sampler {
  sample(): ProcSample;
}

interface Win {
  result: LoadResult;
  /** CPU of the process standing where the service stands (service, bare server, direct client). */
  serverCpu: number;
  /** CPU of the load core's processes (generator, upstream), summed. */
  loadCpu: number;
}

async function timed(server: Sampler, load: Sampler[], fn: () => Promise<LoadResult>): Promise<Win> {
  const s0 = server.sample();
  const l0 = load.map((l) => l.sample());
  const result = await fn();
  const s1 = server.sample();
  const loadCpu = load.reduce((sum, l, i) => sum + cpuPercent(l0[i]!, l.sample()), 0);
  return { result, serverCpu: cpuPercent(s0, s1), loadCpu };
}

/** Requests per CPU-second of the server-side process: its rate per core. */
const perCore = (w: Win) => w.result.rate / Math.max(0.01, w.serverCpu / 100);

interface Path {
  key: string;
  label: string;
  /** Which service figure this row is compared with. */
  protocol: "grpc" | "json" | "both";
  closed(concurrency: number): Promise<Win>;
  rate?(): Promise<Win>;
}

export async function runSend(ctx: BenchContext): Promise<Section> {
  const section = newSection("send", "2. Send: correlated request/response");
  const warmupMs = ctx.quick ? 100 : 1000;
  const durationMs = ctx.quick ? 400 : 4000;
  const rateMs = ctx.quick ? 500 : 5000;

  const upstream = await startAgent<UpstreamAgent>("jsonrpc-upstream", new URL("./agents/upstream.ts", import.meta.url), { core: LOAD_CORE });
  const load = await startAgent<RpcLoadAgent>("rpc-load", new URL("./agents/rpc-load.ts", import.meta.url), { core: LOAD_CORE });
  const echo = await startAgent<EchoServersAgent>("echo-servers", new URL("./agents/echo-servers.ts", import.meta.url), { core: SERVICE_CORE });
  const direct = await startAgent<WsClientAgent>("ws-direct", new URL("./agents/ws-client.ts", import.meta.url), { core: SERVICE_CORE });
  let service: ServiceProcess | undefined;
  try {
    const { url: upstreamUrl } = await upstream.call("listen", { jsonRpc: true });
    const bare = await echo.call("start", {});
    service = await startService();
    const svc = service;
    const { id: connectionId } = await wsmClient(svc.baseUrl).connect({ url: `${upstreamUrl}/rpc`, autoReconnect: false });

    const closedLoop = (target: Target, concurrency: number, op: LoadParams["op"] = { op: "send", connectionId }) =>
      load.call("closed", { target, op, concurrency, warmupMs, durationMs });
    const fixedRate = (target: Target) =>
      load.call("rate", { target, op: { op: "send", connectionId }, ratePerSecond: FIXED_RATE, warmupMs, durationMs: rateMs, maxInFlight: MAX_IN_FLIGHT_AT_RATE });

    // Pick each protocol's faster generator against the bare echo server (its ceiling).
    ctx.log("send: choosing load generators (ceilings against the bare echo servers)");
    const grpcCandidates: Target[] = [
      { kind: "grpc-js", address: bare.grpcJsAddress },
      { kind: "connect-grpc", baseUrl: bare.connectH2Url },
    ];
    const jsonCandidates: Target[] = [
      { kind: "connect-json", baseUrl: bare.connectH1Url },
      { kind: "undici-json", baseUrl: bare.connectH1Url },
    ];
    const genRows: string[][] = [];
    const pick = async (candidates: Target[], what: string) => {
      let best: { kind: Target["kind"]; rate: number } | undefined;
      for (const t of candidates) {
        // grpc-js only talks to the grpc-js server here; connect-grpc to the connect-node h2c one.
        const w = await timed(echo, [load], () => closedLoop(t, 100));
        genRows.push([
          `${t.kind} → bare ${t.kind === "grpc-js" ? "grpc-js" : "connect-node"} echo (${what}), 100 in flight`,
          fmtCount(w.result.rate),
          fmtMs(w.result.latencyMs.p99),
          fmtPct(w.loadCpu),
          fmtPct(w.serverCpu),
          w.result.errors ? `${w.result.errors} errors: ${w.result.firstError}` : "",
        ]);
        if (!best || w.result.rate > best.rate) best = { kind: t.kind, rate: w.result.rate };
      }
      return best!.kind;
    };
    const grpcGen = await pick(grpcCandidates, "gRPC");
    const jsonGen = await pick(jsonCandidates, "Connect JSON, HTTP/1.1");
    const grpcTarget = (address: string, baseUrl: string): Target =>
      grpcGen === "grpc-js" ? { kind: "grpc-js", address } : { kind: "connect-grpc", baseUrl };
    const jsonTarget = (baseUrl: string): Target => ({ kind: jsonGen as "connect-json" | "undici-json", baseUrl });
    const svcAddress = `127.0.0.1:${svc.port}`;

    const paths: Path[] = [
      {
        key: "svc-grpc",
        label: `service, gRPC (${grpcGen})`,
        protocol: "grpc",
        closed: (c) => timed(svc, [load, upstream], () => closedLoop(grpcTarget(svcAddress, svc.baseUrl), c)),
        rate: () => timed(svc, [load, upstream], () => fixedRate(grpcTarget(svcAddress, svc.baseUrl))),
      },
      {
        key: "svc-json",
        label: `service, Connect JSON HTTP/1.1 (${jsonGen})`,
        protocol: "json",
        closed: (c) => timed(svc, [load, upstream], () => closedLoop(jsonTarget(svc.baseUrl), c)),
        rate: () => timed(svc, [load, upstream], () => fixedRate(jsonTarget(svc.baseUrl))),
      },
      {
        key: "direct",
        label: "direct ws request/response (no service)",
        protocol: "both",
        closed: (c) => timed(direct, [upstream], () => direct.call("rpc", { url: `${upstreamUrl}/direct`, concurrency: c, warmupMs, durationMs })),
        rate: () =>
          timed(direct, [upstream], () => direct.call("rpc", { url: `${upstreamUrl}/direct`, ratePerSecond: FIXED_RATE, warmupMs, durationMs: rateMs, maxInFlight: MAX_IN_FLIGHT_AT_RATE })),
      },
      {
        key: "bare-grpc-js",
        label: "bare grpc-js echo server, gRPC (grpc-js client)",
        protocol: "grpc",
        // The grpc-js server is driven by the grpc-js client whichever generator won: a
        // connect-node client would measure connect-node's client against grpc-js's server.
        closed: (c) => timed(echo, [load], () => closedLoop({ kind: "grpc-js", address: bare.grpcJsAddress }, c)),
        rate: () => timed(echo, [load], () => fixedRate({ kind: "grpc-js", address: bare.grpcJsAddress })),
      },
      {
        key: "bare-connect-grpc",
        label: `bare connect-node echo server, gRPC (${grpcGen})`,
        protocol: "grpc",
        closed: (c) => timed(echo, [load], () => closedLoop(grpcTarget(bare.connectH2Url.replace("http://", ""), bare.connectH2Url), c)),
      },
      {
        key: "bare-connect-json",
        label: `bare connect-node echo server, Connect JSON HTTP/1.1 (${jsonGen})`,
        protocol: "json",
        closed: (c) => timed(echo, [load], () => closedLoop(jsonTarget(bare.connectH1Url), c)),
        rate: () => timed(echo, [load], () => fixedRate(jsonTarget(bare.connectH1Url))),
      },
    ];

    const closedWins = new Map<string, Win[]>();
    const rateWins = new Map<string, Win[]>();
    const push = (m: Map<string, Win[]>, key: string, w: Win) => m.set(key, [...(m.get(key) ?? []), w]);
    for (let run = 1; run <= ctx.runs; run++) {
      ctx.log(`send: run ${run}/${ctx.runs}`);
      for (const p of paths) {
        for (const c of CONCURRENCIES) push(closedWins, `${p.key}@${c}`, await p.closed(c));
        if (p.rate) push(rateWins, p.key, await p.rate());
      }
    }

    const med = (wins: Win[], f: (w: Win) => number) => median(wins.map(f));
    const fig = (wins: Win[], f: (w: Win) => number): Figure => figure(wins.map(f));
    section.intro.push(
      "Send RPCs through the service to a local JSON-RPC echo upstream over one upstream connection; each request carries a " +
        "unique `id` that the service correlates on. Closed loop with 10 and 100 requests in flight " +
        `(${warmupMs} ms warm-up, ${durationMs} ms measured), and an open loop at a fixed ${fmtCount(FIXED_RATE)} req/s ` +
        `(${rateMs} ms; latency counted from each request's scheduled start). ${ctx.runs} runs, interleaved.`,
      "req/s per core = requests per CPU-second of the process in the service's place (service, bare server, or the direct " +
        "client); on a quiet machine it equals the wall-clock rate when that process is at 100%. The load core runs the " +
        "generator and the upstream together: when its CPU nears 100% the load side, not the service, is the limit.",
    );
    section.tables.push({
      title: "Load generator ceilings (each against a bare echo server; the faster per protocol drives every figure)",
      headers: ["generator", "req/s", "p99", "generator CPU", "echo server CPU", "errors"],
      rows: genRows,
    });

    for (const c of CONCURRENCIES) {
      const svcGrpc = closedWins.get(`svc-grpc@${c}`)!;
      const svcJson = closedWins.get(`svc-json@${c}`)!;
      const rows = paths.map((p) => {
        const wins = closedWins.get(`${p.key}@${c}`)!;
        const pc = med(wins, perCore);
        const ratio = (service: Win[]) => fmtRatio(med(service, perCore) / pc);
        const errors = wins.reduce((a, w) => a + w.result.errors, 0);
        return [
          p.label,
          fmtCount(pc),
          wins.map((w) => fmtCount(perCore(w))).join(" / "),
          fmtCount(med(wins, (w) => w.result.rate)),
          fmtMs(med(wins, (w) => w.result.latencyMs.p50)),
          fmtMs(med(wins, (w) => w.result.latencyMs.p99)),
          fmtPct(med(wins, (w) => w.serverCpu)),
          fmtPct(med(wins, (w) => w.loadCpu)),
          p.protocol === "json" ? "–" : ratio(svcGrpc),
          p.protocol === "grpc" ? "–" : ratio(svcJson),
          errors ? `${errors} (${wins.find((w) => w.result.firstError)?.result.firstError ?? ""})` : "0",
        ];
      });
      section.tables.push({
        title: `Send, ${c} in flight`,
        headers: ["path", "req/s per core (median)", "runs", "req/s wall", "p50", "p99", "CPU (service's place)", "CPU (load core)", "service gRPC ÷ this", "service JSON ÷ this", "errors"],
        rows,
      });
    }

    const rateRows = paths
      .filter((p) => p.rate)
      .map((p) => {
        const wins = rateWins.get(p.key)!;
        const p99 = fig(wins, (w) => w.result.latencyMs.p99);
        const ratioTo = (key: string) => fmtRatio(med(rateWins.get(key)!, (w) => w.result.latencyMs.p99) / p99.median);
        return [
          p.label,
          fmtMs(med(wins, (w) => w.result.latencyMs.p50)),
          fmtMs(med(wins, (w) => w.result.latencyMs.p90)),
          fmtMs(p99.median),
          p99.runs.map(fmtMs).join(" / "),
          fmtMs(med(wins, (w) => w.result.latencyMs.max)),
          fmtCount(med(wins, (w) => w.result.rate)),
          fmtPct(med(wins, (w) => w.serverCpu)),
          p.protocol === "json" ? "–" : ratioTo("svc-grpc"),
          p.protocol === "grpc" ? "–" : ratioTo("svc-json"),
          `${wins.reduce((a, w) => a + w.result.errors, 0)} errors, ${wins.reduce((a, w) => a + (w.result.skipped ?? 0), 0)} skipped (over 1 s behind)`,
        ];
      });
    section.tables.push({
      title: `Latency at a fixed ${fmtCount(FIXED_RATE)} req/s`,
      headers: ["path", "p50", "p90", "p99 (median)", "p99 runs", "max", "achieved req/s", "CPU (service's place)", "service gRPC p99 ÷ this", "service JSON p99 ÷ this", "errors, skipped"],
      rows: rateRows,
    });

    const best = (key: string) => Math.max(...CONCURRENCIES.map((c) => med(closedWins.get(`${key}@${c}`)!, perCore)));
    const grpcBest = best("svc-grpc");
    const jsonBest = best("svc-json");
    const grpcGoal = atLeast("gRPC: ≥ 10,000 req/s per core (best of 10/100 in flight)", grpcBest, GOAL_GRPC, fmtCount);
    const jsonGoal = atLeast("Connect JSON: ≥ 5,000 req/s per core (best of 10/100 in flight)", jsonBest, GOAL_JSON, fmtCount);
    section.goals.push(
      grpcGoal,
      jsonGoal,
      atMost(`gRPC: p99 ≤ ${GOAL_P99_MS} ms at ${fmtCount(FIXED_RATE)} req/s`, med(rateWins.get("svc-grpc")!, (w) => w.result.latencyMs.p99), GOAL_P99_MS, fmtMs),
      atMost(`Connect JSON: p99 ≤ ${GOAL_P99_MS} ms at ${fmtCount(FIXED_RATE)} req/s`, med(rateWins.get("svc-json")!, (w) => w.result.latencyMs.p99), GOAL_P99_MS, fmtMs),
    );
    const loadBusy = Math.max(...["svc-grpc", "svc-json"].flatMap((k) => CONCURRENCIES.map((c) => med(closedWins.get(`${k}@${c}`)!, (w) => w.loadCpu))));
    if (loadBusy > 90) {
      section.notes.push(
        `The load core reached ${fmtPct(loadBusy)} during a service run: there the generator and upstream together may cap the ` +
          "wall-clock rate; the per-core figure (requests per service CPU-second) is not affected.",
      );
    }
    section.notes.push(`Service log lines written during the scenario: ${svc.logLines()} (info level logs every mutating RPC, Send included).`);

    const missed = !grpcGoal.met || !jsonGoal.met;
    if (missed) {
      const atRate = (key: string) => ({ cpu: med(rateWins.get(key)!, (w) => w.serverCpu), p99: med(rateWins.get(key)!, (w) => w.result.latencyMs.p99) });
      section.notes.push(...whyMissed(best, atRate));
    }
    if (missed && ctx.quick && !ctx.profile) {
      section.notes.push("A throughput goal was missed: a full run (or --profile) adds CPU profiles of the service here.");
    }
    if ((missed && !ctx.quick) || ctx.profile) {
      ctx.log("send: profiling the service (gRPC and Connect JSON, 100 in flight)");
      const profMs = ctx.quick ? 2000 : 5000;
      for (const [what, target] of [
        ["gRPC", (s: ServiceProcess) => grpcTarget(`127.0.0.1:${s.port}`, s.baseUrl)],
        ["Connect JSON", (s: ServiceProcess) => jsonTarget(s.baseUrl)],
      ] as const) {
        const prof = await profileService([], async (s) => {
          const { id } = await wsmClient(s.baseUrl).connect({ url: `${upstreamUrl}/rpc`, autoReconnect: false });
          await load.call("closed", { target: target(s), op: { op: "send", connectionId: id }, concurrency: 100, warmupMs: 300, durationMs: profMs });
          await load.call("reset", {});
        });
        section.appendix.push(
          `**Profile, ${what}.** The service under ${what} Send load, 100 in flight (\`node --cpu-prof\`, ` +
            `${(prof.totalMs / 1000).toFixed(1)} s profiled, ${prof.idlePercent.toFixed(0)}% idle, start-up ${prof.startupPercent.toFixed(0)}% ` +
            "of the busy time; percentages are of the busy time):",
          { title: `Send profile (${what}): top functions by self time`, ...prof.functions },
          { title: `Send profile (${what}): self time by area`, ...prof.areas },
          { title: `Send profile (${what}): our src/ functions by total time`, ...prof.ours },
        );
      }
    }
  } finally {
    await service?.stop();
    await Promise.all([upstream.stop(), load.stop(), echo.stop(), direct.stop()]);
  }
  return section;
}

/**
 * Why a throughput goal was missed, from this run's own numbers: how much of the service's
 * cost is connect-node's (the bare connect-node echo server does no work of ours), how far
 * grpc-js gets on the same machine, and the connect-node report that follows from it.
 */
function whyMissed(best: (key: string) => number, atRate: (key: string) => { cpu: number; p99: number }): string[] {
  const svcGrpc = best("svc-grpc");
  const svcJson = best("svc-json");
  const bareConnectGrpc = best("bare-connect-grpc");
  const bareConnectJson = best("bare-connect-json");
  const bareGrpcJs = best("bare-grpc-js");
  return [
    `**Why the Send goals are missed.** An echo server with no code of ours, built on connect-node, serves ` +
      `${fmtCount(bareConnectGrpc)} gRPC and ${fmtCount(bareConnectJson)} Connect JSON req/s per core on this machine, ` +
      `below both goals; the service reaches ${fmtRatio(svcGrpc / bareConnectGrpc)} and ${fmtRatio(svcJson / bareConnectJson)} of that. ` +
      `A bare grpc-js server does ${fmtCount(bareGrpcJs)} req/s per core (${fmtRatio(bareGrpcJs / bareConnectGrpc)} of connect-node over the ` +
      "same HTTP/2 stack), so connect-node's per-request cost sets the ceiling, not HTTP/2. The service's own work (its " +
      "interceptors, correlation, the WebSocket round trip to the upstream) costs the remaining " +
      `${fmtPct((1 - svcGrpc / bareConnectGrpc) * 100)} (gRPC) and ${fmtPct((1 - svcJson / bareConnectJson) * 100)} (Connect JSON); ` +
      "the profiles below show where.",
    `**Why p99 at ${fmtCount(FIXED_RATE)} req/s is missed.** At that rate the service's core is ${fmtPct(atRate("svc-grpc").cpu)} busy over gRPC ` +
      `and ${fmtPct(atRate("svc-json").cpu)} over Connect JSON (the per-request cost above), so requests queue behind each other and ` +
      "every garbage collection or timer burst shows in the tail; the direct ws path, which costs a fraction of that per request, " +
      `stays at ${fmtMs(atRate("direct").p99)}. Even the bare grpc-js pair reaches a p99 of ${fmtMs(atRate("bare-grpc-js").p99)} here, ` +
      "with its generator sharing the load core with the upstream.",
    "**Report for connect-node** (`@connectrpc/connect-node` 2.3, Node 24, Linux; reproduce with `npm run bench -- --only send --profile`): " +
      `a unary gRPC echo served by \`connectNodeAdapter\` over h2c handles ${fmtCount(bareConnectGrpc)} req/s per CPU-second where ` +
      `\`@grpc/grpc-js\` serves ${fmtCount(bareGrpcJs)} on the same machine and client. Two costs stand out in the profiles: ` +
      "(1) `universalRequestFromNodeRequest` creates an `AbortController` per request and calls `abort()` without a reason when " +
      "the request closes, so Node builds a `DOMException` with a captured stack trace for every request, including ones that " +
      "ended normally (4–6% of the busy time here); aborting with one preallocated reason, or only while a listener is attached, " +
      "removes it; (2) the request and response bodies go through several layers of async iterators " +
      "(`async-iterable.js` `pipe`/`transform` stages), each adding promise and microtask turns per message, where a unary call " +
      "could read the whole body and write one buffer. We have not patched connect-node: a private fork of the RPC stack " +
      "would cost more in upkeep than it gains; a hand-written HTTP/2 path for gRPC Send is the option if these figures " +
      "come to matter more than having one RPC stack for every protocol.",
  ];
}
