// Express middleware factories: request ids, JSON bodies with clear 4xx errors, client API keys,
// per-key token-bucket rate limits, and the single error handler that speaks the OpenAI error shape.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { ApiError, asApiError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { FailureLimiter } from './failure-limit.ts';
import { clientAddress } from './server.ts';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    /** The client's own id for this request (its x-request-id), stored and echoed, never the key. */
    correlationId?: string;
    clientKey?: string;
    /** True when clientKey was checked against PROXY_API_KEYS. */
    clientKeyVerified?: boolean;
    /** True when the caller presented an admin credential (ADMIN_TOKEN or an ADMIN_API_KEYS key). */
    admin?: boolean;
    /** Counts the presented credential as a failed guess of the caller's address (set by clientAuth). */
    authFailed?: () => void;
    log: Logger;
  }
}

const SAFE_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The client's id for a request (`x-request-id`, or OpenAI's `x-client-request-id`) when it is
 * printable ASCII of at most 128 chars: stored beside the request and echoed back as
 * `x-client-request-id`. It is never the request's key: two clients may send the same one.
 */
export function correlationIdOf(headers: { [name: string]: string | string[] | undefined }): string | undefined {
  for (const name of ['x-request-id', 'x-client-request-id']) {
    const v = headers[name];
    if (typeof v === 'string' && SAFE_ID.test(v)) return v;
  }
  return undefined;
}

/**
 * A fresh request id, always minted here: `req_` + 12 hex digits of the time in ms + 20 random
 * hex digits. Time first, so stored rows land at the end of the id-keyed indexes instead of at
 * random places in them (twice the insert cost at 100k rows).
 */
export function newRequestId(): string {
  const random = randomUUID();
  return `req_${Date.now().toString(16).padStart(12, '0')}${random.slice(0, 8)}${random.slice(9, 13)}${random.slice(15, 18)}${random.slice(19, 23)}${random.slice(24, 25)}`;
}

export function requestId(logger: Logger): RequestHandler {
  return (req, res, next) => {
    req.id = newRequestId();
    req.correlationId = correlationIdOf(req.headers);
    req.log = logger.child({ requestId: req.id, ...(req.correlationId ? { correlationId: req.correlationId } : {}) });
    res.setHeader('x-request-id', req.id);
    if (req.correlationId) res.setHeader('x-client-request-id', req.correlationId);
    next();
  };
}

/** The refusals of a request body, shared by the Express side and the front door so both answer alike. */
export const bodyError = {
  notObject: (hint: boolean) => new ApiError(400, hint ? 'Request body must be a JSON object (send Content-Type: application/json)' : 'Request body must be a JSON object', 'invalid_request_error', 'invalid_json'),
  tooLarge: (limitBytes: number) => new ApiError(413, `Request body is larger than the limit of ${limitBytes} bytes`, 'invalid_request_error', 'body_too_large'),
  invalidJson: () => new ApiError(400, 'Request body is not valid JSON', 'invalid_request_error', 'invalid_json'),
  unsupported: () => new ApiError(415, 'Unsupported content encoding or charset', 'invalid_request_error', 'unsupported_encoding'),
  aborted: () => new ApiError(400, 'Request body was not fully received', 'invalid_request_error', 'request_aborted'),
  unreadable: (status = 400) => new ApiError(status, 'Request body could not be read', 'invalid_request_error', 'invalid_body'),
};

/** JSON body parsing; malformed or oversized bodies become 400/413 errors, never crashes. */
export function jsonBody(limitBytes: number): RequestHandler {
  // Not text/plain: browsers send that cross-site without a preflight (CSRF against a local gateway).
  const parse = express.json({ limit: limitBytes, strict: true, type: ['application/json', 'application/*+json'] });
  return (req, res, next) => {
    parse(req, res, (err?: unknown) => {
      if (!err) {
        if (req.method === 'POST' && (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body))) {
          const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
          return next(bodyError.notObject(!hasBody || req.body === undefined));
        }
        return next();
      }
      const e = err as { type?: string; status?: number; message?: string; limit?: number };
      if (e.type === 'entity.too.large') return next(bodyError.tooLarge(limitBytes));
      if (e.type === 'entity.parse.failed') return next(bodyError.invalidJson());
      if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') return next(bodyError.unsupported());
      if (e.type === 'request.aborted') return next(bodyError.aborted());
      return next(bodyError.unreadable(e.status && e.status >= 400 && e.status < 500 ? e.status : 400));
    });
  };
}

