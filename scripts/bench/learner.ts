// Learner benchmark: stores N synthetic answered requests (default 100k), then times a full
// learner run and an incremental one. Target: 100k rows in under a minute.
// Usage: npx tsx scripts/bench/learner.ts [rows]
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { runLearner, type LearnerProgress } from '../../learner/job.ts';
import { recordHistory } from '../../test/learner/synthetic-history.ts';

const MODELS = ['coder', 'writer', 'cheap', 'large'];
const rows = Number(process.argv[2] ?? 100_000);
if (!Number.isInteger(rows) || rows < MODELS.length * 2) throw new Error(`rows must be an integer >= ${MODELS.length * 2}`);

const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-learner-'));
const store = await openSqliteStore({ path: path.join(dir, 'switchyard.db'), maxBatch: 2000 });
try {
  // Like live traffic: every request a different query, answered by one model.
  const perDomain = Math.ceil(rows / 2);
  let t = Date.now();
  const start = t - 30 * 86_400_000;
  const last = recordHistory({ store, models: MODELS, perDomain, startTs: start, ratedShare: 0.3, oneModelPerQuery: true });
  await store.flush();
  console.log(`stored ${perDomain * 2} requests in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  const embedder = new BuiltinEmbedder();
  let lastPrint = 0;
  const onProgress = (p: LearnerProgress) => {
    if (Date.now() - lastPrint < 2000 && p.processed !== p.total) return;
    lastPrint = Date.now();
    console.log(`  ${p.phase}: ${p.processed}${p.total === null ? '' : ` / ${p.total}`}`);
  };
  t = Date.now();
  const full = await runLearner({ store, dataDir: dir, embedder, now: () => last + 3_600_000, onProgress });
  const fullSeconds = (Date.now() - t) / 1000;
  if (full.status !== 'ok') throw new Error(`learner failed: ${full.error}`);
  console.log(`full run: ${full.rowsRead} rows in ${fullSeconds.toFixed(1)} s (${Math.round(full.rowsRead / fullSeconds)} rows/s)`);

  const more = recordHistory({ store, models: MODELS, perDomain: 2000, startTs: last + 1, idPrefix: 'more', firstQuery: perDomain, oneModelPerQuery: true });
  await store.flush();
  t = Date.now();
  const inc = await runLearner({ store, dataDir: dir, embedder, now: () => more + 3_600_000 });
  console.log(`incremental run: ${inc.rowsRead} new rows in ${((Date.now() - t) / 1000).toFixed(1)} s (status ${inc.status})`);
  console.log(fullSeconds < 60 ? 'OK: under a minute' : 'SLOW: over a minute');
} finally {
  await store.close();
  await rm(dir, { recursive: true, force: true });
}
