/**
 * The real service as its own process (`node src/main.ts ...`) pinned to the service core, so
 * that its CPU time and RSS can be read from /proc and nothing of the bench shares its event
 * loop. Logs stay at info (the production default) and are drained from a pipe.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { stopChild, track } from "./children.ts";
import { SERVICE_CORE, spawnPinned } from "./pin.ts";
import { sampleProcess, type ProcSample } from "./proc.ts";

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));

/**
 * The node flags of `npm start` (package.json), so that the bench measures the service as it
 * is run: e.g. the young-generation cap that keeps idle connections small.
 * WSM_BENCH_SERVICE_NODE_FLAGS replaces them, to compare other settings.
 */
export const SERVICE_NODE_FLAGS: string[] = (() => {
  const override = process.env.WSM_BENCH_SERVICE_NODE_FLAGS;
  if (override !== undefined) return override.split(" ").filter(Boolean);
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> };
  const m = /^node((?:\s+--\S+)*)\s+src\/main\.ts$/.exec(pkg.scripts.start ?? "");
  if (!m) throw new Error(`package.json's start script is not "node [--flags] src/main.ts": ${pkg.scripts.start}`);
  return m[1]!.split(" ").filter(Boolean);
})();

/** Node flags that make `gcMemory()` work (bench/lib/gc-preload.ts). */
export const GC_PRELOAD_ARGS = ["--expose-gc", "--import", fileURLToPath(new URL("./gc-preload.ts", import.meta.url))];
const STDERR_TAIL_CHARS = 4000;

export interface ServiceOptions {
  /** Extra service flags, e.g. ["--max-connections", "20000"]. */
  flags?: string[];
  /** Extra node flags, e.g. ["--cpu-prof", "--cpu-prof-dir", dir]. */
  nodeArgs?: string[];
  core?: number;
  startTimeoutMs?: number;
}

export interface ServiceProcess {
  readonly pid: number;
  readonly port: number;
  readonly baseUrl: string;
  /** The exact command line, for the report. */
  readonly command: string;
  /** Log lines written so far. */
  logLines(): number;
  /** Warn and error lines seen so far (the last few), for diagnosis. */
  problems(): string[];
  sample(): ProcSample;
  /** /metrics, each metric name summed over its labels. */
  metrics(): Promise<Map<string, number>>;
  /**
   * Full GC, then process.memoryUsage(): needs `nodeArgs: GC_PRELOAD_ARGS` at start.
   */
  gcMemory(): Promise<NodeJS.MemoryUsage>;
  /** SIGTERM (graceful shutdown: a --cpu-prof profile is written), SIGKILL after the grace. */
  stop(graceMs?: number): Promise<void>;
}

export const BASE_FLAGS = ["--port", "0", "--host", "127.0.0.1", "--log-level", "info", "--console=false", "--instance-id", "bench", "--shutdown-timeout-ms", "3000"];

export async function startService(options: ServiceOptions = {}): Promise<ServiceProcess> {
  const args = [...SERVICE_NODE_FLAGS, ...(options.nodeArgs ?? []), MAIN, ...BASE_FLAGS, ...(options.flags ?? [])];
  const core = options.core ?? SERVICE_CORE;
  const child: ChildProcess = spawnPinned(core, process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  track(child);
  let lines = 0;
  let partial = "";
  let stderr = "";
  const problems: string[] = [];
  let onListening: ((port: number) => void) | undefined;
  let onGcLine: ((line: string) => void) | undefined;
  let stderrPartial = "";

  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    const text = partial + chunk;
    const parts = text.split("\n");
    partial = parts.pop()!;
    lines += parts.length;
    for (const line of parts) {
      if (onListening && line.includes('"msg":"listening"')) {
        const port = Number(/"port":(\d+)/.exec(line)?.[1]);
        if (port > 0) onListening(port);
      } else if (line.includes('"level":"warn"') || line.includes('"level":"error"')) {
        problems.push(line.slice(0, 300));
        if (problems.length > 20) problems.shift();
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_CHARS);
    const parts = (stderrPartial + chunk).split("\n");
    stderrPartial = parts.pop()!;
    for (const line of parts) if (line.startsWith("[bench-gc] ")) onGcLine?.(line.slice("[bench-gc] ".length));
  });

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not listen within ${options.startTimeoutMs ?? 20000} ms: ${stderr}`)), options.startTimeoutMs ?? 20_000);
    onListening = (p) => {
      clearTimeout(timer);
      onListening = undefined;
      resolve(p);
    };
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with code ${code} before listening: ${stderr}`));
    });
  });
  const baseUrl = `http://127.0.0.1:${port}`;

  return {
    pid: child.pid!,
    port,
    baseUrl,
    command: `taskset -c ${core} node ${args.map((a) => (a === MAIN ? "src/main.ts" : a)).join(" ")}`,
    logLines: () => lines,
    problems: () => [...problems],
    sample: () => sampleProcess(child.pid!),
    async metrics() {
      const res = await fetch(`${baseUrl}/metrics`);
      if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
      return parsePrometheus(await res.text());
    },
    gcMemory() {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no [bench-gc] line: was the service started with GC_PRELOAD_ARGS?")), 10_000);
        onGcLine = (line) => {
          clearTimeout(timer);
          onGcLine = undefined;
          resolve(JSON.parse(line) as NodeJS.MemoryUsage);
        };
        child.kill("SIGUSR2");
      });
    },
    stop: (graceMs = 10_000) => stopChild(child, graceMs),
  };
}

export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + v);
  }
  return out;
}
