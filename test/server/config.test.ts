// Config: env defaults, models derived from keys, demo mode, config files, and errors naming fields.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, ConfigError } from '../../server/config.ts';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'switchyard-config-'));

describe('loadConfig', () => {
  test('with no keys and no Ollama it is demo mode with the four demo models and default ports', () => {
    const c = loadConfig({}, { cwd: tmp() });
    assert.equal(c.demoMode, true);
    assert.deepEqual(c.models.map((m) => m.id), ['demo-fast', 'demo-coder', 'demo-polyglot', 'demo-large']);
    assert.equal(c.proxyPort, 3100);
    assert.equal(c.adminPort, 3200);
    assert.ok(c.dbPath.endsWith(path.join('data', 'switchyard.db')));
  });

  test('API keys add their providers, keep secrets out of model specs, and leave demo mode', () => {
    const c = loadConfig({ CLAUDE_API_KEY: 'sk-ant-secret', OPENAI_API_KEY: 'sk-openai-secret', CURSOR_API_KEY: 'cur', GEMINI_API_KEY: 'gem', OLLAMA_HOST: '127.0.0.1:11434', OLLAMA_MODELS: 'llama3,qwen2' }, { cwd: tmp() });
    assert.equal(c.demoMode, false);
    const ids = c.models.map((m) => m.id);
    for (const id of ['claude-sonnet', 'claude-haiku', 'gpt-4o', 'gpt-4o-mini', 'cursor', 'gemini-flash', 'ollama/llama3', 'ollama/qwen2']) assert.ok(ids.includes(id), id);
    assert.equal(c.models.find((m) => m.id === 'ollama/llama3')!.baseUrl, 'http://127.0.0.1:11434');
    assert.equal(c.secrets.CLAUDE_API_KEY, 'sk-ant-secret');
    assert.doesNotMatch(JSON.stringify(c.models), /secret/);
    assert.equal(c.routing.ollamaHost, 'http://127.0.0.1:11434');
  });

  test('ports and limits come from the env names users know', () => {
    const c = loadConfig({ CLAUDE_PROXY_PORT: '4100', ADMIN_DASHBOARD_PORT: '4200', BODY_LIMIT_BYTES: '4096', MAX_RETRIES: '5' }, { cwd: tmp() });
    assert.equal(c.proxyPort, 4100);
    assert.equal(c.adminPort, 4200);
    assert.equal(c.limits.bodyBytes, 4096);
    assert.equal(c.dispatch.maxRetries, 5);
  });

  test('a bad env value stops start-up naming the variable', () => {
    assert.throws(() => loadConfig({ CLAUDE_PROXY_PORT: 'http' }, { cwd: tmp() }), (e: unknown) => e instanceof ConfigError && /CLAUDE_PROXY_PORT/.test(e.message));
    assert.throws(() => loadConfig({ MAX_RETRIES: '99' }, { cwd: tmp() }), /MAX_RETRIES/);
  });

  test('SWITCHYARD_WORKERS: 1 by default, a number, or auto (one per core); anything else is refused', () => {
    assert.equal(loadConfig({}, { cwd: tmp() }).workers, 1);
    assert.equal(loadConfig({ SWITCHYARD_WORKERS: '3' }, { cwd: tmp() }).workers, 3);
    assert.equal(loadConfig({ SWITCHYARD_WORKERS: 'auto' }, { cwd: tmp() }).workers, os.availableParallelism());
    for (const bad of ['0', '1.5', 'many', '65']) {
      assert.throws(() => loadConfig({ SWITCHYARD_WORKERS: bad }, { cwd: tmp() }), (e: unknown) => e instanceof ConfigError && /SWITCHYARD_WORKERS/.test(e.message), bad);
    }
  });

  test('a config file lists models with defaults filled in', () => {
    const dir = tmp();
    const file = path.join(dir, 'models.json');
    writeFileSync(file, JSON.stringify({ models: [{ id: 'local', provider: 'ollama' }, { id: 'compat', provider: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKeyEnv: 'MY_KEY', weight: 2 }] }));
    const c = loadConfig({ SWITCHYARD_CONFIG: file, MY_KEY: 'k-123' }, { cwd: dir });
    assert.equal(c.demoMode, false);
    assert.deepEqual(c.models.map((m) => [m.id, m.baseUrl, m.upstreamModel, m.weight]), [
      ['local', 'http://127.0.0.1:11434', 'local', 1],
      ['compat', 'http://127.0.0.1:9/v1', 'compat', 2],
    ]);
    assert.equal(c.secrets.MY_KEY, 'k-123');
  });

  test('a bad config file names the field', () => {
    const dir = tmp();
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ models: [{ id: 'x', provider: 'openai', weight: -3 }] }));
    assert.throws(() => loadConfig({ SWITCHYARD_CONFIG: file }, { cwd: dir }), (e: unknown) => e instanceof ConfigError && /models\.0\.weight/.test(e.message));
    writeFileSync(file, JSON.stringify({ models: [{ id: 'x', provider: 'carrier-pigeon' }] }));
    assert.throws(() => loadConfig({ SWITCHYARD_CONFIG: file }, { cwd: dir }), /models\.0\.provider/);
    writeFileSync(file, JSON.stringify({ models: [{ id: 'x', provider: 'demo' }, { id: 'x', provider: 'demo' }] }));
    assert.throws(() => loadConfig({ SWITCHYARD_CONFIG: file }, { cwd: dir }), /"x" is listed twice/);
    writeFileSync(file, '{ not json');
    assert.throws(() => loadConfig({ SWITCHYARD_CONFIG: file }, { cwd: dir }), /Cannot read config file/);
  });
});
