/**
 * Baseline of the Dapr-through-the-service scenario, on the service core while the service is
 * idle: an application publishing to daprd itself with raw HTTP, no service in between.
 * node:http with a keep-alive Agent; POST /v1.0/publish/pubsub/<topic> with content-type
 * application/cloudevents+json and a CloudEvent with the fields the service sends (structured
 * mode, the frame's JSON as `data`), each "connection" (loop) with its own connection id and
 * sequence 1, 2, 3...
 *  - burst: `total` events spread over `loops` closed loops, one request in flight per loop:
 *    each sends its next event as soon as the previous one is acknowledged;
 *  - relay (latency): bare `ws` clients receive the feed's paced frames, as the service does,
 *    and POST each the moment it arrives, without waiting for earlier answers: one request in
 *    flight at a time cannot keep up with 1,000 events/s against a daprd that shares its core
 *    with Redis (~1-2 ms per answer). The feed is then the same for the service and the
 *    baseline, and so is the load it puts on the load core.
 */
import { randomUUID } from "node:crypto";
import { Agent, request } from "node:http";
import WebSocket from "ws";
import { EVENT_SOURCE, MESSAGE_EVENT_TYPE } from "../../src/publish/cloud-event.ts";
import { monoUs, timedPayload } from "./timed-feed.ts";

const REQUEST_TIMEOUT_MS = 5000;

export interface RawTarget {
  daprHttpPort: number;
  pubsubName: string;
  topic: string;
  loops: number;
}

export function createAgent() {
  const agent = new Agent({ keepAlive: true, maxSockets: 1000 });
  let runCounter = 0;
  let relay: { received: number; acked: number; failure: unknown; sockets: WebSocket[] } | undefined;

  const post = (t: RawTarget, body: string) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: t.daprHttpPort,
          method: "POST",
          path: `/v1.0/publish/${encodeURIComponent(t.pubsubName)}/${encodeURIComponent(t.topic)}`,
          agent,
          headers: { "content-type": "application/cloudevents+json", "content-length": Buffer.byteLength(body) },
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8").on("data", (c: string) => (text += c));
          res.once("end", () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(new Error(`daprd answered ${status}: ${text.slice(0, 300)}`));
          });
          res.once("error", reject);
        },
      );
      req.once("timeout", () => req.destroy(new Error(`no answer from daprd within ${REQUEST_TIMEOUT_MS} ms`)));
      req.once("error", reject);
      req.end(body);
    });

  /** The loops of one run: connection ids and their sequence counters. */
  const makeLoops = (n: number) => {
    const run = ++runCounter;
    return Array.from({ length: n }, (_, i) => ({
      connectionId: `raw-${process.pid}-${run}-${i}`,
      url: `ws://127.0.0.1/raw/${i}`,
      seq: 0,
    }));
  };

  /** The CloudEvent JSON of one event, with the fields the service sends. */
  const eventOf = (loop: { connectionId: string; url: string }, seq: number, data: unknown): string => {
    const time = new Date().toISOString();
    return JSON.stringify({
      specversion: "1.0",
      id: randomUUID(),
      type: MESSAGE_EVENT_TYPE,
      source: EVENT_SOURCE,
      subject: loop.connectionId,
      time,
      datacontenttype: "application/json",
      connectionid: loop.connectionId,
      connectionurl: loop.url,
      instanceid: "bench",
      sequence: seq,
      receivedtime: time,
      data,
    });
  };

  /** The loop's next event, its frame stamped now. */
  const nextEvent = (loop: { connectionId: string; url: string; seq: number }): string => {
    const seq = ++loop.seq;
    return eventOf(loop, seq, JSON.parse(timedPayload(seq, monoUs())) as unknown);
  };

  return {
    /** `total` events over `loops` closed loops; resolves when every one is acknowledged. */
    async burst(p: RawTarget & { total: number; timeoutMs: number }) {
      const loops = makeLoops(p.loops);
      const per = Math.ceil(p.total / p.loops);
      let left = p.total;
      const startedUs = monoUs();
      const deadline = performance.now() + p.timeoutMs;
      await Promise.all(
        loops.map(async (loop) => {
          for (let i = 0; i < per && left > 0; i++) {
            if (performance.now() > deadline) throw new Error(`raw burst: ${left} of ${p.total} events not sent within ${p.timeoutMs} ms`);
            left--;
            await post(p, nextEvent(loop));
          }
        }),
      );
      return { sent: p.total, startedUs, endedUs: monoUs() };
    },

    /**
     * The latency baseline: `loops` bare `ws` clients to the feed's group (/<group>/<i>), each POSTing
     * every frame the moment it arrives (an open loop: no waiting for earlier answers, order
     * across requests not kept), its CloudEvent carrying the frame as `data` (so the feed's
     * `ts` reaches the reader as it does through the service).
     */
    async relayOpen(p: RawTarget & { feedUrl: string; group: string }) {
      if (relay) throw new Error("a relay is already open");
      const loops = makeLoops(p.loops);
      const state = { received: 0, acked: 0, failure: undefined as unknown, sockets: [] as WebSocket[] };
      relay = state;
      await Promise.all(
        loops.map(async (loop, i) => {
          const ws = new WebSocket(`${p.feedUrl}/${p.group}/${i}`);
          state.sockets.push(ws);
          ws.on("message", (data: Buffer) => {
            state.received++;
            post(p, eventOf(loop, ++loop.seq, JSON.parse(data.toString("utf8")) as unknown)).then(
              () => void state.acked++,
              (err: unknown) => void (state.failure ??= err),
            );
          });
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`relay socket ${i} did not open within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
            ws.once("open", () => {
              clearTimeout(timer);
              resolve();
            });
            ws.once("error", (err) => {
              clearTimeout(timer);
              reject(err);
            });
          });
        }),
      );
      return { sockets: loops.length };
    },

    /** Waits (bounded) until every frame received was acknowledged, then closes the relay's sockets. */
    async relayClose(p: { timeoutMs: number }) {
      const state = relay;
      if (!state) return { received: 0, acked: 0 };
      relay = undefined;
      try {
        const deadline = performance.now() + p.timeoutMs;
        while (state.acked < state.received && state.failure === undefined) {
          if (performance.now() > deadline) throw new Error(`relay: ${state.acked} of ${state.received} events acknowledged within ${p.timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 5));
        }
        if (state.failure !== undefined) throw state.failure;
        return { received: state.received, acked: state.acked };
      } finally {
        for (const ws of state.sockets) ws.terminate();
      }
    },

    async close(_: object) {
      for (const ws of relay?.sockets ?? []) ws.terminate();
      relay = undefined;
      agent.destroy();
      return {};
    },
  };
}

export type RawDaprPublisherAgent = ReturnType<typeof createAgent>;
