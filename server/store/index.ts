// Opens the configured store: PostgreSQL when DATABASE_URL is set, else the SQLite file.
import type { AppConfig } from '../config.ts';
import type { StoreLogger } from './batch-writer.ts';
import { openPostgresStore, redactUrl } from './postgres.ts';
import { openSqliteStore } from './sqlite.ts';
import type { Store } from './types.ts';

export interface OpenStoreOptions {
  logger?: StoreLogger;
  closeTimeoutMs?: number;
}

export function openStore(config: AppConfig, opts: OpenStoreOptions = {}): Promise<Store> {
  const common = { flushMs: config.store.flushMs, logger: opts.logger, ...(opts.closeTimeoutMs !== undefined ? { closeTimeoutMs: opts.closeTimeoutMs } : {}) };
  if (config.store.databaseUrl) return openPostgresStore({ ...common, url: config.store.databaseUrl, poolSize: config.store.poolSize });
  return openSqliteStore({ ...common, path: config.dbPath });
}

/** Where the data lives, for logs and the CLI: the SQLite file, or the PostgreSQL URL without its password. */
export function describeStore(config: AppConfig): string {
  return config.store.databaseUrl ? redactUrl(config.store.databaseUrl) : config.dbPath;
}
