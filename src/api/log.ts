import { pino } from 'pino';

/** Structured logger used throughout (pino-compatible subset). */
export interface Logger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Log levels, least to most severe; 'silent' turns logging off. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/**
 * The default logger: JSON lines on stderr via pino. Level from `CONCLAVE_LOG_LEVEL`
 * (default 'warn' so that embedding applications are not flooded).
 */
export function defaultLogger(level?: LogLevel): Logger {
  const lvl = level ?? (process.env.CONCLAVE_LOG_LEVEL as LogLevel | undefined) ?? 'warn';
  return pino({ level: lvl, base: { lib: 'conclave' }, serializers: {} }, pino.destination(2)) as unknown as Logger;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() { return silentLogger; },
};

/** JSON-safe rendering of values that pino cannot print (bigint). */
export function safe(detail: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!detail) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(detail)) out[k] = typeof v === 'bigint' ? '0x' + v.toString(16) : v;
  return out;
}
