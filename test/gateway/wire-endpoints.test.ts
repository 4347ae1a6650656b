// Endpoints and names around the chat paths: /v1/messages/count_tokens (the upstream's count or a
// labelled estimate), model aliases and dated provider names, and CORS on the proxy port only.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import type { StandIn } from '../standins/common.ts';
import { gatewayOver, startGateway, model, fixedRouter, postJson, type TestGateway } from '../helpers/gateway.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, ConfigError } from '../../server/config.ts';
import { startAdminEnv } from '../admin/harness.ts';

describe('count_tokens, aliases and dated names', () => {
  const t = gatewayOver(['openai', 'anthropic', 'gemini'], (url) => ({
    models: [
      model('claude-sonnet', 'anthropic', url.anthropic, { upstreamModel: 'claude-sonnet-4-5', aliases: ['sonnet'] }),
      model('gpt-4o', 'openai', url.openai, { upstreamModel: 'gpt-4o' }),
      model('gem', 'gemini', url.gemini, { upstreamModel: 'gemini-2.0-flash' }),
    ],
    file: { aliases: { 'my-default': 'gpt-4o' } },
    env: { TEST_KEY: 'test-key-abcdef' },
    router: fixedRouter(['gpt-4o', 'claude-sonnet']),
  }));
  let oa: StandIn;
  let an: StandIn;
  let ge: StandIn;
  let gw: TestGateway;
  let anthropic: Anthropic;
  before(() => {
    ({ up: { openai: oa, anthropic: an, gemini: ge }, gw } = t);
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0 });
  });

  const convo = {
    system: 'You are terse.',
    messages: [{ role: 'user' as const, content: 'How many tokens is this sentence?' }],
    tools: [{ name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }],
  };

  test('count_tokens for an Anthropic model is the upstream count, from its count_tokens endpoint with only the fields it takes', async () => {
    const r = await anthropic.messages.countTokens({ model: 'claude-sonnet', ...convo });
    assert.equal(an.requests.length, 1);
    const sent = an.requests[0]!;
    assert.equal(sent.path, '/v1/messages/count_tokens');
    const body = sent.body as Record<string, unknown>;
    assert.equal(body.model, 'claude-sonnet-4-5');
    assert.equal(body.max_tokens, undefined);
    assert.deepEqual(body.tools, convo.tools);
    assert.equal(body.system, 'You are terse.');
    assert.ok(r.input_tokens > 10);
    const raw = await postJson(`${gw.url}/v1/messages/count_tokens`, { model: 'claude-sonnet', ...convo });
    assert.equal(raw.headers.get('x-switchyard-token-count'), 'upstream');
    assert.equal(raw.body.input_tokens, r.input_tokens);
    assert.equal(raw.body._actual_model_used, 'claude-sonnet');
  });

  test('count_tokens from the beta client, and as Claude Code sends it (?beta=true), keeps anthropic-beta and the query', async () => {
    const r = await anthropic.beta.messages.countTokens({ model: 'claude-sonnet-4-5-20250929', betas: ['interleaved-thinking-2025-05-14'], messages: convo.messages });
    assert.ok(r.input_tokens > 0);
    assert.match(String(an.requests[0]!.headers['anthropic-beta']), /interleaved-thinking-2025-05-14/);
    const raw = await postJson(`${gw.url}/v1/messages/count_tokens?beta=true`, { model: 'claude-sonnet', messages: convo.messages }, { 'anthropic-beta': 'claude-code-20250219' });
    assert.equal(raw.headers.get('x-switchyard-token-count'), 'upstream');
    assert.equal(an.requests[1]!.path, '/v1/messages/count_tokens?beta=true');
    assert.equal(an.requests[1]!.headers['anthropic-beta'], 'claude-code-20250219');
  });

  test('count_tokens for a Gemini model is its countTokens over the whole generate request', async () => {
    const raw = await postJson(`${gw.url}/v1/messages/count_tokens`, { model: 'gem', ...convo });
    assert.equal(raw.status, 200, JSON.stringify(raw.body));
    assert.equal(raw.headers.get('x-switchyard-token-count'), 'upstream');
    const sent = ge.requests[0]!;
    assert.match(sent.path, /\/v1beta\/models\/gemini-2\.0-flash:countTokens$/);
    const g = (sent.body as any).generateContentRequest;
    assert.equal(g.model, 'models/gemini-2.0-flash');
    assert.deepEqual(g.systemInstruction, { parts: [{ text: 'You are terse.' }] });
    assert.equal(g.tools[0].functionDeclarations[0].name, 'get_weather');
    assert.ok(raw.body.input_tokens > 10);
  });

  test('count_tokens for a model without a count endpoint is an estimate, and says so in a header and a field', async () => {
    const raw = await postJson(`${gw.url}/v1/messages/count_tokens`, { model: 'gpt-4o', ...convo });
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('x-switchyard-token-count'), 'estimate');
    assert.equal(raw.body._token_count, 'estimate');
    assert.ok(raw.body.input_tokens > 10);
    assert.equal(an.requests.length + oa.requests.length, 0);
    // model "auto": the router's choice (gpt-4o first here) decides
    const auto = await anthropic.messages.countTokens({ model: 'auto', ...convo });
    assert.ok(auto.input_tokens > 0);
  });

  test('count_tokens: the upstream refusing the request is the client\'s 400; an unreachable upstream still leaves a labelled estimate', async () => {
    an.enqueue({ kind: 'error', status: 400, message: 'messages.0: bad' });
    await assert.rejects(anthropic.messages.countTokens({ model: 'claude-sonnet', ...convo }), (e: any) => e.status === 400 && /bad/.test(e.message));
    an.behave({ kind: 'error', status: 500 });
    const raw = await postJson(`${gw.url}/v1/messages/count_tokens`, { model: 'claude-sonnet', ...convo });
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('x-switchyard-token-count'), 'estimate');
    assert.match(raw.body._token_count_reason, /unavailable/);
  });

  test('count_tokens validates its body and answers in Anthropic\'s error shape', async () => {
    const r = await postJson(`${gw.url}/v1/messages/count_tokens`, { model: 'claude-sonnet', messages: [] });
    assert.equal(r.status, 400);
    assert.equal(r.body.type, 'error');
    assert.match(r.body.error.message, /messages/);
    const unknown = await postJson(`${gw.url}/v1/messages/count_tokens`, { model: 'nope', ...convo });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.type, 'error');
  });

  test('dated provider names, upstream names and aliases reach the configured model; unknown names stay 404', async () => {
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    for (const name of ['gpt-4o-2024-08-06', 'gpt-4o-latest', 'my-default']) {
      const r = await openai.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal((r as any)._actual_model_used, 'gpt-4o', name);
    }
    for (const name of ['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5', 'sonnet']) {
      const r = await anthropic.messages.create({ model: name, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal((r as any)._actual_model_used, 'claude-sonnet', name);
    }
    assert.equal((an.requests.at(-1)!.body as any).model, 'claude-sonnet-4-5');
    const missing = await postJson(`${gw.url}/v1/chat/completions`, { model: 'gpt-5-2025-08-07', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(missing.status, 404);
    const listed = await fetch(`${gw.url}/v1/models/claude-sonnet-4-5-20250929`).then((r) => r.json());
    assert.equal(listed._resolves_to, 'claude-sonnet');
  });

  test('routing_rules may name a model by alias', async () => {
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'auto', messages: [{ role: 'user', content: 'hello' }], routing_rules: [{ pattern: 'hello', model: 'sonnet' }] });
    assert.equal(r.status, 200);
  });

  test('aliases that collide or name nothing stop start-up naming them', () => {
    const write = (file: unknown) => {
      const p = path.join(mkdtempSync(path.join(os.tmpdir(), 'sy-alias-')), 'c.json');
      writeFileSync(p, JSON.stringify(file));
      return p;
    };
    const m = (id: string, aliases: string[] = []) => ({ id, provider: 'openai', baseUrl: 'http://127.0.0.1:1/v1', aliases });
    assert.throws(() => loadConfig({ SWITCHYARD_CONFIG: write({ models: [m('a', ['b']), m('b')] }) }), (e: unknown) => e instanceof ConfigError && /alias "b"/.test(e.message));
    assert.throws(() => loadConfig({ SWITCHYARD_CONFIG: write({ models: [m('a', ['x']), m('b', ['x'])] }) }), /names both/);
    assert.throws(() => loadConfig({ SWITCHYARD_CONFIG: write({ models: [m('a')], aliases: { x: 'zzz' } }) }), /aliases.x names "zzz"/);
  });
});

