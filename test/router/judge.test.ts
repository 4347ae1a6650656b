// The Llama judge against an Ollama /api/chat stand-in over loopback: answers, bad answers,
// time budget, Ollama down with cooldown, and the decision cache.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { JudgeStage, buildJudgeMessages, createJudge, normalizeQuery, verdictToStageResult } from '../../router/judge.ts';
import { closedPortUrl, startJudgeStandIn, type JudgeReply, type JudgeStandIn } from '../standins/ollama-judge.ts';
import { candidate, features, learnedState } from './fixtures.ts';

const models = [
  candidate('demo-fast', { description: 'small and cheap', costPer1kInput: 0.0001 }),
  candidate('demo-coder', { description: 'code specialist', tags: ['code'] }),
  candidate('demo-large', { description: 'large reasoning model', costPer1kOutput: 0.015 }),
];
const answer = (o: unknown): JudgeReply => ({ kind: 'content', content: typeof o === 'string' ? o : JSON.stringify(o) });

const standIns: JudgeStandIn[] = [];
async function standIn(reply: (body: import('../standins/ollama-judge.ts').ChatBody) => JudgeReply): Promise<JudgeStandIn> {
  const s = await startJudgeStandIn(reply);
  standIns.push(s);
  return s;
}
after(async () => {
  await Promise.all(standIns.map((s) => s.close()));
});

describe('judge answers', () => {
  test('a good answer becomes a verdict, sent as the Ollama chat request the brief specifies', async () => {
    const s = await standIn(() => answer({ selectedModel: 'demo-coder', confidence: 85, reasoning: 'code question' }));
    const judge = new JudgeStage({ host: s.url, model: 'llama3:8b' });
    const verdict = await judge.judge('Fix my Python bug', features({ domain: 'code', hasCode: true }), models);
    assert.deepEqual(verdict, { selectedModel: 'demo-coder', confidence: 85, reasoning: 'code question' });
    const req = s.requests[0]!;
    assert.equal(req.model, 'llama3:8b');
    assert.equal(req.format, 'json');
    assert.equal(req.stream, false);
    assert.deepEqual(req.options, { temperature: 0 });
    assert.equal(req.messages[0]!.role, 'system');
    assert.match(req.messages[1]!.content, /Fix my Python bug/);
    assert.match(req.messages[1]!.content, /domain=code/);
    assert.equal(judge.status().available, true);
  });

  test('the stage gives the pick confidence/100 and the others a small share', async () => {
    const s = await standIn(() => answer({ selectedModel: 'demo-large', confidence: 90, reasoning: 'hard proof' }));
    const r = await new JudgeStage({ host: s.url }).score('Prove it', features({ domain: 'math' }), models);
    assert.ok(r);
    assert.equal(r.perModel['demo-large'], 0.9);
    assert.ok(Math.abs(r.perModel['demo-fast']! - 0.05) < 1e-9);
    assert.equal(r.confidence, 0.9);
    assert.equal(r.evidence, 'chose demo-large (90%): hard proof');
  });

  test('numeric strings and case differences in the model id are accepted', async () => {
    const s = await standIn(() => answer({ selectedModel: 'Demo-Fast', confidence: '70', reasoning: 'chat' }));
    const v = await new JudgeStage({ host: s.url }).judge('hi', features(), models);
    assert.deepEqual(v, { selectedModel: 'demo-fast', confidence: 70, reasoning: 'chat' });
  });

  const bad: Array<[string, JudgeReply]> = [
    ['invalid JSON', answer('I pick demo-fast!')],
    ['a schema mismatch', answer({ model: 'demo-fast', confidence: 50 })],
    ['confidence out of range', answer({ selectedModel: 'demo-fast', confidence: 250, reasoning: '' })],
    ['an unknown model', answer({ selectedModel: 'gpt-7', confidence: 99, reasoning: 'best' })],
  ];
  for (const [what, reply] of bad) {
    test(`${what} is no answer (null), not an error, and does not cool the judge down`, async () => {
      const s = await standIn(() => reply);
      const judge = new JudgeStage({ host: s.url });
      assert.equal(await judge.judge('hello', features(), models), null);
      assert.equal(await judge.judge('hello', features(), models), null);
      assert.equal(s.requests.length, 2, 'bad answers are not cached and do not stop later calls');
      const st = judge.status();
      assert.equal(st.available, true);
      assert.equal(st.coolingDownUntil, null);
      assert.ok(st.lastError);
    });
  }

  test('an Ollama error status (model not pulled) is no answer and starts the cooldown', async () => {
    const s = await standIn(() => ({ kind: 'error', status: 404, message: 'model "llama3" not found, try pulling it first' }));
    const judge = new JudgeStage({ host: s.url, cooldownMs: 30_000 });
    assert.equal(await judge.judge('hello', features(), models), null);
    assert.equal(judge.status().available, false);
    assert.match(judge.status().lastError ?? '', /404/);
    assert.equal(await judge.judge('other', features(), models), null);
    assert.equal(s.requests.length, 1);
  });
});

