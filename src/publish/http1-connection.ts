/**
 * One keep-alive HTTP/1.1 connection that pipelines requests: the owner writes any number of
 * requests in one go (one socket write, one syscall) and receives the responses in request
 * order. Meant for a trusted server on the same host, the Dapr sidecar.
 *
 * Pipelining is what keeps a batch ordered without a round trip per event: Go's net/http
 * server (daprd) reads and handles the requests of one connection strictly one after the
 * other, so each publish reaches the broker before the next request is even parsed. HTTP/2
 * would not do: Go serves every stream in its own goroutine, in no particular order.
 *
 * A connection serves one owner at a time (a ResponseListener), and one socket for its whole
 * life: once broken it stays closed and the owner opens a new one. When it breaks with
 * requests unanswered, the listener hears about it exactly once; nothing is retried here,
 * because a request written before the break may or may not have been processed.
 */
import { connect, type Socket } from "node:net";
import { Http1ResponseParser, ResponseParseError, type ParsedResponse } from "./http1-response-parser.ts";

export interface ResponseListener {
  /** The response to the oldest unanswered request. */
  onResponse(status: number, body: string): void;
  /** After the responses of one socket read were delivered: the moment to write more at once. */
  onReadDone(): void;
  /** The connection broke or was destroyed with requests unanswered; none will be answered. */
  onFailure(error: Error): void;
}

export interface Http1ConnectionOptions {
  host: string;
  port: number;
  /** Bounds the TCP connect. */
  connectTimeoutMs: number;
  /** Body bytes kept per response, for error messages. Default 4096. */
  maxBodyBytes?: number;
}

/** Error codes of this module (socket errors keep Node's codes, e.g. ECONNREFUSED). */
export const CONNECT_TIMEOUT = "ERR_CONNECT_TIMEOUT";
/** The server closed the connection while requests were unanswered. */
export const CONNECTION_CLOSED = "ERR_CONNECTION_CLOSED";

/** Room for ~150 of daprd's answers to publishes; a larger read just takes several turns. */
const READ_BUFFER_BYTES = 16 * 1024;

type State = { kind: "open"; socket: Socket } | { kind: "closed" };

export function connectionError(message: string, code: string, cause?: unknown): Error & { code: string } {
  return Object.assign(new Error(message, { cause }), { code });
}

export class Http1Connection {
  private state: State;
  private readonly parser: Http1ResponseParser;
  private listener: ResponseListener | undefined;
  private pending = 0;
  /** The server announced Connection: close; it answers nothing after that response. */
  private serverClosing = false;

  /** Connects; rejects with the socket's error (ECONNREFUSED...) or ERR_CONNECT_TIMEOUT. */
  static open(options: Http1ConnectionOptions): Promise<Http1Connection> {
    return new Promise((resolve, reject) => {
      // Reads land in one buffer per connection, handed straight to the parser: no Buffer per
      // read and no stream machinery, which matters because daprd writes every answer apart.
      const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      let connection: Http1Connection | undefined;
      const socket = connect({
        host: options.host,
        port: options.port,
        noDelay: true,
        onread: {
          buffer: readBuffer,
          callback: (bytes) => {
            connection?.onData(readBuffer.subarray(0, bytes));
            return true;
          },
        },
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(connectionError(`connect to ${options.host}:${options.port} timed out after ${options.connectTimeoutMs} ms`, CONNECT_TIMEOUT));
      }, options.connectTimeoutMs);
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once("error", onError);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeListener("error", onError);
        connection = new Http1Connection(socket, options.maxBodyBytes);
        resolve(connection);
      });
    });
  }

  private constructor(socket: Socket, maxBodyBytes: number | undefined) {
    this.state = { kind: "open", socket };
    this.parser = new Http1ResponseParser((r) => this.deliver(r), { maxBodyBytes });
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => {
      if (this.state.kind === "closed") return;
      this.serverClosing = true;
      // A body delimited by the close completes now (and the owner hears of it like of any
      // read); anything else still owed is lost.
      const owed = this.pending;
      this.parser.end();
      if (this.pending < owed && this.state.kind === "open") this.listener?.onReadDone();
      this.fail(connectionError("the server closed the connection", CONNECTION_CLOSED));
    });
  }

  /** Open, not announced to close, and nothing owed: safe to hand to a new owner. */
  get reusable(): boolean {
    return this.state.kind === "open" && !this.serverClosing && this.pending === 0;
  }

  /** Open and still accepting requests. */
  get writable(): boolean {
    return this.state.kind === "open" && !this.serverClosing;
  }

  /** Requests written and not answered yet. */
  get unanswered(): number {
    return this.pending;
  }

  setListener(listener: ResponseListener | undefined): void {
    this.listener = listener;
  }

  /** Writes `count` complete requests (their bytes, concatenated). Requires `writable`. */
  write(requests: string, count: number): void {
    if (this.state.kind !== "open" || this.serverClosing) throw new Error("connection is not writable");
    this.pending += count;
    this.state.socket.write(requests);
  }

  /** Tears the connection down; unanswered requests are reported to the listener with `reason`. */
  destroy(reason: Error): void {
    this.fail(reason);
  }

  /** Bytes read from the socket (a view of a buffer that the next read overwrites). */
  private onData(chunk: Buffer): void {
    try {
      this.parser.push(chunk);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (this.state.kind === "open") this.listener?.onReadDone();
  }

  private deliver(response: ParsedResponse): void {
    if (this.state.kind !== "open") return;
    if (this.pending === 0) {
      this.fail(new ResponseParseError(`unsolicited HTTP ${response.status} response`));
      return;
    }
    this.pending--;
    if (response.close) this.serverClosing = true;
    this.listener?.onResponse(response.status, response.body);
    if (this.serverClosing && this.pending > 0) {
      this.fail(connectionError(`the server closed the connection after a response, ${this.pending} request(s) unanswered`, CONNECTION_CLOSED));
    }
  }

  private fail(reason: Error): void {
    if (this.state.kind === "closed") return;
    const { socket } = this.state;
    this.state = { kind: "closed" };
    socket.destroy();
    const owed = this.pending;
    this.pending = 0;
    if (owed > 0) this.listener?.onFailure(reason);
  }
}