/** The client's key: `Authorization: Bearer <key>`, else `x-api-key`. */
export function presentedKey(authorization: string | undefined, xApiKey: string | string[] | undefined): string | undefined {
  if (authorization?.toLowerCase().startsWith('bearer ')) return authorization.slice(7).trim();
  return typeof xApiKey === 'string' ? xApiKey : undefined;
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/**
 * Who made a request, as stored with it: a verified key's hash (`key:` + 16 hex digits of its
 * SHA-256), or, without client keys, the client's address (`ip:...`). Feedback must come from the same.
 */
export function requestOwner(identity: ClientIdentity, address: string | undefined): string {
  if (identity.verified && identity.key) return `key:${createHash('sha256').update(identity.key).digest('hex').slice(0, 16)}`;
  return `ip:${address ?? 'unknown'}`;
}

export interface ClientIdentity {
  key?: string;
  /** True when the key was checked against PROXY_API_KEYS. */
  verified: boolean;
}

/**
 * When client keys are configured, every request must carry one (Bearer or x-api-key): throws a
 * 401 ApiError otherwise. Without keys the presented key is kept unverified, only to tell clients
 * apart for the "asked again" signal, never for limits.
 */
export function authenticate(keys: string[], presented: string | undefined): ClientIdentity {
  if (keys.length === 0) return { key: presented, verified: false };
  if (!presented || !keys.some((k) => safeEqual(k, presented))) {
    throw new ApiError(401, 'Missing or invalid API key: send Authorization: Bearer <key> with a key from PROXY_API_KEYS', 'authentication_error', 'invalid_api_key');
  }
  return { key: presented, verified: true };
}

/** Failed credentials counted per client address (on by default, whatever RATE_LIMIT_RPS says). */
export interface GuessGuard {
  failures: FailureLimiter;
  /** The client's address as the limits see it (clientAddress: TRUST_PROXY reads X-Forwarded-For). */
  address: string;
}

/**
 * authenticate(), where a refused key counts as a failure of the caller's address (past
 * AUTH_FAILURE_LIMIT every key it sends is refused with 429 unchecked) and also spends a token
 * from its IP bucket when RATE_LIMIT_RPS is set (429 once the bucket is empty, else the 401).
 */
export async function authenticateLimited(keys: string[], presented: string | undefined, limiter: RequestLimiter, ip: string | undefined, guard?: GuessGuard): Promise<ClientIdentity> {
  if (guard && keys.length > 0 && presented !== undefined) {
    const refusal = guard.failures.refusal(guard.address);
    if (refusal) throw refusal;
  }
  try {
    return authenticate(keys, presented);
  } catch (e) {
    if (guard && presented !== undefined) guard.failures.fail(guard.address);
    await limiter.take(RateLimiter.who({ verified: false }, ip));
    throw e;
  }
}

/** Admin credentials on the proxy port: ADMIN_TOKEN as a bearer, or a key from ADMIN_API_KEYS. */
export interface AdminCredentials {
  token?: string;
  keys: string[];
}

export function isAdminCredential(admin: AdminCredentials, presented: string | undefined): boolean {
  if (!presented) return false;
  return (admin.token !== undefined && safeEqual(admin.token, presented)) || admin.keys.some((k) => safeEqual(k, presented));
}

export function clientAuth(keys: string[], limiter: RequestLimiter, admin: AdminCredentials = { keys: [] }, failures?: FailureLimiter, trustProxy = false): RequestHandler {
  const checksAdmin = admin.token !== undefined || admin.keys.length > 0;
  return (req, _res, next) => {
    const presented = presentedKey(req.get('authorization'), req.headers['x-api-key']);
    const guard = failures ? { failures, address: clientAddress(req, trustProxy) } : undefined;
    // A blocked address gets no answer about any credential, admin ones included.
    if (guard && presented !== undefined && (keys.length > 0 || checksAdmin)) {
      const refusal = guard.failures.refusal(guard.address);
      if (refusal) return next(refusal);
    }
    req.admin = isAdminCredential(admin, presented);
    const identified = (who: ClientIdentity) => {
      req.clientKey = who.key;
      req.clientKeyVerified = who.verified;
      // Without client keys a presented credential is only checked as an admin one, by requireAdmin.
      if (guard && !who.verified && presented !== undefined) req.authFailed = () => guard.failures.fail(guard.address);
      next();
    };
    if (req.admin) return identified({ key: presented, verified: true });
    authenticateLimited(keys, presented, limiter, req.ip, guard).then(identified, next);
  };
}

/** Takes one token from a client's bucket, or throws (or rejects with) a 429 ApiError. */
export interface RequestLimiter {
  take(who: string): void | Promise<void>;
}

/** The 429 for an empty bucket holding `tokens` (< 1), with the seconds until one is back. */
export function rateLimitError(rps: number, burst: number, tokens: number): ApiError {
  const waitS = Math.max(1, Math.ceil((1 - tokens) / rps));
  return new ApiError(429, `Rate limit exceeded: at most ${rps} requests per second (burst ${burst})`, 'rate_limit_error', 'rate_limited', null, undefined, { 'retry-after': String(waitS) });
}

/** Token bucket per client (verified key, or IP), in this process. rps 0 disables it. One instance serves every route. */
export class RateLimiter implements RequestLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;

  constructor(private readonly opts: { rps: number; burst: number; now?: () => number }) {
    this.now = opts.now ?? Date.now;
  }

  /** Bucket key: a made-up key must not buy a fresh bucket, so only verified keys count per key. */
  static who(identity: ClientIdentity, ip: string | undefined): string {
    return identity.verified ? `key:${identity.key}` : `ip:${ip ?? 'unknown'}`;
  }

  /** Takes one token, or throws a 429 ApiError with Retry-After. */
  take(who: string): void {
    const { rps, burst } = this.opts;
    if (rps <= 0) return;
    const t = this.now();
    const b = this.buckets.get(who) ?? { tokens: burst, at: t };
    b.tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * rps);
    b.at = t;
    this.buckets.delete(who); // re-insert: the map's order is least recently used first
    this.buckets.set(who, b);
    if (this.buckets.size > 100_000) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens < 1) throw rateLimitError(rps, burst, b.tokens);
    b.tokens -= 1;
  }
}

