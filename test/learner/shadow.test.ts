import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type AppConfig } from '../../server/config.ts';
import { openSqliteStore, type SqliteStore } from '../../server/store/sqlite.ts';
import { ModelRegistry } from '../../server/dispatch/registry.ts';
import { Dispatcher } from '../../server/dispatch/dispatcher.ts';
import { createProvider, endpointFor } from '../../server/providers/index.ts';
import { shadowStepFor } from '../../server/shadow-wiring.ts';
import {
  combineOrders, OllamaPairwiseJudge, SHADOW_CURSOR_KEY, shadowCoin, shadowJudgeFromConfig, type PairwiseJudge,
} from '../../learner/shadow.ts';
import { runLearner } from '../../learner/job.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { closedPortUrl, startJudgeStandIn, type ChatBody, type JudgeReply, type JudgeStandIn } from '../standins/ollama-judge.ts';
import { request } from './logged-traffic.ts';

const NOW = Date.now();

/** The two answers the judge was shown, from its prompt. */
function answersOf(body: ChatBody): { a: string; b: string } {
  const user = body.messages.find((m) => m.role === 'user')!.content;
  const a = /Answer A:\n<<<\n([\s\S]*?)\n>>>/.exec(user)![1]!;
  const b = /Answer B:\n<<<\n([\s\S]*?)\n>>>/.exec(user)![1]!;
  return { a, b };
}
const reply = (better: string): JudgeReply => ({ kind: 'content', content: JSON.stringify({ better, reasoning: `picked ${better}` }) });
/** A judge that prefers the demo models' answers, wherever they are shown. */
const prefersDemo = (body: ChatBody): JudgeReply => {
  const { a, b } = answersOf(body);
  return reply(a.includes('[DEMO MODEL') && !b.includes('[DEMO MODEL') ? 'A' : b.includes('[DEMO MODEL') && !a.includes('[DEMO MODEL') ? 'B' : 'tie');
};

interface Rig { dir: string; store: SqliteStore; config: AppConfig; registry: ModelRegistry; dispatcher: Dispatcher }

async function rig(env: Record<string, string> = {}): Promise<Rig> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shadow-'));
  const config = loadConfig({ SWITCHYARD_DATA_DIR: dir, SWITCHYARD_CONFIG: '', SHADOW_SAMPLE: '1', SHADOW_BUDGET_USD: '1', ...env }, { cwd: dir });
  const store = await openSqliteStore({ path: config.dbPath });
  const registry = new ModelRegistry(config, (spec) => createProvider(spec.provider), endpointFor);
  const dispatcher = new Dispatcher(registry, { policy: { maxRetries: 0, baseMs: 1, maxMs: 1 }, attemptTimeoutMs: 5000 });
  return { dir, store, config, registry, dispatcher };
}
async function done(r: Rig) {
  await r.store.close();
  await rm(r.dir, { recursive: true, force: true });
}

/** n answered requests by a model outside the demo set (so every demo model is an "other" one). */
function storeTraffic(store: SqliteStore, n: number, prefix = 'q') {
  for (let i = 0; i < n; i++) {
    const req = request(`${prefix}${i}`, NOW - 60_000 + i, `Explain question ${prefix}${i} about tides`, 'old-model');
    store.recordRequest(req, null, []);
  }
}

const judgeAt = (standIn: JudgeStandIn): PairwiseJudge => new OllamaPairwiseJudge({ host: standIn.url, model: 'llama3', timeoutMs: 5000 });

