/**
 * Configuration: command-line flag over environment variable over default. Every option is
 * declared once in `OPTIONS`; `--help` is generated from the same table, so the two cannot
 * drift apart. Parsing is pure (argv and env in, config or error out): only main.ts touches
 * process.argv, process.env and process.exit.
 */
import { randomBytes } from "node:crypto";
import { isLogLevel, type LogLevel } from "./logger.ts";

export interface Config {
  port: number;
  host: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  daprHttpPort: number;
  daprHost: string;
  pubsubName: string;
  daprConnections: number;
  daprPipelining: number;
  daprBulkUnordered: boolean;
  stateStoreName: string;
  lifecycleTopic: string;
  instanceId: string;
  logLevel: LogLevel;
  corsOrigins: string[];
  blockPrivateAddresses: boolean;
  allowedHosts: string[];
  authToken: string;
  upstreamCaFile: string;
  sendTimeoutMs: number;
  handshakeTimeoutMs: number;
  reconnectBaseDelayMs: number;
  reconnectMaxDelayMs: number;
  reconnectMaxAttempts: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  staleTimeoutMs: number;
  maxConnections: number;
  maxMessageBytes: number;
  maxFrameBytes: number;
  maxBufferedBytes: number;
  maxConcurrentStreams: number;
  publishQueueMessages: number;
  publishQueueBytes: number;
  publishQueueTotalBytes: number;
  publishTimeoutMs: number;
  publishMaxAttempts: number;
  shutdownTimeoutMs: number;
  http1HeadersTimeoutMs: number;
  http1RequestTimeoutMs: number;
  idleTimeoutMs: number;
  console: boolean;
}

type Kind = "port" | "int" | "string" | "bool" | "list" | "level";

interface OptionSpec {
  key: keyof Config;
  flag: string;
  short?: string;
  env: string;
  kind: Kind;
  default: string;
  help: string;
  /** Smallest allowed value of an int. */
  min?: number;
}

const MiB = 1024 * 1024;

