// Capabilities per model (tools, vision, json, maxOutputTokens, contextWindow): a candidate lacking
// one the request needs is never chosen, and `_routing.excluded` says which and why.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import type { StandIn } from '../standins/common.ts';
import { gatewayOver, model, fixedRouter, postJson, type TestGateway } from '../helpers/gateway.ts';
import { loadConfig } from '../../server/config.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

describe('capabilities per model', () => {
  const t = gatewayOver(['openai', 'anthropic'], (url) => ({
    models: [
      model('small', 'openai', url.openai, { capabilities: { tools: false, vision: false, json: false, maxOutputTokens: 100, contextWindow: 200 } }),
      model('big', 'anthropic', url.anthropic, { upstreamModel: 'claude-sonnet-4-5', capabilities: { tools: true, vision: true, json: true, contextWindow: 200_000 } }),
    ],
    env: { TEST_KEY: 'test-key-abcdef' },
    router: fixedRouter(['small', 'big']),
  }));
  let oa: StandIn;
  let gw: TestGateway;
  before(() => {
    ({ up: { openai: oa }, gw } = t);
  });

  const chat = (extra: Record<string, unknown>, content: unknown = 'hi') => postJson(`${gw.url}/v1/chat/completions`, { model: 'auto', messages: [{ role: 'user', content }], ...extra });

  test('a plain request goes to the first candidate; nothing is excluded', async () => {
    const r = await chat({});
    assert.equal(r.body._actual_model_used, 'small');
    assert.equal(r.body._routing.excluded, undefined);
  });

  for (const [need, extra, content, field, lacks] of [
    ['tools', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] }, 'hi', 'tools', 'tools'],
    ['vision', {}, [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: PNG } }], 'image', 'vision'],
    ['json', { response_format: { type: 'json_object' } }, 'give json', 'response_format', 'json'],
    ['a longer answer', { max_tokens: 500 }, 'hi', 'max_tokens', 'maxOutputTokens 100'],
    ['a larger context', {}, 'word '.repeat(400), 'messages', 'contextWindow 200'],
  ] as const) {
    test(`a request needing ${need} skips the model without it and _routing says so`, async () => {
      const r = await chat(extra, content);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body._actual_model_used, 'big');
      assert.equal(r.body._routing.excluded.length, 1);
      assert.equal(r.body._routing.excluded[0].model, 'small');
      assert.equal(r.body._routing.excluded[0].cannot_carry, field);
      assert.match(r.body._routing.excluded[0].lacks, new RegExp(`^${lacks}`));
      assert.match(r.body._routing.reason, /skipped small \(lacks/);
      assert.equal(oa.requests.length, 0);
    });
  }

  test('a tool conversation (tool calls and results in history) needs tools too', async () => {
    const r = await postJson(`${gw.url}/v1/chat/completions`, {
      model: 'auto',
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
      ],
    });
    assert.equal(r.body._actual_model_used, 'big');
    assert.equal(r.body._routing.excluded[0].lacks, 'tools');
  });

  test('an explicit model lacking a capability is a 400 naming the model and the capability', async () => {
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'small', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_object' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'unsupported_parameter');
    assert.match(r.body.error.message, /'small' \(openai\) cannot take this request: it lacks the capability json/);
  });

  test('capabilities are validated at start-up; maxOutputTokens may sit in capabilities', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-caps-'));
    const file = (caps: unknown) => {
      const p = path.join(dir, `${Math.random()}.json`);
      writeFileSync(p, JSON.stringify({ models: [{ id: 'm', provider: 'openai', capabilities: caps }] }));
      return p;
    };
    assert.throws(() => loadConfig({ SWITCHYARD_CONFIG: file({ telepathy: true }) }), /capabilities/);
    assert.throws(() => loadConfig({ SWITCHYARD_CONFIG: file({ contextWindow: -1 }) }), /contextWindow/);
    const c = loadConfig({ SWITCHYARD_CONFIG: file({ maxOutputTokens: 1234 }) });
    assert.equal(c.models[0]!.maxOutputTokens, 1234);
  });
});
