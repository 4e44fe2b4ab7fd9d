/**
 * In-process fan-out of inbound frames and lifecycle events to Subscribe streams. Every
 * subscriber has its own bounded buffer: a slow stream loses its oldest events (counted),
 * never the service's memory or other streams' events.
 */
import type { InboundFrame, LifecycleEvent } from "./events.ts";

export type HubEvent = { kind: "message"; frame: InboundFrame } | { kind: "lifecycle"; event: LifecycleEvent };

export interface SubscriptionFilter {
  /** Only these connections; empty = all. */
  connectionIds?: readonly string[];
  /** Only frames published to these topics; empty = every frame. */
  topics?: readonly string[];
  messages?: boolean;
  lifecycle?: boolean;
  /** Buffer bound of this subscriber, default 10000 events. */
  maxBufferedEvents?: number;
}

export interface Subscription extends AsyncIterable<HubEvent> {
  /** Events lost because this subscriber did not keep up. */
  readonly dropped: number;
  close(): void;
}

export interface EventHub {
  subscribe(filter: SubscriptionFilter): Subscription;
  publishFrame(frame: InboundFrame): void;
  publishLifecycle(event: LifecycleEvent): void;
  /** Whether any subscriber wants frames of this connection (skip work when none does). */
  wantsFrames(connectionId: string): boolean;
  readonly subscriberCount: number;
  /** Ends every subscription. */
  close(): void;
}

interface Subscriber {
  ids: Set<string> | undefined;
  topics: Set<string> | undefined;
  messages: boolean;
  lifecycle: boolean;
  max: number;
  buffer: HubEvent[];
  head: number;
  dropped: number;
  closed: boolean;
  wake: (() => void) | undefined;
}

export interface EventHubOptions {
  /** Called when a subscriber drops events, for metrics. */
  onDrop?: (count: number) => void;
}

export function createEventHub(options: EventHubOptions = {}): EventHub {
  const subscribers = new Set<Subscriber>();
  let frameSubscribers = 0;

  const push = (s: Subscriber, ev: HubEvent) => {
    if (s.closed) return;
    if (s.buffer.length - s.head >= s.max) {
      s.head++;
      s.dropped++;
      options.onDrop?.(1);
    }
    s.buffer.push(ev);
    const wake = s.wake;
    if (wake) {
      s.wake = undefined;
      wake();
    }
  };

  const end = (s: Subscriber) => {
    if (s.closed) return;
    s.closed = true;
    if (subscribers.delete(s) && s.messages) frameSubscribers--;
    const wake = s.wake;
    s.wake = undefined;
    wake?.();
  };

  return {
    subscribe(filter) {
      const s: Subscriber = {
        ids: filter.connectionIds?.length ? new Set(filter.connectionIds) : undefined,
        topics: filter.topics?.length ? new Set(filter.topics) : undefined,
        messages: filter.messages ?? true,
        lifecycle: filter.lifecycle ?? true,
        max: filter.maxBufferedEvents ?? 10_000,
        buffer: [],
        head: 0,
        dropped: 0,
        closed: false,
        wake: undefined,
      };
      subscribers.add(s);
      if (s.messages) frameSubscribers++;
      return {
        get dropped() {
          return s.dropped;
        },
        close: () => end(s),
        async *[Symbol.asyncIterator]() {
          try {
            for (;;) {
              if (s.head < s.buffer.length) {
                const ev = s.buffer[s.head]!;
                s.head++;
                // Compact now and then so the array does not grow with the stream's age.
                if (s.head > 1024 && s.head * 2 > s.buffer.length) {
                  s.buffer = s.buffer.slice(s.head);
                  s.head = 0;
                }
                yield ev;
                continue;
              }
              if (s.closed) return;
              await new Promise<void>((resolve) => (s.wake = resolve));
            }
          } finally {
            end(s);
          }
        },
      };
    },

    publishFrame(frame) {
      if (frameSubscribers === 0) return;
      const ev: HubEvent = { kind: "message", frame };
      for (const s of subscribers) {
        if (!s.messages) continue;
        if (s.ids && !s.ids.has(frame.connectionId)) continue;
        if (s.topics && !s.topics.has(frame.topic)) continue;
        push(s, ev);
      }
    },

    publishLifecycle(event) {
      const ev: HubEvent = { kind: "lifecycle", event };
      for (const s of subscribers) {
        if (!s.lifecycle) continue;
        if (s.ids && !s.ids.has(event.connectionId)) continue;
        push(s, ev);
      }
    },

    wantsFrames(connectionId) {
      if (frameSubscribers === 0) return false;
      for (const s of subscribers) {
        if (s.messages && (!s.ids || s.ids.has(connectionId))) return true;
      }
      return false;
    },

    get subscriberCount() {
      return subscribers.size;
    },

    close() {
      for (const s of [...subscribers]) end(s);
    },
  };
}
