// Hostile input against every JSON API: random and malicious bodies (deep nesting, bodies at the
// size limit, wrong types, prototype keys, control characters, lone surrogates, invalid UTF-8,
// catastrophic regexes). Each gets a clear 4xx in the error shape (or 2xx when in fact valid), the
// server stays up and fast, stored feedback and weights do not change, Object.prototype stays clean.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { startGateway, model, type TestGateway } from '../helpers/gateway.ts';
import { rawPost, type RawResponse } from '../helpers/load.ts';

const BODY_LIMIT = 256 * 1024;
/** A hostile body must never make one request slow (ReDoS, deep recursion). */
const ANSWER_BOUND_MS = 3000;

const CHAT_PATHS = ['/api/chat', '/v1/chat/completions', '/api/claude'] as const;
const ALL_PATHS = [...CHAT_PATHS, '/api/feedback', '/api/config/weights', '/api/routing/analyze'] as const;
type ApiPath = (typeof ALL_PATHS)[number];

const EVIL_REGEXES = ['(a+)+$', '(a|aa)*b', '(.*a){20}', '(a*)*b', '([a-zA-Z]+)*$', '(x+x+)+y', '(\\w+\\s?)*$', '((a+)+)+', '(a|a?)+$', '(?:a+){2,}$'];
/** Exponential on a backtracking engine through a bounded repeat of a variable-length part: 2^n paths for (a?){n}. */
const VARIABLE_REPEAT_REGEXES = ['^(a?){25}a{25}$', '(a?){20}$', '(a{0,3}){10}b', '(a{1,2}){20}$', '^(a?a?){12}$'];
const EVIL_INPUT = `${'a'.repeat(40)}!`;

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const controlChar = fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c));
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.oneof(loneSurrogate, controlChar, fc.constantFrom('a', ' ', '"', '\\', '\u2028', '\ufeff')), maxLength: 20 }),
  fc.constantFrom('', ' ', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', "' OR 1=1; --", '<script>alert(1)</script>', '${process.exit()}', '../../etc/passwd', 'alpha', 'auto', EVIL_INPUT, 'x'.repeat(3000)),
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(-1, 0, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 5.5),
  fc.jsonValue({ maxDepth: 3 }),
);
const routingRules = fc.oneof(
  fc.array(fc.record({ pattern: fc.oneof(fc.constantFrom(...EVIL_REGEXES), hostileString), model: fc.constantFrom('alpha', 'ghost', '__proto__') }, { requiredKeys: [] }), { maxLength: 3 }),
  hostileValue,
);
const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom('user', 'assistant', 'system', 'developer', 'tool', '__proto__'), hostileString),
    content: fc.oneof(hostileString, hostileValue, fc.array(fc.record({ type: fc.constantFrom('text', 'image_url', '__proto__'), text: hostileString }, { requiredKeys: [] }), { maxLength: 3 })),
  },
  { requiredKeys: [] },
);
const chatBody = fc.record(
  {
    messages: fc.oneof(fc.array(message, { maxLength: 4 }), hostileValue),
    message: fc.oneof(hostileString, hostileValue),
    system: hostileValue,
    model: fc.oneof(fc.constantFrom('alpha', 'auto'), hostileString, hostileValue),
    stream: fc.oneof(fc.constant(false), hostileValue),
    temperature: hostileValue,
    max_tokens: hostileValue,
    stop: hostileValue,
    routing_rules: routingRules,
    routing: fc.oneof(fc.record({ prefer: hostileValue, quality_threshold: hostileValue }, { requiredKeys: [] }), hostileValue),
  },
  { requiredKeys: [] },
);
// Weights and feedback bodies never name the real model or a real request: any 2xx there would
// be a real change, and none must happen.
const notAlpha = hostileString.filter((s) => s !== 'alpha');
const weightsBody = fc.record(
  {
    weights: fc.oneof(fc.dictionary(notAlpha, hostileValue, { maxKeys: 3 }), hostileValue),
    models: fc.oneof(fc.array(fc.record({ model: notAlpha, weight: hostileValue, enabled: hostileValue }, { requiredKeys: [] }), { maxLength: 3 }), hostileValue),
  },
  { requiredKeys: [] },
);
const feedbackBody = fc.record({ request_id: fc.oneof(notAlpha, hostileValue), rating: fc.oneof(fc.integer({ min: -3, max: 9 }), hostileValue), comment: hostileValue }, { requiredKeys: [] });

/** Raw JSON text JS object literals cannot express (own __proto__ keys) and other hand-made payloads. */
const PROTO_BODIES = [
  '{"__proto__":{"polluted":"yes"},"message":"hi"}',
  '{"constructor":{"prototype":{"polluted":"yes"}},"message":"hi"}',
  '{"messages":[{"role":"user","content":"x","__proto__":{"polluted":"yes"}}]}',
  '{"messages":[{"role":"user","content":[{"type":"text","text":"x","__proto__":{"polluted":"yes"}}]}]}',
  '{"weights":{"__proto__":{"polluted":"yes"}}}',
  '{"weights":{"__proto__":1}}',
  '{"models":[{"model":"alpha","__proto__":{"enabled":false}}]}',
  '{"models":[{"model":"alpha","constructor":{"prototype":{"polluted":"yes"}}}]}',
  '{"request_id":"__proto__","rating":5}',
  '{"request_id":"constructor","rating":5,"__proto__":{"polluted":"yes"}}',
  '{"routing":{"__proto__":{"prefer":"cost"}},"message":"x"}',
  '{"metadata":{"__proto__":{"polluted":"yes"}},"messages":[{"role":"user","content":"x"}],"max_tokens":5}',
];

