/**
 * Scenario 4, reconnect storm: N connections with auto_reconnect and an on-open message, each
 * on its own URL path (/c/<n>: the service's connection id never reaches the upstream). The
 * upstream is restarted: every socket dropped, the listener closed, and after a pause listening
 * again on the same port. The service's default backoff applies (base 1 s, cap 30 s, equal
 * jitter). Measured:
 *  - time from the drop (and from the re-listen) until every path got its on-open message
 *    again at the upstream, and until the service reported every connection connected
 *    (its lifecycle events, read from a Subscribe stream);
 *  - the spread of attempts: refused attempts from the service's lifecycle error events,
 *    accepted ones from the upstream's handshake arrival times;
 *  - at most one attempt in flight per connection (the upstream counts open sockets per path,
 *    from the upgrade request until the socket closes);
 *  - the on-open message was the first message on every reconnected socket.
 * Baseline: a fleet of bare `ws` clients (pinned like the service) with the same backoff and
 * on-open message.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { UpstreamAgent } from "./agents/upstream.ts";
import type { WsClientAgent } from "./agents/ws-client.ts";
import { startAgent, type AgentProcess } from "./lib/agent.ts";
import type { BenchContext } from "./lib/context.ts";
import { LOAD_CORE, SERVICE_CORE } from "./lib/pin.ts";
import { onOpenText } from "./lib/payloads.ts";
import { figure, FIGURE_HEADERS, figureRow, newSection, type Goal, type Section } from "./lib/report.ts";
import { startService } from "./lib/service.ts";
import { fmtMs, median, percentile } from "./lib/stats.ts";
import { waitUntil } from "./lib/time.ts";
import { connectMany, wsmClient } from "./lib/wsm-client.ts";

const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
const RECOVERY_TIMEOUT_MS = 180_000;
const BUCKET_MS = 250;

interface StormRun {
  /** Drop → every path's on-open message arrived again. */
  allOnOpenMs: number;
  /** Re-listen → the same. */
  allOnOpenAfterUpMs: number;
  /** Drop → the service reported every connection connected (service only). */
  allConnectedMs?: number;
  downMs: number;
  /** Accepted handshake arrivals, ms after the drop. */
  acceptedOffsets: number[];
  /** Refused attempts seen by the service, ms after the drop (service only). */
  refusedOffsets: number[];
  maxInFlightPerPath: number;
  pathsWithOnOpen: number;
  wrongFirstMessages: number;
  maxAttemptsPerPath: number;
}

async function storm(upstream: AgentProcess<UpstreamAgent>, prefix: string, n: number, downMs: number) {
  await waitUntil(`${n} on-open messages at ${prefix}`, async () => (await upstream.call("stats", { prefix })).pathsWithOnOpen === n, 120_000, 50);
  const { dropAt, upAt } = await upstream.call("restart", { downMs });
  await waitUntil(
    `${n} connections to reconnect at ${prefix}`,
    async () => (await upstream.call("stats", { prefix, sinceEpochMs: dropAt })).pathsWithOnOpen === n,
    RECOVERY_TIMEOUT_MS,
    50,
  );
  const st = await upstream.call("stats", { prefix, sinceEpochMs: dropAt });
  return { dropAt, upAt, st };
}

