/**
 * Real Dapr for tests: a redis-server and a daprd on free 127.0.0.1 ports, using the committed
 * component files in dapr/components (they read the Redis address from WSM_REDIS_HOST through
 * Dapr's envRef). Either process can be stopped and started again on the same ports, so fault
 * tests can kill the sidecar or the broker mid-stream. `readTopic` reads the topic's Redis stream
 * directly: proof of what reached the broker, not of what daprd said it did.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRespClient, type RespValue } from "./resp-client.ts";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const componentsDir = join(repoRoot, "dapr", "components");
const LOG_TAIL_CHARS = 8000;

export interface DaprHarnessOptions {
  /** Dapr app id. Default "websocketmanager". */
  appId?: string;
  /** Start daprd right away. false lets a test watch a publisher before the sidecar exists. Default true. */
  startDaprd?: boolean;
  /** Bounds each wait for redis-server or daprd to become ready. Default 30000. */
  startTimeoutMs?: number;
}

export interface StreamEntry {
  /** Redis stream entry id, e.g. "1712345678901-0"; ids increase in append order. */
  id: string;
  /** The entry's raw fields as Dapr's Redis component wrote them (data, metadata). */
  fields: Record<string, string>;
  /** `fields.data` parsed: the CloudEvent envelope as stored in the broker. */
  event: Record<string, unknown>;
}

export interface DaprHarness {
  readonly daprHttpPort: number;
  readonly redisPort: number;
  readonly appId: string;
  /** Starts daprd on the harness's ports and waits until /v1.0/healthz answers 204. */
  startDaprd(): Promise<void>;
  /** Kills daprd (SIGKILL: a crash, not a graceful stop) and waits for it to exit. */
  stopDaprd(): Promise<void>;
  /** Starts redis-server (empty: no persistence) and waits until it accepts commands. */
  startRedis(): Promise<void>;
  /** Kills redis-server and waits for it to exit. */
  stopRedis(): Promise<void>;
  /** Every entry of the topic's Redis stream, oldest first ([] when the stream does not exist). */
  readTopic(topic: string): Promise<StreamEntry[]>;
  /** Recent daprd output, for failure messages. */
  daprdLog(): string;
  /** Kills everything and removes temporary files. Idempotent. */
  close(): Promise<void>;
}

let daprdPathPromise: Promise<string> | undefined;

/**
 * Path of the trimmed daprd binary, built by scripts/build-daprd.sh on first use (minutes on a
 * cold machine; its progress goes to this process's stderr). The script returns at once when
 * the cached binary matches the sources.
 */
