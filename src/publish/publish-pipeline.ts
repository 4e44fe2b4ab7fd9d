/**
 * Between the connections and the Publisher: one bounded queue per connection, sequence
 * numbers, batching, ordering, retries and drop counting.
 *
 * Ordered channels (the default) keep one batch in flight, so the broker sees a connection's
 * frames in receive order even across retries. Unordered channels keep several batches in
 * flight. A full queue drops its OLDEST waiting frame: for market data the newest frame is the
 * valuable one, and the consumer sees the gap in the sequence numbers. Every drop and every
 * failed delivery is counted per connection and in metrics, never silent.
 *
 * One budget of bytes bounds all queues together (waiting and in flight), so memory does not
 * grow with the number of connections. Over it, the connection with the MOST bytes waiting
 * drops its oldest waiting frame: the biggest backlog pays, and one hot or stuck connection
 * cannot make quiet ones lose data. Batches in flight are never dropped, only counted.
 */
import type { Logger } from "../logger.ts";
import type { CounterHandle, Metrics } from "../metrics.ts";
import { BacklogHeap } from "./backlog-heap.ts";
import { lifecycleCloudEvent, messageCloudEvent, type CloudEvent } from "./cloud-event.ts";
import { messageCloudEventJson } from "./cloud-event-json.ts";
import type { InboundFrame, LifecycleEvent } from "./events.ts";
import { isJsonPublisher } from "./json-publisher.ts";
import { PublishError, type PublishOptions, type Publisher } from "./publisher.ts";

export interface PublishPipelineOptions {
  publisher: Publisher;
  logger: Logger;
  metrics: Metrics;
  /** Topic of lifecycle events. Default "websocketmanager.lifecycle". */
  lifecycleTopic?: string;
  /** Frames waiting per connection before the oldest is dropped. Default 10000. */
  maxQueueMessages?: number;
  /** Bytes waiting per connection before the oldest is dropped. Default 16 MiB. */
  maxQueueBytes?: number;
  /**
   * Bytes waiting or in flight across all connections. Over it, the connection with the most
   * bytes waiting drops its oldest. Default 256 MiB.
   */
  maxTotalQueueBytes?: number;
  /** Frames per publish call. Default 100. */
  maxBatchMessages?: number;
  /** Batches in flight per unordered channel. Default 8. */
  maxInFlightUnordered?: number;
  /** Bound of one publish call. Default 5000. */
  publishTimeoutMs?: number;
  /** Attempts per batch for retryable failures (1 = no retry). Default 5. */
  maxAttempts?: number;
  /** First retry delay, doubled per attempt. Default 100. */
  retryBaseDelayMs?: number;
  /** Retry delay cap. Default 2000. */
  retryMaxDelayMs?: number;
}

export interface ChannelStats {
  /** Acknowledged by the publisher. */
  published: number;
  /**
   * Dropped: the queue was full, or it had the largest backlog when the pipeline's byte budget
   * was full, or the service shut down with frames waiting.
   */
  dropped: number;
  /** Rejected by the publisher, after retries for retryable failures. */
  failed: number;
  /** Waiting or in flight now. */
  queued: number;
  /** Sequence number of the last frame enqueued. */
  lastSequence: number;
}

export interface PublishChannel {
  /**
   * Queues a frame for `topic`, giving it the next sequence number (set on the frame). Never
   * blocks and never throws: a full queue drops its oldest frame, a full pipeline the oldest
   * frame of the largest backlog.
   */
  enqueue(topic: string, frame: InboundFrame): number;
  setOrdered(ordered: boolean): void;
  readonly stats: Readonly<ChannelStats>;
  /** No more frames; what is queued is still delivered (bounded by the pipeline's close). */
  close(): void;
}

export interface PublishPipeline {
  channel(connectionId: string, options?: { ordered?: boolean }): PublishChannel;
  /** Best effort: a failure is logged and counted, never thrown. */
  lifecycle(event: LifecycleEvent): void;
  readonly lifecycleTopic: string;
  /** Waits for queued frames up to `deadlineMs`, then drops (and counts) the rest. */
  close(deadlineMs: number): Promise<void>;
}

