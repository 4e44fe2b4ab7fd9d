/**
 * Publishes CloudEvents through a Dapr sidecar's HTTP API, one POST per event in structured
 * mode (Dapr keeps our envelope and only adds its routing and tracing attributes).
 *
 * Order without a round trip per event: each publish call leases one of `connections`
 * keep-alive connections for itself and pipelines its events on it (HTTP/1.1, up to
 * `pipelining` requests unanswered). daprd's Go HTTP server handles the requests of one
 * connection strictly one after the other, so the broker receives them in the order written;
 * the answers come back in the same order. Concurrent calls (other connections' channels, an
 * unordered channel's batches) use other connections and run in parallel inside daprd.
 * Checked with a real daprd and Redis: thousands of pipelined events per topic, on
 * several topics at once, land in each Redis stream in exactly the order sent
 * (test/dapr-publisher.test.ts, bench/dapr-publish.ts).
 *
 * What Dapr offers otherwise does not keep order: the bulk publish API fans a request out as
 * concurrent single publishes for brokers without native bulk support (Redis among them), and
 * HTTP/2 (h2c, which daprd accepts) or gRPC run every request in its own goroutine.
 *
 * That reordering is harmless where the caller does not need order (an unordered channel,
 * `ordered: false`): such a call goes out as bulk publishes (`bulkUnordered`, on by default),
 * one request per up to 1 MiB of events instead of one per event. The per-event HTTP exchange
 * is most of what a publish costs this process (a request to write, an answer to read and a
 * wake-up for each), so this is the fast path. daprd answers 204, or 500 with the entries that
 * failed; the others were stored, and since the pipeline retries the call from its first
 * undelivered event, they are counted as stored ahead and stored again: at least once, as for
 * pipelined single publishes.
 *
 * Failures (see pipelined-batch.ts): `deliveredCount` is the leading run of acknowledged
 * events. When the sidecar rejects event k but acknowledges some already pipelined events
 * after it, those were stored ahead of k; they are counted (wsm_dapr_publish_stored_ahead_total),
 * logged with their sequence numbers and named in the error, and the pipeline's retry from k
 * stores them again after k: consumers see k late and the others twice, never a silent gap.
 * A retry, recognised by its first event being the one that failed, sends that event alone
 * and pipelines the rest only once it was acknowledged, so an event the sidecar keeps
 * rejecting does not store its successors again on every attempt. A request that fails after
 * it was written (timeout, connection lost) may still have reached the broker: delivery is at
 * least once, and the per-connection sequence number lets consumers drop duplicates.
 */
import { type CloudEvent } from "./cloud-event.ts";
import { PublishError } from "./publisher.ts";
import type { JsonPublisher } from "./json-publisher.ts";
import { silentLogger, type Logger } from "../logger.ts";
import { createMetrics, type Metrics } from "../metrics.ts";
import { daprFailure, type DaprFailureContext } from "./dapr-failure.ts";
import { Http1Connection } from "./http1-connection.ts";
import { runPipelinedBatch, type BatchFailure, type BatchOutcome } from "./pipelined-batch.ts";
import { createLeasePool, type LeasePool } from "./lease-pool.ts";

export interface DaprPublisherOptions {
  /** Port of the sidecar's HTTP API (what Dapr passes to apps as DAPR_HTTP_PORT). Required. */
  daprHttpPort: number;
  /** Host of the sidecar. Default "127.0.0.1". */
  daprHost?: string;
  /** Name of the Dapr pub/sub component. Default "pubsub". */
  pubsubName?: string;
  /** Upper bound for one request to the sidecar: the connect, or from writing it to its answer. Default 5000. */
  requestTimeoutMs?: number;
  /** Pause between readiness probes of the sidecar. Default 2000. */
  probeIntervalMs?: number;
  /** Keep-alive connections to the sidecar, each carrying one publish call at a time. Default 8. */
  connections?: number;
  /** Requests written and unanswered at once on one connection (HTTP/1.1 pipelining); 1 waits for each answer. Default 32. */
  pipelining?: number;
  /** Calls with `ordered: false` use Dapr's bulk publish API (stores in any order). Default true. */
  bulkUnordered?: boolean;
  /** Default: silent. */
  logger?: Logger;
  /** Registry for the wsm_dapr_* series. Default: a private registry nobody reads. */
  metrics?: Metrics;
}

