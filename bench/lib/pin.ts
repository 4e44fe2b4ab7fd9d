/**
 * CPU pinning with taskset (util-linux): the service runs on core 0, every load generator
 * (and this orchestrator) on core 1, so that the two never compete for a core.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";

export const SERVICE_CORE = 0;
export const LOAD_CORE = 1;

/** Throws with a clear message when taskset is missing. */
export function assertTaskset(): void {
  const r = spawnSync("taskset", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error("taskset not found: install util-linux (Debian: apt-get install util-linux)");
  }
}

/** Runs `command` pinned to one core. taskset execs the command, so the pid is the command's. */
export function spawnPinned(core: number, command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  return spawn("taskset", ["-c", String(core), command, ...args], options);
}

/** Pins every thread of this process; threads and children created later inherit it. */
export function pinSelf(core: number): void {
  const r = spawnSync("taskset", ["-a", "-p", "-c", String(core), String(process.pid)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cannot pin the bench process to core ${core}: ${r.stderr}`);
}

/** The cores a process may run on, as taskset prints them (e.g. "0" or "0,1"). */
export function affinityOf(pid: number): string {
  const r = spawnSync("taskset", ["-p", "-c", String(pid)], { encoding: "utf8" });
  return /:\s*(\S+)\s*$/.exec(r.stdout.trim())?.[1] ?? "?";
}