async function serviceRun(upstream: AgentProcess<UpstreamAgent>, url: string, prefix: string, n: number, downMs: number): Promise<StormRun> {
  const service = await startService({ flags: ["--max-connections", String(n + 1000)] });
  const abort = new AbortController();
  try {
    const client = wsmClient(service.baseUrl);
    const events: Array<{ url: string; type: string; errorType: string; timeMs: number }> = [];
    const subscribed = (async () => {
      try {
        for await (const ev of client.subscribe({ excludeMessages: true }, { signal: abort.signal })) {
          if (ev.event.case === "lifecycle") {
            const e = ev.event.value;
            events.push({ url: e.url, type: e.type, errorType: e.errorType, timeMs: e.time ? timestampMs(e.time) : 0 });
          }
        }
      } catch {
        // aborted at the end of the run
      }
    })();
    const requests = Array.from({ length: n }, (_, i) => {
      const path = `${prefix}/c/${i}`;
      return { url: `${url}${path}`, autoReconnect: true, onOpen: [{ message: onOpenText(path) }] };
    });
    await connectMany(client, requests, 50);
    const { dropAt, upAt, st } = await storm(upstream, prefix, n, downMs);
    await waitUntil("the service to report every connection connected", () => {
      const connected = new Set(events.filter((e) => e.type === "connected" && e.timeMs >= dropAt).map((e) => e.url));
      return connected.size === n;
    }, 30_000, 50);
    const after = events.filter((e) => e.timeMs >= dropAt);
    const connectedAt = after.filter((e) => e.type === "connected").map((e) => e.timeMs - dropAt);
    // The first error of each connection is the drop itself ("closed"); the others are failed attempts.
    const refused = after.filter((e) => e.type === "error" && e.errorType !== "closed").map((e) => e.timeMs - dropAt);
    abort.abort();
    await subscribed;
    return {
      allOnOpenMs: st.lastOnOpenOffsetMs,
      allOnOpenAfterUpMs: st.lastOnOpenOffsetMs - (upAt - dropAt),
      allConnectedMs: Math.max(...connectedAt),
      downMs: upAt - dropAt,
      acceptedOffsets: st.attemptOffsetsMs,
      refusedOffsets: refused,
      maxInFlightPerPath: st.maxInFlightPerPath,
      pathsWithOnOpen: st.pathsWithOnOpen,
      wrongFirstMessages: st.wrongFirstMessages,
      maxAttemptsPerPath: st.maxAttemptsPerPath,
    };
  } finally {
    abort.abort();
    await service.stop(20_000);
  }
}

async function baselineRun(upstream: AgentProcess<UpstreamAgent>, url: string, prefix: string, n: number, downMs: number): Promise<StormRun> {
  const fleet = await startAgent<WsClientAgent>("ws-fleet", new URL("./agents/ws-client.ts", import.meta.url), { core: SERVICE_CORE });
  try {
    await fleet.call("fleetStart", { url: `${url}${prefix}`, count: n, concurrency: 50, baseDelayMs: BASE_DELAY_MS, maxDelayMs: MAX_DELAY_MS });
    const { dropAt, upAt, st } = await storm(upstream, prefix, n, downMs);
    await fleet.call("fleetStop", {});
    return {
      allOnOpenMs: st.lastOnOpenOffsetMs,
      allOnOpenAfterUpMs: st.lastOnOpenOffsetMs - (upAt - dropAt),
      downMs: upAt - dropAt,
      acceptedOffsets: st.attemptOffsetsMs,
      refusedOffsets: [],
      maxInFlightPerPath: st.maxInFlightPerPath,
      pathsWithOnOpen: st.pathsWithOnOpen,
      wrongFirstMessages: st.wrongFirstMessages,
      maxAttemptsPerPath: st.maxAttemptsPerPath,
    };
  } finally {
    await fleet.stop();
  }
}

const spread = (offsets: number[]) => {
  const s = [...offsets].sort((a, b) => a - b);
  return `${fmtMs(percentile(s, 0))} / ${fmtMs(percentile(s, 10))} / ${fmtMs(percentile(s, 50))} / ${fmtMs(percentile(s, 90))} / ${fmtMs(percentile(s, 100))}`;
};

function histogramRows(columns: number[][]): string[][] {
  const buckets = new Map<number, number[]>();
  columns.forEach((offsets, c) => {
    for (const t of offsets) {
      const b = Math.floor(t / BUCKET_MS) * BUCKET_MS;
      const row = buckets.get(b) ?? columns.map(() => 0);
      row[c]!++;
      buckets.set(b, row);
    }
  });
  return [...buckets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([b, counts]) => [`${(b / 1000).toFixed(2)}–${((b + BUCKET_MS) / 1000).toFixed(2)} s`, ...counts.map(String)]);
}