export const OPTIONS: readonly OptionSpec[] = [
  { key: "port", flag: "port", short: "p", env: "WSM_PORT", kind: "port", default: "5002", help: "Port of the one listener (gRPC, gRPC-Web, Connect, HTTP). 0 picks a free port." },
  { key: "host", flag: "host", env: "WSM_HOST", kind: "string", default: "127.0.0.1", help: "Address to bind; 0.0.0.0 or :: to accept from other machines." },
  { key: "tlsCertFile", flag: "tls-cert", env: "WSM_TLS_CERT", kind: "string", default: "", help: "PEM certificate file; with --tls-key, serves TLS (h2 and http/1.1 by ALPN)." },
  { key: "tlsKeyFile", flag: "tls-key", env: "WSM_TLS_KEY", kind: "string", default: "", help: "PEM private key file." },
  { key: "daprHttpPort", flag: "dapr-http-port", env: "DAPR_HTTP_PORT", kind: "port", default: "0", help: "HTTP port of the Dapr sidecar; 0 or unset: in-process publisher, no Dapr." },
  { key: "daprHost", flag: "dapr-host", env: "DAPR_HOST", kind: "string", default: "127.0.0.1", help: "Host of the Dapr sidecar." },
  { key: "pubsubName", flag: "pubsub-name", env: "WSM_PUBSUB_NAME", kind: "string", default: "pubsub", help: "Dapr pub/sub component name." },
  { key: "daprConnections", flag: "dapr-connections", env: "WSM_DAPR_CONNECTIONS", kind: "int", default: "8", min: 1, help: "Keep-alive connections to the sidecar; each carries one publish batch at a time." },
  { key: "daprPipelining", flag: "dapr-pipelining", env: "WSM_DAPR_PIPELINING", kind: "int", default: "32", min: 1, help: "Publish requests in flight on one sidecar connection (HTTP/1.1 pipelining, order kept); 1 waits for each answer." },
  { key: "daprBulkUnordered", flag: "dapr-bulk-unordered", env: "WSM_DAPR_BULK_UNORDERED", kind: "bool", default: "true", help: "Unordered connections publish with Dapr's bulk API (one request per batch, stored in any order); false: one request per event." },
  { key: "stateStoreName", flag: "state-store-name", env: "WSM_STATE_STORE_NAME", kind: "string", default: "statestore", help: "Dapr state store component name (multi-instance phase)." },
  { key: "lifecycleTopic", flag: "lifecycle-topic", env: "WSM_LIFECYCLE_TOPIC", kind: "string", default: "websocketmanager.lifecycle", help: "Topic of connection lifecycle events." },
  { key: "instanceId", flag: "instance-id", env: "WSM_INSTANCE_ID", kind: "string", default: "", help: "Id of this instance; default $HOSTNAME, else a random id." },
  { key: "logLevel", flag: "log-level", env: "WSM_LOG_LEVEL", kind: "level", default: "info", help: "debug, info, warn, error or silent." },
  { key: "corsOrigins", flag: "cors-origins", env: "WSM_CORS_ORIGINS", kind: "list", default: "", help: "Comma-separated origins allowed by CORS (* for any); empty: CORS off." },
  { key: "blockPrivateAddresses", flag: "block-private-addresses", env: "WSM_BLOCK_PRIVATE_ADDRESSES", kind: "bool", default: "false", help: "Refuse upstreams on private and loopback addresses (link-local and metadata are always refused)." },
  { key: "allowedHosts", flag: "allowed-hosts", env: "WSM_ALLOWED_HOSTS", kind: "list", default: "", help: "Comma-separated upstream hosts allowed (*.example.com for subdomains); empty: any." },
  { key: "authToken", flag: "auth-token", env: "WSM_AUTH_TOKEN", kind: "string", default: "", help: "Bearer token required by every RPC but health; empty: no auth." },
  { key: "upstreamCaFile", flag: "upstream-ca", env: "WSM_UPSTREAM_CA", kind: "string", default: "", help: "PEM file of extra CA certificates trusted for wss:// upstreams." },
  { key: "sendTimeoutMs", flag: "send-timeout-ms", env: "WSM_SEND_TIMEOUT_MS", kind: "int", default: "10000", min: 1, help: "Send reply timeout when the request gives 0." },
  { key: "handshakeTimeoutMs", flag: "handshake-timeout-ms", env: "WSM_HANDSHAKE_TIMEOUT_MS", kind: "int", default: "10000", min: 1, help: "WebSocket opening handshake timeout." },
  { key: "reconnectBaseDelayMs", flag: "reconnect-base-delay-ms", env: "WSM_RECONNECT_BASE_DELAY_MS", kind: "int", default: "1000", min: 1, help: "First reconnect delay (doubles per attempt, with jitter)." },
  { key: "reconnectMaxDelayMs", flag: "reconnect-max-delay-ms", env: "WSM_RECONNECT_MAX_DELAY_MS", kind: "int", default: "30000", min: 1, help: "Reconnect delay cap." },
  { key: "reconnectMaxAttempts", flag: "reconnect-max-attempts", env: "WSM_RECONNECT_MAX_ATTEMPTS", kind: "int", default: "0", min: 0, help: "Reconnect attempts before giving up; 0: unlimited." },
  { key: "pingIntervalMs", flag: "ping-interval-ms", env: "WSM_PING_INTERVAL_MS", kind: "int", default: "15000", min: 0, help: "WebSocket ping interval; 0 disables." },
  { key: "pongTimeoutMs", flag: "pong-timeout-ms", env: "WSM_PONG_TIMEOUT_MS", kind: "int", default: "10000", min: 0, help: "No pong within this time means the connection is dead." },
  { key: "staleTimeoutMs", flag: "stale-timeout-ms", env: "WSM_STALE_TIMEOUT_MS", kind: "int", default: "0", min: 0, help: "No inbound frame for this long means dead; 0 disables." },
  { key: "maxConnections", flag: "max-connections", env: "WSM_MAX_CONNECTIONS", kind: "int", default: "10000", min: 1, help: "Connections held at once." },
  { key: "maxMessageBytes", flag: "max-message-bytes", env: "WSM_MAX_MESSAGE_BYTES", kind: "int", default: String(4 * MiB), min: 1024, help: "Largest RPC message." },
  { key: "maxFrameBytes", flag: "max-frame-bytes", env: "WSM_MAX_FRAME_BYTES", kind: "int", default: String(4 * MiB), min: 1024, help: "Largest upstream WebSocket frame, either direction." },
  { key: "maxBufferedBytes", flag: "max-buffered-bytes", env: "WSM_MAX_BUFFERED_BYTES", kind: "int", default: String(8 * MiB), min: 1024, help: "Upstream write buffer limit; writes beyond fail with RESOURCE_EXHAUSTED." },
  { key: "maxConcurrentStreams", flag: "max-concurrent-streams", env: "WSM_MAX_CONCURRENT_STREAMS", kind: "int", default: "1000", min: 1, help: "HTTP/2 streams per client connection." },
  { key: "publishQueueMessages", flag: "publish-queue-messages", env: "WSM_PUBLISH_QUEUE_MESSAGES", kind: "int", default: "10000", min: 1, help: "Frames queued per connection before the oldest is dropped." },
  { key: "publishQueueBytes", flag: "publish-queue-bytes", env: "WSM_PUBLISH_QUEUE_BYTES", kind: "int", default: String(16 * MiB), min: 1024, help: "Bytes queued per connection before the oldest is dropped." },
  { key: "publishQueueTotalBytes", flag: "publish-queue-total-bytes", env: "WSM_PUBLISH_QUEUE_TOTAL_BYTES", kind: "int", default: String(256 * MiB), min: 1024, help: "Bytes queued or in flight across all connections; beyond, the connection with the most bytes waiting drops its oldest." },
  { key: "publishTimeoutMs", flag: "publish-timeout-ms", env: "WSM_PUBLISH_TIMEOUT_MS", kind: "int", default: "5000", min: 1, help: "Bound of one publish call to the broker." },
  { key: "publishMaxAttempts", flag: "publish-max-attempts", env: "WSM_PUBLISH_MAX_ATTEMPTS", kind: "int", default: "5", min: 1, help: "Attempts per batch for retryable publish failures." },
  { key: "shutdownTimeoutMs", flag: "shutdown-timeout-ms", env: "WSM_SHUTDOWN_TIMEOUT_MS", kind: "int", default: "10000", min: 1, help: "Hard deadline of a graceful shutdown." },
  { key: "http1HeadersTimeoutMs", flag: "headers-timeout-ms", env: "WSM_HEADERS_TIMEOUT_MS", kind: "int", default: "10000", min: 1, help: "Time a new client connection has to send its first bytes and an HTTP/1 request its headers (slow clients)." },
  { key: "http1RequestTimeoutMs", flag: "request-timeout-ms", env: "WSM_REQUEST_TIMEOUT_MS", kind: "int", default: "60000", min: 1, help: "Time an HTTP/1 request has to arrive completely, body included." },
  { key: "idleTimeoutMs", flag: "idle-timeout-ms", env: "WSM_IDLE_TIMEOUT_MS", kind: "int", default: "60000", min: 1, help: "Idle HTTP/1 keep-alive connections and HTTP/2 sessions without streams close after this." },
  { key: "console", flag: "console", env: "WSM_CONSOLE", kind: "bool", default: "true", help: "Serve the web console at /; --console=false disables it." },
];

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export type ParseResult = { kind: "config"; config: Config } | { kind: "help"; text: string };

