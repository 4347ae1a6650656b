// The shared upstream plumbing: error message extraction for every provider shape, key
// redaction, classification of thrown errors, parameter tables, and the provider registry.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamError } from '../../server/errors.ts';
import { modelSpecSchema } from '../../server/config.ts';
import type { ModelSpec } from '../../server/config.ts';
import {
  abortError, extractErrorMessage, joinUrl, mapFinish, mapParams, redact, toUpstreamError,
} from '../../server/providers/http.ts';
import { createProvider, endpointFor } from '../../server/providers/index.ts';

describe('extractErrorMessage', () => {
  const cases: { name: string; body: unknown; expected: string | undefined }[] = [
    { name: 'OpenAI', body: { error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } }, expected: 'requests: Rate limit reached' },
    { name: 'Anthropic', body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, expected: 'overloaded_error: Overloaded' },
    { name: 'Gemini', body: { error: { code: 429, message: 'Resource has been exhausted', status: 'RESOURCE_EXHAUSTED' } }, expected: 'RESOURCE_EXHAUSTED: Resource has been exhausted' },
    { name: 'Gemini wrapped in an array', body: [{ error: { code: 400, message: 'bad', status: 'INVALID_ARGUMENT' } }], expected: 'INVALID_ARGUMENT: bad' },
    { name: 'Ollama', body: { error: 'model "x" not found, try pulling it first' }, expected: 'model "x" not found, try pulling it first' },
    { name: 'a bare message', body: { message: 'Forbidden' }, expected: 'Forbidden' },
    { name: 'nothing useful', body: { status: 'fail' }, expected: undefined },
    { name: 'not an object', body: 'oops', expected: undefined },
  ];
  for (const c of cases) {
    test(`reads the ${c.name} error shape`, () => assert.equal(extractErrorMessage(c.body), c.expected));
  }

  test('very long upstream messages are cut to 500 characters', () => {
    assert.equal(extractErrorMessage({ error: 'x'.repeat(2000) })?.length, 500);
  });
});

describe('redact', () => {
  test('removes the configured key and anything shaped like a provider key', () => {
    const out = redact('bad key my-custom-key-123 and sk-abcdef123456 and sk-ant-api03-xyzxyz and AIzaSyA1234567890abc', 'my-custom-key-123');
    assert.ok(!/my-custom-key-123|sk-abcdef123456|sk-ant-api03|AIzaSyA1234567890abc/.test(out), out);
    assert.match(out, /\[redacted\]/);
  });
});

describe('toUpstreamError', () => {
  const live = new AbortController().signal;

  test('keeps an UpstreamError as it is', () => {
    const original = new UpstreamError('openai', 'http', 'x', 500);
    assert.equal(toUpstreamError('openai', original, live), original);
  });

  test('an abort by a timeout signal is timeout, any other abort is aborted', () => {
    const timedOut = AbortSignal.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    assert.equal(toUpstreamError('openai', new Error('aborted'), timedOut).code, 'timeout');
    const timeoutError = Object.assign(new Error('deadline'), { name: 'TimeoutError' });
    assert.equal(toUpstreamError('openai', new Error('aborted'), AbortSignal.abort(timeoutError)).code, 'timeout');
    assert.equal(toUpstreamError('openai', new Error('aborted'), AbortSignal.abort()).code, 'aborted');
    assert.equal(abortError('openai', AbortSignal.abort('client went away')).code, 'aborted');
  });

  const codes: { code: string; expected: UpstreamError['code'] }[] = [
    { code: 'ECONNREFUSED', expected: 'network' },
    { code: 'ECONNRESET', expected: 'network' },
    { code: 'UND_ERR_SOCKET', expected: 'network' },
    { code: 'UND_ERR_CLOSED', expected: 'network' },
    { code: 'ENOTFOUND', expected: 'network' },
    { code: 'UND_ERR_HEADERS_TIMEOUT', expected: 'timeout' },
    { code: 'UND_ERR_BODY_TIMEOUT', expected: 'timeout' },
    { code: 'UND_ERR_CONNECT_TIMEOUT', expected: 'timeout' },
  ];
  for (const c of codes) {
    test(`${c.code} maps to ${c.expected}, retryable`, () => {
      const err = toUpstreamError('anthropic', Object.assign(new Error('boom'), { code: c.code }), live);
      assert.equal(err.code, c.expected);
      assert.equal(err.retryable, true);
      assert.equal(err.provider, 'anthropic');
    });
  }

  test('an error without a code is bad_response and never retried', () => {
    const err = toUpstreamError('gemini', new TypeError('Cannot read properties of undefined'), live);
    assert.equal(err.code, 'bad_response');
    assert.equal(err.retryable, false);
  });
});

describe('parameter and finish tables', () => {
  test('mapParams copies only the fields that are set, under their wire names', () => {
    assert.deepEqual(
      mapParams({ messages: [], temperature: 0, maxTokens: 5, stop: [] }, { temperature: 'temperature', maxTokens: 'max_tokens', topP: 'top_p', stop: 'stop' }),
      { temperature: 0, max_tokens: 5 },
    );
  });

  test('mapFinish falls back to other for unknown or missing values', () => {
    const table = { stop: 'stop' as const };
    assert.equal(mapFinish(table, 'stop'), 'stop');
    assert.equal(mapFinish(table, 'weird'), 'other');
    assert.equal(mapFinish(table, null), 'other');
    assert.equal(mapFinish(table, 'toString'), 'other');
  });

  test('joinUrl joins without doubled or missing slashes', () => {
    assert.equal(joinUrl('http://h/v1/', '/models'), 'http://h/v1/models');
    assert.equal(joinUrl('http://h/v1', 'models'), 'http://h/v1/models');
  });
});

describe('provider registry', () => {
  test('createProvider returns one shared adapter per kind', () => {
    for (const kind of ['openai', 'anthropic', 'ollama', 'gemini', 'demo'] as const) {
      assert.equal(createProvider(kind).kind, kind);
      assert.equal(createProvider(kind), createProvider(kind));
    }
  });

  test('endpointFor takes the key from the secrets map by the spec\'s env name', () => {
    const spec: ModelSpec = { ...modelSpecSchema.parse({ id: 'gpt', provider: 'openai', apiKeyEnv: 'OPENAI_API_KEY' }), baseUrl: 'https://api.openai.com/v1', upstreamModel: 'gpt-4o' };
    assert.deepEqual(endpointFor(spec, { OPENAI_API_KEY: 'sk-1' }), { baseUrl: 'https://api.openai.com/v1', upstreamModel: 'gpt-4o', apiKey: 'sk-1' });
    assert.deepEqual(endpointFor(spec, {}), { baseUrl: 'https://api.openai.com/v1', upstreamModel: 'gpt-4o' });
    const local: ModelSpec = { ...modelSpecSchema.parse({ id: 'ollama/llama3', provider: 'ollama' }), baseUrl: 'http://127.0.0.1:11434', upstreamModel: 'llama3' };
    assert.equal(endpointFor(local, { OPENAI_API_KEY: 'sk-1' }).apiKey, undefined);
  });
});
