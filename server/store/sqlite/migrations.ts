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
    name: 'one row per request: decision and attempts move into queries; one covering time index',
    // Three rows in three tables (each with its own indexes) per request were about a third of what
    // storing a request cost. Decisions and attempts were only ever read by request id, so they
    // become JSON columns of the request row; views with the old names and columns keep ad-hoc SQL
    // working. The four (x, ts, id) filter indexes give way to the covering time index with domain,
    // language and the routing method added: a filtered newest-first page walks it in time order,
    // testing the filter on the index entry (about 30 ms for a value that matches nothing in 200k
    // requests). Every row is rewritten once (with the old indexes already gone), then the index is
    // built: a one-off cost proportional to the history.
    sql: `
DROP INDEX IF EXISTS idx_queries_model_ts;
DROP INDEX IF EXISTS idx_queries_domain_ts;
DROP INDEX IF EXISTS idx_queries_language_ts;
DROP INDEX IF EXISTS idx_queries_status_ts;
DROP INDEX IF EXISTS idx_queries_ts_cover;
ALTER TABLE queries ADD COLUMN decision_json TEXT;
ALTER TABLE queries ADD COLUMN calls_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE queries ADD COLUMN method TEXT;
UPDATE queries SET decision_json = x.decision_json, method = x.method, calls_json = COALESCE(x.calls_json, '[]')
FROM (
  SELECT q.id, d.method,
    CASE WHEN d.request_id IS NULL THEN NULL ELSE json_object('method', d.method, 'selected', d.selected_model,
      'confidence', d.confidence, 'reasoning', d.reasoning, 'candidates', json(d.candidates_json),
      'timings', json(d.timings_json), 'judge', json(d.judge_json)) END AS decision_json,
    c.calls_json
  FROM queries q
  LEFT JOIN routing_decisions d ON d.request_id = q.id
  LEFT JOIN (
    -- Text, not json_group_array: SQLite 3.44 loses the JSON subtype through an ordered aggregate.
    SELECT request_id, '[' || group_concat(json_object('ts', ts, 'model', model, 'attempt', attempt, 'status', status,
      'httpStatus', http_status, 'latencyMs', latency_ms, 'inputTokens', input_tokens,
      'outputTokens', output_tokens, 'costUsd', cost_usd, 'error', error), ',' ORDER BY id) || ']' AS calls_json
    FROM model_calls GROUP BY request_id
  ) c ON c.request_id = q.id
  WHERE d.request_id IS NOT NULL OR c.request_id IS NOT NULL
) AS x
WHERE x.id = queries.id;
DROP TABLE routing_decisions;
DROP TABLE model_calls;
CREATE VIEW routing_decisions AS
  SELECT id AS request_id, ts, method, decision_json->>'selected' AS selected_model,
    decision_json->>'confidence' AS confidence, decision_json->>'reasoning' AS reasoning,
    decision_json->'candidates' AS candidates_json, features_json, decision_json->'timings' AS timings_json,
    NULLIF(decision_json->'judge', 'null') AS judge_json
  FROM queries WHERE decision_json IS NOT NULL;
-- id: unique and in the order the attempts were stored (request row order, then attempt order).
CREATE VIEW model_calls AS
  SELECT q.rowid * 1000 + c.key AS id, q.id AS request_id, c.value->>'ts' AS ts, c.value->>'model' AS model,
    c.value->>'attempt' AS attempt, c.value->>'status' AS status, c.value->>'httpStatus' AS http_status,
    c.value->>'latencyMs' AS latency_ms, c.value->>'inputTokens' AS input_tokens,
    c.value->>'outputTokens' AS output_tokens, c.value->>'costUsd' AS cost_usd, c.value->>'error' AS error
  FROM queries q, json_each(q.calls_json) c;
CREATE INDEX idx_queries_ts_cover ON queries
  (ts, id, final_model, status, latency_ms, cost_usd, input_tokens, output_tokens, domain, language, method);
`,
  },
  {
    version: 4,
    name: 'shadow comparisons, shadow ratings, learner run kinds',
    // A shadow comparison's verdict is stored as labelled pairs: one row here, and a rating with
    // source 'shadow' on each side (the stored request and the shadow answer's own queries row),
    // so everything that learns from ratings learns from verdicts too. SQLite cannot widen a CHECK
    // in place, so user_feedback is rebuilt (it is small: one row per rating).
    sql: `
CREATE TABLE user_feedback_v4 (
  id INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
  comment TEXT,
  source TEXT NOT NULL CHECK (source IN ('user', 'implicit', 'eval', 'shadow'))
);
INSERT INTO user_feedback_v4 (id, request_id, ts, rating, comment, source)
  SELECT id, request_id, ts, rating, comment, source FROM user_feedback;
DROP TABLE user_feedback;
ALTER TABLE user_feedback_v4 RENAME TO user_feedback;
CREATE INDEX idx_feedback_request ON user_feedback (request_id);
CREATE INDEX idx_feedback_ts ON user_feedback (ts);

CREATE TABLE shadow_comparisons (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts INTEGER NOT NULL,
  request_id TEXT NOT NULL UNIQUE,
  request_model TEXT NOT NULL,
  shadow_model TEXT NOT NULL,
  shadow_request_id TEXT,
  verdict TEXT CHECK (verdict IN ('request', 'shadow', 'tie')),
  first_order TEXT,
  second_order TEXT,
  judge_model TEXT NOT NULL,
  cost_usd REAL NOT NULL DEFAULT 0,
  reasoning TEXT,
  error TEXT
);
CREATE INDEX idx_shadow_ts ON shadow_comparisons (ts);

ALTER TABLE learner_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'learn';
`,
  },
  {
    version: 5,
    name: 'requests remember their owner and the client\'s own id; one rating per request and source',
    // Request ids are minted by the gateway; the client's x-request-id is kept as correlation_id.
    // owner (key hash or client address) says who may rate the request. user_feedback is rebuilt:
    // its CHECK gains 'admin', and each (request, source) keeps only its newest rating (a new one
    // replaces the old from now on), so a client rating a request many times counts once.
    sql: `
ALTER TABLE queries ADD COLUMN correlation_id TEXT;
ALTER TABLE queries ADD COLUMN owner TEXT;
CREATE INDEX idx_feedback_newest ON user_feedback (request_id, source, ts, id);
CREATE TABLE user_feedback_new (
  id INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
  comment TEXT,
  source TEXT NOT NULL CHECK (source IN ('user', 'admin', 'implicit', 'eval', 'shadow')),
  -- The rating this one replaced and when it was given (the learner reads ratings as of a time).
  prev_rating INTEGER,
  prev_ts INTEGER,
  UNIQUE (request_id, source)
);
INSERT INTO user_feedback_new (id, request_id, ts, rating, comment, source)
  SELECT id, request_id, ts, rating, comment, source FROM user_feedback f
  WHERE f.id = (SELECT g.id FROM user_feedback g WHERE g.request_id = f.request_id AND g.source = f.source ORDER BY g.ts DESC, g.id DESC LIMIT 1);
DROP TABLE user_feedback;
ALTER TABLE user_feedback_new RENAME TO user_feedback;
CREATE INDEX idx_feedback_ts ON user_feedback (ts);
`,
  },
  {
    version: 6,
    name: 'requests keep their content parts, tools and tool calls (parts_json)',
    // JSON of server/store/parts.ts StoredParts; older rows keep NULL (read back as parts: null).
    sql: `
ALTER TABLE queries ADD COLUMN parts_json TEXT;
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