function convert(spec: OptionSpec, raw: string, source: string): unknown {
  const where = `${source} ${JSON.stringify(raw)}`;
  switch (spec.kind) {
    case "string":
      return raw;
    case "list":
      return raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "");
    case "bool": {
      const v = raw.toLowerCase();
      if (["true", "1", "yes", "on", ""].includes(v)) return true;
      if (["false", "0", "no", "off"].includes(v)) return false;
      throw new ConfigError(`invalid ${where}: expected true or false`);
    }
    case "level":
      if (!isLogLevel(raw)) throw new ConfigError(`invalid ${where}: expected debug, info, warn, error or silent`);
      return raw;
    case "port":
    case "int": {
      if (!/^\d+$/.test(raw)) throw new ConfigError(`invalid ${where}: expected a whole number`);
      const n = Number(raw);
      if (spec.kind === "port" && n > 65535) throw new ConfigError(`invalid ${where}: a port is at most 65535`);
      if (!Number.isSafeInteger(n) || n > 2 ** 31 - 1) throw new ConfigError(`invalid ${where}: too large`);
      if (spec.min !== undefined && n < spec.min) throw new ConfigError(`invalid ${where}: must be at least ${spec.min}`);
      return n;
    }
  }
}

export function helpText(): string {
  const lines = [
    "Usage: websocketmanager [options]",
    "",
    "Holds outbound WebSocket connections for other programs; gRPC, gRPC-Web and Connect on one port.",
    "Each option: --flag (environment variable), default. A flag wins over the variable.",
    "",
  ];
  for (const o of OPTIONS) {
    const flag = (o.short ? `-${o.short}, ` : "    ") + `--${o.flag}` + (o.kind === "bool" ? "[=true|false]" : " <value>");
    lines.push(`  ${flag}`);
    lines.push(`        ${o.help} (${o.env}, default: ${o.default === "" ? "none" : o.default})`);
  }
  lines.push("  -h, --help", "        Show this help.");
  return lines.join("\n") + "\n";
}

