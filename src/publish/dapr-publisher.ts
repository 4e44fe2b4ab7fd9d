/**
 * Publishes CloudEvents through a Dapr sidecar's HTTP API.
 *
 * The sidecar is called directly with an undici Pool rather than through @dapr/dapr: the SDK's
 * client start-up waits for the sidecar (we must never block start-up or RPCs on it), it
 * chooses content types itself (we need structured mode so Dapr keeps our envelope as is), and
 * it adds per-call work we do not need on the hot path.
 *
 * Events are published one request at a time, in order. Dapr's bulk publish API is not used:
 * for components without native bulk support (Redis Streams among them) daprd fans a bulk
 * request out as concurrent single publishes, so the broker may receive them out of order,
 * and a partial failure can leave holes that a "delivered prefix" cannot describe.
 *
 * A request that fails after it was sent (timeout, connection lost) may still have reached the
 * broker, so delivery is at least once; the per-connection sequence number in each event lets
 * consumers drop duplicates.
 */
import { Pool } from "undici";
import type { CloudEvent } from "./cloud-event.ts";
import { PublishError, type Publisher } from "./publisher.ts";
import { silentLogger, type Logger } from "../logger.ts";
import { createMetrics, type Metrics } from "../metrics.ts";
import { daprFailure, type DaprFailureContext } from "./dapr-failure.ts";

export interface DaprPublisherOptions {
  /** Port of the sidecar's HTTP API (what Dapr passes to apps as DAPR_HTTP_PORT). Required. */
  daprHttpPort: number;
  /** Host of the sidecar. Default "127.0.0.1". */
  daprHost?: string;
  /** Name of the Dapr pub/sub component. Default "pubsub". */
  pubsubName?: string;
  /** Upper bound for one request to the sidecar, from queueing to the end of the response. Default 5000. */
  requestTimeoutMs?: number;
  /** Pause between readiness probes of the sidecar. Default 2000. */
  probeIntervalMs?: number;
  /** Most keep-alive sockets open to the sidecar at once. Default 8. */
  connections?: number;
  /** Default: silent. */
  logger?: Logger;
  /** Registry for the wsm_dapr_* series. Default: a private registry nobody reads. */
  metrics?: Metrics;
}

const CLOUDEVENTS_JSON = "application/cloudevents+json";
const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Dapr's error bodies are small JSON objects; anything longer is cut for the error message. */
const MAX_ERROR_BODY_CHARS = 1024;

