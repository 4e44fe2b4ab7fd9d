/**
 * Feed server for the ingest scenario: pre-encoded 300-byte JSON text frames written straight
 * to the raw sockets (one syscall per 256 frames, so the generator costs almost nothing).
 * Sockets are grouped by the first path segment (/svc-.../, /base-.../, /raw-.../), so one
 * server feeds the service, the bare baseline and the ceiling reader one at a time.
 *  - burst: every socket of the group gets exactly `framesPerSocket` frames, as fast as its
 *    TCP connection takes them (throughput: time until the consumer has them all);
 *  - paced: `framesPerSecond` frames per socket, spread over 10 ms ticks, until stopped; a
 *    socket whose consumer falls behind skips ticks (counted) rather than queueing without end.
 * Stopping a group resets its sockets (RST), so nothing queued spills into the next window.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer } from "ws";
import { FEED_FRAME_BYTES, feedChunk } from "../lib/payloads.ts";

const FRAMES_PER_CHUNK = 256;
const PACE_TICK_MS = 10;
/** A paced socket with more than this waiting in user space skips its tick (a slow consumer must not build an unbounded backlog). */
const PACE_MAX_QUEUED_BYTES = 64 * 1024;

export function createAgent() {
  const chunk = feedChunk(FRAMES_PER_CHUNK);
  const groups = new Map<string, Set<Socket>>();
  const timers = new Map<string, NodeJS.Timeout>();
  let sentFrames = 0;
  let skippedFrames = 0;
  let http: Server | undefined;

  const write = (socket: Socket, frames: number): boolean => {
    let ok = true;
    while (frames > 0) {
      const n = Math.min(FRAMES_PER_CHUNK, frames);
      ok = socket.write(n === FRAMES_PER_CHUNK ? chunk : chunk.subarray(0, n * FEED_FRAME_BYTES));
      sentFrames += n;
      frames -= n;
    }
    return ok;
  };

  /** Writes `frames` frames, one chunk at a time, waiting for drain in between. */
  const burst = (socket: Socket, frames: number) => {
    let left = frames;
    const loop = () => {
      while (left > 0 && !socket.destroyed) {
        const n = Math.min(FRAMES_PER_CHUNK, left);
        left -= n;
        if (!write(socket, n)) {
          socket.once("drain", loop);
          return;
        }
      }
    };
    loop();
  };

  return {
    async listen(_: object) {
      const wss = new WebSocketServer({ noServer: true });
      http = createServer();
      http.on("upgrade", (req, socket: Socket, head) => {
        const group = (req.url ?? "/").split("/")[1] ?? "";
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on("error", () => {});
          let set = groups.get(group);
          if (!set) groups.set(group, (set = new Set()));
          set.add(socket);
          socket.once("close", () => set.delete(socket));
        });
      });
      http.listen(0, "127.0.0.1");
      await once(http, "listening");
      return { port: (http.address() as AddressInfo).port };
    },

    async burst(p: { group: string; framesPerSocket: number }) {
      const sockets = [...(groups.get(p.group) ?? [])];
      for (const s of sockets) burst(s, p.framesPerSocket);
      return { sockets: sockets.length };
    },

    async pace(p: { group: string; framesPerSecond: number }) {
      const sockets = [...(groups.get(p.group) ?? [])];
      const started = performance.now();
      let due = 0;
      timers.set(
        p.group,
        setInterval(() => {
          const target = Math.floor(((performance.now() - started) / 1000) * p.framesPerSecond);
          const n = target - due;
          due = target;
          if (n <= 0) return;
          for (const s of sockets) {
            if (s.destroyed) continue;
            if (s.writableLength > PACE_MAX_QUEUED_BYTES) skippedFrames += n;
            else write(s, n);
          }
        }, PACE_TICK_MS),
      );
      return { sockets: sockets.length };
    },

    /** Stops feeding and resets every socket of the group. */
    async stop(p: { group: string }) {
      clearInterval(timers.get(p.group));
      timers.delete(p.group);
      const sockets = [...(groups.get(p.group) ?? [])];
      for (const s of sockets) s.resetAndDestroy();
      groups.delete(p.group);
      return { reset: sockets.length };
    },

    async stats(_: object) {
      return { sentFrames, skippedFrames, atMs: performance.now() };
    },

    async close(_: object) {
      for (const t of timers.values()) clearInterval(t);
      for (const set of groups.values()) for (const s of set) s.destroy();
      http?.closeAllConnections();
      http?.close();
      return {};
    },
  };
}

export type FeedUpstreamAgent = ReturnType<typeof createAgent>;