export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const byFlag = new Map<string, OptionSpec>();
  for (const o of OPTIONS) {
    byFlag.set(o.flag, o);
    if (o.short) byFlag.set(o.short, o);
  }
  const fromFlags = new Map<keyof Config, { raw: string; source: string }>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help") return { kind: "help", text: helpText() };
    const m = /^(--?)([A-Za-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!m || (m[1] === "-" && m[2]!.length !== 1) || (m[1] === "--" && m[2]!.length === 1)) {
      throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}; see --help`);
    }
    let name = m[2]!;
    let inline = m[3];
    let negated = false;
    if (!byFlag.has(name) && name.startsWith("no-") && byFlag.get(name.slice(3))?.kind === "bool") {
      name = name.slice(3);
      negated = true;
    }
    const spec = byFlag.get(name);
    if (!spec) throw new ConfigError(`unknown option ${m[1]}${m[2]}; see --help`);
    if (spec.kind === "bool") {
      if (negated) {
        if (inline !== undefined) throw new ConfigError(`--no-${name} takes no value`);
        inline = "false";
      }
      fromFlags.set(spec.key, { raw: inline ?? "true", source: `--${spec.flag}` });
      continue;
    }
    if (inline === undefined) {
      if (i + 1 >= argv.length) throw new ConfigError(`option --${spec.flag} needs a value`);
      inline = argv[++i]!;
    }
    fromFlags.set(spec.key, { raw: inline, source: `--${spec.flag}` });
  }

  const config = {} as Record<keyof Config, unknown>;
  for (const o of OPTIONS) {
    const flag = fromFlags.get(o.key);
    const envValue = env[o.env];
    if (flag) config[o.key] = convert(o, flag.raw, flag.source);
    else if (envValue !== undefined && envValue !== "") config[o.key] = convert(o, envValue, `${o.env}=`);
    else config[o.key] = convert(o, o.default, "default");
  }
  const c = config as unknown as Config;
  if (c.instanceId === "") c.instanceId = env.HOSTNAME || `wsm-${randomBytes(4).toString("hex")}`;
  if ((c.tlsCertFile === "") !== (c.tlsKeyFile === "")) throw new ConfigError("--tls-cert and --tls-key must be given together");
  if (c.reconnectMaxDelayMs < c.reconnectBaseDelayMs) {
    throw new ConfigError("--reconnect-max-delay-ms must be at least --reconnect-base-delay-ms");
  }
  if (c.maxFrameBytes > c.maxMessageBytes * 2) {
    // A frame larger than an RPC message could never reach a caller whole.
    throw new ConfigError("--max-frame-bytes may be at most twice --max-message-bytes");
  }
  return { kind: "config", config: c };
}

/** Defaults for tests and embedding: parse of an empty command line and environment. */
export function defaultConfig(overrides: Partial<Config> = {}): Config {
  const r = parseConfig([], {});
  if (r.kind !== "config") throw new Error("unreachable");
  return { ...r.config, ...overrides };
}
