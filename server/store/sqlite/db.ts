// A small promise wrapper over one sqlite3 connection: run/get/all/exec, prepared statements,
// and a mutex so transactions (and writes that must not land inside one) never interleave.
import sqlite3 from 'sqlite3';
import type { Dialect } from '../sql/queries.ts';

export const sqliteDialect: Dialect = {
  name: 'sqlite',
  inJsonArray: (column) => `${column} IN (SELECT value FROM json_each(?))`,
  bucket: (column) => `CAST(${column} / ? AS INTEGER) * ?`,
};

export type SqlParams = readonly unknown[];

export interface RunResult {
  changes: number;
  lastID: number;
}

/** An error from SQLite carries its result code name, e.g. 'SQLITE_BUSY'. */
export function sqliteCode(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : null;
}

/** A prepared statement, reused across runs (sqlite3 resets it before each run). */
export class PreparedStatement {
  constructor(private readonly stmt: sqlite3.Statement) {}

  run(params: SqlParams = []): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.stmt.run(params, function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastID: this.lastID });
      });
    });
  }

  /** For statements that return rows, e.g. INSERT ... RETURNING. */
  all<T>(params: SqlParams = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.stmt.all<T>(params, (err: Error | null, rows: T[]) => (err ? reject(err) : resolve(rows)));
    });
  }

  finalize(): Promise<void> {
    return new Promise((resolve) => {
      this.stmt.finalize(() => resolve());
    });
  }
}

export type TransactionMode = 'DEFERRED' | 'IMMEDIATE' | 'EXCLUSIVE';

export class Db {
  readonly dialect = sqliteDialect;
  /** Tail of the mutex chain: every `exclusive()` / `transaction()` waits for the previous one. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(private readonly conn: sqlite3.Database, readonly file: string) {}

  static open(file: string): Promise<Db> {
    return new Promise((resolve, reject) => {
      const conn = new sqlite3.Database(file, (err) => {
        if (err) reject(err);
        else resolve(new Db(conn, file));
      });
    });
  }

  run(sql: string, params: SqlParams = []): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.conn.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastID: this.lastID });
      });
    });
  }

  get<T>(sql: string, params: SqlParams = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      this.conn.get<T>(sql, params, (err, row) => (err ? reject(err) : resolve(row)));
    });
  }

  all<T>(sql: string, params: SqlParams = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.conn.all<T>(sql, params, (err, rows) => (err ? reject(err) : resolve(rows)));
    });
  }

  /** Several statements without parameters (schema, pragmas). */
  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.conn.exec(sql, (err) => (err ? reject(err) : resolve()));
    });
  }

  prepare(sql: string): Promise<PreparedStatement> {
    return new Promise((resolve, reject) => {
      const stmt = this.conn.prepare(sql, (err) => (err ? reject(err) : resolve(new PreparedStatement(stmt))));
    });
  }

  /** Run `fn` alone on this connection: no transaction of ours is open while it runs. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** BEGIN `mode` ... COMMIT around `fn`, rolled back if it throws; serialised with the mutex. */
  transaction<T>(fn: () => Promise<T>, mode: TransactionMode = 'IMMEDIATE'): Promise<T> {
    return this.exclusive(async () => {
      await this.run(`BEGIN ${mode}`);
      try {
        const value = await fn();
        await this.run('COMMIT');
        return value;
      } catch (err) {
        // SQLite may already have rolled back by itself (SQLITE_FULL, SQLITE_IOERR): ignore that.
        await this.run('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.conn.close((err) => (err ? reject(err) : resolve()));
    });
  }
}
