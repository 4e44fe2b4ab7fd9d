/**
 * Tells HTTP/2 with prior knowledge from HTTP/1.x on a fresh socket by its first bytes.
 *
 * Node's cleartext HTTP/2 server cannot fall back to HTTP/1 (`allowHTTP1` needs TLS and ALPN),
 * yet gRPC clients speak h2c on the same port where curl and browsers speak HTTP/1.1. Every
 * HTTP/2 connection starts with a fixed 24-byte preface; anything that diverges from it is
 * handed to the HTTP/1 server, whose parser answers garbage with 400 and closes.
 */
import type { Socket } from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export interface ProtocolSnifferOptions {
  /** Receives sockets whose first bytes are the HTTP/2 preface. */
  onHttp2(socket: Socket): void;
  /** Receives every other socket; the bytes already read are pushed back first. */
  onHttp1(socket: Socket): void;
  /** A socket that has not sent enough to decide within this time is destroyed. */
  firstBytesTimeoutMs: number;
}

export interface ProtocolSniffer {
  /** Starts reading a new socket; it is handed over once its protocol is known. */
  accept(socket: Socket): void;
  /** Destroys the sockets still undecided (at shutdown); later ones are destroyed at once. */
  close(): void;
}

export function createProtocolSniffer(options: ProtocolSnifferOptions): ProtocolSniffer {
  const pending = new Set<Socket>();
  let closed = false;

  const accept = (socket: Socket) => {
    if (closed) {
      socket.destroy();
      return;
    }
    pending.add(socket);
    let head: Buffer | undefined;

    const finish = () => {
      pending.delete(socket);
      socket.removeListener("data", onData);
      socket.removeListener("end", onEnd);
      socket.removeListener("timeout", onTimeout);
      socket.removeListener("close", onClose);
      socket.setTimeout(0);
    };
    const onData = (chunk: Buffer) => {
      head = head === undefined ? chunk : Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const isPrefaceSoFar = head.compare(PREFACE, 0, n, 0, n) === 0;
      if (isPrefaceSoFar && n < PREFACE.length) return;
      finish();
      // Paused so that nothing flows until the new owner has attached its listeners; the
      // peeked bytes go back to the front of the socket's buffer for it to read first.
      socket.pause();
      socket.unshift(head);
      if (isPrefaceSoFar) {
        options.onHttp2(socket);
      } else {
        options.onHttp1(socket);
      }
    };
    const onEnd = () => {
      finish();
      socket.destroy();
    };
    const onTimeout = () => {
      finish();
      socket.destroy();
    };
    const onClose = () => finish();

    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("close", onClose);
    socket.on("timeout", onTimeout);
    socket.setTimeout(options.firstBytesTimeoutMs);
  };

  return {
    accept,
    close() {
      closed = true;
      for (const socket of pending) socket.destroy();
      pending.clear();
    },
  };
}
