/**
 * Knows every connection handed to the HTTP servers, so that they can be drained gracefully
 * and destroyed at the deadline, and closes HTTP/2 sessions that have had no open stream for
 * `idleTimeoutMs` (Node's own session timeout counts bytes, not streams, and would cut off a
 * quiet server stream such as a health Watch).
 */
import type { ServerResponse } from "node:http";
import type { ServerHttp2Session, ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";

export interface ConnectionTrackerOptions {
  /** An HTTP/2 session with no open stream for this long is closed (GOAWAY). 0 disables. */
  idleTimeoutMs: number;
}

export interface ConnectionTracker {
  /** A socket given to the HTTP/1 server. */
  addHttp1Socket(socket: Socket): void;
  /** Per HTTP/1 request: counts it in flight until its response closes. */
  onHttp1Request(res: ServerResponse): void;
  /** A session created by the HTTP/2 server. */
  addHttp2Session(session: ServerHttp2Session): void;
  /** Starts the idle sweep (at listen). */
  start(): void;
  /**
   * Graceful: HTTP/2 sessions get GOAWAY and close after their open streams; idle HTTP/1
   * sockets close now, busy ones after their response. Resolves when every connection is gone.
   * Responses started from now on carry `Connection: close`.
   */
  drain(): Promise<void>;
  /** Destroys whatever is left and stops the sweep. */
  destroyAll(): void;
  readonly draining: boolean;
}

interface SessionState {
  openStreams: number;
  idleSince: number;
}

export function createConnectionTracker(options: ConnectionTrackerOptions): ConnectionTracker {
  const http1 = new Map<Socket, number>();
  const sessions = new Map<ServerHttp2Session, SessionState>();
  let draining = false;
  let sweep: NodeJS.Timeout | undefined;
  let onEmpty: (() => void) | undefined;

  const checkEmpty = () => {
    if (onEmpty !== undefined && http1.size === 0 && sessions.size === 0) onEmpty();
  };

  // One shared listener rather than a closure per request: the response knows its request,
  // and the request keeps its socket after the response has closed.
  function onHttp1ResponseClose(this: ServerResponse) {
    const socket = this.req.socket;
    const previous = http1.get(socket);
    if (previous === undefined) return;
    const inFlight = previous - 1;
    http1.set(socket, inFlight);
    // end(), not destroy(): the response may still sit in the socket's write buffer.
    if (draining && inFlight === 0) socket.end();
  }

  const sweepIdle = () => {
    const now = performance.now();
    for (const [session, state] of sessions) {
      if (state.openStreams === 0 && now - state.idleSince >= options.idleTimeoutMs) session.close();
    }
  };

  return {
    addHttp1Socket(socket) {
      http1.set(socket, 0);
      socket.once("close", () => {
        http1.delete(socket);
        checkEmpty();
      });
    },

    onHttp1Request(res) {
      const socket = res.req.socket;
      http1.set(socket, (http1.get(socket) ?? 0) + 1);
      res.once("close", onHttp1ResponseClose);
      if (draining) res.setHeader("connection", "close");
    },

    addHttp2Session(session) {
      const state: SessionState = { openStreams: 0, idleSince: performance.now() };
      sessions.set(session, state);
      session.on("stream", (stream: ServerHttp2Stream) => {
        state.openStreams++;
        stream.once("close", () => {
          state.openStreams--;
          if (state.openStreams === 0) state.idleSince = performance.now();
        });
      });
      session.once("close", () => {
        sessions.delete(session);
        checkEmpty();
      });
      if (draining) session.close();
    },

    start() {
      if (options.idleTimeoutMs > 0 && sweep === undefined) {
        const everyMs = Math.max(10, Math.min(1000, Math.floor(options.idleTimeoutMs / 4)));
        sweep = setInterval(sweepIdle, everyMs).unref();
      }
    },

    drain() {
      draining = true;
      const done = new Promise<void>((resolve) => (onEmpty = resolve));
      for (const session of sessions.keys()) session.close();
      for (const [socket, inFlight] of http1) {
        if (inFlight === 0) socket.destroy();
      }
      checkEmpty();
      return done;
    },

    destroyAll() {
      if (sweep !== undefined) clearInterval(sweep);
      sweep = undefined;
      for (const session of sessions.keys()) session.destroy();
      for (const socket of http1.keys()) socket.destroy();
    },

    get draining() {
      return draining;
    },
  };
}