describe('judge time budget and availability', () => {
  test('a judge slower than its budget is aborted: null within budget + a small margin', async () => {
    const s = await standIn(() => ({ kind: 'stall' }));
    const judge = new JudgeStage({ host: s.url, timeoutMs: 200 });
    const start = performance.now();
    assert.equal(await judge.judge('slow one', features(), models), null);
    const elapsed = performance.now() - start;
    assert.ok(elapsed >= 190 && elapsed < 500, `took ${elapsed} ms`);
    assert.match(judge.status().lastError ?? '', /^timeout/);
    assert.equal(judge.status().coolingDownUntil, null, 'one timeout is not "down"');
  });

  test('repeated timeouts count as down and start the cooldown', async () => {
    const s = await standIn(() => ({ kind: 'content', content: '{}', delayMs: 5_000 }));
    let fetches = 0;
    const judge = new JudgeStage({ host: s.url, timeoutMs: 80, timeoutsBeforeCooldown: 2, fetch: (input, init) => { fetches++; return fetch(input, init); } });
    assert.equal(await judge.judge('a', features(), models), null);
    assert.equal(judge.status().coolingDownUntil, null);
    assert.equal(await judge.judge('b', features(), models), null);
    assert.ok(judge.status().coolingDownUntil !== null);
    assert.equal(judge.status().available, false);
    assert.equal(await judge.judge('c', features(), models), null);
    assert.equal(fetches, 2, 'the third call is skipped');
  });

  test('Ollama down (closed port): null, then calls are skipped for the cooldown, then retried', async () => {
    let clock = 1_000_000;
    let fetches = 0;
    const judge = new JudgeStage({
      host: await closedPortUrl(),
      cooldownMs: 30_000,
      now: () => clock,
      fetch: (input, init) => { fetches++; return fetch(input, init); },
    });
    assert.equal(await judge.judge('hello', features(), models), null);
    assert.equal(fetches, 1);
    const st = judge.status();
    assert.equal(st.available, false);
    assert.equal(st.coolingDownUntil, clock + 30_000);
    assert.match(st.lastError ?? '', /^down/);

    const start = performance.now();
    assert.equal(await judge.judge('again', features(), models), null);
    assert.ok(performance.now() - start < 25, 'a down judge costs nothing on the hot path');
    assert.equal(fetches, 1);

    clock += 30_001;
    assert.equal(await judge.judge('later', features(), models), null);
    assert.equal(fetches, 2, 'tried again after the cooldown');
  });

  test('a caller abort returns null at once and is not held against Ollama', async () => {
    const s = await standIn(() => ({ kind: 'stall' }));
    const judge = new JudgeStage({ host: s.url, timeoutMs: 5_000 });
    const ac = new AbortController();
    const pending = judge.judge('abort me', features(), models, ac.signal);
    setImmediate(() => ac.abort());
    assert.equal(await pending, null);
    assert.equal(judge.status().lastError, null);
  });
});

