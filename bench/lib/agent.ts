/**
 * Load generators, bare baselines and local upstream servers run as separate pinned Node
 * processes ("agents"), controlled from the orchestrator over the Node IPC channel. An agent
 * module exports `createAgent()`, an object of async methods that each take one JSON
 * parameter object; `startAgent` gives a typed proxy to call them.
 */
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { stopChild, track } from "./children.ts";
import { spawnPinned } from "./pin.ts";
import { sampleProcess, type ProcSample } from "./proc.ts";

type AnyMethod = (params: never) => unknown;
type MethodName<A> = { [K in keyof A]: A[K] extends AnyMethod ? K : never }[keyof A] & string;
type ParamOf<F> = F extends (params: infer P) => unknown ? P : never;
type ResultOf<F> = F extends (params: never) => infer R ? Awaited<R> : never;

export interface AgentProcess<A> {
  readonly name: string;
  readonly pid: number;
  readonly core: number;
  call<K extends MethodName<A>>(method: K, params: ParamOf<A[K]>): Promise<ResultOf<A[K]>>;
  sample(): ProcSample;
  stop(): Promise<void>;
}

export interface StartAgentOptions {
  core: number;
  /** Extra flags of the agent's node process. */
  nodeArgs?: string[];
}

interface Reply {
  id?: number;
  ready?: boolean;
  ok?: boolean;
  result?: unknown;
  error?: string;
}

const AGENT_MAIN = fileURLToPath(new URL("./agent-main.ts", import.meta.url));

export async function startAgent<A>(name: string, module: URL, options: StartAgentOptions): Promise<AgentProcess<A>> {
  const child: ChildProcess = spawnPinned(options.core, process.execPath, [...(options.nodeArgs ?? []), AGENT_MAIN, fileURLToPath(module)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  track(child);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; method: string }>();
  let nextId = 1;
  let exited = false;

  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`agent ${name} exited with code ${code} before it was ready`));
    child.once("exit", onExit);
    child.on("message", function onReady(m: Reply) {
      if (m.ready) {
        child.off("message", onReady);
        child.off("exit", onExit);
        resolve();
      }
    });
  });

  child.on("message", (m: Reply) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`agent ${name}.${p.method} failed: ${m.error}`));
  });
  child.once("exit", (code, signal) => {
    exited = true;
    for (const p of pending.values()) p.reject(new Error(`agent ${name} exited (${code ?? signal}) during ${p.method}`));
    pending.clear();
  });

  return {
    name,
    pid: child.pid!,
    core: options.core,
    call(method, params) {
      if (exited) return Promise.reject(new Error(`agent ${name} is not running`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, method });
        child.send({ id, method, params });
      });
    },
    sample: () => sampleProcess(child.pid!),
    async stop() {
      if (exited) return;
      child.disconnect();
      await stopChild(child, 3000);
    },
  };
}
