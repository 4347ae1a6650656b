// Versioned schema migrations, recorded in `schema_migrations`. Each one runs once, inside its
// own transaction; opening the same database again (or from a second process) is a no-op.
import type { Db } from './db.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE queries (
  id TEXT PRIMARY KEY,
  ts INTEGER NOT NULL,
  endpoint TEXT NOT NULL,
  query_text TEXT NOT NULL,
  message_count INTEGER NOT NULL,
  requested_model TEXT,
  stream INTEGER NOT NULL DEFAULT 0,
  language TEXT NOT NULL,
  domain TEXT NOT NULL,
  complexity TEXT NOT NULL,
  features_json TEXT NOT NULL,
  final_model TEXT,
  status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
  http_status INTEGER NOT NULL,
  latency_ms INTEGER NOT NULL,
  answer TEXT,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  error TEXT,
  demo INTEGER NOT NULL DEFAULT 0,
  client_key_hash TEXT
);
-- (x, ts, id) so "newest first" pages with a filter read the index in order and stop at LIMIT.
CREATE INDEX idx_queries_ts ON queries (ts, id);
CREATE INDEX idx_queries_model_ts ON queries (final_model, ts, id);
CREATE INDEX idx_queries_domain_ts ON queries (domain, ts, id);
CREATE INDEX idx_queries_language_ts ON queries (language, ts, id);
CREATE INDEX idx_queries_status_ts ON queries (status, ts, id);

CREATE TABLE routing_decisions (
  request_id TEXT PRIMARY KEY,
  ts INTEGER NOT NULL,
  method TEXT NOT NULL,
  selected_model TEXT NOT NULL,
  confidence REAL NOT NULL,
  reasoning TEXT NOT NULL,
  candidates_json TEXT NOT NULL,
  features_json TEXT NOT NULL,
  timings_json TEXT NOT NULL,
  judge_json TEXT
);
CREATE INDEX idx_decisions_method_ts ON routing_decisions (method, ts, request_id);

CREATE TABLE model_calls (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  model TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  status TEXT NOT NULL,
  http_status INTEGER,
  latency_ms INTEGER NOT NULL,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  error TEXT
);
CREATE INDEX idx_calls_request ON model_calls (request_id);
CREATE INDEX idx_calls_model_ts ON model_calls (model, ts);

CREATE TABLE user_feedback (
  id INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
  comment TEXT,
  source TEXT NOT NULL CHECK (source IN ('user', 'implicit', 'eval'))
);
CREATE INDEX idx_feedback_request ON user_feedback (request_id);
CREATE INDEX idx_feedback_ts ON user_feedback (ts);

CREATE TABLE model_performance (
  model TEXT NOT NULL,
  domain TEXT NOT NULL,
  language TEXT NOT NULL,
  successes INTEGER NOT NULL DEFAULT 0,
  total INTEGER NOT NULL DEFAULT 0,
  latency_sum_ms REAL NOT NULL DEFAULT 0,
  rating_sum INTEGER NOT NULL DEFAULT 0,
  rating_count INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (model, domain, language)
);

CREATE TABLE model_weights (
  model TEXT PRIMARY KEY,
  weight REAL NOT NULL DEFAULT 1,
  enabled INTEGER NOT NULL DEFAULT 1,
  updated_at INTEGER NOT NULL
);

CREATE TABLE learner_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
  rows_read INTEGER NOT NULL DEFAULT 0,
  changes_json TEXT,
  metrics_before_json TEXT,
  metrics_after_json TEXT,
  error TEXT
);

CREATE TABLE routing_priors (
  version INTEGER NOT NULL,
  model TEXT NOT NULL,
  domain TEXT NOT NULL,
  language TEXT NOT NULL,
  alpha REAL NOT NULL,
  beta REAL NOT NULL,
  PRIMARY KEY (version, model, domain, language)
);

