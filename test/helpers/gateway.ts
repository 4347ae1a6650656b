// Starts the real Switchyard proxy on an ephemeral loopback port with a temp data dir, for tests.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { loadConfig, type ModelSpecInput } from '../../server/config.ts';
import { buildServices, type Services } from '../../server/services.ts';
import type { SqliteStore } from '../../server/store/sqlite.ts';
import { createApp } from '../../server/app.ts';
import { silentLogger } from '../../server/logger.ts';
import type { Router } from '../../router/types.ts';
import { after, before, beforeEach } from 'node:test';
import { startOpenAIStandIn } from '../standins/openai.ts';
import { startAnthropicStandIn } from '../standins/anthropic.ts';
import { startGeminiStandIn } from '../standins/gemini.ts';
import { startOllamaStandIn } from '../standins/ollama.ts';
import type { StandIn } from '../standins/common.ts';

export interface TestGateway {
  url: string;
  /** A test gateway stores in SQLite in its temp dir, so tests may look at the rows with raw SQL (not with DATABASE_URL). */
  services: Services & { store: SqliteStore };
  dataDir: string;
  /** Stop the server, flush and close the store, remove the temp dir. */
  close(): Promise<void>;
  /** Stop the server and store but keep the data dir (to inspect stored rows). */
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  models?: ModelSpecInput[];
  /** More config-file fields beside `models` (e.g. top-level `aliases`). */
  file?: Record<string, unknown>;
  env?: Record<string, string>;
  router?: Router;
  rng?: () => number;
  dataDir?: string;
}

/** Fast-failing defaults so fault tests finish quickly. */
export const fastEnv: Record<string, string> = {
  UPSTREAM_TIMEOUT_MS: '1500',
  REQUEST_TIMEOUT_MS: '10000',
  RETRY_BASE_MS: '10',
  RETRY_MAX_MS: '100',
  MAX_RETRIES: '2',
  BREAKER_FAILURES: '3',
  BREAKER_COOLDOWN_MS: '300',
  WRITE_FLUSH_MS: '10',
  JUDGE_ENABLED: '0',
  ROUTER_EXPLORATION: '0',
};

export async function startGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'switchyard-test-')));
  let configPath: string | undefined;
  if (opts.models) {
    configPath = path.join(dataDir, 'models.json');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(configPath, JSON.stringify({ ...opts.file, models: opts.models }));
  }
  const env: Record<string, string> = { ...fastEnv, SWITCHYARD_DATA_DIR: dataDir, ...(configPath ? { SWITCHYARD_CONFIG: configPath } : { SWITCHYARD_DEMO: '1' }), ...opts.env };
  const config = loadConfig(env, { cwd: dataDir });
  const services = await buildServices(config, { logger: silentLogger(), router: opts.router, rng: opts.rng, learnedPollMs: 0 });
  if (services.store.engine !== 'sqlite' && !opts.env?.DATABASE_URL) throw new Error('test gateways store in SQLite unless given DATABASE_URL');
  const app = createApp(services);
  const server: Server = await new Promise((resolve) => {
    const s = createServer(app).listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await services.close();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    services: services as Services & { store: SqliteStore },
    dataDir,
    stop,
    close: async () => {
      await stop();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** A router that always proposes the same ordered candidates (tests of dispatch alone). */
export function fixedRouter(order: string[]): Router {
  return {
    async route(req) {
      const candidates = req.explicitModel ? [req.explicitModel] : order;
      return {
        method: req.explicitModel ? 'explicit' : 'weights',
        selected: candidates[0],
        candidates: candidates.map((model, i) => ({ model, score: 1 - i / 10 })),
        confidence: 1,
        reasoning: 'fixed test order',
        features: { language: 'en', mixed: false, domain: 'chat', complexity: 'simple', lengthBucket: 'xs', chars: req.text.length, hasCode: false, depth: req.depth },
        timings: {},
      };
    },
  };
}

/** Models pointing at stand-ins, with ids the tests can name. */
export function model(id: string, provider: 'openai' | 'anthropic' | 'ollama' | 'gemini' | 'demo', baseUrl: string, extra: Partial<ModelSpecInput> = {}): ModelSpecInput {
  return { id, provider, baseUrl, upstreamModel: `${id}-upstream`, apiKeyEnv: provider === 'ollama' || provider === 'demo' ? undefined : 'TEST_KEY', ...extra };
}

export interface AlphaBeta {
  /** `alpha`, OpenAI wire format: tried first. */
  a: StandIn;
  /** `beta`, Anthropic wire format: the fallback. */
  b: StandIn;
  gw: TestGateway;
}

/**
 * The fallback pair most dispatch and reliability tests use: two stand-in upstreams behind one
 * gateway whose router always tries alpha, then beta. Registers before/after hooks (and a
 * beforeEach that resets both stand-ins) in the calling describe, and hands the three to `ready`.
 */
export function alphaBeta(env: Record<string, string>, ready: (t: AlphaBeta) => void, betaExtra: Partial<ModelSpecInput> = {}): void {
  let t: AlphaBeta;
  before(async () => {
    const a = await startOpenAIStandIn();
    const b = await startAnthropicStandIn();
    const gw = await startGateway({
      models: [model('alpha', 'openai', a.url), model('beta', 'anthropic', b.url, betaExtra)],
      env,
      router: fixedRouter(['alpha', 'beta']),
    });
    t = { a, b, gw };
    ready(t);
  });
  after(async () => {
    await t.gw.close();
    await Promise.all([t.a.close(), t.b.close()]);
  });
  beforeEach(() => {
    t.a.reset();
    t.b.reset();
  });
}

export type StandInKind = 'openai' | 'anthropic' | 'gemini' | 'ollama';

const starters: Record<StandInKind, () => Promise<StandIn>> = {
  openai: () => startOpenAIStandIn(),
  anthropic: () => startAnthropicStandIn(),
  gemini: () => startGeminiStandIn(),
  ollama: () => startOllamaStandIn(),
};

/**
 * Stand-in upstreams of the given kinds behind one gateway, for the calling describe: started
 * before its tests (the gateway from `options(urls)`), closed after, and before each test the
 * stand-ins reset and every breaker closed. The fields are filled in by the time tests run.
 */
export function gatewayOver<K extends StandInKind>(kinds: readonly K[], options: (urls: Record<K, string>) => TestGatewayOptions): { up: Record<K, StandIn>; gw: TestGateway } {
  const t = { up: {} as Record<K, StandIn>, gw: undefined as unknown as TestGateway };
  before(async () => {
    for (const k of kinds) t.up[k] = await starters[k]();
    t.gw = await startGateway(options(Object.fromEntries(kinds.map((k) => [k, t.up[k].url])) as Record<K, string>));
  });
  after(async () => {
    await t.gw.close();
    await Promise.all(kinds.map((k) => t.up[k].close()));
  });
  beforeEach(() => {
    for (const k of kinds) t.up[k].reset();
    for (const rt of t.gw.services.registry.all()) rt.breaker.onSuccess();
  });
  return t;
}
