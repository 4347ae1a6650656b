// The learned router inside the real server: stored outcomes change the route after a learner
// run (picked up without restart), and the Llama3 judge (an Ollama-protocol stand-in) is used
// when it answers well and ignored, without failing the request, when it answers badly or not at all.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { startJudgeStandIn, type JudgeStandIn, type JudgeReply } from '../standins/ollama-judge.ts';
import { startGateway, postJson, model, type TestGateway } from '../helpers/gateway.ts';
import { recordHistory, codeQuery, writingQuery } from '../learner/synthetic-history.ts';
import { runLearner } from '../../learner/job.ts';

const same = { costPer1kInput: 0.001, costPer1kOutput: 0.002 };

describe('learned routing through the server', () => {
  let up: StandIn;
  let gw: TestGateway;
  before(async () => {
    up = await startOpenAIStandIn();
    gw = await startGateway({ models: ['coder', 'writer', 'plain'].map((id) => model(id, 'openai', up.url, same)), env: { TEST_KEY: 'k-test-123456' } });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('after the learner sees that coder wins at code and writer at writing, auto routes follow', async () => {
    const analyze = async (text: string) => (await postJson(`${gw.url}/api/routing/analyze`, { message: text })).body;
    const beforeCode = await analyze(codeQuery(999));
    assert.notEqual(beforeCode._routing.method, 'learned', 'nothing learned yet');

    recordHistory({ store: gw.services.store, models: ['coder', 'writer', 'plain'], perDomain: 40, startTs: Date.now() - 3_600_000 });
    await gw.services.store.flush();
    const run = await runLearner({ store: gw.services.store, dataDir: gw.dataDir, embedder: gw.services.embedder!, settleMs: 0 });
    assert.equal(run.status, 'ok', run.error ?? '');
    await gw.services.reloadLearned();

    const code = await analyze(codeQuery(1001));
    const writing = await analyze(writingQuery(1001));
    assert.equal(code.selected, 'coder', JSON.stringify(code._routing));
    assert.equal(writing.selected, 'writer', JSON.stringify(writing._routing));
    assert.ok(['learned', 'knn'].includes(code._routing.method));
    assert.ok(code._routing.confidence >= 0.35);

    const chat = await postJson(`${gw.url}/v1/chat/completions`, { model: 'auto', messages: [{ role: 'user', content: codeQuery(1002) }] });
    assert.equal(chat.body._actual_model_used, 'coder');
    assert.ok(chat.body._routing.timings_ms.knn >= 0 && chat.body._routing.timings_ms.bandit >= 0);
    // How the choice was drawn, so a client (and the learner) can correct for it.
    const pi = chat.body._routing.propensities as Record<string, number>;
    assert.ok(['greedy', 'explore'].includes(chat.body._routing.policy));
    assert.ok(Math.abs(Object.values(pi).reduce((a, b) => a + b, 0) - 1) < 1e-9, JSON.stringify(pi));
    assert.ok(pi.coder! > 0.9, JSON.stringify(pi));
    await gw.services.store.flush();
    const id = chat.body.id.replace(/^chatcmpl-/, '');
    const logged = (await gw.services.store.decisionLog({ ts: 0, id: '' }, 10_000)).find((r) => r.id === id);
    assert.deepEqual(logged?.propensities, pi, 'the decision is stored with its propensities');
    assert.equal(logged?.policy, chat.body._routing.policy);
  });
});

describe('the Llama3 judge through the server', () => {
  let up: StandIn;
  let judge: JudgeStandIn;
  let gw: TestGateway;
  let next: JudgeReply = { kind: 'content', content: '{}' };
  before(async () => {
    up = await startOpenAIStandIn();
    judge = await startJudgeStandIn(() => next);
    gw = await startGateway({
      models: ['fast', 'smart'].map((id) => model(id, 'openai', up.url, same)),
      env: { TEST_KEY: 'k-test-123456', OLLAMA_HOST: judge.url, JUDGE_ENABLED: '1', JUDGE_TIMEOUT_MS: '400' },
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
    await judge.close().catch(() => undefined);
  });

  test('a good verdict picks the model and is explained', async () => {
    next = { kind: 'content', content: JSON.stringify({ selectedModel: 'smart', confidence: 90, reasoning: 'needs careful reasoning' }) };
    const r = await postJson(`${gw.url}/api/chat`, { message: 'Prove that there are infinitely many primes.' });
    assert.equal(r.status, 200);
    assert.equal(r.body._actual_model_used, 'smart');
    assert.equal(r.body._routing.method, 'judge');
    assert.equal(r.body._routing.judge.selectedModel, 'smart');
    assert.match(r.body._routing.reason, /needs careful reasoning/);
    assert.equal(judge.requests.at(-1)?.model, 'llama3');
    assert.match(JSON.stringify(judge.requests.at(-1)?.messages), /fast/);
  });

  for (const [name, reply] of [
    ['invalid JSON', { kind: 'content', content: 'I think smart, probably' }],
    ['an unknown model', { kind: 'content', content: JSON.stringify({ selectedModel: 'gpt-9', confidence: 99, reasoning: 'x' }) }],
    ['an Ollama error', { kind: 'error', status: 500, message: 'model not loaded' }],
  ] as const) {
    test(`${name} from the judge is no answer, and the request is still served`, async () => {
      next = reply as JudgeReply;
      const r = await postJson(`${gw.url}/api/chat`, { message: `Another question about ${name}?` });
      assert.equal(r.status, 200);
      assert.equal(r.body._routing.judge, null);
      assert.notEqual(r.body._routing.method, 'judge');
    });
  }

  test('a judge slower than its budget is not waited for', async () => {
    next = { kind: 'stall' };
    const t0 = Date.now();
    const r = await postJson(`${gw.url}/api/chat`, { message: 'A question while the judge stalls' });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    assert.equal(r.body._routing.judge, null);
  });

  test('Ollama down: requests are served and /health shows the judge unavailable', async () => {
    await judge.close();
    const r = await postJson(`${gw.url}/api/chat`, { message: 'A question with the judge gone' });
    assert.equal(r.status, 200);
    const h = await (await fetch(`${gw.url}/health`)).json();
    assert.equal(h.router.judge.enabled, true);
    assert.notEqual(h.router.judge.available, true);
  });
});
