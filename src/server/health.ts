/**
 * Readiness of the process: named checks (e.g. "the Dapr sidecar answers") and a one-way
 * shutting-down flag. The gRPC health service, `/readyz` and `/healthz` all read this one
 * object, so they never disagree.
 */
import type { Logger } from "../logger.ts";
import { silentLogger } from "../logger.ts";

export interface HealthReport {
  /** True when every check passes and the process is not shutting down. */
  readonly serving: boolean;
  readonly shuttingDown: boolean;
  /** Names of the checks that failed (threw or returned false), in registration order. */
  readonly failing: readonly string[];
}

export type HealthListener = (report: HealthReport) => void;

export interface Health {
  /**
   * Registers a readiness check. It must be cheap and synchronous (read a flag that the
   * dependency maintains): it runs on every `/readyz`, every health Check and periodically while
   * someone watches. A check that throws counts as failing. Returns a function that removes it.
   */
  addCheck(name: string, check: () => boolean): () => void;
  /** Marks the process as shutting down: NOT_SERVING from now on, for good. */
  setShuttingDown(): void;
  readonly shuttingDown: boolean;
  /** Runs the checks now; tells watchers when the result differs from the last one. */
  evaluate(): HealthReport;
  /**
   * Calls `listener` after every change of `serving` (and once more at shutdown), until the
   * returned function is called. While anyone listens, checks also run every `checkIntervalMs`.
   */
  watch(listener: HealthListener): () => void;
  /** gRPC health service names this process answers for ("" is the whole server). */
  readonly serviceNames: readonly string[];
}

export interface HealthOptions {
  /** How often checks run while a Watch stream or other listener is open. Default 1000. */
  checkIntervalMs?: number;
  /**
   * gRPC health service names reported with the overall status. "" (the whole server) is
   * always included. Default ["virtufin.WebSocketManager"].
   */
  serviceNames?: readonly string[];
  /** Logs transitions (info) and throwing checks (warn). Default silent. */
  logger?: Logger;
}

interface Check {
  name: string;
  run: () => boolean;
}

export function createHealth(options: HealthOptions = {}): Health {
  const checkIntervalMs = options.checkIntervalMs ?? 1000;
  const logger = options.logger ?? silentLogger;
  const serviceNames = ["", ...(options.serviceNames ?? ["virtufin.WebSocketManager"]).filter((n) => n !== "")];
  const checks: Check[] = [];
  const listeners = new Set<HealthListener>();
  let shuttingDown = false;
  let last: HealthReport | undefined;
  let timer: NodeJS.Timeout | undefined;

  const runChecks = (): HealthReport => {
    const failing: string[] = [];
    for (const check of checks) {
      let ok: boolean;
      try {
        ok = check.run();
      } catch (err) {
        logger.warn("health check threw", { check: check.name, err });
        ok = false;
      }
      if (!ok) failing.push(check.name);
    }
    return { serving: !shuttingDown && failing.length === 0, shuttingDown, failing };
  };

  const evaluate = (): HealthReport => {
    const report = runChecks();
    const changed =
      last === undefined || last.serving !== report.serving || last.shuttingDown !== report.shuttingDown;
    const previous = last;
    last = report;
    if (changed && previous !== undefined) {
      logger.info("health changed", { serving: report.serving, failing: report.failing, shutting_down: shuttingDown });
      for (const listener of [...listeners]) listener(report);
    }
    return report;
  };

  const stopTimer = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };

  return {
    addCheck(name, run) {
      const check = { name, run };
      checks.push(check);
      evaluate();
      return () => {
        const i = checks.indexOf(check);
        if (i >= 0) checks.splice(i, 1);
        evaluate();
      };
    },
    setShuttingDown() {
      if (shuttingDown) return;
      shuttingDown = true;
      stopTimer();
      evaluate();
    },
    get shuttingDown() {
      return shuttingDown;
    },
    evaluate,
    watch(listener) {
      listeners.add(listener);
      if (last === undefined) evaluate();
      if (timer === undefined && !shuttingDown && checkIntervalMs > 0) {
        // Unref'd: a watcher must never be what keeps the process alive.
        timer = setInterval(evaluate, checkIntervalMs).unref();
      }
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) stopTimer();
      };
    },
    serviceNames,
  };
}
