/**
 * Process and Node runtime gauges for /metrics, under the names Prometheus client libraries
 * use (process_*, nodejs_*), so that existing dashboards and alerts apply: CPU, memory, open
 * files, event-loop delay and utilisation. Everything is read when /metrics is scraped; the only
 * standing cost is the event-loop delay monitor, a libuv timer every `resolutionMs`.
 *
 * Event-loop delay quantiles and utilisation cover the window since the previous scrape (then
 * reset), as prom-client does: a scrape every 15 s shows the worst stall of those 15 s, which a
 * since-start figure would dilute into nothing after a day.
 */
import { readdirSync, readFileSync } from "node:fs";
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from "node:perf_hooks";
import type { Metrics } from "./metrics.ts";

export interface RuntimeMetricsOptions {
  /** Sampling interval of the event-loop delay monitor. Default 20. */
  resolutionMs?: number;
}

export interface RuntimeMetrics {
  /** Stops the event-loop delay monitor (the gauges then read 0). */
  close(): void;
}

const NS_PER_S = 1e9;

export function registerRuntimeMetrics(metrics: Metrics, options: RuntimeMetricsOptions = {}): RuntimeMetrics {
  const delay = monitorEventLoopDelay({ resolution: options.resolutionMs ?? 20 });
  delay.enable();
  let utilisationMark: EventLoopUtilization = performance.eventLoopUtilization();
  const startTimeSeconds = performance.timeOrigin / 1000;

  metrics.counter("process_cpu_user_seconds_total", "User CPU time of this process.", () => [{ value: process.cpuUsage().user / 1e6 }]);
  metrics.counter("process_cpu_system_seconds_total", "System CPU time of this process.", () => [{ value: process.cpuUsage().system / 1e6 }]);
  metrics.counter("process_cpu_seconds_total", "User and system CPU time of this process.", () => {
    const { user, system } = process.cpuUsage();
    return [{ value: (user + system) / 1e6 }];
  });
  metrics.gauge("process_start_time_seconds", "Start of this process, seconds since the Unix epoch.", () => [{ value: startTimeSeconds }]);
  metrics.gauge("process_resident_memory_bytes", "Resident set size.", () => [{ value: process.memoryUsage.rss() }]);

  metrics.gauge("nodejs_heap_size_total_bytes", "V8 heap size.", () => [{ value: process.memoryUsage().heapTotal }]);
  metrics.gauge("nodejs_heap_size_used_bytes", "V8 heap in use.", () => [{ value: process.memoryUsage().heapUsed }]);
  metrics.gauge("nodejs_external_memory_bytes", "Memory of C++ objects bound to JavaScript objects, buffers included.", () => [
    { value: process.memoryUsage().external },
  ]);

  const fds = openFileDescriptors();
  if (fds !== undefined) {
    metrics.gauge("process_open_fds", "Open file descriptors (sockets included).", () => [{ value: openFileDescriptors() ?? 0 }]);
    metrics.gauge("process_max_fds", "Soft limit of open file descriptors (absent when unlimited).", () => {
      const max = maxFileDescriptors();
      return max === undefined ? [] : [{ value: max }];
    });
  }

  // Read in this order at each scrape: p50, p99, max, then the window resets.
  const lagQuantile = (q: number) => () => [{ value: delay.count ? delay.percentile(q) / NS_PER_S : 0 }];
  metrics.gauge("nodejs_eventloop_lag_p50_seconds", "Median event-loop delay since the previous scrape.", lagQuantile(50));
  metrics.gauge("nodejs_eventloop_lag_p99_seconds", "99th percentile event-loop delay since the previous scrape.", lagQuantile(99));
  metrics.gauge("nodejs_eventloop_lag_max_seconds", "Longest event-loop delay since the previous scrape.", () => {
    const value = delay.count ? delay.max / NS_PER_S : 0;
    delay.reset();
    return [{ value }];
  });
  metrics.gauge("nodejs_eventloop_utilization_ratio", "Share of time the event loop was busy since the previous scrape (0 to 1).", () => {
    const now = performance.eventLoopUtilization();
    const value = performance.eventLoopUtilization(now, utilisationMark).utilization;
    utilisationMark = now;
    return [{ value: Number.isFinite(value) ? value : 0 }];
  });

  return { close: () => delay.disable() };
}

/** Entries of /proc/self/fd, less the one readdir itself holds; undefined off Linux. */
function openFileDescriptors(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length - 1;
  } catch {
    return undefined;
  }
}

/** The soft "Max open files" limit from /proc/self/limits; undefined when unknown or unlimited. */
function maxFileDescriptors(): number | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}
