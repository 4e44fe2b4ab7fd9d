/**
 * The entry point of an agent process: `node agent-main.ts <module>`. Loads the module, builds
 * its agent and serves method calls from the parent over IPC. Exits when the parent goes away.
 */
import { pathToFileURL } from "node:url";

type Methods = Record<string, (params: unknown) => unknown>;

const modulePath = process.argv[2];
if (!modulePath || !process.send) {
  process.stderr.write("usage: node agent-main.ts <agent module> (started by bench/lib/agent.ts with an IPC channel)\n");
  process.exit(2);
}

const mod = (await import(pathToFileURL(modulePath).href)) as { createAgent(): Methods };
const agent = mod.createAgent();

process.on("message", (m: { id: number; method: string; params: unknown }) => {
  const method = agent[m.method];
  const run = async () => {
    if (typeof method !== "function") throw new Error(`no method ${m.method}`);
    return await method.call(agent, m.params);
  };
  run().then(
    (result) => process.send!({ id: m.id, ok: true, result }),
    (err: unknown) => process.send!({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
// The orchestrator died or is done: never outlive it.
process.on("disconnect", () => process.exit(0));
process.send({ ready: true });
