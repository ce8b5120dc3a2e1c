// The daemons' logger: one JSON object per line on standard output, with `level` as its
// name (`"debug"`, `"info"`, `"warn"`, `"error"`), which Kubernetes log tooling (Loki,
// Fluent Bit, Elasticsearch, Cloud Logging) reads as the severity without a mapping, then
// `time` in ms, `pid`, `hostname`, `name` and `msg`. It is a few dozen lines instead of a logging library because
// a library with worker-thread transports costs each daemon megabytes of resident memory
// for features a container that logs to stdout never uses.
import { hostname } from 'node:os';
import type { Logger } from './settings.ts';
import { SettingsError } from './settings.ts';

/** Level names, in increasing severity, and their rank (the threshold compares ranks). */
export const LOG_LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** A level name, or `silent` for no output. */
export type LogLevel = keyof typeof LOG_LEVELS | 'silent';

/** Options of createJsonLogger. */
export interface JsonLoggerOptions {
  /** The program, written as `name` on every line. */
  readonly name: string;
  /** Lines below this level are dropped (default `info`). */
  readonly level?: LogLevel | undefined;
  /** Fields written on every line, after the standard ones (e.g. `node`). */
  readonly base?: Readonly<Record<string, unknown>> | undefined;
  /** Where a finished line goes (default: process.stdout, which is synchronous for files and pipes on Linux). */
  readonly write?: ((line: string) => void) | undefined;
  /** Clock, ms since the epoch (tests). */
  readonly now?: (() => number) | undefined;
}

/** Reads a `--log-level` value; anything else is a SettingsError naming the setting. */
export function parseLogLevel(setting: string, text: string): LogLevel {
  if (text === 'silent' || Object.hasOwn(LOG_LEVELS, text)) return text as LogLevel;
  throw new SettingsError(`${setting}: "${text}" is not one of ${[...Object.keys(LOG_LEVELS), 'silent'].join(', ')}`);
}

/** An Error as plain fields (JSON.stringify drops an Error's own message and stack). */
function errorFields(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: e.name, message: e.message };
  const code = (e as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (e.stack) out.stack = e.stack;
  if (e.cause instanceof Error) out.cause = errorFields(e.cause);
  return out;
}

/** JSON of a log record that never throws: Errors spelled out, bigints as strings, cycles cut. */
export function logLine(record: Record<string, unknown>): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(record, (_key, value: unknown) => {
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Error) return errorFields(value);
    if (typeof value === 'object' && value !== null) {
      if (seen.has(value)) return '[Circular]';
      seen.add(value);
    }
    return value;
  });
}

/** A Logger that writes JSON lines (see the file comment for the layout). */
export function createJsonLogger(opts: JsonLoggerOptions): Logger {
  const threshold = opts.level === 'silent' ? Infinity : LOG_LEVELS[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => void process.stdout.write(line));
  const now = opts.now ?? Date.now;
  const fixed = { pid: process.pid, hostname: hostname(), name: opts.name, ...opts.base };
  const at =
    (level: keyof typeof LOG_LEVELS) =>
    (obj: object, msg?: string): void => {
      if (LOG_LEVELS[level] < threshold) return;
      write(`${logLine({ level, time: now(), ...fixed, ...obj, ...(msg !== undefined ? { msg } : {}) })}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
