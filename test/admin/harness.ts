// Starts real services (demo models, temp SQLite) with the admin app on an ephemeral loopback port,
// and a tiny cookie-keeping HTTP client that logs in and submits forms with the CSRF token.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../server/config.ts';
import { buildServices, type Services } from '../../server/services.ts';
import { silentLogger } from '../../server/logger.ts';
import { fastEnv } from '../helpers/gateway.ts';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdminApp, type AdminContext, type AdminOptions } from '../../server/admin/index.ts';

export const FAKE_SECRET = 'sk-fake-9f8e7d6c5b4a3210-NEVER-SHOW';
export const ADMIN_TOKEN = 'admin-token-for-tests-7c1d';

export interface AdminTestEnv {
  url: string;
  services: Services;
  ctx: AdminContext;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * Demo models plus one disabled OpenAI-style model whose API key (FAKE_SECRET) is configured, so
 * config.secrets holds a value that must never appear on any page.
 */
export async function buildTestServices(opts: { token?: string | null; env?: Record<string, string> } = {}): Promise<{ services: Services; dataDir: string }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-admin-'));
  const configPath = path.join(dataDir, 'switchyard.config.json');
  await writeFile(configPath, JSON.stringify({
    includeDefaultModels: true,
    models: [{ id: 'fake-remote', provider: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKeyEnv: 'FAKE_PROVIDER_KEY', enabled: false }],
  }));
  const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
  const env: Record<string, string> = {
    ...fastEnv,
    SWITCHYARD_DATA_DIR: dataDir,
    SWITCHYARD_DEMO: '1',
    SWITCHYARD_CONFIG: configPath,
    FAKE_PROVIDER_KEY: FAKE_SECRET,
    ...(token ? { ADMIN_TOKEN: token } : {}),
    ...opts.env,
  };
  const config = loadConfig(env, { cwd: dataDir });
  const services = await buildServices(config, { logger: silentLogger(), learnedPollMs: 0 });
  return { services, dataDir };
}

export async function startAdminEnv(opts: { token?: string | null; env?: Record<string, string>; admin?: AdminOptions } = {}): Promise<AdminTestEnv> {
  const { services, dataDir } = await buildTestServices(opts);
  const { app, ctx } = createAdminApp(services, opts.admin);
  const server: Server = await new Promise((resolve) => {
    const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    services,
    ctx,
    dataDir,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await ctx.runner.idle();
      await services.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Reply {
  status: number;
  text: string;
  headers: Headers;
}

/** A browser-like client: keeps the session cookie, reads the CSRF token from each page. */
export class AdminClient {
  cookie = '';
  csrf = '';

  constructor(readonly base: string) {}

  private remember(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [name, value] = pair!.split('=');
      if (name === 'sy_admin') this.cookie = value ? `sy_admin=${value}` : '';
    }
  }

  async get(p: string, headers: Record<string, string> = {}): Promise<Reply> {
    const res = await fetch(this.base + p, { headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...headers }, redirect: 'manual' });
    this.remember(res);
    const text = await res.text();
    const m = /<meta name="csrf-token" content="([^"]+)">/.exec(text);
    if (m) this.csrf = m[1]!;
    return { status: res.status, text, headers: res.headers };
  }

  /** POST a form; the CSRF token is added unless `csrf: false`. */
  async post(p: string, fields: Record<string, string>, opts: { csrf?: boolean | string } = {}): Promise<Reply> {
    const body = new URLSearchParams(fields);
    if (opts.csrf !== false) body.set('_csrf', typeof opts.csrf === 'string' ? opts.csrf : this.csrf);
    const res = await fetch(this.base + p, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(this.cookie ? { cookie: this.cookie } : {}) },
      body,
      redirect: 'manual',
    });
    this.remember(res);
    return { status: res.status, text: await res.text(), headers: res.headers };
  }

  async login(token = ADMIN_TOKEN): Promise<Reply> {
    await this.get('/login');
    const r = await this.post('/login', { token, next: '/' });
    await this.get('/');
    return r;
  }
}
