/**
 * The console's model of the connections, fed by the Subscribe stream: snapshots (the whole
 * truth, every second) and lifecycle events (status changes as they happen, in between).
 * No DOM here; the table renders what this holds.
 */
import type { ConnectionStats, LifecycleEvent, WebSocketConnection } from "../clients/ts/src/index.ts";
import { timestampMs } from "./format.ts";
import { createRateTracker, type RateTracker, type Rates } from "./rate-tracker.ts";

export interface ConnectionView {
  id: string;
  url: string;
  status: string;
  topic: string;
  tags: Record<string, string>;
  autoReconnect: boolean;
  protocol: string;
  instanceId: string;
  contentType: string;
  createdAtMs: number;
  /** Local time the console first heard of it; orders rows that have no createdAt yet. */
  firstSeenMs: number;
  stats: ConnectionStats | undefined;
  /** From the stats, or newer from an error lifecycle event. */
  lastError: string;
  rates: Rates | undefined;
  /** Snapshots in a row that did not list it. */
  missedSnapshots: number;
}

export interface ConnectionStore {
  applySnapshot(connections: readonly WebSocketConnection[], nowMs: number): void;
  applyLifecycle(event: LifecycleEvent): void;
  /**
   * A connection this console just opened: shown at once with what the form knows, before the
   * stream reports it.
   */
  added(id: string, known: Pick<ConnectionView, "url" | "status" | "autoReconnect" | "tags" | "topic">): void;
  /** A connection this console just disconnected: gone at once, and late events are ignored. */
  removed(id: string): void;
  get(id: string): ConnectionView | undefined;
  /** Oldest first. */
  list(): ConnectionView[];
  /** Called after every change. Returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/**
 * A row missing from this many snapshots in a row is gone. One is not enough: a snapshot taken
 * just before a connection opened can arrive after the console already shows it.
 */
const MISSED_SNAPSHOTS_TO_REMOVE = 2;
/** Ids of removed connections remembered to ignore their late events. */
const MAX_TOMBSTONES = 1000;

export function createConnectionStore(options: { rateTracker?: RateTracker; now?: () => number } = {}): ConnectionStore {
  const rates = options.rateTracker ?? createRateTracker();
  const now = options.now ?? Date.now;
  const rows = new Map<string, ConnectionView>();
  const tombstones = new Set<string>();
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const l of listeners) l();
  };

  const blank = (id: string, url: string, status: string): ConnectionView => ({
    id,
    url,
    status,
    topic: "",
    tags: {},
    autoReconnect: false,
    protocol: "",
    instanceId: "",
    contentType: "",
    createdAtMs: 0,
    firstSeenMs: now(),
    stats: undefined,
    lastError: "",
    rates: undefined,
    missedSnapshots: 0,
  });

  const forget = (id: string) => {
    rows.delete(id);
    rates.forget(id);
  };

  return {
    applySnapshot(connections, nowMs) {
      const listed = new Set<string>();
      for (const c of connections) {
        if (tombstones.has(c.id)) continue;
        listed.add(c.id);
        const row = rows.get(c.id) ?? blank(c.id, c.url, c.status);
        rows.set(c.id, row);
        row.url = c.url;
        row.status = c.status;
        row.topic = c.topic;
        row.tags = { ...c.tags };
        row.autoReconnect = c.autoReconnect;
        row.protocol = c.protocol;
        row.instanceId = c.instanceId;
        row.contentType = c.contentType;
        row.createdAtMs = timestampMs(c.createdAt);
        row.stats = c.stats;
        row.lastError = c.stats?.lastError ?? "";
        row.missedSnapshots = 0;
        if (c.stats) row.rates = rates.update(c.id, Number(c.stats.messagesIn), Number(c.stats.messagesOut), nowMs);
      }
      for (const row of [...rows.values()]) {
        if (listed.has(row.id)) continue;
        row.missedSnapshots++;
        if (row.missedSnapshots >= MISSED_SNAPSHOTS_TO_REMOVE) forget(row.id);
      }
      changed();
    },

    applyLifecycle(event) {
      const id = event.connectionId;
      if (tombstones.has(id)) return;
      let row = rows.get(id);
      if (!row) {
        // A connection someone else opened; a final "disconnected" of an unknown one (a user
        // Disconnect) must not bring a row back.
        if (event.status === "disconnected") return;
        row = blank(id, event.url, event.status);
        rows.set(id, row);
      }
      row.status = event.status;
      if (event.type === "error" || event.errorMessage !== "") {
        const text = [event.errorType, event.errorMessage].filter((s) => s !== "").join(": ");
        if (text !== "") row.lastError = text;
      }
      changed();
    },

    added(id, known) {
      if (tombstones.has(id) || rows.has(id)) return;
      rows.set(id, { ...blank(id, known.url, known.status), autoReconnect: known.autoReconnect, tags: { ...known.tags }, topic: known.topic });
      changed();
    },

    removed(id) {
      tombstones.add(id);
      if (tombstones.size > MAX_TOMBSTONES) tombstones.delete(tombstones.values().next().value!);
      forget(id);
      changed();
    },

    get: (id) => rows.get(id),

    list() {
      return [...rows.values()].sort((a, b) => (a.createdAtMs || a.firstSeenMs) - (b.createdAtMs || b.firstSeenMs));
    },

    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