export function daprdPath(): Promise<string> {
  daprdPathPromise ??= new Promise<string>((resolve, reject) => {
    const child = spawn("bash", [join(repoRoot, "scripts", "build-daprd.sh")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.once("error", reject);
    child.once("exit", (code) => {
      const path = stdout.trim().split("\n").pop() ?? "";
      if (code === 0 && path) resolve(path);
      else reject(new Error(`scripts/build-daprd.sh failed with exit code ${code}`));
    });
  });
  return daprdPathPromise;
}

export async function startDaprHarness(options: DaprHarnessOptions = {}): Promise<DaprHarness> {
  const appId = options.appId ?? "websocketmanager";
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const daprd = await daprdPath();
  const workDir = await mkdtemp(join(tmpdir(), "wsm-dapr-"));
  const [redisPort, daprHttpPort, daprGrpcPort, daprInternalPort] = await freePorts(4);

  let redis: Managed | undefined;
  let sidecar: Managed | undefined;
  let closed = false;
  // A test run that dies without reaching close() must not leave servers behind.
  const killOnExit = () => {
    redis?.child.kill("SIGKILL");
    sidecar?.child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);

  const harness: DaprHarness = {
    daprHttpPort,
    redisPort,
    appId,

    async startRedis() {
      if (redis?.running()) return;
      const args = ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
      redis = startManaged("redis-server", [...args, "--dir", workDir, "--loglevel", "notice"], process.env);
      await redis.waitFor(
        () => Promise.resolve(redis!.output().includes("Ready to accept connections")),
        startTimeoutMs,
        "redis-server to accept connections",
      );
    },

    async stopRedis() {
      await redis?.kill();
    },

    async startDaprd() {
      if (sidecar?.running()) return;
      const args = [
        "--app-id", appId,
        "--mode", "standalone",
        "--dapr-http-port", String(daprHttpPort),
        "--dapr-grpc-port", String(daprGrpcPort),
        "--dapr-internal-grpc-port", String(daprInternalPort),
        "--dapr-listen-addresses", "127.0.0.1",
        "--dapr-internal-grpc-listen-address", "127.0.0.1",
        "--enable-metrics=false",
        "--resources-path", componentsDir,
        "--disable-builtin-k8s-secret-store",
        "--dapr-graceful-shutdown-seconds", "1",
        "--log-level", "info",
      ];
      const env = { ...hermeticEnv(), WSM_REDIS_HOST: `127.0.0.1:${redisPort}`, WSM_REDIS_PASSWORD: "" };
      sidecar = startManaged(daprd, args, env);
      await sidecar.waitFor(() => daprdHealthy(daprHttpPort), startTimeoutMs, "daprd /v1.0/healthz");
    },

    async stopDaprd() {
      await sidecar?.kill();
    },

    async readTopic(topic) {
      const client = await createRespClient({ port: redisPort });
      try {
        return parseStream(await client.command("XRANGE", topic, "-", "+"));
      } finally {
        client.close();
      }
    },

    daprdLog: () => sidecar?.output() ?? "",

    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([sidecar?.kill(), redis?.kill()]);
      process.removeListener("exit", killOnExit);
      await rm(workDir, { recursive: true, force: true });
    },
  };

  try {
    await harness.startRedis();
    if (options.startDaprd ?? true) await harness.startDaprd();
  } catch (err) {
    await harness.close();
    throw err;
  }
  return harness;
}

interface Managed {
  child: ChildProcess;
  running(): boolean;
  output(): string;
  /** Polls `ready` until true; fails early with the process's output if it exits first. */
  waitFor(ready: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void>;
  kill(): Promise<void>;
}

function startManaged(command: string, args: string[], env: NodeJS.ProcessEnv): Managed {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const append = (chunk: Buffer) => {
    log = (log + chunk.toString("utf8")).slice(-LOG_TAIL_CHARS);
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
    child.once("error", (err) => {
      append(Buffer.from(`spawn failed: ${err.message}\n`));
      exited = true;
      resolve();
    });
  });
  const name = command.split("/").pop();

  return {
    child,
    running: () => !exited,
    output: () => log,
    async waitFor(ready, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      // Polling is the only signal these servers give; 50 ms keeps start-up latency low.
      while (!exited) {
        if (await ready().catch(() => false)) return;
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${name} output:\n${log}`);
        }
        await Promise.race([exit, new Promise((r) => setTimeout(r, 50))]);
      }
      throw new Error(`${name} exited before ${what} was ready; output:\n${log}`);
    },
    async kill() {
      if (exited) return;
      child.kill("SIGKILL");
      await exit;
    },
  };
}

async function daprdHealthy(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/v1.0/healthz`, { signal: AbortSignal.timeout(1000) });
  await res.body?.cancel();
  return res.status === 204;
}

/** The caller's environment without Dapr's own variables, which would reconfigure daprd. */
function hermeticEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("DAPR_") && key !== "NAMESPACE") env[key] = value;
  }
  return env;
}

/**
 * Ports the OS reports free right now. All are held open together so that the same port is not
 * handed out twice; another process could still take one before it is used, which is the usual
 * accepted risk of this technique.
 */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(async (server) => {
        server.listen(0, "127.0.0.1");
        await once(server, "listening");
        return (server.address() as { port: number }).port;
      }),
    );
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** The entries of an XRANGE reply (or of one stream of an XREAD reply), oldest first. */
export function parseStream(reply: RespValue): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((raw) => {
    const [id, flat] = raw as [string, string[]];
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    return { id, fields, event: JSON.parse(fields.data ?? "null") as Record<string, unknown> };
  });
}
