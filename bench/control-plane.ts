/**
 * Scenario 5, control plane: List latency with 1,000 and 10,000 connections held, over gRPC
 * and Connect JSON, and Connect/Disconnect churn.
 *
 * Baselines: for List, a bare connect-node server (pinned like the service) answering with
 * the very ListResponse the service just returned, so the ratio shows what building the
 * answer costs on top of serializing and sending it; for churn, a bare `ws` client opening and
 * closing WebSockets to the same upstream at the same concurrency.
 */
import { toBinary } from "@bufbuild/protobuf";
import { ListResponseSchema } from "../gen/virtufin/websocketmanager_pb.js";
import type { EchoServersAgent } from "./agents/echo-servers.ts";
import type { RpcLoadAgent, Target } from "./agents/rpc-load.ts";
import type { UpstreamAgent } from "./agents/upstream.ts";
import type { WsClientAgent } from "./agents/ws-client.ts";
import { startAgent } from "./lib/agent.ts";
import type { BenchContext } from "./lib/context.ts";
import type { LoadResult } from "./lib/load.ts";
import { LOAD_CORE, SERVICE_CORE } from "./lib/pin.ts";
import { figure, FIGURE_HEADERS, figureRow, newSection, type Section } from "./lib/report.ts";
import { startService } from "./lib/service.ts";
import { fmtBytes, fmtCount, fmtMs, median } from "./lib/stats.ts";
import { connectMany, wsmClient } from "./lib/wsm-client.ts";

const CONNECT_CONCURRENCY = 50;
const CHURN_CONCURRENCY = 50;

