/** The bytes every scenario sends, built in one place so service and baselines see the same. */

/** Payload size of a feed frame: a ~300-byte trade message, as exchanges stream them. */
export const FEED_PAYLOAD_BYTES = 300;
/** Server-to-client text frame header for a 300-byte payload: FIN+text, 16-bit length. */
const FEED_HEADER = Buffer.from([0x81, 126, FEED_PAYLOAD_BYTES >> 8, FEED_PAYLOAD_BYTES & 0xff]);
export const FEED_FRAME_BYTES = FEED_HEADER.length + FEED_PAYLOAD_BYTES;

/** One trade message padded to exactly FEED_PAYLOAD_BYTES; `i` varies every numeric field. */
export function feedMessage(i: number): string {
  const body = JSON.stringify({
    stream: "btcusdt@trade",
    data: {
      e: "trade",
      E: 1_700_000_000_000 + i,
      s: "BTCUSDT",
      t: 3_000_000_000 + i,
      p: (43_000 + (i % 1000) / 100).toFixed(2),
      q: (0.001 * ((i % 97) + 1)).toFixed(8),
      b: 20_000_000_000 + i,
      a: 20_000_000_500 + i,
      T: 1_700_000_000_000 + i,
      m: i % 2 === 0,
      M: true,
    },
  });
  const pad = FEED_PAYLOAD_BYTES - body.length - ',"pad":""'.length;
  if (pad < 0) throw new Error("feed message template is over the frame size");
  return `${body.slice(0, -1)},"pad":"${"x".repeat(pad)}"}`;
}

/**
 * `frames` distinct pre-encoded WebSocket frames back to back. The feed server writes this
 * chunk to the raw socket: one syscall per chunk, so the generator costs almost nothing and
 * the consumer is what gets measured.
 */
export function feedChunk(frames: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < frames; i++) {
    const payload = Buffer.from(feedMessage(i), "utf8");
    parts.push(FEED_HEADER, payload);
  }
  return Buffer.concat(parts);
}

const RPC_PARAMS = '"method":"echo","params":{"symbol":"BTCUSDT","side":"buy","qty":"0.01000000","price":"43210.12"}';

/** A JSON-RPC request with a unique numeric id (the service correlates on field "id"). */
export function rpcRequestText(id: number): string {
  return `{"id":${id},${RPC_PARAMS}}`;
}

/** The on-open message of reconnect-storm connection `path`, checked by the upstream. */
export function onOpenText(path: string): string {
  return `{"op":"subscribe","channel":${JSON.stringify(path)}}`;
}
