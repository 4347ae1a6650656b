// The admin page: a separate Express app (own port) with server-rendered EJS pages for operators.
// createAdminApp builds it from services (tests run it on port 0); startAdmin listens and returns a handle.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type ErrorRequestHandler } from 'express';
import type { Services } from '../services.ts';
import { SessionStore, requireCsrf, requireLogin, securityHeaders, sessions } from './security.ts';
import { renderPage, secretValues, type PageContext } from './render.ts';
import { LearnerRunner, type LearnerJob } from './learner-runner.ts';
import { authRoutes } from './routes/auth.ts';
import { overviewRoutes } from './routes/overview.ts';
import { modelRoutes } from './routes/models.ts';
import { requestRoutes } from './routes/requests.ts';
import { insightRoutes } from './routes/insights.ts';
import { defaultLearnerJob } from './learner-job.ts';
import { AllowedHosts } from '../http/allowed-hosts.ts';
import { createHttpServer } from '../http/server.ts';
import { FailureLimiter } from '../http/failure-limit.ts';

export const VIEWS_DIR = fileURLToPath(new URL('../../views', import.meta.url));
const STATIC_DIR = path.join(VIEWS_DIR, 'static');

export interface AdminOptions {
  /** Port of the proxy, shown on the overview so operators know where clients connect. */
  proxyPort?: number;
  /** Form body limit (bytes). Default 1 MiB: prompts pasted into the test console. */
  bodyLimitBytes?: number;
  /** The learner behind "run now"; default: learner/job.ts run in-process. null hides the button. */
  learnerJob?: LearnerJob | null;
  sessionIdleMs?: number;
  now?: () => number;
}

export interface AdminContext extends PageContext {
  runner: LearnerRunner;
  sessions: SessionStore;
  /** Failed logins per client address (AUTH_FAILURE_LIMIT within AUTH_FAILURE_WINDOW_MS). */
  loginFailures: FailureLimiter;
  proxyPort: number | null;
  now: () => number;
}

export interface AdminApp {
  app: express.Express;
  ctx: AdminContext;
}

export function createAdminApp(services: Services, opts: AdminOptions = {}): AdminApp {
  const now = opts.now ?? Date.now;
  const unprotected = !services.config.adminToken;
  const job = opts.learnerJob === undefined ? defaultLearnerJob(services) : opts.learnerJob;
  const ctx: AdminContext = {
    services,
    unprotected,
    secrets: secretValues(services),
    runner: new LearnerRunner(job, () => services.reloadLearned(), services.logger, now),
    sessions: new SessionStore({ idleMs: opts.sessionIdleMs, now }),
    loginFailures: new FailureLimiter({ ...services.config.authFailures, now }),
    proxyPort: opts.proxyPort ?? null,
    now,
  };
  const limit = opts.bodyLimitBytes ?? 1024 * 1024;

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.set('view engine', 'ejs');
  app.set('views', VIEWS_DIR);

  // Before anything else, static files included: a rebinding page must read nothing.
  const hosts = new AllowedHosts(services.config.allowedHosts);
  app.use((req, res, next) => {
    if (hosts.allows(req.headers.host)) return next();
    res.status(403).set('connection', 'close').type('text/plain').send(hosts.refusal(req.headers.host));
  });
  app.use(securityHeaders());
  app.use('/static', express.static(STATIC_DIR, { index: false, maxAge: '5m', fallthrough: false }));
  app.use(express.urlencoded({ extended: false, limit, parameterLimit: 2000 }));
  app.use(sessions(ctx.sessions, !unprotected, services.config.trustProxy));
  app.use(requireCsrf());
  app.use(authRoutes(ctx));
  app.use(requireLogin());
  app.use(overviewRoutes(ctx));
  app.use(modelRoutes(ctx));
  app.use(requestRoutes(ctx));
  app.use(insightRoutes(ctx));

  app.use((req, res) => renderPage(ctx, req, res, 'error', { title: 'Not found', message: `No admin page at ${req.path}` }, 404));
  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    const e = err as { type?: string; status?: number; message?: string };
    const status = e.type === 'entity.too.large' ? 413 : e.status && e.status >= 400 && e.status < 500 ? e.status : 500;
    if (status === 500) services.logger.error('admin request failed', { path: req.path, err: e.message ?? String(err) });
    const message = status === 413 ? 'The form was larger than the admin body limit.'
      : status === 404 ? 'Not found.'
      : status === 500 ? 'Internal error; see the server log.' : 'The request could not be read.';
    if (res.headersSent) return;
    if (res.locals.session) renderPage(ctx, req, res, 'error', { title: 'Error', message }, status);
    else res.status(status).type('text/plain').send(message);
  };
  app.use(onError);
  return { app, ctx };
}

export interface AdminHandle {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface StartAdminOptions extends AdminOptions {
  port: number;
  /** Listen address when ADMIN_TOKEN is set (default config.host); without a token always 127.0.0.1. */
  host?: string;
}

export async function startAdmin(services: Services, opts: StartAdminOptions): Promise<AdminHandle> {
  const { app, ctx } = createAdminApp(services, opts);
  // An unprotected admin page must never be reachable from another machine.
  const host = ctx.unprotected ? '127.0.0.1' : opts.host ?? services.config.host;
  const server: Server = await new Promise((resolve, reject) => {
    const srv = createHttpServer(app, services.config.http).listen(opts.port, host, () => resolve(srv));
    srv.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${port}`;
  if (ctx.unprotected) services.logger.warn('admin page has no ADMIN_TOKEN: listening on 127.0.0.1 only, without login', { url });
  return {
    url,
    port,
    close: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await closed;
      await ctx.runner.idle();
    },
  };
}
