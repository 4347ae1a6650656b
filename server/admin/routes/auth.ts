// Login and logout. The login form carries the pre-login session's CSRF token; a correct admin
// token replaces that session with a fresh logged-in one (no session fixation).
import { Router as ExpressRouter } from 'express';
import type { AdminContext } from '../index.ts';
import { renderPage } from '../render.ts';
import { clientAddress, isHttps } from '../../http/server.ts';
import { clearSessionCookie, safeEqual, safeLocalPath, sessionOf, setSessionCookie } from '../security.ts';

export function authRoutes(ctx: AdminContext) {
  const r = ExpressRouter();
  const token = ctx.services.config.adminToken;

  r.get('/login', (req, res) => {
    const next = safeLocalPath(req.query.next) ?? '/';
    if (sessionOf(res).authenticated) return res.redirect(303, next);
    renderPage(ctx, req, res, 'login', { title: 'Log in', next, error: null });
  });

  r.post('/login', (req, res) => {
    const body = req.body as Record<string, unknown>;
    const next = safeLocalPath(body.next) ?? '/';
    if (!token) return res.redirect(303, next);
    const { trustProxy } = ctx.services.config;
    const who = clientAddress(req, trustProxy);
    const waitS = ctx.loginFailures.retryAfterS(who);
    if (waitS > 0) {
      res.setHeader('retry-after', String(waitS));
      return renderPage(ctx, req, res, 'login', { title: 'Log in', next, error: `Too many failed attempts; try again in ${waitS} s.` }, 429);
    }
    const given = typeof body.token === 'string' ? body.token : '';
    if (!given || !safeEqual(given, token)) {
      ctx.loginFailures.fail(who);
      ctx.services.logger.warn('admin login refused', { ip: who });
      return renderPage(ctx, req, res, 'login', { title: 'Log in', next, error: 'Wrong admin token.' }, 401);
    }
    ctx.loginFailures.clear(who);
    ctx.sessions.destroy(sessionOf(res).id);
    const fresh = ctx.sessions.create(true);
    res.locals.session = fresh;
    setSessionCookie(res, fresh, isHttps(req, trustProxy));
    ctx.services.logger.info('admin login', { ip: who });
    res.redirect(303, next);
  });

  r.post('/logout', (req, res) => {
    ctx.sessions.destroy(sessionOf(res).id);
    clearSessionCookie(res, isHttps(req, ctx.services.config.trustProxy));
    res.redirect(303, token ? '/login' : '/');
  });

  return r;
}
