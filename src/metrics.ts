/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
 * text exposition format. Hot paths hold a handle from `labels()` so that an increment is a
 * property write, not a map lookup by a built string.
 */

export type Labels = Record<string, string>;

interface Series {
  labels: Labels;
  value: number;
}

interface HistogramSeries {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
}

export interface CounterHandle {
  inc(by?: number): void;
}
export interface GaugeHandle {
  set(value: number): void;
  inc(by?: number): void;
  dec(by?: number): void;
}
export interface HistogramHandle {
  observe(value: number): void;
}

export interface Counter {
  labels(labels?: Labels): CounterHandle;
  inc(labels?: Labels, by?: number): void;
}
export interface Gauge {
  labels(labels?: Labels): GaugeHandle;
  set(labels: Labels, value: number): void;
  /** Removes one labelled series (e.g. of a connection that is gone). */
  remove(labels: Labels): void;
}
export interface Histogram {
  labels(labels?: Labels): HistogramHandle;
  observe(labels: Labels, value: number): void;
}

export interface Metrics {
  /** `collect`, if given, adds series read at render time (e.g. CPU seconds the OS counts). */
  counter(name: string, help: string, collect?: () => Array<{ labels?: Labels; value: number }>): Counter;
  gauge(name: string, help: string, collect?: () => Array<{ labels?: Labels; value: number }>): Gauge;
  histogram(name: string, help: string, buckets: number[]): Histogram;
  /** Prometheus text format, version 0.0.4. */
  render(): string;
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function key(labels: Labels): string {
  const names = Object.keys(labels).sort();
  return names.map((n) => `${n}=${labels[n]}`).join(",");
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatLabels(labels: Labels, extra?: [string, string]): string {
  const parts = Object.keys(labels)
    .sort()
    .map((n) => `${n}="${escapeLabel(labels[n] ?? "")}"`);
  if (extra) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function formatNumber(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/** Labelled series of one counter or gauge, created on first use. */
function seriesMap() {
  const series = new Map<string, Series>();
  const get = (labels: Labels = {}): Series => {
    const k = key(labels);
    let s = series.get(k);
    if (!s) {
      s = { labels: { ...labels }, value: 0 };
      series.set(k, s);
    }
    return s;
  };
  return { series, get };
}

export function createMetrics(): Metrics {
  const renderers: Array<() => string> = [];
  const names = new Set<string>();
  const claim = (name: string) => {
    if (names.has(name)) throw new Error(`metric ${name} registered twice`);
    names.add(name);
  };

  return {
    counter(name, help, collect) {
      claim(name);
      const { series, get } = seriesMap();
      renderers.push(() => {
        let out = `# HELP ${name} ${help}\n# TYPE ${name} counter\n`;
        for (const s of series.values()) out += `${name}${formatLabels(s.labels)} ${formatNumber(s.value)}\n`;
        if (collect) {
          for (const c of collect()) out += `${name}${formatLabels(c.labels ?? {})} ${formatNumber(c.value)}\n`;
        }
        return out;
      });
      return {
        labels(labels) {
          const s = get(labels);
          return { inc: (by = 1) => void (s.value += by) };
        },
        inc(labels, by = 1) {
          get(labels).value += by;
        },
      };
    },

    gauge(name, help, collect) {
      claim(name);
      const { series, get } = seriesMap();
      renderers.push(() => {
        let out = `# HELP ${name} ${help}\n# TYPE ${name} gauge\n`;
        for (const s of series.values()) out += `${name}${formatLabels(s.labels)} ${formatNumber(s.value)}\n`;
        if (collect) {
          for (const c of collect()) out += `${name}${formatLabels(c.labels ?? {})} ${formatNumber(c.value)}\n`;
        }
        return out;
      });
      return {
        labels(labels) {
          const s = get(labels);
          return {
            set: (v) => void (s.value = v),
            inc: (by = 1) => void (s.value += by),
            dec: (by = 1) => void (s.value -= by),
          };
        },
        set(labels, value) {
          get(labels).value = value;
        },
        remove(labels) {
          series.delete(key(labels));
        },
      };
    },

    histogram(name, help, buckets) {
      claim(name);
      const bounds = [...buckets].sort((a, b) => a - b);
      const series = new Map<string, HistogramSeries>();
      const get = (labels: Labels = {}) => {
        const k = key(labels);
        let s = series.get(k);
        if (!s) {
          s = { labels: { ...labels }, counts: new Array<number>(bounds.length).fill(0), sum: 0, count: 0 };
          series.set(k, s);
        }
        return s;
      };
      const observe = (s: HistogramSeries, v: number) => {
        s.sum += v;
        s.count++;
        for (let i = 0; i < bounds.length; i++) {
          if (v <= bounds[i]!) {
            s.counts[i]!++;
            break;
          }
        }
      };
      renderers.push(() => {
        let out = `# HELP ${name} ${help}\n# TYPE ${name} histogram\n`;
        for (const s of series.values()) {
          let cumulative = 0;
          for (let i = 0; i < bounds.length; i++) {
            cumulative += s.counts[i]!;
            out += `${name}_bucket${formatLabels(s.labels, ["le", formatNumber(bounds[i]!)])} ${cumulative}\n`;
          }
          out += `${name}_bucket${formatLabels(s.labels, ["le", "+Inf"])} ${s.count}\n`;
          out += `${name}_sum${formatLabels(s.labels)} ${formatNumber(s.sum)}\n`;
          out += `${name}_count${formatLabels(s.labels)} ${s.count}\n`;
        }
        return out;
      });
      return {
        labels(labels) {
          const s = get(labels);
          return { observe: (v) => observe(s, v) };
        },
        observe(labels, v) {
          observe(get(labels), v);
        },
      };
    },

    render() {
      return renderers.map((r) => r()).join("");
    },
  };
}
