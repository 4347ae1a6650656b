// Client and config regexes run on RE2 (linear time): the ReDoS patterns of issue 15 answer fast
// on the real server with /health responsive meanwhile; what RE2 cannot express is a 400 naming it;
// generated nested patterns (fast-check) compile and run under a time bound.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { nestedPatterns } from '../helpers/nested-patterns.ts';
import { compileUserRegex, MAX_MATCH_WORK, MAX_PROGRAM_SIZE, matchWindow } from '../../router/safe-regex.ts';

/** Any one request with routing rules must answer within this (the old engine took 8 s to hours). */
const BOUND_MS = 1500;

async function timedChat(url: string, body: unknown): Promise<{ status: number; body: any; ms: number }> {
  const t0 = performance.now();
  const r = await postJson(`${url}/api/chat`, body);
  return { ...r, ms: performance.now() - t0 };
}

describe('request routing_rules run in linear time', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway(); });
  after(async () => { await gw?.close(); });

  const cases: Array<{ name: string; message: string; pattern: string }> = [
    { name: 'an alternation whose branches overlap outside ASCII, on 26 × Ā', message: 'Ā'.repeat(26) + '!', pattern: '(\\u0100|[\\u00ff-\\u0101])*$' },
    { name: 'the same on 40 × Ā (the old engine doubled its time per character)', message: 'Ā'.repeat(40) + '!', pattern: '(\\u0100|[\\u00ff-\\u0101])*$' },
    { name: 'nested bounded repeats (((a?){3}){3}){3}b on 27 × a', message: 'a'.repeat(27), pattern: '(((a?){3}){3}){3}b' },
    { name: '(\\u{100}|\\p{L})*$ on 30 × Ā', message: 'Ā'.repeat(30) + '!', pattern: '(\\u{100}|\\p{L})*$' },
    { name: '(a+)+$ on 40 × a', message: 'a'.repeat(40) + '!', pattern: '(a+)+$' },
  ];
  for (const c of cases) {
    test(`${c.name}: answered quickly, and /health answers meanwhile`, async () => {
      const chat = timedChat(gw.url, { message: c.message, routing_rules: [{ pattern: c.pattern, model: 'demo-large' }] });
      const h0 = performance.now();
      const health = await fetch(`${gw.url}/health`);
      const healthMs = performance.now() - h0;
      const r = await chat;
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
      assert.ok(r.ms < BOUND_MS, `answered in ${r.ms.toFixed(0)} ms`);
      assert.equal(health.status, 200);
      assert.ok(healthMs < BOUND_MS, `/health took ${healthMs.toFixed(0)} ms`);
    });
  }

  test('a matching pattern still routes: the rule picks the model', async () => {
    const r = await timedChat(gw.url, { message: 'ĀĀĀ', routing_rules: [{ pattern: '^(\\u0100|[\\u00ff-\\u0101])*$', model: 'demo-large' }] });
    assert.equal(r.status, 200);
    assert.equal(r.body._actual_model_used, 'demo-large');
    assert.equal(r.body._routing.method, 'request_rules');
  });

  test('32 quadratic-on-backtracking rules like a*b on a 10 000-character text cost little', async () => {
    const rules = Array.from({ length: 32 }, (_, i) => ({ pattern: `a*${'b'.repeat(1 + (i % 4))}x{0,${i}}c`, model: 'demo-fast' }));
    const message = 'a'.repeat(10_000);
    await timedChat(gw.url, { message: 'warm up', routing_rules: rules });
    const r = await timedChat(gw.url, { message, routing_rules: rules });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
    assert.ok(r.ms < 500, `answered in ${r.ms.toFixed(0)} ms`);
  });

  test('more than 32 rules is a 400', async () => {
    const rules = Array.from({ length: 33 }, () => ({ pattern: 'a', model: 'demo-fast' }));
    const r = await timedChat(gw.url, { message: 'a', routing_rules: rules });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /routing_rules/);
  });

  const refused: Array<[string, RegExp]> = [
    ['(\\w+)\\s\\1', /backreferences are not supported/],
    ['(?<w>a)\\k<w>', /backreferences are not supported/],
    ['foo(?=bar)', /lookahead and lookbehind are not supported/],
    ['(?<!x)y', /lookahead and lookbehind are not supported/],
    ['(unclosed', /RE2 engine cannot compile it/],
    ['(ab\\p{L}){1000}', /too large for the matching budget/],
  ];
  for (const [pattern, reason] of refused) {
    test(`${JSON.stringify(pattern)} is a 400 naming the pattern and why`, async () => {
      const r = await timedChat(gw.url, { message: 'foobar', routing_rules: [{ pattern, model: 'demo-fast' }] });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.param, 'routing_rules.0.pattern');
      assert.ok(r.body.error.message.includes(JSON.stringify(pattern)), r.body.error.message);
      assert.match(r.body.error.message, reason);
    });
  }

  test('an escaped backslash before a digit is not a backreference, and JavaScript escapes keep their meaning', async () => {
    const r = await timedChat(gw.url, { message: 'C:\\1 é 😀', routing_rules: [{ pattern: '\\\\1 \\u00e9 \\u{1F600}', model: 'demo-large' }] });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
    assert.equal(r.body._actual_model_used, 'demo-large');
  });

  test('rules whose programs are large together see a shorter text, so matching work stays bounded', async () => {
    const pattern = '[\\p{L}\\p{N}]{500,600}z';
    const size = compileUserRegex(pattern).size;
    assert.ok(size <= MAX_PROGRAM_SIZE);
    const rules = [{ pattern, model: 'demo-fast' }, { pattern: pattern.replace('z', 'y'), model: 'demo-fast' }];
    assert.ok(matchWindow(2 * size) * 2 * size <= MAX_MATCH_WORK);
    const r = await timedChat(gw.url, { message: 'ab'.repeat(5000), routing_rules: rules });
    assert.equal(r.status, 200);
    assert.ok(r.ms < BOUND_MS, `answered in ${r.ms.toFixed(0)} ms`);
  });
});