const CLOUDEVENTS_JSON = "application/cloudevents+json";
/**
 * Largest body of one bulk publish request: well under daprd's default request body limit
 * (4 MiB, --max-body-size), and small enough that one request does not hold the connection long.
 */
const MAX_BULK_BODY_BYTES = 1024 * 1024;
const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Dapr's error bodies are small JSON objects; anything longer is cut for the error message. */
const MAX_ERROR_BODY_CHARS = 1024;
/** Failed first events remembered to recognise retries; a bound, since a retry may never come. */
const MAX_REMEMBERED_FAILURES = 1024;

export function createDaprPublisher(options: DaprPublisherOptions): JsonPublisher {
  const port = options.daprHttpPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`daprHttpPort must be an integer port number, got ${port}`);
  }
  const pipelining = options.pipelining ?? 32;
  if (!Number.isInteger(pipelining) || pipelining < 1) throw new RangeError(`pipelining must be a positive integer, got ${pipelining}`);
  const connections = options.connections ?? 8;
  if (!Number.isInteger(connections) || connections < 1) throw new RangeError(`connections must be a positive integer, got ${connections}`);
  const host = options.daprHost ?? "127.0.0.1";
  const pubsubName = options.pubsubName ?? "pubsub";
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const probeIntervalMs = options.probeIntervalMs ?? 2000;
  const logger = (options.logger ?? silentLogger).child({ component: "dapr-publisher" });
  const metrics = options.metrics ?? createMetrics();

  const hostHeader = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const origin = `http://${hostHeader}`;
  const publishPathPrefix = `/v1.0/publish/${encodeURIComponent(pubsubName)}/`;
  const bulkPathPrefix = `/v1.0-alpha1/publish/bulk/${encodeURIComponent(pubsubName)}/`;
  const bulkUnordered = options.bulkUnordered ?? true;
  // Error answers are kept whole up to 1 MiB: a failed bulk publish lists every failed entry.
  const openConnection = () => Http1Connection.open({ host, port, connectTimeoutMs: requestTimeoutMs, maxBodyBytes: MAX_BULK_BODY_BYTES });
  const lanes: LeasePool<Http1Connection> = createLeasePool({
    size: connections,
    open: openConnection,
    reusable: (c) => c.reusable,
    discard: (c) => c.destroy(new Error("connection discarded")),
  });

  const requests = metrics.counter(
    "wsm_dapr_publish_requests_total",
    "Publish requests to the Dapr sidecar, one per event, by result (ok or the failure reason).",
  );
  const okRequests = requests.labels({ result: "ok" });
  const latency = metrics.histogram(
    "wsm_dapr_publish_duration_seconds",
    "Time from writing a publish request to the Dapr sidecar until its answer, by outcome.",
    LATENCY_BUCKETS_SECONDS,
  );
  const okLatency = latency.labels({ outcome: "ok" });
  const errorLatency = latency.labels({ outcome: "error" });
  const storedAheadTotal = metrics
    .counter(
      "wsm_dapr_publish_stored_ahead_total",
      "Events the sidecar acknowledged after an earlier event of the same pipelined batch had failed: stored ahead of it, and again after it when the batch is retried.",
    )
    .labels();
  /** undefined until the first probe or publish has an answer, so that its outcome is logged. */
  let ready: boolean | undefined;
  metrics.gauge("wsm_dapr_sidecar_ready", "1 when the last probe or publish reached a healthy Dapr sidecar.", () => [
    { labels: { pubsub: pubsubName }, value: ready === true && !closed ? 1 : 0 },
  ]);

  let closed = false;
  let closing: Promise<void> | undefined;
  let probeTimer: NodeJS.Timeout | undefined;
  let probeAbort: AbortController | undefined;
  let probeConnection: Http1Connection | undefined;
  const active = new Set<Promise<unknown>>();
  /** First events of failed calls (CloudEvent objects or JSON texts): a call starting with one is a retry. */
  const failedFirsts = new Set<unknown>();

  const setReady = (value: boolean, why: string) => {
    if (value === ready) return;
    ready = value;
    if (value) logger.info("dapr sidecar is ready", { origin });
    else logger.warn("dapr sidecar is not ready", { origin, reason: why });
  };

  const rememberFailed = (event: unknown) => {
    failedFirsts.add(event);
    if (failedFirsts.size > MAX_REMEMBERED_FAILURES) failedFirsts.delete(failedFirsts.values().next().value);
  };

  /**
   * Publishes the JSON bodies in order, pipelined on one leased connection. `keys` identify the
   * events across calls (to recognise a retry), `sequenceOf` names them in logs. Throws a
   * PublishError carrying the delivered prefix.
   */
  async function publishBodies(
    topic: string,
    bodies: readonly string[],
    keys: readonly unknown[],
    sequenceOf: (index: number) => number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const target = `${pubsubName}/${topic}`;
    const path = checkCall(topic, target, signal);
    if (bodies.length === 0) return;

    const head = `POST ${publishPathPrefix}${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nContent-Type: ${CLOUDEVENTS_JSON}\r\nContent-Length: `;
    const wire = bodies.map((body) => `${head}${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const firstAlone = failedFirsts.delete(keys[0]);

    const connection = await lease(topic, target, signal, 1, keys[0]);
    const outcome = await runLeased(connection, wire, signal, firstAlone, (_index, status) => {
      if (status >= 200 && status < 300) okRequests.inc();
      else requests.inc({ result: `http_${status}` });
    });
    const { failure } = outcome;
    if (failure === undefined) return;

    let error = failureError(failure, { target, deliveredCount: outcome.delivered, signal });
    // Written and never answered: counted once each, under the reason of the failure.
    if (outcome.unconfirmed > 0) requests.inc({ result: error.reason }, outcome.unconfirmed);

    if (outcome.storedAhead.length > 0) {
      storedAheadTotal.inc(outcome.storedAhead.length);
      const sequences = outcome.storedAhead.map(sequenceOf);
      const failedSequence = sequenceOf(outcome.delivered);
      logger.warn("dapr stored events ahead of a failed one: a retry stores them again after it", {
        topic,
        failed_sequence: failedSequence,
        stored_ahead_sequences: sequences,
      });
      error = new PublishError(
        `${error.message}; ${outcome.storedAhead.length} later event(s) of the batch were stored ahead of it${describeSequences(sequences)}`,
        { retryable: error.retryable, reason: error.reason, deliveredCount: error.deliveredCount, cause: error },
      );
    }
    fail(topic, error, keys[outcome.delivered]);
  }

  /**
   * The topic's URL path, after the checks every call makes before any request: a topic daprd
   * would rename, a closed publisher, an aborted caller.
   */
  function checkCall(topic: string, target: string, signal: AbortSignal | undefined): string {
    const path = topicPath(topic);
    if (path === undefined) {
      throw new PublishError(`topic ${JSON.stringify(topic)} has an empty, "." or ".." path segment`, {
        retryable: false,
        reason: "invalid_topic",
      });
    }
    if (closed) throw new PublishError("dapr publisher is closed", { retryable: false, reason: "closed" });
    if (signal?.aborted) throw daprFailure(signal.reason, { target, deliveredCount: 0, signal });
    return path;
  }

  /** A connection for the call alone; when connecting fails, its first request (`firstEvents` events) counts as failed. */
  async function lease(topic: string, target: string, signal: AbortSignal | undefined, firstEvents: number, firstKey: unknown): Promise<Http1Connection> {
    try {
      return await lanes.acquire(signal);
    } catch (err) {
      // The caller gave up or the publisher closed while waiting for a connection: nothing was tried.
      if (err instanceof PublishError) throw err;
      if (signal?.aborted) throw daprFailure(err, { target, deliveredCount: 0, signal });
      const failure = daprFailure(err, { target, deliveredCount: 0 });
      requests.inc({ result: failure.reason }, firstEvents);
      return fail(topic, failure, firstKey);
    }
  }

  /**
   * Runs the requests pipelined on a leased connection and gives it back: answers are timed
   * into the latency histogram and handed to `countAnswer`; any acknowledgement means the
   * sidecar is healthy.
   */
  async function runLeased(
    connection: Http1Connection,
    wire: readonly string[],
    signal: AbortSignal | undefined,
    firstAlone: boolean,
    countAnswer: (index: number, status: number) => void,
  ): Promise<BatchOutcome> {
    let outcome: BatchOutcome;
    try {
      outcome = await runPipelinedBatch(connection, wire, {
        window: pipelining,
        firstAlone,
        requestTimeoutMs,
        signal,
        stopWriting: () => closed,
        onAnswer(index, status, seconds) {
          (status >= 200 && status < 300 ? okLatency : errorLatency).observe(seconds);
          countAnswer(index, status);
        },
        onUnanswered: (_index, seconds) => errorLatency.observe(seconds),
      });
    } finally {
      lanes.release(connection);
    }
    if (outcome.delivered > 0) setReady(true, "");
    return outcome;
  }

  function failureError(failure: BatchFailure, context: DaprFailureContext): PublishError {
    if (failure.kind === "http") return daprFailure({ status: failure.status, body: failure.body.slice(0, MAX_ERROR_BODY_CHARS) }, context);
    if (failure.kind === "stopped") {
      return new PublishError("dapr publisher is closed", { retryable: false, reason: "closed", deliveredCount: context.deliveredCount });
    }
    return daprFailure(failure.error, { ...context, timedOut: failure.timedOut, timeoutMs: requestTimeoutMs });
  }

  /**
   * Publishes the JSON bodies with Dapr's bulk API, in requests of up to MAX_BULK_BODY_BYTES
   * pipelined on one leased connection; daprd stores the events of a request in any order.
   * Throws a PublishError whose deliveredCount covers the requests acknowledged in full before
   * the first one that was not.
   */
  async function publishBulk(
    topic: string,
    bodies: readonly string[],
    sequenceOf: (index: number) => number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const target = `${pubsubName}/${topic}`;
    const path = checkCall(topic, target, signal);
    const head = `POST ${bulkPathPrefix}${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nContent-Type: application/json\r\nContent-Length: `;
    /** First event index of each request, plus bodies.length at the end. */
    const starts: number[] = [];
    const wire: string[] = [];
    // Sizes are added up rather than measured on the built body: one byteLength per event, and
    // each request's text is joined once (no growing string, less for the collector).
    const entryHead = `{"contentType":"${CLOUDEVENTS_JSON}","entryId":"`;
    for (let i = 0; i < bodies.length; ) {
      starts.push(i);
      const parts: string[] = [];
      let bytes = 2;
      do {
        const id = String(i);
        // entryHead, the id, '","event":', the body, "}" and the separating comma: all ASCII but the body.
        const entryBytes = entryHead.length + id.length + 10 + Buffer.byteLength(bodies[i]!) + 1 + 1;
        if (parts.length > 0 && bytes + entryBytes > MAX_BULK_BODY_BYTES) break;
        parts.push(`${entryHead}${id}","event":${bodies[i]}}`);
        bytes += entryBytes;
        i++;
      } while (i < bodies.length);
      // The last entry has no comma after it.
      wire.push(`${head}${bytes - 1}\r\n\r\n[${parts.join(",")}]`);
    }
    starts.push(bodies.length);
    const eventsIn = (from: number, to: number) => starts[to]! - starts[from]!;

    const connection = await lease(topic, target, signal, eventsIn(0, 1), undefined);
    let sawFailure = false;
    const outcome = await runLeased(connection, wire, signal, false, (index, status) => {
      if (status >= 200 && status < 300) okRequests.inc(eventsIn(index, index + 1));
      // The first failure's events are counted below, once its answer says which failed.
      else if (!sawFailure) sawFailure = true;
      else requests.inc({ result: `http_${status}` }, eventsIn(index, index + 1));
    });
    const { failure } = outcome;
    if (failure === undefined) return;

    const deliveredCount = eventsIn(0, outcome.delivered);
    let error = failureError(failure, { target, deliveredCount, signal });
    if (outcome.unconfirmed > 0) requests.inc({ result: error.reason }, eventsIn(outcome.written - outcome.unconfirmed, outcome.written));
    // Stored although the call failed: the entries daprd did not list as failed in the failed
    // request, and every request acknowledged after it.
    const stored: number[] = [];
    if (failure.kind === "http") {
      const failedIds = failedEntryIds(failure.body);
      const size = eventsIn(failure.index, failure.index + 1);
      if (failedIds !== undefined) {
        for (let i = starts[failure.index]!; i < starts[failure.index + 1]!; i++) if (!failedIds.has(String(i))) stored.push(i);
      }
      if (stored.length > 0) okRequests.inc(stored.length);
      requests.inc({ result: `http_${failure.status}` }, size - stored.length);
    }
    for (const index of outcome.storedAhead) for (let i = starts[index]!; i < starts[index + 1]!; i++) stored.push(i);
    if (stored.length > 0) {
      storedAheadTotal.inc(stored.length);
      const sequences = stored.map(sequenceOf);
      logger.warn("dapr stored events of a failed bulk publish: a retry stores them again", { topic, stored_sequences: sequences.slice(0, 100) });
      error = new PublishError(`${error.message}; ${stored.length} event(s) of the call were stored anyway${describeSequences(sequences)}`, {
        retryable: error.retryable,
        reason: error.reason,
        deliveredCount: error.deliveredCount,
        cause: error,
      });
    }
    fail(topic, error, undefined);
  }

  /** Logs, remembers a retryable failure's first undelivered event (to recognise the retry) and throws. */
  function fail(topic: string, failure: PublishError, failedKey: unknown): never {
    if (failedKey !== undefined && failure.retryable) rememberFailed(failedKey);
    if (failure.reason === "unreachable") setReady(false, failure.reason);
    if (failure.retryable) logger.debug("dapr publish failed", { topic, reason: failure.reason, error: failure.message });
    else logger.warn("dapr publish failed", { topic, reason: failure.reason, error: failure.message });
    throw failure;
  }

  /** Runs a publish call, tracked so that close() can wait for it. */
  function track(run: Promise<void>): Promise<void> {
    active.add(run);
    const forget = () => void active.delete(run);
    run.then(forget, forget);
    return run;
  }

  async function probe(): Promise<void> {
    probeTimer = undefined;
    probeAbort = new AbortController();
    try {
      if (!probeConnection?.reusable) {
        probeConnection?.destroy(new Error("connection discarded"));
        probeConnection = await openConnection();
      }
      // The outbound endpoint answers 204 once components are initialised, without waiting for
      // an app channel: /v1.0/healthz would stay unhealthy while daprd waits for our own
      // readiness when this service is also its app, a circular wait.
      const outcome = await runPipelinedBatch(probeConnection, [`GET /v1.0/healthz/outbound HTTP/1.1\r\nHost: ${hostHeader}\r\n\r\n`], {
        window: 1,
        firstAlone: false,
        requestTimeoutMs,
        signal: probeAbort.signal,
        stopWriting: () => closed,
        onAnswer: () => {},
        onUnanswered: () => {},
      });
      const failure = outcome.failure;
      if (failure === undefined) setReady(true, "");
      else if (failure.kind === "http") setReady(false, `healthz answered HTTP ${failure.status}`);
      else if (failure.kind === "transport" && !closed) {
        setReady(false, daprFailure(failure.error, { target: "healthz", deliveredCount: 0, timedOut: failure.timedOut }).reason);
      }
    } catch (err) {
      if (!closed) setReady(false, daprFailure(err, { target: "healthz", deliveredCount: 0 }).reason);
    }
    if (closed) {
      probeConnection?.destroy(new Error("publisher closed"));
    } else {
      probeTimer = setTimeout(() => void probe(), probeIntervalMs);
      probeTimer.unref();
    }
  }
  // The first probe starts now but runs asynchronously: creating the publisher never waits.
  void probe();

  return {
    name: "dapr",

    publish(topic, events, signal, publishOptions) {
      // Serialized up front: an event that cannot be (a BigInt, a cycle) ends the batch there,
      // after the ones before it were delivered.
      const bodies: string[] = [];
      let unserializable: unknown;
      for (const event of events) {
        try {
          bodies.push(JSON.stringify(event));
        } catch (err) {
          unserializable = err;
          break;
        }
      }
      const sequenceOf = (i: number) => events[i]?.sequence;
      const bulk = bulkUnordered && publishOptions?.ordered === false && bodies.length > 1;
      return track(
        (async () => {
          if (bulk) await publishBulk(topic, bodies, sequenceOf, signal);
          else await publishBodies(topic, bodies, events, sequenceOf, signal);
          if (unserializable !== undefined) {
            const event: CloudEvent = events[bodies.length]!;
            throw new PublishError(`event ${event.id} cannot be serialized: ${(unserializable as Error).message}`, {
              retryable: false,
              reason: "invalid_event",
              deliveredCount: bodies.length,
              cause: unserializable,
            });
          }
        })(),
      );
    },

    publishJson(topic, events, signal, publishOptions) {
      const sequenceOf = (i: number) => {
        const match = /"sequence":(\d+)/.exec(events[i] ?? "");
        return match ? Number(match[1]) : undefined;
      };
      if (bulkUnordered && publishOptions?.ordered === false && events.length > 1) return track(publishBulk(topic, events, sequenceOf, signal));
      return track(publishBodies(topic, events, events, sequenceOf, signal));
    },

    isReady: () => ready === true && !closed,

    close() {
      closing ??= (async () => {
        closed = true;
        clearTimeout(probeTimer);
        probeAbort?.abort();
        lanes.close(new PublishError("dapr publisher is closed", { retryable: false, reason: "closed" }));
        // Calls in flight stop writing and wait for what they wrote (bounded by the request timeout).
        await Promise.allSettled([...active]);
        lanes.destroyIdle();
        probeConnection?.destroy(new Error("publisher closed"));
      })();
      return closing;
    },
  };
}

/** " (sequence 4..6)" for a run, " (sequences 4, 6)" otherwise; "" when unknown. */
function describeSequences(sequences: ReadonlyArray<number | undefined>): string {
  if (sequences.some((s) => s === undefined)) return "";
  const known = sequences as readonly number[];
  const run = known.every((s, i) => s === known[0]! + i);
  if (run) return known.length === 1 ? ` (sequence ${known[0]})` : ` (sequence ${known[0]}..${known[known.length - 1]})`;
  return ` (sequences ${known.slice(0, 20).join(", ")}${known.length > 20 ? ", ..." : ""})`;
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

/**
 * The entry ids of a failed bulk publish answer (`{"failedEntries":[{"entryId":"3",...}],...}`);
 * undefined when the body does not list them, so nothing can be assumed stored.
 */
function failedEntryIds(body: string): Set<string> | undefined {
  try {
    const parsed = JSON.parse(body) as { failedEntries?: Array<{ entryId?: unknown }> };
    if (!Array.isArray(parsed.failedEntries)) return undefined;
    return new Set(parsed.failedEntries.map((e) => String(e.entryId)));
  } catch {
    return undefined;
  }
}
