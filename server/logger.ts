// Structured JSON logs, one line each, with request ids; known secret values are scrubbed from
// every line. The last lines are kept in memory for the admin page's log view.
import type { LogLevel } from '../core/log.ts';
import { allSecretForms, scrubSecrets } from './secrets.ts';

export type { LogLevel };

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogLine {
  ts: string;
  level: LogLevel;
  msg: string;
  [field: string]: unknown;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** Whether lines of this level are written (to skip building fields nobody will see). */
  enabled(level: LogLevel): boolean;
  /** Most recent lines, newest last, optionally filtered. */
  recent(filter?: { level?: LogLevel; requestId?: string; limit?: number }): LogLine[];
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Secret values that must never be printed (API keys, tokens). */
  secrets?: string[];
  write?: (line: string) => void;
  bufferSize?: number;
}


/**
 * Writes to stdout in batches, once per event-loop turn, so a request never waits on a write
 * syscall (stdout to a pipe or file is synchronous in Node). Flushed synchronously at exit.
 */
function batchedStdout(): (line: string) => void {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const chunk = pending.join('\n') + '\n';
    pending = [];
    process.stdout.write(chunk);
  };
  process.on('exit', flush);
  return (line) => {
    if (pending.push(line) === 1) setImmediate(flush);
  };
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = levelRank[opts.level ?? 'info'];
  // Each secret's base64 and URL-encoded copies too: an upstream may echo the key it was sent.
  const secrets = allSecretForms(opts.secrets ?? []);
  const write = opts.write ?? batchedStdout();
  const size = opts.bufferSize ?? 2000;
  const ring: LogLine[] = [];

  const scrub = (text: string): string => scrubSecrets(text, secrets, '[REDACTED]');

  const emit = (level: LogLevel, base: Record<string, unknown>, msg: string, fields?: Record<string, unknown>) => {
    if (levelRank[level] < min) return;
    const line: LogLine = { ts: new Date().toISOString(), level, msg, ...base, ...fields };
    let raw: string;
    try {
      raw = JSON.stringify(line);
    } catch {
      raw = JSON.stringify({ ts: line.ts, level, msg, note: 'unserialisable fields dropped' });
    }
    const text = scrub(raw);
    ring.push(text === raw ? line : (JSON.parse(text) as LogLine));
    if (ring.length > size) ring.splice(0, ring.length - size);
    write(text);
  };

  const make = (base: Record<string, unknown>): Logger => ({
    debug: (m, f) => emit('debug', base, m, f),
    info: (m, f) => emit('info', base, m, f),
    warn: (m, f) => emit('warn', base, m, f),
    error: (m, f) => emit('error', base, m, f),
    child: (fields) => make({ ...base, ...fields }),
    enabled: (level) => levelRank[level] >= min,
    recent: (filter = {}) => {
      let lines = ring;
      if (filter.level) lines = lines.filter((l) => levelRank[l.level] >= levelRank[filter.level!]);
      if (filter.requestId) lines = lines.filter((l) => l.requestId === filter.requestId);
      return lines.slice(-(filter.limit ?? 200));
    },
  });
  return make({});
}

/** A logger that prints nothing (tests), still keeping recent lines. */
export function silentLogger(): Logger {
  return createLogger({ level: 'debug', write: () => {} });
}
