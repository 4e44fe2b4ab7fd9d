/** Structured JSON-lines logger. One line per record; message bodies never belong in info. */

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every record. */
  child(fields: Record<string, unknown>): Logger;
  isEnabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  /** Records below this level are dropped. Default "info". */
  level?: LogLevel;
  /** Where lines go. Default process.stdout. */
  write?: (line: string) => void;
  /** Fields on every record (e.g. instance_id). */
  base?: Record<string, unknown>;
}

export function isLogLevel(value: string): value is LogLevel {
  return value in levelRank;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = levelRank[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const make = (base: Record<string, unknown>): Logger => {
    const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
      if (levelRank[level] < min) return;
      const record: Record<string, unknown> = { time: new Date().toISOString(), level, msg, ...base };
      if (fields) {
        for (const [k, v] of Object.entries(fields)) {
          record[k] = v instanceof Error ? { name: v.name, message: v.message } : v;
        }
      }
      write(JSON.stringify(record, bigintReplacer) + "\n");
    };
    return {
      debug: (m, f) => log("debug", m, f),
      info: (m, f) => log("info", m, f),
      warn: (m, f) => log("warn", m, f),
      error: (m, f) => log("error", m, f),
      child: (fields) => make({ ...base, ...fields }),
      isEnabled: (level) => levelRank[level] >= min,
    };
  };
  return make(options.base ?? {});
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ level: "silent" });

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