describe('config keywordRules run on the same engine', () => {
  let gw: TestGateway;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-kw-'));
    const config = path.join(dir, 'config.json');
    await writeFile(config, JSON.stringify({
      models: [{ id: 'demo-fast', provider: 'demo', baseUrl: 'demo://local', upstreamModel: 'demo-fast', tags: ['chat'] }, { id: 'demo-large', provider: 'demo', baseUrl: 'demo://local', upstreamModel: 'demo-large', tags: ['big'] }],
      keywordRules: [{ name: 'evil', pattern: '(\\u0100|[\\u00ff-\\u0101])*$', model: 'tag:big' }, { name: 'nested', pattern: '(((a?){3}){3}){3}b', model: 'tag:big' }],
    }));
    gw = await startGateway({ env: { SWITCHYARD_CONFIG: config } });
  });
  after(async () => { await gw?.close(); await rm(dir, { recursive: true, force: true }); });

  test('the ReDoS patterns as keyword rules answer quickly', async () => {
    for (const message of ['Ā'.repeat(40) + '!', 'a'.repeat(27)]) {
      const r = await timedChat(gw.url, { message });
      assert.equal(r.status, 200);
      assert.ok(r.ms < BOUND_MS, `answered in ${r.ms.toFixed(0)} ms`);
    }
  });

  test('a config keyword rule RE2 cannot express stops start-up naming the rule', async () => {
    const config = path.join(dir, 'bad.json');
    await writeFile(config, JSON.stringify({ models: [{ id: 'demo-fast', provider: 'demo', baseUrl: 'demo://local', upstreamModel: 'demo-fast' }], keywordRules: [{ name: 'peek', pattern: 'a(?=b)', model: 'demo-fast' }] }));
    await assert.rejects(startGateway({ env: { SWITCHYARD_CONFIG: config } }), /peek.*lookahead/);
  });
});

describe('fuzz: generated nested patterns compile and run in linear time', () => {
  const pattern = nestedPatterns(['a', 'b', 'ā', '.', '\\w', '[a-c]', '\\p{L}', '[\\u00ff-\\u0101]', 'a?', '\\s'], ['', '*', '+', '?', '{2}', '{0,3}', '{1,}', '*?']);
  const texts = ['a'.repeat(3000) + '!', 'ā'.repeat(3000) + '!', 'ab '.repeat(1000), 'a'.repeat(40)];

  test('every generated pattern either compiles or is refused cleanly, and no match takes long', () => {
    let worst = 0;
    fc.assert(
      fc.property(pattern, (p) => {
        let re;
        try {
          re = compileUserRegex(p);
        } catch (e) {
          assert.equal((e as { status?: number }).status, 400);
          return;
        }
        for (const t of texts) {
          const t0 = performance.now();
          re.test(t);
          worst = Math.max(worst, performance.now() - t0);
        }
      }),
      { numRuns: 300, seed: 15 },
    );
    assert.ok(worst < 250, `slowest match ${worst.toFixed(1)} ms`);
  });
});