CREATE TABLE app_state (
  key TEXT PRIMARY KEY,
  value_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'covering time index for admin totals, percentiles and charts',
    // Wide enough that stats() and timeSeries() never touch the table rows; (ts, id) still leads,
    // so it also serves the newest-first keyset pages the old index served.
    sql: `
DROP INDEX IF EXISTS idx_queries_ts;
CREATE INDEX idx_queries_ts_cover ON queries
  (ts, id, final_model, status, latency_ms, cost_usd, input_tokens, output_tokens);
`,
  },
  {
    version: 3,
    name: 'one row per request: the routing decision and the attempts move into queries',
    // Three rows in three tables (each with its own indexes) per request were about a third of what
    // storing a request cost. Both were only ever read by request id, so they become JSON columns
    // of the request row; views with the old names and columns keep ad-hoc SQL working.
    sql: `
ALTER TABLE queries ADD COLUMN decision_json TEXT;
ALTER TABLE queries ADD COLUMN calls_json TEXT NOT NULL DEFAULT '[]';
UPDATE queries SET decision_json = (
  SELECT json_object('method', d.method, 'selected', d.selected_model, 'confidence', d.confidence,
    'reasoning', d.reasoning, 'candidates', json(d.candidates_json), 'timings', json(d.timings_json),
    'judge', json(d.judge_json))
  FROM routing_decisions d WHERE d.request_id = queries.id);
UPDATE queries SET calls_json = (
  SELECT json_group_array(json_object('ts', c.ts, 'model', c.model, 'attempt', c.attempt, 'status', c.status,
    'httpStatus', c.http_status, 'latencyMs', c.latency_ms, 'inputTokens', c.input_tokens,
    'outputTokens', c.output_tokens, 'costUsd', c.cost_usd, 'error', c.error))
  FROM (SELECT * FROM model_calls c WHERE c.request_id = queries.id ORDER BY c.id) c)
WHERE id IN (SELECT request_id FROM model_calls);
DROP TABLE routing_decisions;
DROP TABLE model_calls;
CREATE VIEW routing_decisions AS
  SELECT id AS request_id, ts, decision_json->>'method' AS method, decision_json->>'selected' AS selected_model,
    decision_json->>'confidence' AS confidence, decision_json->>'reasoning' AS reasoning,
    decision_json->'candidates' AS candidates_json, features_json, decision_json->'timings' AS timings_json,
    NULLIF(decision_json->'judge', 'null') AS judge_json
  FROM queries WHERE decision_json IS NOT NULL;
CREATE VIEW model_calls AS
  SELECT q.id AS request_id, c.value->>'ts' AS ts, c.value->>'model' AS model, c.value->>'attempt' AS attempt,
    c.value->>'status' AS status, c.value->>'httpStatus' AS http_status, c.value->>'latencyMs' AS latency_ms,
    c.value->>'inputTokens' AS input_tokens, c.value->>'outputTokens' AS output_tokens,
    c.value->>'costUsd' AS cost_usd, c.value->>'error' AS error
  FROM queries q, json_each(q.calls_json) c;
`,
  },
  {
    version: 4,
    name: 'one covering time index serves the filtered admin pages too',
    // Four (x, ts, id) indexes for the admin filters cost every stored request four more B-tree
    // inserts. With domain, language and the routing method in the covering time index, a filtered
    // newest-first page walks that one index in time order and reads no table rows until it has
    // its page (about 30 ms for a value that matches nothing in 200k requests).
    sql: `
ALTER TABLE queries ADD COLUMN method TEXT;
UPDATE queries SET method = decision_json->>'method' WHERE decision_json IS NOT NULL;
DROP INDEX IF EXISTS idx_queries_model_ts;
DROP INDEX IF EXISTS idx_queries_domain_ts;
DROP INDEX IF EXISTS idx_queries_language_ts;
DROP INDEX IF EXISTS idx_queries_status_ts;
DROP INDEX IF EXISTS idx_queries_ts_cover;
CREATE INDEX idx_queries_ts_cover ON queries
  (ts, id, final_model, status, latency_ms, cost_usd, input_tokens, output_tokens, domain, language, method);
`,
  },
];

/** Apply every migration not yet recorded; returns the versions applied by this call. */
export async function migrate(db: Db, list: readonly Migration[] = migrations, now: () => number = Date.now): Promise<number[]> {
  await db.exclusive(() =>
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    )`),
  );
  const applied: number[] = [];
  for (const migration of [...list].sort((a, b) => a.version - b.version)) {
    const done = await db.transaction(async () => {
      // Checked inside the write transaction: another process may have applied it meanwhile.
      const row = await db.get<{ version: number }>('SELECT version FROM schema_migrations WHERE version = ?', [migration.version]);
      if (row) return false;
      await db.exec(migration.sql);
      await db.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [
        migration.version,
        migration.name,
        now(),
      ]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return applied;
}