export function createDaprPublisher(options: DaprPublisherOptions): Publisher {
  const port = options.daprHttpPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`daprHttpPort must be an integer port number, got ${port}`);
  }
  const host = options.daprHost ?? "127.0.0.1";
  const pubsubName = options.pubsubName ?? "pubsub";
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const probeIntervalMs = options.probeIntervalMs ?? 2000;
  const logger = (options.logger ?? silentLogger).child({ component: "dapr-publisher" });
  const metrics = options.metrics ?? createMetrics();

  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const pool = new Pool(origin, {
    connections: options.connections ?? 8,
    connectTimeout: requestTimeoutMs,
    // daprd sets no idle timeout on its HTTP server, so long-lived sockets are safe to reuse.
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
  });
  const publishPathPrefix = `/v1.0/publish/${encodeURIComponent(pubsubName)}/`;

  const requests = metrics.counter(
    "wsm_dapr_publish_requests_total",
    "Publish requests to the Dapr sidecar, one per event, by result (ok or the failure reason).",
  );
  const okRequests = requests.labels({ result: "ok" });
  const latency = metrics.histogram(
    "wsm_dapr_publish_duration_seconds",
    "Time from sending a publish request to the Dapr sidecar until its answer, by outcome.",
    LATENCY_BUCKETS_SECONDS,
  );
  const okLatency = latency.labels({ outcome: "ok" });
  const errorLatency = latency.labels({ outcome: "error" });
  /** undefined until the first probe or publish has an answer, so that its outcome is logged. */
  let ready: boolean | undefined;
  metrics.gauge("wsm_dapr_sidecar_ready", "1 when the last probe or publish reached a healthy Dapr sidecar.", () => [
    { labels: { pubsub: pubsubName }, value: ready === true && !closed ? 1 : 0 },
  ]);

  let closed = false;
  let closing: Promise<void> | undefined;
  let probeTimer: NodeJS.Timeout | undefined;
  let probeAbort: AbortController | undefined;

  const setReady = (value: boolean, why: string) => {
    if (value === ready) return;
    ready = value;
    if (value) logger.info("dapr sidecar is ready", { origin });
    else logger.warn("dapr sidecar is not ready", { origin, reason: why });
  };

  /** One request under the per-request timeout and the caller's signal; returns status and body. */
  async function send(
    method: "GET" | "POST",
    path: string,
    body: string | undefined,
    signal: AbortSignal | undefined,
    context: DaprFailureContext,
  ): Promise<{ status: number; text: string }> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, requestTimeoutMs);
    const onCallerAbort = () => controller.abort();
    signal?.addEventListener("abort", onCallerAbort, { once: true });
    try {
      const res = await pool.request({
        method,
        path,
        body,
        headers: body === undefined ? undefined : { "content-type": CLOUDEVENTS_JSON },
        signal: controller.signal,
      });
      if (res.statusCode >= 200 && res.statusCode < 300) {
        await res.body.dump();
        return { status: res.statusCode, text: "" };
      }
      const text = (await res.body.text()).slice(0, MAX_ERROR_BODY_CHARS);
      return { status: res.statusCode, text };
    } catch (err) {
      throw daprFailure(err, { ...context, timedOut, timeoutMs: requestTimeoutMs, signal });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onCallerAbort);
    }
  }

  async function publishOne(topic: string, path: string, event: CloudEvent, index: number, signal?: AbortSignal): Promise<void> {
    const context: DaprFailureContext = { target: `${pubsubName}/${topic}`, deliveredCount: index };
    let body: string;
    try {
      body = JSON.stringify(event);
    } catch (err) {
      throw new PublishError(`event ${event.id} cannot be serialized: ${(err as Error).message}`, {
        retryable: false,
        reason: "invalid_event",
        deliveredCount: index,
        cause: err,
      });
    }
    const started = performance.now();
    let failure: PublishError | undefined;
    try {
      const res = await send("POST", path, body, signal, context);
      if (res.status >= 200 && res.status < 300) {
        okLatency.observe((performance.now() - started) / 1000);
        okRequests.inc();
        setReady(true, "");
        return;
      }
      failure = daprFailure({ status: res.status, body: res.text }, context);
    } catch (err) {
      failure = err as PublishError;
    }
    errorLatency.observe((performance.now() - started) / 1000);
    requests.inc({ result: failure.reason });
    if (failure.reason === "unreachable") setReady(false, failure.reason);
    if (failure.retryable) logger.debug("dapr publish failed", { topic, reason: failure.reason, error: failure.message });
    else logger.warn("dapr publish failed", { topic, reason: failure.reason, error: failure.message });
    throw failure;
  }

  async function probe(): Promise<void> {
    probeTimer = undefined;
    probeAbort = new AbortController();
    try {
      // The outbound endpoint answers 204 once components are initialised, without waiting for
      // an app channel: /v1.0/healthz would stay unhealthy while daprd waits for our own
      // readiness when this service is also its app, a circular wait.
      const res = await send("GET", "/v1.0/healthz/outbound", undefined, probeAbort.signal, {
        target: "healthz",
        deliveredCount: 0,
      });
      setReady(res.status >= 200 && res.status < 300, `healthz answered HTTP ${res.status}`);
    } catch (err) {
      if (!closed) setReady(false, (err as PublishError).reason);
    }
    if (!closed) {
      probeTimer = setTimeout(() => void probe(), probeIntervalMs);
      probeTimer.unref();
    }
  }
  // The first probe starts now but runs asynchronously: creating the publisher never waits.
  void probe();

  return {
    name: "dapr",

    async publish(topic, events, signal) {
      const path = topicPath(topic);
      if (path === undefined) {
        throw new PublishError(`topic ${JSON.stringify(topic)} has an empty, "." or ".." path segment`, {
          retryable: false,
          reason: "invalid_topic",
        });
      }
      for (let i = 0; i < events.length; i++) {
        if (closed) {
          throw new PublishError("dapr publisher is closed", { retryable: false, reason: "closed", deliveredCount: i });
        }
        if (signal?.aborted) throw daprFailure(signal.reason, { target: `${pubsubName}/${topic}`, deliveredCount: i, signal });
        await publishOne(topic, publishPathPrefix + path, events[i]!, i, signal);
      }
    },

    isReady: () => ready === true && !closed,

    close() {
      closing ??= (async () => {
        closed = true;
        clearTimeout(probeTimer);
        probeAbort?.abort();
        await pool.close();
      })();
      return closing;
    },
  };
}

/**
 * The topic as a URL path under /v1.0/publish/<pubsub>/. daprd percent-decodes the path (and
 * reads "+" as a space) but also normalises it: empty, "." and ".." segments vanish or climb.
 * Each segment is therefore percent-encoded, and topics that normalisation would change are
 * refused (undefined) instead of being published under another name.
 */
function topicPath(topic: string): string | undefined {
  const segments = topic.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) return undefined;
  return segments.map(encodeURIComponent).join("/");
}
