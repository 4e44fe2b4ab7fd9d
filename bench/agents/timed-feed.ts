/**
 * Feed server for the Dapr-through-the-service scenario: ~300-byte JSON text frames
 * `{"e":"trade","s":"BTCUSDT","seq":N,"ts":T,"pad":"xxx..."}` where T is this process's
 * monotonic clock in microseconds (process.hrtime.bigint(), CLOCK_MONOTONIC: shared by every
 * process on the machine) taken when the frame is built, just before it is written. A reader
 * of the broker in another process subtracts T from its own clock to get the end-to-end time.
 *
 * Sockets are grouped by the first path segment and numbered by the second (/<group>/<i>);
 * `seq` counts per socket from 1.
 *  - burst: every socket of the group gets `framesPerSocket` frames as fast as its TCP
 *    connection takes them (stamped per chunk of 64 as the chunk is built);
 *  - pace: `framesPerSecond` frames in total, spread round-robin over the group's sockets,
 *    each frame stamped as it is written, for `durationMs`; resolves when the last is written.
 * Stopping a group resets its sockets (RST), so nothing queued spills into the next window.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer } from "ws";

/** Payload size of every frame (the pad field absorbs the varying digits). */
export const TIMED_PAYLOAD_BYTES = 300;
const FRAMES_PER_CHUNK = 64;
const PACE_TICK_MS = 1;
/** A paced socket with more than this waiting in user space skips frames (counted): a stalled consumer must not build a backlog. */
const PACE_MAX_QUEUED_BYTES = 256 * 1024;
/** Bound of a whole burst (all sockets written). */
const BURST_TIMEOUT_MS = 120_000;

/** Monotonic clock in microseconds, comparable across processes on one Linux machine. */
export function monoUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The JSON text of one frame, padded to exactly TIMED_PAYLOAD_BYTES. */
export function timedPayload(seq: number, tsUs: number): string {
  const head = `{"e":"trade","s":"BTCUSDT","seq":${seq},"ts":${tsUs},"pad":"`;
  const pad = TIMED_PAYLOAD_BYTES - head.length - 2;
  if (pad < 0) throw new Error("timed payload over its size");
  return `${head}${"x".repeat(pad)}"}`;
}

/** Server-to-client text frame (unmasked, 16-bit length: the payload is 126..65535 bytes). */
const HEADER = Buffer.from([0x81, 126, TIMED_PAYLOAD_BYTES >> 8, TIMED_PAYLOAD_BYTES & 0xff]);
const FRAME_BYTES = HEADER.length + TIMED_PAYLOAD_BYTES;

interface FeedSocket {
  socket: Socket;
  index: number;
  seq: number;
}

