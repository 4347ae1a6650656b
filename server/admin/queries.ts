// SQL the admin pages need beyond the Store API, run through store.all() with parameters only.
// Every query is bounded by an index range (ts window or request id) and a LIMIT.
import type { Store } from '../store/types.ts';

/** All these queries need: parameterised reads. */
export type Reader = Pick<Store, 'all'>;

export interface Cursor {
  ts: number;
  id: string;
}

/**
 * The newest answered request older than `before` that no person (or eval) has rated yet.
 * Implicit signals do not count as a rating: a person should still look at those answers.
 */
export async function nextUnrated(store: Reader, before?: Cursor | null): Promise<string | null> {
  const params: unknown[] = [];
  let where = "q.status = 'ok'";
  if (before) {
    where += ' AND (q.ts, q.id) < (?, ?)';
    params.push(before.ts, before.id);
  }
  const rows = await store.all<{ id: string }>(
    `SELECT q.id FROM queries q
     WHERE ${where}
       AND NOT EXISTS (SELECT 1 FROM user_feedback f WHERE f.request_id = q.id AND f.source IN ('user', 'admin', 'eval'))
     ORDER BY q.ts DESC, q.id DESC LIMIT 1`,
    params,
  );
  return rows[0]?.id ?? null;
}

/** Answers from the last window still waiting for a person's rating (bounded by the ts index). */
export async function unratedSince(store: Reader, sinceTs: number): Promise<number> {
  const rows = await store.all<{ n: number }>(
    `SELECT COUNT(*) AS n FROM queries q
     WHERE q.ts >= ? AND q.status = 'ok'
       AND NOT EXISTS (SELECT 1 FROM user_feedback f WHERE f.request_id = q.id AND f.source IN ('user', 'admin', 'eval'))`,
    [sinceTs],
  );
  return rows[0]?.n ?? 0;
}

/** Domains and languages seen so far, from the small per-cell aggregate table (not from queries). */
export async function seenCells(store: Reader): Promise<{ domains: string[]; languages: string[] }> {
  const [domains, languages] = await Promise.all([
    store.all<{ v: string }>('SELECT DISTINCT domain AS v FROM model_performance ORDER BY v LIMIT 100'),
    store.all<{ v: string }>('SELECT DISTINCT language AS v FROM model_performance ORDER BY v LIMIT 100'),
  ]);
  return { domains: domains.map((r) => r.v), languages: languages.map((r) => r.v) };
}

/** Requests answered in [sinceTs, now): the overview's requests-per-minute figure. */
export async function countSince(store: Reader, sinceTs: number): Promise<number> {
  const rows = await store.all<{ n: number }>('SELECT COUNT(*) AS n FROM queries WHERE ts >= ?', [sinceTs]);
  return rows[0]?.n ?? 0;
}

/** The newest request id, to tell a browser polling the overview that something new arrived. */
export async function latestRequest(store: Reader): Promise<Cursor | null> {
  const rows = await store.all<{ ts: number; id: string }>('SELECT ts, id FROM queries ORDER BY ts DESC, id DESC LIMIT 1');
  return rows[0] ?? null;
}
