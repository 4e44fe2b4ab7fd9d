/** The machine a run happened on, for the report header. */
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { fmtBytes } from "./stats.ts";

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memory: string;
  node: string;
  kernel: string;
  loadAverage: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  let model = list[0]?.model.trim() ?? "unknown";
  try {
    // Some virtual machines report a bare family name in os.cpus(); /proc/cpuinfo may say more.
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m && m[1]!.length > model.length) model = m[1]!.trim();
  } catch {
    // not Linux: keep os.cpus()
  }
  const mhz = list[0]?.speed ? ` @ ${list[0].speed} MHz` : "";
  return {
    cores: list.length,
    cpuModel: model + mhz,
    memory: fmtBytes(totalmem()),
    node: process.version,
    kernel: release(),
    loadAverage: loadavg().map((l) => l.toFixed(2)).join(" "),
  };
}
