// The one log type below server/: a function taking a level, a message and structured fields.
// The router, the embedder factory and the stores log through it; server/logger.ts's Logger is
// what main.ts hands them, adapted by logTo().

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type Log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** A Log that writes to a leveled logger (e.g. server/logger.ts's Logger). */
export function logTo(logger: Record<LogLevel, (msg: string, fields?: Record<string, unknown>) => void>): Log {
  return (level, msg, fields) => logger[level](msg, fields);
}
