// One logger for the process. JSON lines on stderr (pino); tests pass their own.
import { pino, destination, type Logger } from 'pino';

export type { Logger } from 'pino';

export function createLogger(level: string = process.env.BPFPROXY_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { component: 'bpfproxy' } }, destination(2));
}

/** A logger that drops everything, for unit tests that do not inspect logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
