/**
 * `npm run bench [-- --quick] [-- --only ingest,send] [-- --profile]`: runs the benchmark
 * scenarios, prints each section as it finishes and writes BENCHMARKS.md.
 *
 * Every figure is the median of several runs next to a baseline measured in the same run. The
 * service runs as its own process pinned to core 0 (taskset); this orchestrator and every load
 * generator run on core 1; bare baselines that stand in for the service run on core 0 too.
 * Everything listens on 127.0.0.1 only, and every loop is bounded in time.
 */
import { writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "./lib/context.ts";
import { machineInfo } from "./lib/machine.ts";
import { assertTaskset, LOAD_CORE, pinSelf } from "./lib/pin.ts";
import { openFilesLimit } from "./lib/proc.ts";
import { newSection, renderGoals, renderSection, type Goal, type Section } from "./lib/report.ts";

interface Scenario {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<Section>;
}

const SCENARIOS: Scenario[] = [
  { id: "ingest", title: "Ingest", run: async (ctx) => (await import("./ingest.ts")).runIngest(ctx) },
  { id: "send", title: "Send", run: async (ctx) => (await import("./send.ts")).runSend(ctx) },
  { id: "scale", title: "Scale", run: async (ctx) => (await import("./scale.ts")).runScale(ctx) },
  { id: "reconnect-storm", title: "Reconnect storm", run: async (ctx) => (await import("./reconnect-storm.ts")).runReconnectStorm(ctx) },
  { id: "control-plane", title: "Control plane", run: async (ctx) => (await import("./control-plane.ts")).runControlPlane(ctx) },
  { id: "dapr-publish", title: "Dapr publish", run: async (ctx) => (await import("./dapr.ts")).runDapr(ctx) },
  { id: "dapr-service", title: "Dapr publish through the service", run: async (ctx) => (await import("./dapr-service.ts")).runDaprService(ctx) },
];

const USAGE = `usage: node bench/run.ts [--quick] [--only <id>[,<id>...]] [--profile] [--runs <n>] [--out <file>]
  --quick     fewer/shorter runs and smaller N (finishes in under 3 minutes)
  --only      scenarios to run: ${SCENARIOS.map((s) => s.id).join(", ")}
  --profile   CPU-profile the service in ingest and send even when their goals are met
  --runs      runs per figure (default 3; at least 3)
  --out       report file (default BENCHMARKS.md in the repository root)
`;

interface Options {
  quick: boolean;
  only: string[];
  profile: boolean;
  runs: number;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, only: [], profile: false, runs: 3, out: fileURLToPath(new URL("../BENCHMARKS.md", import.meta.url)) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--profile") o.profile = true;
    else if (a === "--only") o.only.push(...value().split(",").filter(Boolean));
    else if (a === "--runs") o.runs = Number(value());
    else if (a === "--out") o.out = value();
    else if (a === "-h" || a === "--help") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  const unknown = o.only.filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(", ")}\n${USAGE}`);
  if (!Number.isInteger(o.runs) || o.runs < 3) throw new Error("--runs must be an integer of at least 3");
  return o;
}

function preflight(): void {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 24) throw new Error(`Node ${process.version}: the bench needs Node 24 (run it with npm run bench)`);
  if (process.platform !== "linux") throw new Error("the bench reads /proc and pins with taskset: Linux only");
  if (availableParallelism() < 2) throw new Error("the bench needs two cores: one for the service, one for the load");
  assertTaskset();
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  preflight();
  pinSelf(LOAD_CORE);
  const started = Date.now();
  const machine = machineInfo();
  const log = (m: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);
  const ctx: BenchContext = { quick: options.quick, runs: options.runs, profile: options.profile, log };
  const selected = options.only.length ? SCENARIOS.filter((s) => options.only.includes(s.id)) : SCENARIOS;
  const command =
    process.env.npm_lifecycle_event === "bench"
      ? `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`
      : `node bench/run.ts ${process.argv.slice(2).join(" ")}`.trim();
  log(`${selected.map((s) => s.id).join(", ")}; ${options.quick ? "quick" : "full"}; open files limit ${openFilesLimit()}`);

  const sections: Section[] = [];
  for (const s of selected) {
    log(`== ${s.title}`);
    let section: Section;
    try {
      section = await s.run(ctx);
    } catch (err) {
      section = newSection(s.id, s.title);
      section.notes.push(`**The scenario failed:** ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    sections.push(section);
    process.stdout.write(`\n${renderSection(section)}\n`);
  }

  const goals: Goal[] = sections.flatMap((s) => s.goals.map((g) => ({ ...g, goal: `${s.title.split(":")[0]}: ${g.goal}` })));
  const header = [
    "# Benchmarks",
    "",
    `Generated by \`bench/run.ts\` on ${new Date(started).toISOString()} in ${((Date.now() - started) / 60000).toFixed(1)} min. ` +
      "Every figure is the median of its runs, next to a baseline measured in the same run (ratio = figure / baseline).",
    "",
    `- Command: \`${command}\`${options.quick ? " (quick: short windows and smaller N; numbers are indicative only)" : ""}`,
    `- Machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memory} RAM, Linux ${machine.kernel}`,
    `- Node: ${machine.node}`,
    `- Load average at start ${machine.loadAverage}, at end ${loadavg().map((l) => l.toFixed(2)).join(" ")} (other work on the machine skews results)`,
    "- Pinning: the service (`node src/main.ts`, its own process, logging at info to a pipe) runs under `taskset -c 0`; " +
      "the orchestrator, feed/upstream servers and RPC load generators under `taskset -c 1`; bare baselines that stand in " +
      "for the service (bare ws client, bare gRPC/Connect servers) under `taskset -c 0` like the service. " +
      "CPU and RSS are read from /proc.",
    "- How to run: `npm run bench` (full, ~15–30 min depending on the machine), `npm run bench -- --quick` (under 3 min), " +
      "`--only <scenario>[,...]` (" + SCENARIOS.map((s) => s.id).join(", ") + "), `--profile` (CPU profiles even when goals are met), " +
      "`--runs <n>`, `--out <file>`. The full scale scenario needs an open-files limit of at least 6,000 (`ulimit -n`); " +
      "children inherit the bench's limit.",
    "",
    "## Summary of goals",
    "",
    goals.length ? renderGoals(goals) : "No goals were evaluated.",
    "",
  ];
  writeFileSync(options.out, [...header, ...sections.map((s) => renderSection(s))].join("\n"));
  log(`wrote ${options.out}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
