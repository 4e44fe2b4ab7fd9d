/**
 * The seam between the service and a pub/sub broker. The service never talks to a vendor SDK
 * directly: the Dapr publisher and the in-process publisher both implement this.
 *
 * Ordering, bounded queues, retries and drop counting live in the publish pipeline, not here:
 * a Publisher delivers what it is given, in the order of the array, and says whether a
 * failure is worth retrying.
 */
import type { CloudEvent } from "./cloud-event.ts";

export interface Publisher {
  /** Short name for logs and metrics: "dapr", "in-process". */
  readonly name: string;
  /**
   * Delivers events to topic, in order. Resolves when the broker acknowledged all of them.
   * Rejects with PublishError; events before `error.deliveredCount` were delivered.
   * Must honour `signal` (abort = stop waiting, reject).
   */
  publish(topic: string, events: readonly CloudEvent[], signal?: AbortSignal, options?: PublishOptions): Promise<void>;
  /**
   * Optional: false when an event published to `topic` now would reach no one (an in-process
   * topic without a listener). The pipeline then acknowledges such events without building
   * their envelopes, exactly as a broker acknowledges a publish to a topic nobody reads.
   */
  hasConsumers?(topic: string): boolean;
  /** Whether the broker is reachable now (readiness). Never blocks. */
  isReady(): boolean;
  /** Stops background work (probes, pools). Idempotent. */
  close(): Promise<void>;
}

export interface PublishOptions {
  /**
   * false: the caller does not need these events stored in array order (an unordered channel),
   * so a publisher may deliver them by a faster path that reorders. Default true.
   */
  ordered?: boolean;
}

export class PublishError extends Error {
  override readonly name = "PublishError";
  /** Worth trying again (broker down, 5xx, timeout); false for 4xx and bad input. */
  readonly retryable: boolean;
  /** How many of the events (from the start of the array) were delivered before the failure. */
  readonly deliveredCount: number;
  /** Short machine-readable reason for metrics labels: timeout, unreachable, http_500... */
  readonly reason: string;

  constructor(message: string, options: { retryable: boolean; reason: string; deliveredCount?: number; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable;
    this.reason = options.reason;
    this.deliveredCount = options.deliveredCount ?? 0;
  }
}
