// The PostgreSQL schema, as versioned migrations recorded in `schema_migrations`. Instances starting
// together migrate one at a time (an advisory lock held for the transaction); each migration runs
// once, in its own transaction. Same tables and columns as SQLite's schema (version 1 matches its version 5, 2 its 6), so the
// shared SQL (../sql/) reads both; times are ms since the epoch in BIGINT.
import type pg from 'pg';

export interface PgMigration {
  version: number;
  name: string;
  sql: string;
}

export const pgMigrations: readonly PgMigration[] = [
  {
    version: 1,
    name: 'initial schema (SQLite schema version 5, one row per request) and kNN index snapshots',
    sql: `
-- Ids compare bytewise (as in SQLite), whatever the database's collation: keyset pages agree.
CREATE TABLE queries (
  id TEXT COLLATE "C" PRIMARY KEY,
  ts BIGINT NOT NULL,
  endpoint TEXT NOT NULL,
  query_text TEXT NOT NULL,
  message_count INTEGER NOT NULL,
  requested_model TEXT,
  stream SMALLINT NOT NULL DEFAULT 0,
  language TEXT NOT NULL,
  domain TEXT NOT NULL,
  complexity TEXT NOT NULL,
  features_json TEXT NOT NULL,
  final_model TEXT,
  status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
  http_status INTEGER NOT NULL,
  latency_ms BIGINT NOT NULL,
  answer TEXT,
  input_tokens BIGINT NOT NULL DEFAULT 0,
  output_tokens BIGINT NOT NULL DEFAULT 0,
  cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
  error TEXT,
  demo SMALLINT NOT NULL DEFAULT 0,
  client_key_hash TEXT,
  decision_json TEXT,
  calls_json TEXT NOT NULL DEFAULT '[]',
  method TEXT,
  correlation_id TEXT,
  owner TEXT
);
-- As on SQLite: one time index carrying the columns the admin page filters and sums by, so a
-- filtered newest-first page walks it in order (index-only for the totals and charts).
CREATE INDEX idx_queries_ts_cover ON queries (ts, id)
  INCLUDE (final_model, status, latency_ms, cost_usd, input_tokens, output_tokens, domain, language, method);

CREATE TABLE user_feedback (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  request_id TEXT COLLATE "C" NOT NULL,
  ts BIGINT NOT NULL,
  rating DOUBLE PRECISION NOT NULL CHECK (rating BETWEEN 1 AND 5),
  comment TEXT,
  source TEXT NOT NULL CHECK (source IN ('user', 'admin', 'implicit', 'eval', 'shadow')),
  prev_rating DOUBLE PRECISION,
  prev_ts BIGINT,
  UNIQUE (request_id, source)
);
CREATE INDEX idx_feedback_ts ON user_feedback (ts);

CREATE TABLE model_performance (
  model TEXT NOT NULL,
  domain TEXT NOT NULL,
  language TEXT NOT NULL,
  successes BIGINT NOT NULL DEFAULT 0,
  total BIGINT NOT NULL DEFAULT 0,
  latency_sum_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
  rating_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
  rating_count BIGINT NOT NULL DEFAULT 0,
  cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (model, domain, language)
);

CREATE TABLE model_weights (
  model TEXT PRIMARY KEY,
  weight DOUBLE PRECISION NOT NULL DEFAULT 1,
  enabled SMALLINT NOT NULL DEFAULT 1,
  updated_at BIGINT NOT NULL
);

CREATE TABLE learner_runs (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  started_at BIGINT NOT NULL,
  finished_at BIGINT,
  status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
  rows_read BIGINT NOT NULL DEFAULT 0,
  changes_json TEXT,
  metrics_before_json TEXT,
  metrics_after_json TEXT,
  error TEXT,
  kind TEXT NOT NULL DEFAULT 'learn'
);

CREATE TABLE routing_priors (
  version INTEGER NOT NULL,
  model TEXT NOT NULL,
  domain TEXT NOT NULL,
  language TEXT NOT NULL,
  alpha DOUBLE PRECISION NOT NULL,
  beta DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (version, model, domain, language)
);

CREATE TABLE app_state (
  key TEXT PRIMARY KEY,
  value_json TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE shadow_comparisons (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ts BIGINT NOT NULL,
  request_id TEXT NOT NULL UNIQUE,
  request_model TEXT NOT NULL,
  shadow_model TEXT NOT NULL,
  shadow_request_id TEXT,
  verdict TEXT CHECK (verdict IN ('request', 'shadow', 'tie')),
  first_order TEXT,
  second_order TEXT,
  judge_model TEXT NOT NULL,
  cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
  reasoning TEXT,
  error TEXT
);
CREATE INDEX idx_shadow_ts ON shadow_comparisons (ts);

-- For ad-hoc SQL, as on SQLite: the decision and the attempts with the columns of the tables they replaced.
CREATE VIEW routing_decisions AS
  SELECT id AS request_id, ts, method, decision_json::jsonb->>'selected' AS selected_model,
    (decision_json::jsonb->>'confidence')::float8 AS confidence, decision_json::jsonb->>'reasoning' AS reasoning,
    decision_json::jsonb->'candidates' AS candidates_json, features_json, decision_json::jsonb->'timings' AS timings_json,
    NULLIF(decision_json::jsonb->'judge', 'null'::jsonb) AS judge_json
  FROM queries WHERE decision_json IS NOT NULL;
CREATE VIEW model_calls AS
  SELECT q.id AS request_id, c.n AS attempt_index, (c.value->>'ts')::bigint AS ts, c.value->>'model' AS model,
    (c.value->>'attempt')::integer AS attempt, c.value->>'status' AS status, (c.value->>'httpStatus')::integer AS http_status,
    (c.value->>'latencyMs')::float8 AS latency_ms, (c.value->>'inputTokens')::float8 AS input_tokens,
    (c.value->>'outputTokens')::float8 AS output_tokens, (c.value->>'costUsd')::float8 AS cost_usd, c.value->>'error' AS error
  FROM queries q CROSS JOIN LATERAL jsonb_array_elements(q.calls_json::jsonb) WITH ORDINALITY AS c(value, n);

-- The files of each learned version's kNN index, so an instance on another machine loads the same one.
CREATE TABLE knn_snapshots (
  version INTEGER NOT NULL,
  name TEXT NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (version, name)
);
`,
  },
  {
    version: 2,
    name: 'requests keep their content parts, tools and tool calls (parts_json; SQLite schema version 6)',
    // JSON of server/store/parts.ts StoredParts; older rows keep NULL (read back as parts: null).
    sql: `ALTER TABLE queries ADD COLUMN parts_json TEXT;`,
  },
];

/** Any fixed number: the key of the advisory lock migrations run under. */
const MIGRATION_LOCK = 0x5359_0001;

/** Apply every migration not yet recorded; returns the versions applied by this call. */
export async function migratePg(client: pg.ClientBase, list: readonly PgMigration[] = pgMigrations, now: () => number = Date.now): Promise<number[]> {
  const applied: number[] = [];
  for (const migration of [...list].sort((a, b) => a.version - b.version)) {
    await client.query('BEGIN');
    try {
      await client.query('SET LOCAL statement_timeout = 0'); // a migration may rewrite a large table
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
      const done = await client.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
      if (done.rowCount === 0) {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, now()]);
        applied.push(migration.version);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
  return applied;
}
