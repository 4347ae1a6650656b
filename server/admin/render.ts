// Renders admin templates with the locals every page shares (nav, CSRF token, notices, formatters)
// and scrubs any configured secret value from the finished HTML/JSON as a last line of defence.
import type { Request, Response } from 'express';
import type { Services } from '../services.ts';
import { CSRF_FIELD, sessionOf } from './security.ts';
import { redisUrlSecrets } from '../redis/link.ts';
import { allSecretForms } from '../secrets.ts';

export const NAV = [
  { path: '/', label: 'Overview' },
  { path: '/models', label: 'Models' },
  { path: '/console', label: 'Test console' },
  { path: '/decisions', label: 'Decisions' },
  { path: '/rate', label: 'Rate answers' },
  { path: '/performance', label: 'Performance' },
  { path: '/learning', label: 'Learning' },
  { path: '/logs', label: 'Logs' },
] as const;

/** Values that must never leave the process: API keys, the admin token, client keys, the Redis password. */
export function secretValues(s: Services): string[] {
  const values = [...Object.values(s.config.secrets), ...(s.config.adminToken ? [s.config.adminToken] : []), ...s.config.proxyApiKeys, ...redisUrlSecrets(s.config.redisUrl)];
  const escapeHtml = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;');
  // Also the forms a value takes once escaped for HTML or JSON, so scrubbing still finds it.
  // Each value's base64 and URL-encoded copies (secretForms) are looked for the same way.
  const forms = allSecretForms(values).flatMap((v) => [v, escapeHtml(v), JSON.stringify(v).slice(1, -1)]);
  return [...new Set(forms)].sort((a, b) => b.length - a.length);
}

export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const v of secrets) if (out.includes(v)) out = out.split(v).join('[REDACTED]');
  return out;
}

/** Formatters handed to every template; pure, so templates stay free of logic. */
export const fmt = {
  time(ms: number | null | undefined): string {
    if (ms == null || !Number.isFinite(ms)) return '—';
    return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
  },
  ms(v: number | null | undefined): string {
    if (v == null || !Number.isFinite(v)) return '—';
    return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
  },
  pct(v: number | null | undefined): string {
    return v == null || !Number.isFinite(v) ? '—' : `${(v * 100).toFixed(1)}%`;
  },
  usd(v: number | null | undefined): string {
    if (v == null || !Number.isFinite(v)) return '—';
    return v === 0 ? '$0' : v < 0.01 ? `$${v.toFixed(5)}` : `$${v.toFixed(2)}`;
  },
  num(v: number | null | undefined, digits = 2): string {
    return v == null || !Number.isFinite(v) ? '—' : Number(v.toFixed(digits)).toString();
  },
  duration(ms: number): string {
    const s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
  },
  clip(text: string | null | undefined, max = 160): string {
    if (!text) return '';
    const one = text.replace(/\s+/g, ' ').trim();
    return one.length > max ? `${one.slice(0, max - 1)}…` : one;
  },
  json(v: unknown): string {
    return JSON.stringify(v, null, 2) ?? '';
  },
  stars(rating: number | null | undefined): string {
    if (rating == null) return '';
    const r = Math.round(rating);
    return '★'.repeat(r) + '☆'.repeat(Math.max(0, 5 - r));
  },
};

export interface PageContext {
  services: Services;
  /** True when no ADMIN_TOKEN is set (loopback only, no login). */
  unprotected: boolean;
  secrets: readonly string[];
}

/** Render `view` with the shared locals and send it (status 200 unless given). */
export function renderPage(ctx: PageContext, req: Request, res: Response, view: string, locals: Record<string, unknown>, status = 200): void {
  const session = sessionOf(res);
  const all = {
    ...locals,
    title: locals.title ?? view,
    nav: NAV,
    currentPath: req.path,
    csrfToken: session.csrf,
    csrfField: CSRF_FIELD,
    loggedIn: session.authenticated,
    tokenRequired: !ctx.unprotected,
    unprotected: ctx.unprotected,
    demoMode: ctx.services.config.demoMode,
    version: ctx.services.version,
    fmt,
  };
  res.render(view, all, (err: Error | null, html?: string) => {
    if (err) {
      ctx.services.logger.error('admin page failed to render', { view, err: err.message });
      if (!res.headersSent) res.status(500).type('text/plain').send('The admin page failed to render; see the server log.');
      return;
    }
    res.status(status).type('html').setHeader('cache-control', 'no-store');
    res.send(scrub(html ?? '', ctx.secrets));
  });
}

export function sendJson(ctx: PageContext, res: Response, body: unknown, status = 200): void {
  res.status(status).type('application/json').setHeader('cache-control', 'no-store');
  res.send(scrub(JSON.stringify(body), ctx.secrets));
}