export function rateLimit(limiter: RequestLimiter): RequestHandler {
  return (req, _res, next) => {
    try {
      const taken = limiter.take(RateLimiter.who({ key: req.clientKey, verified: req.clientKeyVerified === true }, req.ip));
      if (taken) taken.then(() => next(), next);
      else next();
    } catch (e) {
      next(e);
    }
  };
}

/** Global changes (weights, enabling models) need an admin credential; client keys get 403. */
export function requireAdmin(req: Request, admin: AdminCredentials): void {
  if (req.admin) return;
  // A credential that is neither a verified client key nor an admin one was a guess at ADMIN_TOKEN.
  req.authFailed?.();
  const how = admin.token || admin.keys.length
    ? 'send Authorization: Bearer <ADMIN_TOKEN> or a key from ADMIN_API_KEYS'
    : 'none is configured: set ADMIN_TOKEN or ADMIN_API_KEYS, or use the admin page';
  throw new ApiError(403, `Changing global settings needs an admin credential: ${how}`, 'permission_error', 'admin_required');
}

export type ErrorBodyShape = (err: ApiError, path: string) => unknown;

/** Any thrown value as the ApiError the client sees (core/errors.ts asApiError); logs internal errors (never their secrets). */
export function toApiError(err: unknown, log: Logger): ApiError {
  const apiErr = asApiError(err);
  if (apiErr.status >= 500 && !(err instanceof ApiError)) log.error('unhandled error', { err: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack?.split('\n').slice(0, 4).join(' | ') : undefined });
  else if (log.enabled('info')) log.info('request failed', { status: apiErr.status, code: apiErr.code });
  return apiErr;
}

/** The one place errors become HTTP responses. Never leaks stack traces or secrets. */
export function errorHandler(logger: Logger, shape: ErrorBodyShape = (e) => e.toBody()): ErrorRequestHandler {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const apiErr = toApiError(err, req.log ?? logger);
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const [k, v] of Object.entries(apiErr.headers ?? {})) res.setHeader(k, v);
    res.status(apiErr.status).json(shape(apiErr, req.path));
  };
}

export function notFound(): RequestHandler {
  return (req, _res, next) => next(new ApiError(404, `No route for ${req.method} ${req.path}`, 'not_found_error', 'route_not_found'));
}
