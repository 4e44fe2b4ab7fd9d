/**
 * A minimal Redis client over node:net (RESP2), for tests that must see what really reached the
 * broker. One command in flight at a time is all the tests need, so replies are matched to
 * commands by order without any pipelining bookkeeping.
 */
import { connect, type Socket } from "node:net";
import { once } from "node:events";

export type RespValue = string | number | null | RespValue[];

export class RespError extends Error {
  override readonly name = "RespError";
}

export interface RespClient {
  /** Sends one command and resolves with its reply; a Redis error reply rejects with RespError. */
  command(...args: Array<string | number>): Promise<RespValue>;
  close(): void;
}

export interface RespClientOptions {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Bounds the TCP connect. Default 2000. */
  connectTimeoutMs?: number;
}

export async function createRespClient(options: RespClientOptions): Promise<RespClient> {
  const socket = connect({ port: options.port, host: options.host ?? "127.0.0.1" });
  socket.setNoDelay(true);
  await Promise.race([
    once(socket, "connect"),
    new Promise<never>((_, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`redis connect to port ${options.port} timed out`));
      }, options.connectTimeoutMs ?? 2000);
      socket.once("connect", () => clearTimeout(timer));
    }),
  ]);
  return wrap(socket);
}

function wrap(socket: Socket): RespClient {
  let buffer: Buffer = Buffer.alloc(0);
  const waiting: Array<{ resolve: (v: RespValue) => void; reject: (e: Error) => void }> = [];
  let failure: Error | undefined;

  const failAll = (err: Error) => {
    failure ??= err;
    for (const w of waiting.splice(0)) w.reject(failure);
  };
  socket.on("error", failAll);
  socket.on("close", () => failAll(new Error("redis connection closed")));
  socket.on("data", (chunk: Buffer) => {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
    for (;;) {
      let parsed: Parsed | undefined;
      try {
        parsed = parse(buffer, 0);
      } catch (err) {
        failAll(err as Error);
        socket.destroy();
        return;
      }
      if (!parsed) return;
      buffer = buffer.subarray(parsed.end);
      const w = waiting.shift();
      if (!w) continue;
      if (parsed.value instanceof RespError) w.reject(parsed.value);
      else w.resolve(parsed.value);
    }
  });

  return {
    command(...args) {
      if (failure) return Promise.reject(failure);
      return new Promise<RespValue>((resolve, reject) => {
        waiting.push({ resolve, reject });
        socket.write(encode(args));
      });
    },
    close() {
      socket.destroy();
    },
  };
}

function encode(args: Array<string | number>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

type Parsed = { value: RespValue | RespError; end: number };

/** Parses one reply starting at `start`; undefined when the buffer does not hold all of it yet. */
function parse(buf: Buffer, start: number): Parsed | undefined {
  const lineEnd = buf.indexOf("\r\n", start);
  if (lineEnd < 0) return undefined;
  const line = buf.toString("utf8", start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (String.fromCharCode(buf[start]!)) {
    case "+":
      return { value: line, end: next };
    case "-":
      return { value: new RespError(line), end: next };
    case ":":
      return { value: Number(line), end: next };
    case "$": {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buf.length < next + length + 2) return undefined;
      return { value: buf.toString("utf8", next, next + length), end: next + length + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let offset = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buf, offset);
        if (!item) return undefined;
        // An error nested in an array (e.g. inside EXEC) is kept as its message.
        items.push(item.value instanceof RespError ? item.value.message : item.value);
        offset = item.end;
      }
      return { value: items, end: offset };
    }
    default:
      throw new Error(`unexpected RESP type byte ${buf[start]}`);
  }
}
