/**
 * The default publisher when no Dapr sidecar is configured: a broker inside the process.
 * Delivery is synchronous to listeners registered with `onTopic`, so the service is fully
 * usable (Subscribe streams, statistics, ordering) on a laptop with no Dapr at all.
 */
import type { CloudEvent } from "./cloud-event.ts";
import type { Publisher } from "./publisher.ts";

export type TopicListener = (topic: string, event: CloudEvent) => void;

export interface InProcessPublisher extends Publisher {
  /** Receives every event published to `topic` ("*" for all topics). Returns an unsubscribe. */
  onTopic(topic: string, listener: TopicListener): () => void;
}

export function createInProcessPublisher(): InProcessPublisher {
  const listeners = new Map<string, Set<TopicListener>>();
  let closed = false;

  const deliver = (key: string, topic: string, event: CloudEvent) => {
    const set = listeners.get(key);
    if (!set) return;
    for (const l of set) l(topic, event);
  };

  return {
    name: "in-process",
    async publish(topic, events) {
      if (closed || listeners.size === 0) return;
      for (const event of events) {
        deliver(topic, topic, event);
        deliver("*", topic, event);
      }
    },
    hasConsumers: (topic) => listeners.has(topic) || listeners.has("*"),
    onTopic(topic, listener) {
      let set = listeners.get(topic);
      if (!set) listeners.set(topic, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(topic);
      };
    },
    isReady: () => !closed,
    async close() {
      closed = true;
      listeners.clear();
    },
  };
}
