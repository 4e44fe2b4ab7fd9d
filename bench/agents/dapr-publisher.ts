/**
 * Runs bench/dapr-publish.ts (the Dapr publisher against a real daprd + Redis) in its own
 * process with the bench's pinning: `start` launches daprd and redis-server while this process
 * is still on the load core (they inherit it), then moves this process, the publisher, to the
 * service core. Every `run` reuses that harness (each run publishes to fresh topics).
 */
import type { DaprPublishBenchOptions } from "../dapr-publish.ts";
import type { DaprHarness } from "../../test/support/dapr-harness.ts";
import { pinSelf, SERVICE_CORE } from "../lib/pin.ts";

type Options = Omit<DaprPublishBenchOptions, "harness" | "log" | "createPublisher">;

export function createAgent() {
  let harness: DaprHarness | undefined;
  const log = (line: string) => process.stderr.write(`[dapr-publish] ${line}\n`);
  return {
    async start(_: object) {
      const { startDaprHarness } = await import("../../test/support/dapr-harness.ts");
      harness = await startDaprHarness();
      pinSelf(SERVICE_CORE);
      return { daprHttpPort: harness.daprHttpPort };
    },
    async run(p: { options: Options }) {
      if (!harness) throw new Error("start first");
      const { runDaprPublishBench } = await import("../dapr-publish.ts");
      return runDaprPublishBench({ ...p.options, harness, log: process.env.WSM_BENCH_VERBOSE ? log : undefined });
    },
    async close(_: object) {
      await harness?.close();
      harness = undefined;
      return {};
    },
  };
}

export type DaprPublisherAgent = ReturnType<typeof createAgent>;
