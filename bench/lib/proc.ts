/**
 * CPU time and memory of a process, read from /proc (Linux only). The service and every load
 * generator run as separate processes so that each one's cost can be read here.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let ticksPerSecond: number | undefined;

function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export interface ProcSample {
  /** performance.now() of this process when the sample was taken. */
  atMs: number;
  /** User + system CPU time so far. */
  cpuSeconds: number;
  /** Resident set size now. */
  rssBytes: number;
  /** Peak resident set size so far. */
  peakRssBytes: number;
}

export function sampleProcess(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) is in parentheses and may hold spaces: split after it. The
  // first field after it is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { atMs: performance.now(), cpuSeconds: ticks / clockTicksPerSecond(), rssBytes: kib("VmRSS"), peakRssBytes: kib("VmHWM") };
}

/** Share of one core used between two samples, in percent (100 = one core busy all the time). */
export function cpuPercent(from: ProcSample, to: ProcSample): number {
  const wallSeconds = (to.atMs - from.atMs) / 1000;
  return wallSeconds > 0 ? ((to.cpuSeconds - from.cpuSeconds) / wallSeconds) * 100 : 0;
}

/** The soft limit on open files of this process (children inherit it). */
export function openFilesLimit(): number {
  const limits = readFileSync("/proc/self/limits", "utf8");
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  if (!m) return 0;
  return m[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(m[1]);
}
