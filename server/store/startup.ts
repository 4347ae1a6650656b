// Opening the database at start-up: the data directory is made, the file opened and migrated, and
// a write is tried, so a corrupt, read-only or unreachable database stops start-up with a message
// that names the file and says how to fix it, instead of a stack trace (or a gateway that cannot store).
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { sqliteCode } from './sqlite/db.ts';
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from './sqlite.ts';

/** A start-up failure whose message is meant for the operator as it stands (main.ts prints it, no stack). */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

const q = (p: string) => `'${p}'`;
const who = () => (typeof process.getuid === 'function' ? `uid ${process.getuid()}` : 'this user');

/** The operator's explanation of why `file` (in data dir `dataDir`) could not be opened or written. */
export function explainStoreError(err: unknown, file: string, dataDir: string): StartupError {
  const message = err instanceof Error ? err.message : String(err);
  const code = sqliteCode(err) ?? (err as { code?: unknown } | null)?.code;
  const dir = path.dirname(file);
  const elsewhere = 'or set SWITCHYARD_DB to another file';
  switch (code) {
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return new StartupError(`The database ${q(file)} is not a SQLite database or is damaged (${message}). Fix: restore it from a backup, or move it aside (mv ${q(file)} ${q(`${file}.corrupt`)}) and start again to create an empty one, ${elsewhere}.`);
    case 'SQLITE_READONLY':
      return new StartupError(`The database ${q(file)} is read-only for this process (${who()}): ${message}. Fix: make the file, its -wal and -shm files and the directory ${q(dir)} writable by the user running Switchyard (chown/chmod; a file marked immutable needs chattr -i; a read-only mount needs remounting), ${elsewhere}.`);
    case 'SQLITE_CANTOPEN': {
      const isDir = (() => {
        try {
          return statSync(file).isDirectory();
        } catch {
          return false;
        }
      })();
      const why = isDir ? `${q(file)} is a directory` : `SQLite could not open or create it or its -wal/-shm files in ${q(dir)}`;
      return new StartupError(`Cannot open the database ${q(file)}: ${why} (${message}). Fix: make ${q(dir)} a directory writable by the user running Switchyard (${who()}), ${isDir ? 'point SWITCHYARD_DB at a file' : elsewhere}.`);
    }
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new StartupError(`The database ${q(file)} is locked by another process (${message}). Fix: stop the other process using it (another Switchyard or a long learner run), ${elsewhere}.`);
    case 'SQLITE_FULL':
    case 'ENOSPC':
      return new StartupError(`The disk holding the database ${q(file)} is full (${message}). Fix: free space on it, ${elsewhere}.`);
    case 'SQLITE_IOERR':
      return new StartupError(`The database ${q(file)} could not be read or written (I/O error: ${message}). Fix: check the disk and the file system holding it, ${elsewhere}.`);
    case 'ENOTDIR':
    case 'EEXIST':
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new StartupError(`Cannot create the directory for the database ${q(file)} or the data directory ${q(dataDir)} (${message}). Fix: make sure every part of those paths is a directory writable by the user running Switchyard (${who()}), or set SWITCHYARD_DATA_DIR / SWITCHYARD_DB to writable places.`);
    default:
      return new StartupError(`Cannot open the database ${q(file)}: ${message}. Fix: check the file and its directory, ${elsewhere}.`);
  }
}

/**
 * Open the store for the gateway. A database opened read-only (SQLite falls back to that silently
 * when the file cannot be opened for writing) would answer reads and fail every write later, so a
 * header write that changes nothing is tried first.
 */
export async function openStoreAtStartup(options: SqliteStoreOptions, dataDir: string): Promise<SqliteStore> {
  let store: SqliteStore;
  try {
    mkdirSync(dataDir, { recursive: true });
    store = await openSqliteStore(options);
  } catch (e) {
    throw explainStoreError(e, options.path, dataDir);
  }
  try {
    const [row] = await store.all<{ user_version: number }>('PRAGMA user_version');
    await store.run(`PRAGMA user_version = ${Math.trunc(row?.user_version ?? 0)}`);
  } catch (e) {
    await store.close().catch(() => undefined);
    throw explainStoreError(e, options.path, dataDir);
  }
  return store;
}