export async function runControlPlane(ctx: BenchContext): Promise<Section> {
  const section = newSection("control-plane", "5. Control plane: List and churn");
  const sizes = ctx.quick ? [200, 500] : [1000, 10_000];
  const listsPerRun = ctx.quick ? 5 : 10;
  const churnMs = ctx.quick ? 500 : 4000;
  section.intro.push(
    `List latency with ${sizes.map(fmtCount).join(" and ")} connections held (opened with ${CONNECT_CONCURRENCY} Connect RPCs in ` +
      `flight): ${listsPerRun} sequential Lists per run, the run's median latency is one sample; ${ctx.runs} runs. gRPC uses ` +
      "connect-node's gRPC transport, Connect JSON an undici HTTP/1.1 client; both decode the whole answer.",
    "List baseline: a bare connect-node server pinned like the service answering with the ListResponse the service just " +
      "returned (same bytes on the wire): the ratio is what building the answer adds to serializing and sending it.",
    `Churn: Connect then Disconnect, ${CHURN_CONCURRENCY} pairs in flight, ${churnMs} ms per run, with ${fmtCount(sizes[0]!)} other ` +
      "connections held. Baseline: a bare `ws` client opening and closing (code 1000) WebSockets to the same upstream, same concurrency.",
  );

  const upstream = await startAgent<UpstreamAgent>("idle-upstream", new URL("./agents/upstream.ts", import.meta.url), { core: LOAD_CORE });
  const load = await startAgent<RpcLoadAgent>("rpc-load", new URL("./agents/rpc-load.ts", import.meta.url), { core: LOAD_CORE });
  const echo = await startAgent<EchoServersAgent>("echo-servers", new URL("./agents/echo-servers.ts", import.meta.url), { core: SERVICE_CORE });
  const bareWs = await startAgent<WsClientAgent>("ws-churn", new URL("./agents/ws-client.ts", import.meta.url), { core: SERVICE_CORE });
  const service = await startService({ flags: ["--max-connections", String(Math.max(...sizes) + 1000)] });
  try {
    const { url } = await upstream.call("listen", {});
    const bare = await echo.call("start", {});
    const client = wsmClient(service.baseUrl);
    const rows: string[][] = [];
    const list = (target: Target): Promise<LoadResult> =>
      load.call("closed", { target, op: { op: "list" }, concurrency: 1, warmupMs: 0, durationMs: 60_000, maxRequests: listsPerRun });
    let held = 0;
    for (const [stage, size] of sizes.entries()) {
      ctx.log(`control-plane: opening connections up to ${size}`);
      const t0 = performance.now();
      const more = Array.from({ length: size - held }, (_, i) => ({ url: `${url}/l/${held + i}`, autoReconnect: true, tags: { bench: "control-plane", n: String(held + i) } }));
      await connectMany(client, more, CONNECT_CONCURRENCY);
      const connectRate = more.length / ((performance.now() - t0) / 1000);
      held = size;
      const answer = await client.list({});
      const binary = toBinary(ListResponseSchema, answer);
      await echo.call("setList", { base64: Buffer.from(binary).toString("base64") });

      const results = { svcGrpc: [] as LoadResult[], svcJson: [] as LoadResult[], bareGrpc: [] as LoadResult[], bareJson: [] as LoadResult[] };
      for (let run = 1; run <= ctx.runs; run++) {
        ctx.log(`control-plane: List with ${size} connections, run ${run}/${ctx.runs}`);
        results.svcGrpc.push(await list({ kind: "connect-grpc", baseUrl: service.baseUrl }));
        results.bareGrpc.push(await list({ kind: "connect-grpc", baseUrl: bare.connectH2Url }));
        results.svcJson.push(await list({ kind: "undici-json", baseUrl: service.baseUrl }));
        results.bareJson.push(await list({ kind: "undici-json", baseUrl: bare.connectH1Url }));
      }
      const p50 = (rs: LoadResult[]) => figure(rs.map((r) => r.latencyMs.p50));
      const errors = (rs: LoadResult[]) => {
        const n = rs.reduce((a, r) => a + r.errors, 0);
        return n ? `; ${n} errors: ${rs.find((r) => r.firstError)?.firstError}` : "";
      };
      rows.push(
        figureRow(`List, ${fmtCount(size)} connections, gRPC: latency`, p50(results.svcGrpc), fmtMs, { name: "bare connect-node, same answer", value: p50(results.bareGrpc) },
          `answer ${fmtBytes(binary.length)} protobuf; max ${fmtMs(median(results.svcGrpc.map((r) => r.latencyMs.max)))}${errors(results.svcGrpc)}`),
        figureRow(`List, ${fmtCount(size)} connections, Connect JSON: latency`, p50(results.svcJson), fmtMs, { name: "bare connect-node, same answer", value: p50(results.bareJson) },
          `max ${fmtMs(median(results.svcJson.map((r) => r.latencyMs.max)))}${errors(results.svcJson)}`),
        figureRow(`opening connections ${fmtCount(stage ? sizes[stage - 1]! : 0)} → ${fmtCount(size)}: per second`, figure([connectRate]), fmtCount, undefined,
          "one sample (setup of the List figures)"),
      );

      if (stage === 0) {
        const svcChurn: LoadResult[] = [];
        const bareChurn: LoadResult[] = [];
        for (let run = 1; run <= ctx.runs; run++) {
          ctx.log(`control-plane: churn, run ${run}/${ctx.runs}`);
          svcChurn.push(
            await load.call("closed", {
              target: { kind: "connect-grpc", baseUrl: service.baseUrl },
              op: { op: "churn", upstreamUrl: `${url}/churn` },
              concurrency: CHURN_CONCURRENCY,
              warmupMs: 200,
              durationMs: churnMs,
            }),
          );
          bareChurn.push(await bareWs.call("churn", { url: `${url}/churn-bare`, concurrency: CHURN_CONCURRENCY, warmupMs: 200, durationMs: churnMs }));
        }
        rows.push(
          figureRow(`Connect + Disconnect churn (${CHURN_CONCURRENCY} in flight): pairs/s`, figure(svcChurn.map((r) => r.rate)), fmtCount,
            { name: "bare ws open + close", value: figure(bareChurn.map((r) => r.rate)) },
            `pair p50 ${fmtMs(median(svcChurn.map((r) => r.latencyMs.p50)))}, p99 ${fmtMs(median(svcChurn.map((r) => r.latencyMs.p99)))}${errors(svcChurn)}`),
        );
      }
    }
    section.tables.push({ headers: FIGURE_HEADERS, rows });
  } finally {
    await service.stop(30_000);
    await Promise.all([upstream.stop(), load.stop(), echo.stop(), bareWs.stop()]);
  }
  return section;
}