export function createAgent() {
  const groups = new Map<string, FeedSocket[]>();
  let http: Server | undefined;

  /** `n` consecutive frames of one socket, stamped now. */
  const chunk = (s: FeedSocket, n: number): Buffer => {
    const buf = Buffer.allocUnsafe(n * FRAME_BYTES);
    const ts = monoUs();
    for (let i = 0; i < n; i++) {
      const at = i * FRAME_BYTES;
      HEADER.copy(buf, at);
      buf.write(timedPayload(++s.seq, ts), at + HEADER.length, "latin1");
    }
    return buf;
  };

  /** Writes `frames` frames, a chunk at a time, waiting for drain in between; resolves when all are written. */
  const burst = (s: FeedSocket, frames: number) =>
    new Promise<void>((resolve, reject) => {
      let left = frames;
      const onClose = () => reject(new Error(`feed socket ${s.index} closed with ${left} frames left`));
      s.socket.once("close", onClose);
      const loop = () => {
        while (left > 0) {
          if (s.socket.destroyed) return;
          const n = Math.min(FRAMES_PER_CHUNK, left);
          left -= n;
          if (!s.socket.write(chunk(s, n))) {
            s.socket.once("drain", loop);
            return;
          }
        }
        s.socket.off("close", onClose);
        resolve();
      };
      loop();
    });

  const sockets = (group: string, expected?: number): FeedSocket[] => {
    const list = groups.get(group) ?? [];
    if (expected !== undefined && list.length !== expected) {
      throw new Error(`feed group ${group} has ${list.length} sockets, expected ${expected}`);
    }
    return list;
  };

  return {
    async listen(_: object) {
      const wss = new WebSocketServer({ noServer: true });
      http = createServer();
      http.on("upgrade", (req, socket: Socket, head) => {
        const [, group = "", index = "0"] = (req.url ?? "/").split("/");
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on("error", () => {});
          socket.setNoDelay(true);
          let list = groups.get(group);
          if (!list) groups.set(group, (list = []));
          const entry: FeedSocket = { socket, index: Number(index), seq: 0 };
          list.push(entry);
          list.sort((a, b) => a.index - b.index);
          socket.once("close", () => {
            const at = list.indexOf(entry);
            if (at >= 0) list.splice(at, 1);
          });
        });
      });
      http.listen(0, "127.0.0.1");
      await once(http, "listening");
      return { port: (http.address() as AddressInfo).port };
    },

    /** Waits (bounded) until the group has `sockets` connections. */
    async waitSockets(p: { group: string; sockets: number; timeoutMs: number }) {
      const deadline = performance.now() + p.timeoutMs;
      while ((groups.get(p.group)?.length ?? 0) < p.sockets) {
        if (performance.now() > deadline) throw new Error(`feed group ${p.group}: ${groups.get(p.group)?.length ?? 0} of ${p.sockets} sockets after ${p.timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return {};
    },

    /** Sends `framesPerSocket` to every socket; resolves when every frame is written to its socket. */
    async burst(p: { group: string; sockets: number; framesPerSocket: number }) {
      const list = sockets(p.group, p.sockets);
      const startedUs = monoUs();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`burst to ${p.group} not written within ${BURST_TIMEOUT_MS} ms`)), BURST_TIMEOUT_MS);
      });
      try {
        await Promise.race([Promise.all(list.map((s) => burst(s, p.framesPerSocket))), timeout]);
      } finally {
        clearTimeout(timer);
      }
      return { startedUs, writtenUs: monoUs(), frames: list.length * p.framesPerSocket };
    },

    /** `framesPerSecond` in total over the group's sockets, round-robin, for `durationMs`. */
    async pace(p: { group: string; sockets: number; framesPerSecond: number; durationMs: number }) {
      const list = sockets(p.group, p.sockets);
      const total = Math.round((p.framesPerSecond * p.durationMs) / 1000);
      const started = performance.now();
      const startedUs = monoUs();
      let sent = 0;
      let skipped = 0;
      let next = 0;
      while (sent + skipped < total) {
        const due = Math.min(total, Math.floor(((performance.now() - started) * p.framesPerSecond) / 1000));
        while (sent + skipped < due) {
          const s = list[next++ % list.length]!;
          if (s.socket.destroyed) throw new Error(`feed socket ${s.index} of ${p.group} closed while pacing`);
          if (s.socket.writableLength > PACE_MAX_QUEUED_BYTES) {
            skipped++;
            continue;
          }
          s.socket.write(chunk(s, 1));
          sent++;
        }
        if (performance.now() - started > p.durationMs + 30_000) throw new Error("pacing fell more than 30 s behind");
        await new Promise((r) => setTimeout(r, PACE_TICK_MS));
      }
      return { sent, skipped, startedUs, endedUs: monoUs() };
    },

    /** Resets every socket of the group. */
    async stop(p: { group: string }) {
      const list = groups.get(p.group) ?? [];
      for (const s of list) s.socket.resetAndDestroy();
      groups.delete(p.group);
      return { reset: list.length };
    },

    async close(_: object) {
      for (const list of groups.values()) for (const s of list) s.socket.destroy();
      groups.clear();
      http?.closeAllConnections();
      http?.close();
      return {};
    },
  };
}

export type TimedFeedAgent = ReturnType<typeof createAgent>;
