/**
 * Process and runtime gauges on /metrics: values that follow what the process really does (a
 * blocked event loop shows up in the lag gauges of that scrape window and not the next, CPU
 * time grows with work, open files with sockets), and the service exposes them.
 */
import { createServer, type Server } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMetrics } from "../src/metrics.ts";
import { registerRuntimeMetrics, type RuntimeMetrics } from "../src/runtime-metrics.ts";
import { startService, type RunningService } from "./support/service.ts";

/** The value of an unlabelled series in Prometheus text. */
function valueOf(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`${name} not in:\n${text}`);
  return Number(m[1]);
}

function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Keeps the event loop blocked, as a synchronous hot spot would.
  }
}

describe("registerRuntimeMetrics", () => {
  const metrics = createMetrics();
  let runtime: RuntimeMetrics;
  beforeAll(() => {
    runtime = registerRuntimeMetrics(metrics, { resolutionMs: 10 });
  });
  afterAll(() => runtime.close());

  it("renders every gauge with its type", () => {
    const text = metrics.render();
    for (const [name, type] of [
      ["process_cpu_seconds_total", "counter"],
      ["process_cpu_user_seconds_total", "counter"],
      ["process_cpu_system_seconds_total", "counter"],
      ["process_start_time_seconds", "gauge"],
      ["process_resident_memory_bytes", "gauge"],
      ["process_open_fds", "gauge"],
      ["process_max_fds", "gauge"],
      ["nodejs_heap_size_total_bytes", "gauge"],
      ["nodejs_heap_size_used_bytes", "gauge"],
      ["nodejs_external_memory_bytes", "gauge"],
      ["nodejs_eventloop_lag_p50_seconds", "gauge"],
      ["nodejs_eventloop_lag_p99_seconds", "gauge"],
      ["nodejs_eventloop_lag_max_seconds", "gauge"],
      ["nodejs_eventloop_utilization_ratio", "gauge"],
    ]) {
      expect(text, name).toContain(`# TYPE ${name} ${type}\n`);
      expect(Number.isFinite(valueOf(text, name!)), name).toBe(true);
    }
    const start = valueOf(text, "process_start_time_seconds");
    expect(start).toBeGreaterThan(Date.now() / 1000 - 3600);
    expect(start).toBeLessThanOrEqual(Date.now() / 1000);
    expect(valueOf(text, "nodejs_heap_size_used_bytes")).toBeLessThanOrEqual(valueOf(text, "nodejs_heap_size_total_bytes"));
    expect(valueOf(text, "process_resident_memory_bytes")).toBeGreaterThan(valueOf(text, "nodejs_heap_size_used_bytes") / 2);
    expect(valueOf(text, "process_open_fds")).toBeLessThanOrEqual(valueOf(text, "process_max_fds"));
  });

  it("shows a blocked event loop in the window of that scrape only", async () => {
    metrics.render(); // starts a fresh window
    await sleep(50);
    busyFor(150);
    await sleep(50); // the monitor records the stall on its next tick
    const blocked = metrics.render();
    expect(valueOf(blocked, "nodejs_eventloop_lag_max_seconds")).toBeGreaterThanOrEqual(0.12);
    expect(valueOf(blocked, "nodejs_eventloop_lag_p99_seconds")).toBeGreaterThanOrEqual(0.12);
    expect(valueOf(blocked, "nodejs_eventloop_utilization_ratio")).toBeGreaterThan(0.4);

    await sleep(200);
    const quiet = metrics.render();
    expect(valueOf(quiet, "nodejs_eventloop_lag_max_seconds")).toBeLessThan(0.12);
    expect(valueOf(quiet, "nodejs_eventloop_utilization_ratio")).toBeLessThan(0.5);
  });

  it("counts CPU time spent and file descriptors opened", async () => {
    const before = metrics.render();
    // 200 ms of CPU, not of wall time: on a busy machine the loop is also preempted.
    const cpuStart = process.cpuUsage();
    while (process.cpuUsage(cpuStart).user < 200_000) busyFor(5);
    const servers: Server[] = [];
    for (let i = 0; i < 5; i++) {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      servers.push(server);
    }
    const after = metrics.render();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    expect(valueOf(after, "process_cpu_seconds_total") - valueOf(before, "process_cpu_seconds_total")).toBeGreaterThanOrEqual(0.19);
    expect(valueOf(after, "process_cpu_user_seconds_total")).toBeGreaterThan(valueOf(before, "process_cpu_user_seconds_total"));
    expect(valueOf(after, "process_open_fds") - valueOf(before, "process_open_fds")).toBeGreaterThanOrEqual(5);
  });
});

describe("the service's /metrics", () => {
  let service: RunningService;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(() => service.close());

  it("includes the process and runtime gauges next to its own", async () => {
    const text = await (await fetch(`${service.baseUrl}/metrics`)).text();
    expect(valueOf(text, "process_resident_memory_bytes")).toBeGreaterThan(10 * 1024 * 1024);
    expect(valueOf(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(text).toContain("# TYPE nodejs_eventloop_lag_p99_seconds gauge\n");
    expect(text).toContain("# TYPE wsm_publish_queue_events gauge\n");
  });
});