describe('CORS on the proxy port', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ env: { CORS_ALLOWED_ORIGINS: 'http://app.example:5173, https://ui.example', ADMIN_ALLOWED_HOSTS: '' } });
  });
  after(async () => {
    await gw.close();
  });

  const preflight = (path: string, origin: string) =>
    fetch(`${gw.url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-stainless-os' } });

  test('a preflight from an allowed origin gets 204 with the methods and the headers it asked for, on every proxy path', async () => {
    for (const p of ['/v1/chat/completions', '/v1/messages', '/v1/embeddings', '/v1/models', '/api/chat']) {
      const r = await preflight(p, 'http://app.example:5173');
      assert.equal(r.status, 204, p);
      assert.equal(r.headers.get('access-control-allow-origin'), 'http://app.example:5173');
      assert.match(r.headers.get('access-control-allow-methods')!, /POST/);
      assert.equal(r.headers.get('access-control-allow-headers'), 'authorization, content-type, x-stainless-os');
      assert.match(r.headers.get('vary')!, /Origin/);
    }
  });

  test('answers to an allowed origin carry Access-Control-Allow-Origin and expose the gateway headers', async () => {
    const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { origin: 'https://ui.example', 'content-type': 'application/json' }, body: JSON.stringify({ model: 'demo-fast', messages: [{ role: 'user', content: 'hi' }] }) });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://ui.example');
    assert.match(r.headers.get('access-control-expose-headers')!, /x-request-id/);
  });

  test('other origins, /metrics and /api/config get no CORS headers', async () => {
    const other = await preflight('/v1/chat/completions', 'https://evil.example');
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    for (const p of ['/metrics', '/api/config/weights']) {
      const r = await preflight(p, 'http://app.example:5173');
      assert.equal(r.headers.get('access-control-allow-origin'), null, p);
    }
  });

  test('the admin page never answers CORS, even with CORS_ALLOWED_ORIGINS=*', async () => {
    const admin = await startAdminEnv({ env: { CORS_ALLOWED_ORIGINS: '*' } });
    try {
      for (const p of ['/', '/login', '/models']) {
        const pre = await fetch(`${admin.url}${p}`, { method: 'OPTIONS', headers: { origin: 'http://app.example:5173', 'access-control-request-method': 'POST' } });
        assert.equal(pre.headers.get('access-control-allow-origin'), null, p);
        const get = await fetch(`${admin.url}${p}`, { headers: { origin: 'http://app.example:5173' }, redirect: 'manual' });
        assert.equal(get.headers.get('access-control-allow-origin'), null, p);
      }
    } finally {
      await admin.close();
    }
  });

  test('CORS is off by default', async () => {
    const plain = await startGateway();
    try {
      const r = await fetch(`${plain.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'http://app.example:5173', 'access-control-request-method': 'POST' } });
      assert.equal(r.headers.get('access-control-allow-origin'), null);
    } finally {
      await plain.close();
    }
  });

  test('a bad CORS_ALLOWED_ORIGINS entry stops start-up naming it', () => {
    assert.throws(() => loadConfig({ CORS_ALLOWED_ORIGINS: 'app.example/path' }), /CORS_ALLOWED_ORIGINS/);
  });
});
