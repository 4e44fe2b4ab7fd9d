/**
 * Every child process the bench starts is registered here, so that a crash or Ctrl-C of the
 * bench never leaves a service or load generator running.
 */
import type { ChildProcess } from "node:child_process";

const live = new Set<ChildProcess>();
let installed = false;

export function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!installed) {
    installed = true;
    process.once("exit", killAll);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        killAll();
        process.exit(130);
      });
    }
  }
}

function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
