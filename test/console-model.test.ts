/**
 * The console's logic that needs no DOM: parsing of the connect form, rates from snapshot
 * counters, and the connection store that merges snapshots with lifecycle events.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LifecycleEventSchema, WebSocketConnectionSchema, type WebSocketConnection } from "../gen/virtufin/websocketmanager_pb.js";
import { createConnectionStore } from "../console/connection-store.ts";
import { formatCount, formatDuration, formatRate, prettyJson } from "../console/format.ts";
import { parseMessageLines, parseTagLines } from "../console/parse-lines.ts";
import { createRateTracker } from "../console/rate-tracker.ts";

describe("connect form parsing", () => {
  it("reads key=value lines, trimming, skipping blanks, keeping = in values", () => {
    expect(parseTagLines(" venue = binance \n\nurl=wss://x/?a=b\r\nempty=")).toEqual({
      ok: true,
      value: { venue: "binance", url: "wss://x/?a=b", empty: "" },
    });
    expect(parseTagLines("")).toEqual({ ok: true, value: {} });
  });

  it("says which line is wrong", () => {
    expect(parseTagLines("a=1\nno equals")).toEqual({ ok: false, error: 'tags, line 2: expected key=value, got "no equals"' });
    expect(parseTagLines("=value")).toMatchObject({ ok: false, error: expect.stringContaining("line 1") });
    expect(parseTagLines("a=1\na=2")).toEqual({ ok: false, error: "tags, line 2: a is given twice" });
  });

  it("takes one message per non-blank line, as typed", () => {
    expect(parseMessageLines('{"op":"sub"}\n\n  \n {"op":"auth"} ')).toEqual(['{"op":"sub"}', ' {"op":"auth"} ']);
  });
});

describe("rate tracker", () => {
  it("divides the growth of the counters by the time over a sliding window", () => {
    const rates = createRateTracker({ windowMs: 3000 });
    expect(rates.update("a", 0, 0, 0)).toBeUndefined();
    expect(rates.update("a", 100, 10, 1000)).toEqual({ inPerSecond: 100, outPerSecond: 10 });
    expect(rates.update("a", 300, 10, 2000)).toEqual({ inPerSecond: 150, outPerSecond: 5 });
    // The window drops samples older than 3 s: from t=1000 to t=4000.
    expect(rates.update("a", 400, 10, 4000)).toEqual({ inPerSecond: 100, outPerSecond: 0 });
  });

  it("starts again when a counter goes down, and forgets", () => {
    const rates = createRateTracker();
    rates.update("a", 500, 0, 0);
    rates.update("a", 600, 0, 1000);
    expect(rates.update("a", 10, 0, 2000)).toBeUndefined();
    expect(rates.update("a", 20, 0, 3000)).toEqual({ inPerSecond: 10, outPerSecond: 0 });
    rates.forget("a");
    expect(rates.update("a", 30, 0, 4000)).toBeUndefined();
  });
});

function connection(id: string, fields: { tags?: Record<string, string> } = {}, messagesIn = 0n): WebSocketConnection {
  return create(WebSocketConnectionSchema, {
    id,
    url: `ws://127.0.0.1/${id}`,
    status: "connected",
    createdAt: { seconds: BigInt(Number.parseInt(id.replace(/\D/g, "") || "0")) },
    stats: { messagesIn, lastError: "" },
    ...fields,
  });
}

const lifecycle = (connectionId: string, status: string, extra: { type?: string; errorType?: string; errorMessage?: string } = {}) =>
  create(LifecycleEventSchema, { connectionId, url: `ws://127.0.0.1/${connectionId}`, status, type: extra.type ?? status, ...extra });

describe("connection store", () => {
  it("takes snapshots as the truth, oldest first, with rates", () => {
    const store = createConnectionStore({ now: () => 0 });
    let changes = 0;
    store.onChange(() => changes++);
    store.applySnapshot([connection("c2", {}, 0n), connection("c1", { tags: { k: "v" } }, 0n)], 0);
    store.applySnapshot([connection("c2", {}, 50n), connection("c1", { tags: { k: "v" } }, 10n)], 1000);
    expect(store.list().map((c) => c.id)).toEqual(["c1", "c2"]);
    expect(store.get("c2")!.rates).toEqual({ inPerSecond: 50, outPerSecond: 0 });
    expect(store.get("c1")!.tags).toEqual({ k: "v" });
    expect(changes).toBe(2);
  });

  it("applies lifecycle events between snapshots, with the error text", () => {
    const store = createConnectionStore();
    store.applySnapshot([connection("c1")], 0);
    store.applyLifecycle(lifecycle("c1", "connected", { type: "error", errorType: "closed", errorMessage: "1006 abnormal" }));
    store.applyLifecycle(lifecycle("c1", "reconnecting"));
    expect(store.get("c1")).toMatchObject({ status: "reconnecting", lastError: "closed: 1006 abnormal" });
    // A connection someone else opened appears at once.
    store.applyLifecycle(lifecycle("c9", "connecting"));
    expect(store.get("c9")!.status).toBe("connecting");
    // The final event of an unknown connection brings no row.
    store.applyLifecycle(lifecycle("c8", "disconnected"));
    expect(store.get("c8")).toBeUndefined();
  });

  it("removes a connection missing from two snapshots in a row, not from one", () => {
    const store = createConnectionStore();
    store.added("new", { url: "ws://x/", status: "connected", autoReconnect: true, tags: { a: "b" }, topic: "" });
    expect(store.get("new")).toMatchObject({ autoReconnect: true, tags: { a: "b" } });
    // A snapshot taken just before the connection opened arrives after the Connect reply.
    store.applySnapshot([], 0);
    expect(store.get("new")).toBeDefined();
    store.applySnapshot([connection("new")], 1000);
    store.applySnapshot([], 2000);
    expect(store.get("new")).toBeDefined();
    store.applySnapshot([], 3000);
    expect(store.get("new")).toBeUndefined();
  });

  it("forgets a connection this console disconnected, whatever arrives late", () => {
    const store = createConnectionStore();
    store.applySnapshot([connection("c1")], 0);
    store.removed("c1");
    expect(store.get("c1")).toBeUndefined();
    store.applyLifecycle(lifecycle("c1", "connected"));
    store.applySnapshot([connection("c1")], 1000);
    store.added("c1", { url: "ws://x/", status: "connected", autoReconnect: false, tags: {}, topic: "" });
    expect(store.list()).toEqual([]);
  });
});

describe("console formatting", () => {
  it("formats counts, rates, durations and JSON", () => {
    expect(formatCount(0)).toBe("0");
    expect(formatCount(1234n)).toBe((1234).toLocaleString());
    expect(formatRate(undefined)).toBe("–");
    expect(formatRate(0)).toBe("0");
    expect(formatRate(0.44)).toBe("0.4");
    expect(formatDuration(59_999)).toBe("59s");
    expect(formatDuration(3_723_000)).toBe("1h 2m");
    expect(formatDuration(90_000_000)).toBe("1d 1h");
    expect(prettyJson('{"a":1}')).toBe('{\n  "a": 1\n}');
    expect(prettyJson("not json")).toBe("not json");
  });
});
