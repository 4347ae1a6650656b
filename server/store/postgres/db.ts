// The shared SQL on PostgreSQL: `?` placeholders numbered ($1, $2, ...), BIGINT and NUMERIC read
// as JavaScript numbers (ms timestamps, counts, sums), and NUL (which text cannot hold) stored as U+FFFD.
import pg from 'pg';
import type { Dialect } from '../sql/queries.ts';
import type { SqlTx } from '../sql/writes.ts';

export const postgresDialect: Dialect = {
  name: 'postgres',
  inJsonArray: (column) => `${column} IN (SELECT json_array_elements_text(CAST(? AS json)))`,
  bucket: (column) => `(${column} / CAST(? AS BIGINT)) * CAST(? AS BIGINT)`,
};

const INT8 = 20;
const NUMERIC = 1700;
/** Type parsers for this pool only (pg's global ones stay as they are for other users). */
export const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8 || oid === NUMERIC) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  }) as typeof pg.types.getTypeParser,
};

const numbered = new Map<string, string>();
const MAX_CACHED = 500;

/** `?` -> `$n`, outside quoted literals and identifiers. */
export function numberPlaceholders(sql: string): string {
  const hit = numbered.get(sql);
  if (hit !== undefined) return hit;
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else out += ch === '?' ? `$${++n}` : ch;
  }
  if (numbered.size < MAX_CACHED) numbered.set(sql, out);
  return out;
}

/** Parameters as PostgreSQL takes them: strings without NUL. */
export function pgParams(params: readonly unknown[]): unknown[] {
  return params.map((p) => (typeof p === 'string' && p.includes('\0') ? p.replaceAll('\0', '\ufffd') : p));
}

type Queryable = Pick<pg.Pool | pg.ClientBase, 'query'>;

/** Reads (and, on a client inside BEGIN ... COMMIT, writes) with the shared SQL. */
export class PgSql implements SqlTx {
  readonly dialect = postgresDialect;

  constructor(private readonly conn: Queryable) {}

  async all<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return (await this.conn.query(numberPlaceholders(sql), pgParams(params))).rows as T[];
  }

  async get<T>(sql: string, params: readonly unknown[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<void> {
    await this.conn.query(numberPlaceholders(sql), pgParams(params));
  }
}

/** BEGIN ... COMMIT on one pooled client, rolled back if `fn` throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const value = await fn(client);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => {
        broken = e; // the connection is unusable: the pool must not hand it out again
      });
      throw err;
    }
  } finally {
    client.release(broken);
  }
}
