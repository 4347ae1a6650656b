// ReDoS against the real process (server/main.ts in its own process), so that a regex engine that
// backtracks makes these tests fail on their deadlines instead of freezing the test runner with
// the server (regex.test.ts serves in-process: there a catastrophic pattern would hang, not fail).
// Each request, and /health meanwhile, must answer within BOUND_MS: the patterns, 32
// quadratic rules on a 10,000-character text, config keywordRules, and generated nested patterns.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nestedPatterns } from '../helpers/nested-patterns.ts';
import { spawnSwitchyard, type SwitchyardProcess } from '../helpers/load.ts';
import type { ModelSpecInput } from '../../server/config.ts';

/** Generous for a loaded 2-core machine; the backtracking engine took 8 s to hours on these. */
const BOUND_MS = 3000;

const MODELS: ModelSpecInput[] = [
  { id: 'demo-fast', provider: 'demo', baseUrl: 'demo://local', upstreamModel: 'demo-fast', tags: ['chat'] },
  { id: 'demo-large', provider: 'demo', baseUrl: 'demo://local', upstreamModel: 'demo-large', tags: ['big'] },
];

interface Bounded { status: number | 'timeout'; ms: number; body: any }

/** POST with a deadline: a server stuck in a regex shows up as 'timeout', never as a hung test. */
async function bounded(url: string, body: unknown, method: 'POST' | 'GET' = 'POST'): Promise<Bounded> {
  const t0 = performance.now();
  try {
    const res = await fetch(url, { method, signal: AbortSignal.timeout(BOUND_MS), ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = JSON.parse(text); } catch { /* keep the text */ }
    return { status: res.status, ms: performance.now() - t0, body: parsed };
  } catch {
    return { status: 'timeout', ms: performance.now() - t0, body: null };
  }
}

/** A chat request and a /health probe sent at the same time; both must answer in time. */
async function withHealth(url: string, body: unknown): Promise<{ chat: Bounded; health: Bounded }> {
  const chat = bounded(`${url}/api/chat`, body);
  const health = bounded(`${url}/health`, null, 'GET');
  return { chat: await chat, health: await health };
}

describe('routing_rules on the real process', () => {
  let proc: SwitchyardProcess;
  before(async () => { proc = await spawnSwitchyard({ models: MODELS, env: { ROUTER_EXPLORATION: '0' } }); });
  after(async () => {
    // A process stuck in a regex does not answer SIGTERM: stop() falls back to SIGKILL.
    await proc?.stop(2000);
    await proc?.cleanup();
  });

  const cases: Array<{ name: string; message: string; pattern: string }> = [
    { name: 'the issue\'s (\\u0100|[\\u00ff-\\u0101])*$ on 26 × Ā + !', message: 'Ā'.repeat(26) + '!', pattern: '(\\u0100|[\\u00ff-\\u0101])*$' },
    { name: 'the issue\'s (((a?){3}){3}){3}b on 27 × a', message: 'a'.repeat(27), pattern: '(((a?){3}){3}){3}b' },
    { name: 'the issue\'s (\\u{100}|\\p{L})*$ on 30 × Ā + !', message: 'Ā'.repeat(30) + '!', pattern: '(\\u{100}|\\p{L})*$' },
  ];
  for (const c of cases) {
    test(`${c.name}: answered in time, and /health meanwhile`, async () => {
      const { chat, health } = await withHealth(proc.url, { message: c.message, routing_rules: [{ pattern: c.pattern, model: 'demo-large' }] });
      assert.equal(chat.status, 200, `chat: ${chat.status} after ${chat.ms.toFixed(0)} ms`);
      assert.equal(health.status, 200, `/health: ${health.status} after ${health.ms.toFixed(0)} ms`);
    });
  }

  test('32 rules quadratic on a backtracking engine (a*b...) on a 10 000-character text: each request in time', async () => {
    const rules = Array.from({ length: 32 }, (_, i) => ({ pattern: `a*${'b'.repeat(1 + (i % 4))}x{0,${i}}c`, model: 'demo-fast' }));
    for (let i = 0; i < 3; i++) {
      const { chat, health } = await withHealth(proc.url, { message: 'a'.repeat(10_000), routing_rules: rules });
      assert.equal(chat.status, 200, `request ${i}: ${chat.status} after ${chat.ms.toFixed(0)} ms`);
      assert.equal(health.status, 200);
    }
  });

  test('fuzz: 60 generated nested patterns on hostile texts, each answered (200 or a 400 naming it) in time', async () => {
    const pattern = nestedPatterns(['a', 'ā', '.', '\\w', '[a-c]', '\\p{L}', '[\\u00ff-\\u0101]', 'a?', '(?:a|a)', '(?:ā|\\p{L})'], ['*', '+', '?', '{2}', '{0,3}', '{1,}', '{3}'], 196)
      .map((p) => `(${p})+$`);
    const samples = fc.sample(pattern, { numRuns: 60, seed: 1515 });
    const texts = ['a'.repeat(40) + '!', 'ā'.repeat(40) + '!'];
    for (const p of samples) {
      const r = await bounded(`${proc.url}/api/chat`, { message: texts[p.length % 2], routing_rules: [{ pattern: p, model: 'demo-large' }] });
      assert.ok(r.status === 200 || r.status === 400, `${JSON.stringify(p)}: ${r.status} after ${r.ms.toFixed(0)} ms`);
      if (r.status === 400) assert.ok(String(r.body?.error?.message).includes(JSON.stringify(p)), `the 400 names the pattern: ${JSON.stringify(r.body)}`);
    }
  });
});

describe('config keywordRules on the real process', () => {
  let proc: SwitchyardProcess;
  before(async () => {
    proc = await spawnSwitchyard({
      models: MODELS,
      env: { ROUTER_EXPLORATION: '0' },
      config: { keywordRules: [{ name: 'evil', pattern: '(\\u0100|[\\u00ff-\\u0101])*$', model: 'tag:big' }, { name: 'nested', pattern: '(((a?){3}){3}){3}b', model: 'tag:big' }] },
    });
  });
  after(async () => {
    await proc?.stop(2000);
    await proc?.cleanup();
  });

  test('the issue\'s patterns as keyword rules: routed by them, in time, /health meanwhile', async () => {
    for (const message of ['Ā'.repeat(40) + '!', 'a'.repeat(27)]) {
      const { chat, health } = await withHealth(proc.url, { message });
      assert.equal(chat.status, 200, `chat: ${chat.status} after ${chat.ms.toFixed(0)} ms`);
      assert.equal(chat.body._routing.method, 'keywords', 'the keyword rules ran');
      assert.equal(chat.body._actual_model_used, 'demo-large');
      assert.equal(health.status, 200);
    }
  });
});