function special(): { name: string; body: Buffer; contentType?: string }[] {
  const deepArray = '['.repeat(10_000) + ']'.repeat(10_000);
  const deepObject = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
  const nearLimit = (key: string) => {
    const shell = `{"${key}":""}`;
    return `{"${key}":"${'x'.repeat(BODY_LIMIT - shell.length - 16)}"}`;
  };
  return [
    { name: 'deep array', body: Buffer.from(deepArray) },
    { name: 'deep object', body: Buffer.from(deepObject) },
    { name: 'deep content', body: Buffer.from(`{"messages":[{"role":"user","content":${deepArray}}],"message":${deepObject}}`) },
    { name: 'deep metadata', body: Buffer.from(`{"messages":[{"role":"user","content":"x"}],"max_tokens":5,"metadata":${deepObject}}`) },
    { name: 'huge string just under the limit', body: Buffer.from(nearLimit('message')) },
    { name: 'huge string just over the limit', body: Buffer.from(nearLimit('message') + ' '.repeat(64)) },
    { name: 'huge request id', body: Buffer.from(nearLimit('request_id')) },
    { name: 'invalid UTF-8 inside a string', body: Buffer.concat([Buffer.from('{"message":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from('"}')]) },
    { name: 'invalid UTF-8 as a key', body: Buffer.concat([Buffer.from('{"'), Buffer.from([0xc0, 0xaf]), Buffer.from('":1}')]) },
    { name: 'a UTF-16 BOM body', body: Buffer.from('\ufeff{"message":"hi"}', 'utf16le') },
    { name: 'raw control characters in a string', body: Buffer.from('{"message":"a\u0000b\u0007c\nd"}') },
    { name: 'a NUL byte body', body: Buffer.alloc(64) },
    { name: 'an empty body', body: Buffer.alloc(0) },
    { name: 'JSON null', body: Buffer.from('null') },
    { name: 'a bare string', body: Buffer.from('"hello"') },
    { name: 'duplicate keys', body: Buffer.from('{"message":"a","message":{"x":1}}') },
    { name: 'a form body', body: Buffer.from('message=hi'), contentType: 'application/x-www-form-urlencoded' },
    { name: 'an unsupported charset', body: Buffer.from('{"message":"hi"}'), contentType: 'application/json; charset=utf-16' },
    { name: 'a bogus charset', body: Buffer.from('{"message":"hi"}'), contentType: 'application/json; charset=evil-1' },
    ...PROTO_BODIES.map((b, i) => ({ name: `prototype keys #${i}`, body: Buffer.from(b) })),
    ...EVIL_REGEXES.map((pattern) => ({ name: `regex ${pattern}`, body: Buffer.from(JSON.stringify({ message: EVIL_INPUT, routing_rules: [{ pattern, model: 'alpha' }] })) })),
  ];
}

describe('hostile input', () => {
  let up: StandIn;
  let gw: TestGateway;
  const counts = { '2xx': 0, chat2xx: 0, '4xx': 0 };
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort();
  let snapshot: { feedback: unknown; weights: unknown; analyzeRows: number };

  async function takeSnapshot() {
    await gw.services.store.flush();
    return {
      feedback: await gw.services.store.all("select request_id, rating, comment from user_feedback where source = 'user' order by id"),
      weights: await gw.services.store.all('select model, weight, enabled from model_weights order by model'),
      analyzeRows: (await gw.services.store.all<{ n: number }>('select count(*) as n from queries'))[0]!.n,
    };
  }

  /** Send, then check the answer is a 2xx or a clear 4xx in the right error envelope, in time. */
  async function check(path: ApiPath, body: Buffer, contentType = 'application/json'): Promise<RawResponse> {
    const t0 = Date.now();
    const r = await rawPost(`${gw.url}${path}`, body, { 'content-type': contentType }, ANSWER_BOUND_MS + 2000);
    const ms = Date.now() - t0;
    assert.ok(ms < ANSWER_BOUND_MS, `${path} answered in ${ms} ms`);
    assert.ok(r.status < 500, `${path} -> ${r.status}: ${r.text.slice(0, 300)}`);
    if (r.status >= 200 && r.status < 300) {
      counts['2xx']++;
      assert.ok(path !== '/api/feedback' && path !== '/api/config/weights' || /"ok":true/.test(r.text), `unexpected success on ${path}: ${r.text.slice(0, 200)}`);
      if ((CHAT_PATHS as readonly string[]).includes(path)) counts.chat2xx++;
      return r;
    }
    counts['4xx']++;
    assert.ok(r.status >= 400 && r.status < 500, `a 4xx, got ${r.status}`);
    const json = r.json as { type?: string; error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown } } | undefined;
    assert.ok(json?.error, `a JSON error body: ${r.text.slice(0, 200)}`);
    assert.equal(typeof json.error.message, 'string');
    assert.ok((json.error.message as string).length > 0 && (json.error.message as string).length < 2000, 'a short, clear message');
    assert.equal(typeof json.error.type, 'string');
    assert.ok('code' in json.error && 'param' in json.error, 'OpenAI error fields');
    if (path === '/api/claude') assert.equal(json.type, 'error', 'the Anthropic envelope on the Anthropic path');
    assert.doesNotMatch(r.text, /at [\w.]+ \(|node:internal|\.ts:\d+/, 'no stack trace');
    return r;
  }

  before(async () => {
    up = await startOpenAIStandIn();
    gw = await startGateway({ models: [model('alpha', 'openai', up.url)], env: { TEST_KEY: 'sk-test-reliability-key-0005', BODY_LIMIT_BYTES: String(BODY_LIMIT), ADMIN_TOKEN: 'admin-token-hostile-01' } });
    // Something real to protect: a stored request, user feedback on it, and a weight.
    const seed = await rawPost(`${gw.url}/api/chat`, JSON.stringify({ message: 'seed', model: 'alpha' }));
    const id = (seed.json as { id: string }).id;
    assert.equal((await rawPost(`${gw.url}/api/feedback`, JSON.stringify({ request_id: id, rating: 4, comment: 'fine' }))).status, 201);
    assert.equal((await rawPost(`${gw.url}/api/config/weights`, JSON.stringify({ weights: { alpha: 7 } }), { 'content-type': 'application/json', authorization: 'Bearer admin-token-hostile-01' })).status, 200);
    snapshot = await takeSnapshot();
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  test('hand-made malicious bodies on every endpoint get a 2xx or a clear 4xx, quickly', async () => {
    for (const c of special()) {
      for (const path of ALL_PATHS) await check(path, c.body, c.contentType);
    }
  });

  test('catastrophic-backtracking routing rules run in linear time, on every endpoint that takes rules', async () => {
    for (const pattern of EVIL_REGEXES) {
      for (const path of ['/api/chat', '/v1/chat/completions', '/api/claude', '/api/routing/analyze'] as const) {
        const body = path === '/api/chat' || path === '/api/routing/analyze' ? { message: EVIL_INPUT } : { messages: [{ role: 'user', content: EVIL_INPUT }], max_tokens: 5 };
        const r = await check(path, Buffer.from(JSON.stringify({ ...body, routing_rules: [{ pattern, model: 'alpha' }] })));
        assert.equal(r.status, 200, `${pattern} on ${path}: ${r.text.slice(0, 200)}`);
      }
    }
  });

  test(
    'bounded repeats of variable-length groups, like (a?){25}a{25}, run in linear time too',
    async () => {
      for (const pattern of VARIABLE_REPEAT_REGEXES) {
        const r = await check('/api/routing/analyze', Buffer.from(JSON.stringify({ message: EVIL_INPUT, routing_rules: [{ pattern, model: 'alpha' }] })));
        assert.equal(r.status, 200, `${pattern}: ${r.text.slice(0, 200)}`);
      }
    },
  );

  test('random structured bodies (fast-check) on every endpoint never get a 5xx or hang', async () => {
    const bodyFor = (path: ApiPath) => (path === '/api/feedback' ? feedbackBody : path === '/api/config/weights' ? weightsBody : chatBody);
    const arbitrary = fc.constantFrom(...ALL_PATHS).chain((path) => fc.tuple(fc.constant(path), fc.oneof({ weight: 4, arbitrary: bodyFor(path) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) })));
    await fc.assert(
      fc.asyncProperty(arbitrary, async ([path, body]) => {
        await check(path, Buffer.from(JSON.stringify(body) ?? 'null'));
      }),
      { numRuns: 200, seed: 20240607 },
    );
  });

  test('random bytes (fast-check) never get a 5xx or hang', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ALL_PATHS), fc.uint8Array({ maxLength: 300 }), async (path, bytes) => {
        await check(path, Buffer.from(bytes));
      }),
      { numRuns: 100, seed: 7 },
    );
  });

  test('afterwards the server is up, stored feedback and weights are unchanged, and Object.prototype is clean', async () => {
    const health = await fetch(`${gw.url}/health`);
    assert.equal(health.status, 200);
    await health.text();
    const after = await takeSnapshot();
    assert.deepEqual(after.feedback, snapshot.feedback, 'user feedback unchanged');
    assert.deepEqual(after.weights, snapshot.weights, 'weights unchanged');
    assert.equal(gw.services.registry.get('alpha')?.weight, 7);
    assert.equal(gw.services.registry.get('alpha')?.enabled, true);
    assert.equal(after.analyzeRows - snapshot.analyzeRows, counts.chat2xx, 'only the bodies that were in fact valid chat requests were stored');
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), protoKeys);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.ok(counts['4xx'] > counts['2xx'], `mostly refused (${counts['4xx']} 4xx, ${counts['2xx']} 2xx)`);
  });
});