describe('judge cache', () => {
  test('the same query (modulo case and whitespace) and candidates is answered from the cache', async () => {
    const s = await standIn(() => answer({ selectedModel: 'demo-fast', confidence: 60, reasoning: 'small talk' }));
    let clock = 0;
    const judge = new JudgeStage({ host: s.url, cacheTtlMs: 10_000, now: () => clock });
    const first = await judge.judge('How are   you?', features(), models);
    const second = await judge.judge('  how are you? ', features(), [...models].reverse());
    assert.deepEqual(second, first);
    assert.equal(s.requests.length, 1, 'the second call did not reach Ollama');
    assert.equal(judge.status().cacheHits, 1);

    await judge.judge('How are you?', features(), models.slice(0, 2));
    assert.equal(s.requests.length, 2, 'another candidate set is another question');

    clock += 10_001;
    await judge.judge('How are you?', features(), models);
    assert.equal(s.requests.length, 3, 'expired entries are asked again');
  });

  test('the cache keeps at most cacheMax entries, evicting the least recently used', async () => {
    const s = await standIn(() => answer({ selectedModel: 'demo-fast', confidence: 60, reasoning: '' }));
    const judge = new JudgeStage({ host: s.url, cacheMax: 2 });
    await judge.judge('one', features(), models);
    await judge.judge('two', features(), models);
    await judge.judge('one', features(), models); // refreshes "one"
    await judge.judge('three', features(), models); // evicts "two"
    assert.equal(judge.status().cacheSize, 2);
    await judge.judge('one', features(), models);
    assert.equal(s.requests.length, 3);
    await judge.judge('two', features(), models);
    assert.equal(s.requests.length, 4);
  });

  test('concurrent identical questions share one call', async () => {
    const s = await standIn(() => ({ kind: 'content', content: JSON.stringify({ selectedModel: 'demo-fast', confidence: 60, reasoning: '' }), delayMs: 30 }));
    const judge = new JudgeStage({ host: s.url });
    const [a, b] = await Promise.all([judge.judge('same', features(), models), judge.judge('same', features(), models)]);
    assert.deepEqual(a, b);
    assert.equal(s.requests.length, 1);
  });
});

describe('prompt and helpers', () => {
  test('the prompt carries features, truncated query, descriptions, costs and learned profiles', () => {
    const learned = learnedState({
      profiles: {
        'demo-coder': { model: 'demo-coder', summary: 'Good at code', strengths: ['python', 'sql'], weaknesses: ['poetry'], successRate: 0.92, avgRating: 4.4, avgLatencyMs: 812.4, samples: 120 },
      },
    });
    const [system, user] = buildJudgeMessages('x'.repeat(5000), features({ domain: 'code', language: 'en' }), models, learned, 100);
    assert.match(system!.content, /"selectedModel"/);
    assert.match(user!.content, /x{100}\n\[\.\.\. truncated, 5000 chars in total\]/);
    assert.doesNotMatch(user!.content, /x{101}/);
    assert.match(user!.content, /- id: demo-coder\n {2}description: code specialist\n {2}tags: code/);
    assert.match(user!.content, /success rate 92% over 120 requests; average rating 4\.4\/5; average latency 812 ms/);
    assert.match(user!.content, /strengths: python; sql/);
    assert.match(user!.content, /weaknesses: poetry/);
    assert.match(user!.content, /output \$0\.015/);
  });

  test('normalizeQuery lowercases and collapses whitespace', () => {
    assert.equal(normalizeQuery('  Hello\n\tWORLD  '), 'hello world');
  });

  test('verdictToStageResult with one candidate gives it the whole vote', () => {
    const r = verdictToStageResult({ selectedModel: 'demo-fast', confidence: 40, reasoning: '' }, models.slice(0, 1));
    assert.deepEqual(r.perModel, { 'demo-fast': 0.4 });
  });

  test('createJudge follows the routing config and defaults to local Ollama', () => {
    assert.equal(createJudge({ judgeEnabled: false, judgeModel: 'llama3', judgeTimeoutMs: 1500 }), null);
    const j = createJudge({ judgeEnabled: true, judgeModel: 'llama3.1', judgeTimeoutMs: 900, ollamaHost: 'http://user:secret@10.0.0.5:11434' });
    assert.ok(j);
    assert.equal(j.model, 'llama3.1');
    assert.equal(j.timeoutMs, 900);
    assert.equal(j.status().host, 'http://10.0.0.5:11434', 'credentials never reach status');
    assert.equal(createJudge({ judgeEnabled: true, judgeModel: 'llama3', judgeTimeoutMs: 1500 })?.status().host, 'http://127.0.0.1:11434');
  });
});
