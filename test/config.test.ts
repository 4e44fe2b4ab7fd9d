import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, OPTIONS, parseConfig } from "../src/config.ts";

function cfg(argv: string[], env: Record<string, string> = {}) {
  const r = parseConfig(argv, env);
  if (r.kind !== "config") throw new Error("expected a config");
  return r.config;
}

describe("configuration", () => {
  it("has the SPEC defaults", () => {
    const c = cfg([], {});
    expect(c).toMatchObject({
      port: 5002,
      pubsubName: "pubsub",
      stateStoreName: "statestore",
      lifecycleTopic: "websocketmanager.lifecycle",
      sendTimeoutMs: 10_000,
      handshakeTimeoutMs: 10_000,
      reconnectBaseDelayMs: 1000,
      reconnectMaxDelayMs: 30_000,
      reconnectMaxAttempts: 0,
      pingIntervalMs: 15_000,
      pongTimeoutMs: 10_000,
      daprHttpPort: 0,
      logLevel: "info",
      publishQueueBytes: 16 * 1024 * 1024,
      publishQueueTotalBytes: 256 * 1024 * 1024,
    });
    expect(c.instanceId).toMatch(/^wsm-[0-9a-f]{8}$/);
  });

  it("takes a flag over an environment variable over the default", () => {
    expect(cfg([], { WSM_PORT: "6000" }).port).toBe(6000);
    expect(cfg(["--port", "7000"], { WSM_PORT: "6000" }).port).toBe(7000);
    expect(cfg(["-p", "7001"]).port).toBe(7001);
    expect(cfg(["--port=7002"]).port).toBe(7002);
    expect(cfg([], { DAPR_HTTP_PORT: "3500" }).daprHttpPort).toBe(3500);
    expect(cfg([], { HOSTNAME: "pod-7" }).instanceId).toBe("pod-7");
    expect(cfg(["--instance-id", "x"], { HOSTNAME: "pod-7" }).instanceId).toBe("x");
    expect(cfg(["--cors-origins", "https://a.example, https://b.example"]).corsOrigins).toEqual(["https://a.example", "https://b.example"]);
    expect(cfg(["--block-private-addresses"]).blockPrivateAddresses).toBe(true);
    expect(cfg(["--no-console"]).console).toBe(false);
    expect(cfg(["--console=false"]).console).toBe(false);
    expect(cfg([], { WSM_CONSOLE: "off" }).console).toBe(false);
    expect(cfg([], { WSM_PUBLISH_QUEUE_TOTAL_BYTES: "1048576" }).publishQueueTotalBytes).toBe(1048576);
    expect(cfg(["--publish-queue-total-bytes", "2048"], { WSM_PUBLISH_QUEUE_TOTAL_BYTES: "1048576" }).publishQueueTotalBytes).toBe(2048);
  });

  it("rejects invalid values with a message naming the option", () => {
    const bad: Array<[string[], Record<string, string>, RegExp]> = [
      [["--port", "70000"], {}, /--port "70000".*65535/],
      [["--port", "abc"], {}, /--port "abc"/],
      [[], { WSM_PORT: "-1" }, /WSM_PORT=/],
      [["--log-level", "loud"], {}, /log-level/],
      [["--bogus"], {}, /unknown option --bogus/],
      [["--port"], {}, /needs a value/],
      [["--tls-cert", "a.pem"], {}, /together/],
      [["--send-timeout-ms", "0"], {}, /at least 1/],
      [["--publish-queue-total-bytes", "1000"], {}, /at least 1024/],
      [["--block-private-addresses=maybe"], {}, /true or false/],
      [["stray"], {}, /unexpected argument/],
    ];
    for (const [argv, env, pattern] of bad) {
      expect(() => parseConfig(argv, env), argv.join(" ")).toThrow(ConfigError);
      expect(() => parseConfig(argv, env)).toThrow(pattern);
    }
  });

  it("lists every option in --help", () => {
    const r = parseConfig(["--help"], {});
    expect(r.kind).toBe("help");
    const text = r.kind === "help" ? r.text : "";
    for (const o of OPTIONS) {
      expect(text).toContain(`--${o.flag}`);
      expect(text).toContain(o.env);
    }
  });

  it("main exits 1 with a clear message on stderr for a bad value, and prints --help", () => {
    const bad = spawnSync(process.execPath, ["src/main.ts", "--port", "nope"], { encoding: "utf8", timeout: 20_000 });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/websocketmanager: invalid --port "nope"/);
    const help = spawnSync(process.execPath, ["src/main.ts", "--help"], { encoding: "utf8", timeout: 20_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("--pubsub-name");
  });

  it("README's configuration table lists every option with its variable and default", () => {
    const readme = readFileSync("README.md", "utf8");
    for (const o of OPTIONS) {
      const row = readme.split("\n").find((l) => l.includes(`\`--${o.flag}\``));
      expect(row, `README row for --${o.flag} (run scripts/update-readme.sh)`).toBeDefined();
      expect(row).toContain(`\`${o.env}\``);
      expect(row).toContain(o.default === "" ? "none" : `\`${o.default}\``);
    }
  });
});
