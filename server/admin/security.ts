// Admin page security: in-memory sessions behind an httpOnly SameSite=Strict cookie (Secure over
// HTTPS), a per-session CSRF token checked on every POST, the admin-token check, strict headers.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { isHttps } from '../http/server.ts';

export const SESSION_COOKIE = 'sy_admin';
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

export interface AdminSession {
  id: string;
  csrf: string;
  authenticated: boolean;
  createdAt: number;
  lastSeen: number;
}

export interface SessionOptions {
  /** Idle time after which a session is forgotten. Default 12 h. */
  idleMs?: number;
  /** Most sessions kept; the least recently used is dropped beyond it. Default 1000. */
  maxSessions?: number;
  now?: () => number;
}

const randomId = (): string => randomBytes(32).toString('base64url');

/** Compare two secrets in constant time whatever their lengths (hash both first). */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

/** Sessions live in memory: a restart logs everyone out, which is fine for an operator page. */
export class SessionStore {
  private readonly sessions = new Map<string, AdminSession>();
  private readonly idleMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(opts: SessionOptions = {}) {
    this.idleMs = opts.idleMs ?? 12 * 3600_000;
    this.maxSessions = opts.maxSessions ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  create(authenticated: boolean): AdminSession {
    const t = this.now();
    const s: AdminSession = { id: randomId(), csrf: randomId(), authenticated, createdAt: t, lastSeen: t };
    this.sessions.set(s.id, s);
    while (this.sessions.size > this.maxSessions) this.evictOne();
    return s;
  }

  get(id: string | undefined): AdminSession | null {
    if (!id) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    const t = this.now();
    if (t - s.lastSeen > this.idleMs) {
      this.sessions.delete(id);
      return null;
    }
    s.lastSeen = t;
    this.sessions.delete(id);
    this.sessions.set(id, s);
    return s;
  }

  /**
   * Map order is insertion order and get() re-inserts, so the first entry is the least recently
   * used. Pre-login sessions go first: anonymous visitors cannot push a logged-in operator out.
   */
  private evictOne(): void {
    for (const [id, s] of this.sessions) {
      if (!s.authenticated) {
        this.sessions.delete(id);
        return;
      }
    }
    this.sessions.delete(this.sessions.keys().next().value!);
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  size(): number {
    return this.sessions.size;
  }
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    if (!name || name in out) continue;
    try {
      out[name] = decodeURIComponent(raw);
    } catch {
      out[name] = raw;
    }
  }
  return out;
}

/** `secure`: the page was reached over HTTPS (isHttps), so the browser must never send the cookie in clear. */
export function setSessionCookie(res: Response, session: AdminSession, secure: boolean): void {
  res.append('set-cookie', `${SESSION_COOKIE}=${session.id}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`);
}

export function clearSessionCookie(res: Response, secure: boolean): void {
  res.append('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`);
}

/** The session attached by `sessions()`; every admin route runs after it. */
export function sessionOf(res: Response): AdminSession {
  const s = (res.locals as { session?: AdminSession }).session;
  if (!s) throw new Error('admin session middleware did not run');
  return s;
}

export function securityHeaders(): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('content-security-policy', CSP);
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('cross-origin-opener-policy', 'same-origin');
    next();
  };
}

/**
 * Attach a session to every request, creating one (and its cookie) when there is none. Without
 * an admin token every session counts as logged in: the page is then reachable on loopback only.
 */
export function sessions(store: SessionStore, tokenRequired: boolean, trustProxy = false): RequestHandler {
  return (req, res, next) => {
    let s = store.get(parseCookies(req.get('cookie'))[SESSION_COOKIE]);
    if (!s) {
      s = store.create(!tokenRequired);
      setSessionCookie(res, s, isHttps(req, trustProxy));
    }
    res.locals.session = s;
    next();
  };
}

const wantsJson = (req: Request): boolean => req.path.startsWith('/api/') || (req.get('accept') ?? '').startsWith('application/json');

/** Logged-in sessions only; pages redirect to the login form, JSON endpoints answer 401. */
export function requireLogin(): RequestHandler {
  return (req, res, next) => {
    if (sessionOf(res).authenticated) return next();
    if (wantsJson(req) || req.method !== 'GET') {
      res.status(401).json({ error: { message: 'log in to the admin page first', type: 'authentication_error' } });
      return;
    }
    const nextPath = safeLocalPath(req.originalUrl) ?? '/';
    res.redirect(303, `/login?next=${encodeURIComponent(nextPath)}`);
  };
}

/** Every POST carries the session's CSRF token as a form field or header; anything else is 403. */
export function requireCsrf(): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    const body = req.body as Record<string, unknown> | undefined;
    const fromBody = body && typeof body[CSRF_FIELD] === 'string' ? (body[CSRF_FIELD] as string) : undefined;
    const given = fromBody ?? req.get(CSRF_HEADER);
    if (given && safeEqual(given, sessionOf(res).csrf)) return next();
    res.status(403);
    if (wantsJson(req)) res.json({ error: { message: 'missing or invalid CSRF token; reload the page', type: 'invalid_request_error' } });
    else res.type('text/plain').send('Forbidden: missing or invalid CSRF token. Reload the page and try again.');
  };
}

/** A same-site path to go back to after a form, never another origin (`//host` or `/\host`). */
export function safeLocalPath(p: unknown): string | null {
  if (typeof p !== 'string' || p.length > 2000) return null;
  if (!p.startsWith('/') || p.startsWith('//') || p.startsWith('/\\')) return null;
  if (/[\u0000-\u001f]/.test(p)) return null;
  return p;
}
