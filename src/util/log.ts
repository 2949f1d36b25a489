// One logger for the process, on stderr; tests pass their own.
//   json (default): one pino JSON object a line.
//   text: klog-like lines for a terminal (log-text.ts).
// Both are written synchronously, so lines appear in the order they were logged,
// and carry a timestamp that never goes backwards (timestamp()).
import { pino, destination, stdSerializers, type DestinationStream, type Logger } from 'pino';
import { inspect } from 'node:util';
import { formatTextLine } from './log-text.js';

export type { Logger } from 'pino';

/** kube-proxy's --logging-format values. */
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * Anything logged under `err` or `error` as an object with its message and stack.
 * pino's own serializer passes a non-Error through as it is (a string, or a plain
 * object that then prints as {"type":"Object","stack":""}); this one always gives
 * a message, and keeps the cause chain and the fields of ours (ConfigError.field).
 */
export function serializeError(value: unknown): unknown {
  if (value instanceof Error) return stdSerializers.err(value);
  if (typeof value === 'string') return { message: value };
  if (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string') {
    const { message, ...rest } = value as { message: string };
    return { message, ...rest };
  }
  return { message: inspect(value, { depth: 3, breakLength: Infinity }) };
}

let lastMicros = 0;

/**
 * Wall-clock time in microseconds, strictly increasing within the process: a
 * clock stepped backwards (NTP) cannot reorder lines. The sub-millisecond digits
 * come from the monotonic clock.
 */
export function nowMicros(): number {
  const candidate = Date.now() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
  lastMicros = Math.max(candidate, lastMicros + 1);
  return lastMicros;
}

/** ISO 8601 with microseconds, UTC: "2025-12-02T02:31:16.123456Z". */
export function isoMicros(us: number): string {
  const iso = new Date(Math.floor(us / 1000)).toISOString();
  return `${iso.slice(0, -1)}${String(us % 1000).padStart(3, '0')}Z`;
}

export interface LoggerOptions {
  level?: string;
  format?: LogFormat;
  /** Where lines go; default stderr. */
  out?: DestinationStream;
}

export function createLogger(level: string = process.env.BPFPROXY_LOG_LEVEL ?? 'info', format: LogFormat = 'json', out?: DestinationStream): Logger {
  const sink = out ?? destination({ fd: 2, sync: true });
  const stream: DestinationStream = format === 'text' ? { write: (line: string) => sink.write(formatTextLine(line, process.pid)) } : sink;
  return pino({
    level,
    base: { component: 'bpfproxy' },
    serializers: { err: serializeError, error: serializeError },
    timestamp: () => `,"time":"${isoMicros(nowMicros())}"`,
  }, stream);
}

/** A logger that drops everything, for unit tests that do not inspect logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
