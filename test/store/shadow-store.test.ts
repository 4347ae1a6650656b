// Migration 4 and the store's shadow-comparison and learner-run-kind reads and writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Db } from '../../server/store/sqlite/db.ts';
import { migrate, migrations } from '../../server/store/sqlite/migrations.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';

test('migration 4 keeps every stored rating and learner run, and then accepts shadow ratings and evaluation runs', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mig4-'));
  try {
    const file = path.join(dir, 'switchyard.db');
    const db = await Db.open(file);
    await migrate(db, migrations.filter((m) => m.version <= 3));
    await db.run(`INSERT INTO user_feedback (request_id, ts, rating, comment, source) VALUES ('r1', 10, 5, 'great', 'user'), ('r1', 11, 2, NULL, 'implicit'), ('r2', 12, 3.5, NULL, 'eval')`);
    await db.run(`INSERT INTO learner_runs (started_at, status, rows_read) VALUES (1, 'ok', 7)`);
    await assert.rejects(db.run(`INSERT INTO user_feedback (request_id, ts, rating, source) VALUES ('r1', 13, 4, 'shadow')`), /CHECK/);
    await db.close();

    const store = await openSqliteStore({ path: file });
    try {
      const rows = await store.all<{ request_id: string; rating: number; comment: string | null; source: string }>('SELECT request_id, rating, comment, source FROM user_feedback ORDER BY id');
      assert.deepEqual(rows, [
        { request_id: 'r1', rating: 5, comment: 'great', source: 'user' },
        { request_id: 'r1', rating: 2, comment: null, source: 'implicit' },
        { request_id: 'r2', rating: 3.5, comment: null, source: 'eval' },
      ]);
      const [old] = await store.learnerRuns(5);
      assert.equal(old!.kind, 'learn');
      assert.equal(old!.rowsRead, 7);

      store.recordFeedback({ requestId: 'r2', ts: 20, rating: 4, comment: null, source: 'shadow' });
      await store.flush();
      assert.equal((await store.all<{ n: number }>("SELECT COUNT(*) AS n FROM user_feedback WHERE source = 'shadow'"))[0]!.n, 1);
      assert.throws(() => store.recordFeedback({ requestId: 'r2', ts: 21, rating: 4, comment: null, source: 'robot' as 'user' }), /unknown feedback source/);

      const id = await store.startLearnerRun(30, 'evaluate');
      await store.finishLearnerRun(id, { status: 'ok', rowsRead: 3 });
      assert.deepEqual((await store.learnerRuns(5, 'evaluate')).map((r) => r.id), [id]);
      assert.deepEqual((await store.learnerRuns(5, 'learn')).map((r) => r.id), [old!.id]);
      assert.deepEqual((await store.learnerRunTotals()).map((t) => t.runs), [1], 'evaluation runs are not counted as learner runs');

      const base = { requestModel: 'a', shadowModel: 'b', shadowRequestId: null, verdict: null, firstOrder: null, secondOrder: null, judgeModel: 'llama3', reasoning: null, error: 'x' } as const;
      await store.recordShadowComparison({ ...base, ts: 100, requestId: 'r1', costUsd: 0.25 });
      await store.recordShadowComparison({ ...base, ts: 200, requestId: 'r2', costUsd: 0.5 });
      await assert.rejects(store.recordShadowComparison({ ...base, ts: 300, requestId: 'r1', costUsd: 1 }), /UNIQUE/, 'one comparison per request');
      assert.equal(await store.shadowSpend(0), 0.75);
      assert.equal(await store.shadowSpend(150), 0.5);
      assert.deepEqual((await store.shadowComparisons(10)).map((c) => c.requestId), ['r2', 'r1']);
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