export async function runReconnectStorm(ctx: BenchContext): Promise<Section> {
  const section = newSection("reconnect-storm", "4. Reconnect storm");
  const n = ctx.quick ? 200 : 1000;
  const downMs = ctx.quick ? 300 : 2000;
  section.intro.push(
    `${n} connections with \`auto_reconnect\` and one on-open message each, every one on its own upstream path \`/c/<n>\`. ` +
      `The upstream drops every socket and closes its listener, listens again on the same port ${downMs} ms later, and the ` +
      `clock runs until every path has received its on-open message again. Service reconnect defaults (base ${BASE_DELAY_MS} ms, ` +
      `cap ${MAX_DELAY_MS / 1000} s, equal jitter: attempt k waits between half and all of min(cap, base·2^(k−1))). ` +
      `A fresh service per run; ${ctx.runs} runs.`,
    "Baseline: a fleet of bare `ws` clients in one process pinned like the service, with the same backoff and on-open " +
      "message (one attempt in flight per client by construction).",
  );

  const upstream = await startAgent<UpstreamAgent>("storm-upstream", new URL("./agents/upstream.ts", import.meta.url), { core: LOAD_CORE });
  try {
    const { url } = await upstream.call("listen", { checkOnOpen: true });
    const svc: StormRun[] = [];
    const base: StormRun[] = [];
    for (let run = 1; run <= ctx.runs; run++) {
      ctx.log(`reconnect-storm: ${n} connections, run ${run}/${ctx.runs}`);
      svc.push(await serviceRun(upstream, url, `/s${run}`, n, downMs));
      base.push(await baselineRun(upstream, url, `/b${run}`, n, downMs));
    }
    const med = (runs: StormRun[], f: (r: StormRun) => number) => median(runs.map(f));
    const fig = (runs: StormRun[], f: (r: StormRun) => number) => figure(runs.map(f));
    section.tables.push({
      headers: FIGURE_HEADERS,
      rows: [
        figureRow("drop → all reconnected, on-open received (upstream view)", fig(svc, (r) => r.allOnOpenMs), fmtMs,
          { name: "bare ws fleet", value: fig(base, (r) => r.allOnOpenMs) }, `listener down ${fmtMs(med(svc, (r) => r.downMs))}`),
        figureRow("re-listen → all reconnected (upstream view)", fig(svc, (r) => r.allOnOpenAfterUpMs), fmtMs,
          { name: "bare ws fleet", value: fig(base, (r) => r.allOnOpenAfterUpMs) }),
        figureRow("drop → all reported connected (service lifecycle events)", fig(svc, (r) => r.allConnectedMs!), fmtMs, undefined,
          "from a Subscribe stream of lifecycle events"),
      ],
    });
    const last = ctx.runs - 1;
    section.tables.push({
      title: "Attempt times after the drop (p0 / p10 / p50 / p90 / p100), per run",
      headers: ["run", "service: refused attempts (lifecycle errors)", "service: accepted (upstream)", "bare fleet: accepted (upstream)", "service: max attempts accepted per path"],
      rows: svc.map((r, i) => [
        String(i + 1),
        r.refusedOffsets.length ? `${r.refusedOffsets.length}: ${spread(r.refusedOffsets)}` : "0",
        `${r.acceptedOffsets.length}: ${spread(r.acceptedOffsets)}`,
        `${base[i]!.acceptedOffsets.length}: ${spread(base[i]!.acceptedOffsets)}`,
        String(r.maxAttemptsPerPath),
      ]),
    });
    section.tables.push({
      title: `Histogram of attempts after the drop, run ${last + 1} (${BUCKET_MS} ms buckets; the listener was down for the first ${fmtMs(svc[last]!.downMs)})`,
      headers: ["time after drop", "service refused", "service accepted", "bare fleet accepted"],
      rows: histogramRows([svc[last]!.refusedOffsets, svc[last]!.acceptedOffsets, base[last]!.acceptedOffsets]),
    });
    const maxInFlight = Math.max(...svc.map((r) => r.maxInFlightPerPath));
    const replayed = Math.min(...svc.map((r) => r.pathsWithOnOpen));
    const wrong = svc.reduce((a, r) => a + r.wrongFirstMessages, 0);
    const goals: Goal[] = [
      {
        goal: "never two attempts in flight for one connection",
        measured: `max ${maxInFlight} concurrent handshake(s) per path, all runs`,
        met: maxInFlight <= 1,
        margin: maxInFlight <= 1 ? "never more than one" : `${maxInFlight} at once`,
      },
      {
        goal: "on-open message replayed on every reconnected socket",
        measured: `${replayed}/${n} paths (worst run); ${wrong} sockets with another first message`,
        met: replayed === n && wrong === 0,
        margin: replayed === n && wrong === 0 ? "all" : `${n - replayed} missing, ${wrong} wrong`,
      },
    ];
    section.goals.push(...goals);
    section.notes.push(
      `Bare fleet checks: max concurrent handshakes per path ${Math.max(...base.map((r) => r.maxInFlightPerPath))}, ` +
        `on-open on ${Math.min(...base.map((r) => r.pathsWithOnOpen))}/${n} paths.`,
      "Refused attempts never reach the upstream (the port is closed), so their times come from the service's lifecycle " +
        "`error` events; accepted attempts are timed by the upstream when the upgrade request arrives.",
    );
  } finally {
    await upstream.stop();
  }
  return section;
}