interface Item {
  topic: string;
  bytes: number;
  frame?: InboundFrame;
  event?: CloudEvent;
}

const ORDERED: PublishOptions = { ordered: true };
const UNORDERED: PublishOptions = { ordered: false };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export function createPublishPipeline(options: PublishPipelineOptions): PublishPipeline {
  const { publisher, logger, metrics } = options;
  const lifecycleTopic = options.lifecycleTopic ?? "websocketmanager.lifecycle";
  const maxQueueMessages = options.maxQueueMessages ?? 10_000;
  const maxQueueBytes = options.maxQueueBytes ?? 16 * 1024 * 1024;
  const maxTotalQueueBytes = options.maxTotalQueueBytes ?? 256 * 1024 * 1024;
  const maxBatch = options.maxBatchMessages ?? 100;
  const maxInFlightUnordered = options.maxInFlightUnordered ?? 8;
  const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
  const maxAttempts = options.maxAttempts ?? 5;
  const retryBaseDelayMs = options.retryBaseDelayMs ?? 100;
  const retryMaxDelayMs = options.retryMaxDelayMs ?? 2000;

  const publishedTotal = metrics.counter("wsm_published_total", "Events acknowledged by the publisher.");
  const droppedTotal = metrics.counter("wsm_publish_dropped_total", "Events dropped because a publish queue or the publish byte budget was full.");
  const failedTotal = metrics.counter("wsm_publish_failed_total", "Events the publisher failed to deliver, after retries.");
  const retriesTotal = metrics.counter("wsm_publish_retries_total", "Publish calls retried after a retryable failure.");
  const duration = metrics.histogram("wsm_publish_duration_seconds", "Duration of one publish call.", [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
  ]);
  // Every open channel, ordered by bytes waiting while the budget is under pressure (an indexed
  // max-heap, see backlog-heap.ts): the channel the budget drops from is on top, found without a
  // scan. Below half the budget the order is not kept, and a frame queued pays nothing for it.
  const channels = new BacklogHeap<Channel>();
  // The global budget's accounting, exact: bytes are added when a frame is queued, move from
  // waiting to in flight when its batch goes out, and leave when it is dropped, when its batch
  // is acknowledged or finally fails, or when close abandons it.
  let waitingBytesTotal = 0;
  let inFlightBytesTotal = 0;
  metrics.gauge("wsm_publish_queue_events", "Events waiting or in flight in publish queues.", () => {
    let n = 0;
    for (const c of channels.values()) n += c.stats.queued;
    return [{ value: n }];
  });
  metrics.gauge("wsm_publish_queue_bytes", "Bytes of events waiting or in flight in publish queues.", () => [
    { value: waitingBytesTotal + inFlightBytesTotal },
  ]);

  const published = publishedTotal.labels({ publisher: publisher.name });
  // A publisher that sends JSON anyway takes each event as its JSON text: a JSON frame is
  // embedded in its envelope as is, without a parse and a stringify per frame.
  type Send = (topic: string, events: ReadonlyArray<CloudEvent | string>, signal: AbortSignal, options: PublishOptions) => Promise<void>;
  const send: Send = isJsonPublisher(publisher)
    ? (topic, events, signal, options) => publisher.publishJson(topic, events as string[], signal, options)
    : (topic, events, signal, options) => publisher.publish(topic, events as CloudEvent[], signal, options);
  const encode: (item: Item) => CloudEvent | string = isJsonPublisher(publisher) ? toJson : toEvent;
  const durationHandle = duration.labels({ publisher: publisher.name });
  let closing = false;
  const abortAll = new AbortController();

  class Channel implements PublishChannel {
    readonly stats: ChannelStats = { published: 0, dropped: 0, failed: 0, queued: 0, lastSequence: 0 };
    /** Bytes waiting (not in flight): the key of `channels`. */
    waitingBytes = 0;
    heapIndex = -1;
    private readonly queue: Item[] = [];
    private head = 0;
    private inFlight = 0;
    private scheduled = false;
    private closed = false;
    private drained: (() => void) | undefined;
    private readonly kind: string;
    /** Drops come one per frame queued while the budget is full: a handle, not a label lookup. */
    private readonly droppedCounter: CounterHandle;
    private ordered: boolean;

    constructor(kind: string, ordered: boolean) {
      this.kind = kind;
      this.droppedCounter = droppedTotal.labels({ kind });
      this.ordered = ordered;
      channels.add(this);
    }

    enqueue(topic: string, frame: InboundFrame): number {
      const sequence = ++this.stats.lastSequence;
      frame.sequence = sequence;
      frame.topic = topic;
      this.push({ topic, bytes: frame.bytes, frame });
      return sequence;
    }

    push(item: Item): void {
      // A frame that would not fit even if every waiting frame were dropped is dropped alone.
      if (this.closed || closing || item.bytes > maxTotalQueueBytes - inFlightBytesTotal) {
        this.countDropped(1);
        return;
      }
      while (this.waiting() > 0 && (this.waiting() >= maxQueueMessages || this.waitingBytes + item.bytes > maxQueueBytes)) {
        this.dropOldest();
      }
      while (waitingBytesTotal + inFlightBytesTotal + item.bytes > maxTotalQueueBytes) channels.largest()!.dropOldest();
      this.queue.push(item);
      this.waitingBytes += item.bytes;
      waitingBytesTotal += item.bytes;
      this.stats.queued++;
      channels.grew(this);
      this.schedule();
    }

    /** Drops the oldest waiting frame, counted. */
    dropOldest(): void {
      this.takeOldest();
      // Compacts here too: a stuck channel that only drops must not grow holes forever.
      this.compact();
      this.stats.queued--;
      this.countDropped(1);
      channels.shrank(this);
    }

    setOrdered(ordered: boolean): void {
      this.ordered = ordered;
    }

    close(): void {
      this.closed = true;
      this.maybeFinished();
    }

    /** Resolves when nothing is waiting or in flight. */
    whenDrained(): Promise<void> {
      if (this.stats.queued === 0) return Promise.resolve();
      return new Promise((resolve) => (this.drained = resolve));
    }

    /** At the close deadline: count what is still waiting as dropped. */
    abandon(): void {
      const left = this.waiting();
      if (left > 0) {
        this.countDropped(left);
        this.stats.queued -= left;
      }
      this.queue.length = 0;
      this.head = 0;
      waitingBytesTotal -= this.waitingBytes;
      this.waitingBytes = 0;
      channels.delete(this);
    }

    private waiting(): number {
      return this.queue.length - this.head;
    }

    /** Removes the oldest waiting frame from the queue and from the waiting bytes. */
    private takeOldest(): Item {
      const item = this.queue[this.head]!;
      this.queue[this.head] = undefined as unknown as Item;
      this.head++;
      this.waitingBytes -= item.bytes;
      waitingBytesTotal -= item.bytes;
      return item;
    }

    /** Gives the slots of taken frames back once they are most of the array. */
    private compact(): void {
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
    }

    private countDropped(n: number): void {
      this.stats.dropped += n;
      this.droppedCounter.inc(n);
    }

    private schedule(): void {
      if (this.scheduled) return;
      this.scheduled = true;
      // A tick's worth of frames goes out as one batch: bursts cost one call, not one each.
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }

    private pump(): void {
      const limit = this.ordered ? 1 : maxInFlightUnordered;
      while (this.inFlight < limit && this.waiting() > 0) {
        const topic = this.queue[this.head]!.topic;
        const batch: Item[] = [];
        let bytes = 0;
        while (batch.length < maxBatch && this.waiting() > 0 && this.queue[this.head]!.topic === topic) {
          const item = this.takeOldest();
          bytes += item.bytes;
          batch.push(item);
        }
        this.compact();
        inFlightBytesTotal += bytes;
        channels.shrank(this);
        this.inFlight++;
        void this.deliver(topic, batch).finally(() => {
          inFlightBytesTotal -= bytes;
          if (waitingBytesTotal + inFlightBytesTotal < maxTotalQueueBytes / 2) channels.relax();
          this.inFlight--;
          this.stats.queued -= batch.length;
          if (this.waiting() > 0) this.pump();
          this.maybeFinished();
        });
      }
    }

    private async deliver(topic: string, batch: Item[]): Promise<void> {
      if (publisher.hasConsumers?.(topic) === false) {
        this.stats.published += batch.length;
        published.inc(batch.length);
        return;
      }
      let events: Array<CloudEvent | string>;
      try {
        events = batch.map(encode);
      } catch (err) {
        // Only a bug can get here (frames are classified before they are queued).
        logger.error("cannot build cloud events", { err, topic });
        this.countFailed(batch.length, "encode");
        return;
      }
      // Fixed per batch: an unordered batch may take a publisher's faster, reordering path.
      const sendOptions = this.ordered ? ORDERED : UNORDERED;
      for (let attempt = 1; ; attempt++) {
        const started = performance.now();
        try {
          await send(topic, events, AbortSignal.any([abortAll.signal, AbortSignal.timeout(publishTimeoutMs)]), sendOptions);
          durationHandle.observe((performance.now() - started) / 1000);
          this.stats.published += events.length;
          published.inc(events.length);
          return;
        } catch (err) {
          durationHandle.observe((performance.now() - started) / 1000);
          const pe =
            err instanceof PublishError
              ? err
              : new PublishError(String((err as Error)?.message ?? err), { retryable: true, reason: "unknown", cause: err });
          const delivered = Math.min(Math.max(pe.deliveredCount, 0), events.length);
          if (delivered > 0) {
            this.stats.published += delivered;
            published.inc(delivered);
            events = events.slice(delivered);
          }
          if (!pe.retryable || attempt >= maxAttempts || closing) {
            logger.warn("publish failed", { topic, events: events.length, reason: pe.reason, error: pe.message, attempts: attempt });
            this.countFailed(events.length, pe.reason);
            return;
          }
          retriesTotal.inc({ reason: pe.reason });
          await sleep(Math.min(retryMaxDelayMs, retryBaseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));
        }
      }
    }

    private countFailed(n: number, reason: string): void {
      this.stats.failed += n;
      failedTotal.inc({ kind: this.kind, reason }, n);
    }

    private maybeFinished(): void {
      if (this.stats.queued !== 0) return;
      const d = this.drained;
      this.drained = undefined;
      d?.();
      if (this.closed) channels.delete(this);
    }
  }

  const lifecycleChannel = new Channel("lifecycle", true);

  return {
    lifecycleTopic,
    channel(_connectionId, channelOptions = {}) {
      return new Channel("message", channelOptions.ordered ?? true);
    },
    lifecycle(event) {
      lifecycleChannel.push({ topic: lifecycleTopic, bytes: 512, event: lifecycleCloudEvent(event) });
    },
    async close(deadlineMs) {
      lifecycleChannel.close();
      const all = [...channels.values()];
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((r) => (timer = setTimeout(r, deadlineMs)));
      await Promise.race([Promise.all(all.map((c) => c.whenDrained())), deadline]);
      clearTimeout(timer);
      closing = true;
      abortAll.abort(new PublishError("service is shutting down", { retryable: false, reason: "shutdown" }));
      for (const c of all) c.abandon();
    },
  };
}

function toEvent(item: Item): CloudEvent {
  return item.event ?? messageCloudEvent(item.frame!);
}

function toJson(item: Item): string {
  return item.event ? JSON.stringify(item.event) : messageCloudEventJson(item.frame!);
}
