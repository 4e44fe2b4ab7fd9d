/** Number, time and size formatting of the console, in the reader's locale. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

/** 1234 -> "1,234"; from a million on, "1.2M". */
export function formatCount(n: bigint | number): string {
  const v = Number(n);
  return v >= 1_000_000 ? compact.format(v) : integer.format(v);
}

/** Messages per second: "0", "0.4", "12", "1.2K". */
export function formatRate(perSecond: number | undefined): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return "–";
  if (perSecond === 0) return "0";
  if (perSecond < 10) return perSecond.toFixed(1);
  return perSecond >= 10_000 ? compact.format(perSecond) : integer.format(perSecond);
}

export function timestampMs(ts: Timestamp | undefined): number {
  return ts ? Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000) : 0;
}

/** "14:03:07.123" in local time. */
export function formatClock(ms: number): string {
  if (ms <= 0) return "";
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** "5s", "3m 2s", "4h 10m", "2d 3h": how long ago or how long for. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return `${hours}h ${m % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** The first 8 characters of a UUID: enough to tell connections apart on one screen. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** JSON pretty-printed when the text is JSON, else the text as is. */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
