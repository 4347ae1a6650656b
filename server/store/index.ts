// Opens the configured store: PostgreSQL when DATABASE_URL is set, else the SQLite file.
import type { AppConfig } from '../config.ts';
import type { Log } from '../../core/log.ts';
import { openPostgresStore, redactUrl } from './postgres.ts';
import { openSqliteStore } from './sqlite.ts';
import { openStoreAtStartup } from './startup.ts';
import { mkdirSync } from 'node:fs';
import type { Store } from './types.ts';

export interface OpenStoreOptions {
  logger?: Log;
  closeTimeoutMs?: number;
  /**
   * The gateway's start-up: the data directory is made, and a SQLite file that cannot be opened or
   * written fails with a StartupError naming the file and the fix (store/startup.ts).
   */
  atStartup?: boolean;
}

export function openStore(config: AppConfig, opts: OpenStoreOptions = {}): Promise<Store> {
  const common = { flushMs: config.store.flushMs, logger: opts.logger, ...(opts.closeTimeoutMs !== undefined ? { closeTimeoutMs: opts.closeTimeoutMs } : {}) };
  if (config.store.databaseUrl) {
    if (opts.atStartup) mkdirSync(config.dataDir, { recursive: true });
    return openPostgresStore({ ...common, url: config.store.databaseUrl, poolSize: config.store.poolSize });
  }
  if (opts.atStartup) return openStoreAtStartup({ ...common, path: config.dbPath }, config.dataDir);
  return openSqliteStore({ ...common, path: config.dbPath });
}

/** Where the data lives, for logs and the CLI: the SQLite file, or the PostgreSQL URL without its password. */
export function describeStore(config: AppConfig): string {
  return config.store.databaseUrl ? redactUrl(config.store.databaseUrl) : config.dbPath;
}