describe('shadow comparisons against an Ollama stand-in judge and the demo providers', () => {
  let judge: JudgeStandIn;
  before(async () => { judge = await startJudgeStandIn(prefersDemo); });
  after(async () => { await judge.close(); });

  test('each sampled request is answered by another model and judged in both orders; the verdict becomes labels on both rows', async () => {
    const r = await rig({ SHADOW_MODELS: 'demo-fast,demo-large' });
    try {
      storeTraffic(r.store, 3);
      await r.store.flush();
      judge.requests.length = 0;
      judge.reply = prefersDemo;
      const result = await shadowStepFor(r.config, r.store, { registry: r.registry, dispatcher: r.dispatcher, judge: judgeAt(judge) })(NOW);
      assert.equal(result.status, 'ok', result.reason ?? '');
      assert.equal(result.considered, 3);
      assert.equal(result.compared, 3);
      assert.deepEqual(result.verdicts, { request: 0, shadow: 3, tie: 0 });
      assert.ok(result.spentUsd > 0 && result.spentUsd < 0.01, `demo calls cost a little: ${result.spentUsd}`);

      // Two judge calls per comparison, the answers swapped between them.
      assert.equal(judge.requests.length, 6);
      const [first, second] = [answersOf(judge.requests[0]!), answersOf(judge.requests[1]!)];
      assert.equal(first.a, 'answer of old-model');
      assert.equal(second.b, 'answer of old-model');
      assert.equal(first.b, second.a);
      assert.equal(judge.requests[0]!.format, 'json');

      const comparisons = await r.store.shadowComparisons(10);
      assert.equal(comparisons.length, 3);
      for (const c of comparisons) {
        assert.equal(c.verdict, 'shadow');
        assert.equal(c.firstOrder, 'shadow');
        assert.equal(c.secondOrder, 'shadow');
        assert.ok(['demo-fast', 'demo-large'].includes(c.shadowModel));
        assert.match(c.queryText, /about tides/);
        const original = await r.store.getRequest(c.requestId);
        assert.deepEqual(original!.feedback.map((f) => [f.source, f.rating]), [['shadow', 2]]);
        const shadowRow = await r.store.getRequest(c.shadowRequestId!);
        assert.equal(shadowRow!.endpoint, 'shadow');
        assert.equal(shadowRow!.finalModel, c.shadowModel);
        assert.match(shadowRow!.answer!, /\[DEMO MODEL/);
        assert.deepEqual(shadowRow!.feedback.map((f) => [f.source, f.rating]), [['shadow', 4]]);
      }
      // The learner reads the shadow answers as rated rows of their models.
      const rows = await r.store.trainingRows(0, 100);
      const shadowRows = rows.filter((x) => x.id.startsWith('shadow_'));
      assert.equal(shadowRows.length, 3);
      for (const x of shadowRows) assert.equal(x.rating, 4);

      // Each request's coin is tossed once: a second step finds nothing new.
      const again = await shadowStepFor(r.config, r.store, { registry: r.registry, dispatcher: r.dispatcher, judge: judgeAt(judge) })(NOW);
      assert.equal(again.considered, 0);
      assert.ok(await r.store.getState(SHADOW_CURSOR_KEY));
    } finally {
      await done(r);
    }
  });

  test('a judge that always prefers the first answer shown gets ties: the two orders cancel its position bias', async () => {
    const r = await rig();
    try {
      storeTraffic(r.store, 2);
      await r.store.flush();
      judge.reply = () => reply('A');
      const result = await shadowStepFor(r.config, r.store, { registry: r.registry, dispatcher: r.dispatcher, judge: judgeAt(judge) })(NOW);
      assert.deepEqual(result.verdicts, { request: 0, shadow: 0, tie: 2 });
      for (const c of await r.store.shadowComparisons(10)) {
        assert.equal(c.firstOrder, 'request');
        assert.equal(c.secondOrder, 'shadow');
        assert.equal(c.verdict, 'tie');
        assert.deepEqual((await r.store.getRequest(c.requestId))!.feedback.map((f) => f.rating), [3]);
      }
    } finally {
      judge.reply = prefersDemo;
      await done(r);
    }
  });

  test('the daily budget stops the step and what is left is counted', async () => {
    // demo-large costs about $0.0003 for a short answer: a budget of $0.0005 pays for one.
    const r = await rig({ SHADOW_MODELS: 'demo-large', SHADOW_BUDGET_USD: '0.0005' });
    try {
      storeTraffic(r.store, 5);
      await r.store.flush();
      const result = await shadowStepFor(r.config, r.store, { registry: r.registry, dispatcher: r.dispatcher, judge: judgeAt(judge) })(NOW);
      assert.ok(result.compared >= 1 && result.compared < 5, JSON.stringify(result));
      assert.equal(result.skippedBudget, 5 - result.compared);
      // The check is made before each call on its estimated cost (the stored answer's token counts
      // at the shadow model's prices), so the last call may overshoot by its own surprise.
      const comparisons = await r.store.shadowComparisons(10);
      const spent = await r.store.shadowSpend(0);
      const last = comparisons[0]!.costUsd;
      assert.ok(spent - last <= 0.0005, `spent ${spent} before the last call (${last})`);
    } finally {
      await done(r);
    }
  });

  test('a share SHADOW_SAMPLE of the stored requests is sampled, by a coin that depends only on the request id', async () => {
    const r = await rig({ SHADOW_SAMPLE: '0.2', SHADOW_MAX_PER_RUN: '0' });
    try {
      storeTraffic(r.store, 400, 's');
      await r.store.flush();
      const result = await shadowStepFor(r.config, r.store, { registry: r.registry, dispatcher: r.dispatcher, judge: judgeAt(judge) })(NOW);
      assert.equal(result.considered, 400);
      assert.ok(result.sampled > 50 && result.sampled < 110, `sampled ${result.sampled}`);
      assert.equal(result.skippedCap, result.sampled, 'SHADOW_MAX_PER_RUN=0 compares nothing');
      assert.equal(shadowCoin('s1'), shadowCoin('s1'));
    } finally {
      await done(r);
    }
  });

  test('Ollama down: the step stops after the first comparison and says the judge did not answer', async () => {
    const r = await rig();
    try {
      storeTraffic(r.store, 3);
      await r.store.flush();
      const down = new OllamaPairwiseJudge({ host: await closedPortUrl(), model: 'llama3', timeoutMs: 2000 });
      const result = await shadowStepFor(r.config, r.store, { registry: r.registry, dispatcher: r.dispatcher, judge: down })(NOW);
      assert.equal(result.status, 'off');
      assert.match(result.reason!, /the judge \(llama3\) did not answer/);
      assert.equal(result.failed, 1);
      const [c] = await r.store.shadowComparisons(10);
      assert.equal(c!.verdict, null);
      assert.match(c!.error!, /^judge:/);
    } finally {
      await done(r);
    }
  });

  test('an answer the judge gives that is not the JSON asked for is no verdict, and no label', async () => {
    const r = await rig();
    try {
      storeTraffic(r.store, 1);
      await r.store.flush();
      judge.reply = () => ({ kind: 'content', content: 'I think A is better' });
      const result = await shadowStepFor(r.config, r.store, { registry: r.registry, dispatcher: r.dispatcher, judge: judgeAt(judge) })(NOW);
      assert.equal(result.status, 'ok');
      assert.equal(result.failed, 1);
      assert.equal((await r.store.getRequest('q0'))!.feedback.length, 0);
    } finally {
      judge.reply = prefersDemo;
      await done(r);
    }
  });
});

describe('the shadow step in the learner run', () => {
  test('off by default, and the run records why; without OLLAMA_HOST it says so', async () => {
    const r = await rig({ SHADOW_SAMPLE: '0' });
    try {
      storeTraffic(r.store, 2);
      await r.store.flush();
      const result = await runLearner({
        store: r.store, dataDir: r.dir, embedder: new BuiltinEmbedder(), settleMs: 0, replay: false,
        shadow: shadowStepFor(r.config, r.store, { registry: r.registry, dispatcher: r.dispatcher }),
      });
      assert.equal(result.shadow!.status, 'off');
      assert.match(result.shadow!.reason!, /SHADOW_SAMPLE is 0/);
      const [run] = await r.store.learnerRuns(1);
      assert.match(JSON.stringify((run!.changes as { shadow: unknown }).shadow), /SHADOW_SAMPLE is 0/);
    } finally {
      await done(r);
    }
    const noHost = shadowJudgeFromConfig({ judgeModel: 'llama3', judgeEnabled: true }, 1000);
    assert.equal(noHost.judge, null);
    assert.match(noHost.reason!, /OLLAMA_HOST is not set/);
  });

  test('with a judge, a learner run compares sampled requests and records the verdicts in learner_runs', async () => {
    const judge = await startJudgeStandIn(prefersDemo);
    const r = await rig({ OLLAMA_HOST: judge.url, SWITCHYARD_DEMO: '1', SHADOW_MODELS: 'demo-fast' });
    try {
      storeTraffic(r.store, 2);
      await r.store.flush();
      const result = await runLearner({
        store: r.store, dataDir: r.dir, embedder: new BuiltinEmbedder(), settleMs: 0, replay: false,
        shadow: shadowStepFor(r.config, r.store, { registry: r.registry, dispatcher: r.dispatcher }),
      });
      assert.equal(result.shadow!.status, 'ok', result.shadow!.reason ?? '');
      assert.equal(result.shadow!.compared, 2);
      const [run] = await r.store.learnerRuns(1);
      assert.equal((run!.changes as { shadow: { compared: number } }).shadow.compared, 2);
    } finally {
      await done(r);
      await judge.close();
    }
  });
});

test('the two orders combine: agreement wins, disagreement or a tie is a tie', () => {
  const v = (better: 'A' | 'B' | 'tie') => ({ better, reasoning: '' });
  assert.equal(combineOrders(v('A'), v('B')).verdict, 'request');
  assert.equal(combineOrders(v('B'), v('A')).verdict, 'shadow');
  assert.equal(combineOrders(v('A'), v('A')).verdict, 'tie');
  assert.equal(combineOrders(v('tie'), v('B')).verdict, 'tie');
});
