/**
 * Where the service spends its CPU: run it with `node --cpu-prof`, drive a load, stop it
 * gracefully (the profile is written at exit) and summarize the .cpuprofile by self time,
 * per function and per area (our src/ files, each npm package, Node internals, GC).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Table } from "./report.ts";
import { startService, type ServiceProcess } from "./service.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Profiled wall time, ms. */
  totalMs: number;
  /** Share of samples where the thread was idle. */
  idlePercent: number;
  /** Share of the busy time spent starting up (under src/main.ts: module loading, createApp, listen). */
  startupPercent: number;
  functions: Table;
  areas: Table;
  /** Our own (src/) functions by inclusive time: themselves and everything they call. */
  ours: Table;
}

export async function profileService(flags: string[], drive: (service: ServiceProcess) => Promise<void>): Promise<ProfileSummary> {
  const dir = mkdtempSync(join(tmpdir(), "wsm-bench-prof-"));
  try {
    const service = await startService({ flags, nodeArgs: ["--cpu-prof", "--cpu-prof-dir", dir] });
    try {
      await drive(service);
    } finally {
      await service.stop(20_000);
    }
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error("the service wrote no .cpuprofile");
    return summarizeProfile(JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  const src = url.search(/\/(src|gen|bench)\//);
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^file:\/\//, "");
}

function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === "") return functionName.startsWith("(") ? functionName : "(native / V8 builtins)";
  if (url.startsWith("node:")) return "node internals";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const src = /\/((?:src|gen)\/.+)$/.exec(url);
  return src ? src[1]! : url;
}

const isOurs = (f: CallFrame) => /\/src\//.test(f.url) && !f.url.includes("node_modules");
// Request handling runs from the event loop, never under main(): what is under src/main.ts is start-up.
const isStartup = (f: CallFrame) => /\/src\/main\.ts$/.test(f.url);

export function summarizeProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time between sample i-1 and sample i; it is charged to sample i.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  let totalUs = 0;
  let idleUs = 0;
  const fn = new Map<string, { us: number; name: string; where: string }>();
  const areas = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    totalUs += us;
    if (f.functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName}|${where}`;
    const e = fn.get(key) ?? { us: 0, name: f.functionName || "(anonymous)", where };
    e.us += us;
    fn.set(key, e);
    const area = areaOf(f);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  // Inclusive time of our functions: every sample counts once for each distinct src/ function on its stack.
  const inclusive = new Map<string, { us: number; name: string; where: string }>();
  let startupUs = 0;
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    let startup = false;
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame;
      if (isStartup(f)) startup = true;
      if (!isOurs(f) || isStartup(f)) continue;
      const where = `${shortUrl(f.url)}:${f.lineNumber + 1}`;
      const key = `${f.functionName}|${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const e = inclusive.get(key) ?? { us: 0, name: f.functionName || "(anonymous)", where };
      e.us += us;
      inclusive.set(key, e);
    }
    if (startup) startupUs += us;
  }
  const pct = (us: number) => `${((us / busyUs) * 100).toFixed(1)}%`;
  const ms = (us: number) => (us / 1000).toFixed(0);
  return {
    totalMs: totalUs / 1000,
    idlePercent: (idleUs / totalUs) * 100,
    startupPercent: (startupUs / busyUs) * 100,
    functions: {
      headers: ["self (of busy)", "self ms", "function", "where"],
      rows: [...fn.values()]
        .sort((a, b) => b.us - a.us)
        .slice(0, top)
        .map((e) => [pct(e.us), ms(e.us), e.name, e.where]),
    },
    areas: {
      headers: ["area", "self (of busy)", "self ms"],
      rows: [...areas.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([a, us]) => [a, pct(us), ms(us)]),
    },
    ours: {
      headers: ["total (of busy)", "total ms", "our function (with everything it calls)", "where"],
      rows: [...inclusive.values()]
        .sort((a, b) => b.us - a.us)
        .slice(0, top)
        .map((e) => [pct(e.us), ms(e.us), e.name, e.where]),
    },
  };
}
