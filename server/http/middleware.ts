// Express middleware factories: request ids, JSON bodies with clear 4xx errors, client API keys,
// per-key token-bucket rate limits, and the single error handler that speaks the OpenAI error shape.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { ApiError } from '../errors.ts';
import type { Logger } from '../logger.ts';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    clientKey?: string;
    /** True when clientKey was checked against PROXY_API_KEYS. */
    clientKeyVerified?: boolean;
    log: Logger;
  }
}

const SAFE_ID = /^[A-Za-z0-9._:-]{8,128}$/;

export function requestId(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    req.id = given && SAFE_ID.test(given) ? given : `req_${randomUUID().replace(/-/g, '')}`;
    req.log = logger.child({ requestId: req.id });
    res.setHeader('x-request-id', req.id);
    next();
  };
}

/** JSON body parsing; malformed or oversized bodies become 400/413 errors, never crashes. */
export function jsonBody(limitBytes: number): RequestHandler {
  // Not text/plain: browsers send that cross-site without a preflight (CSRF against a local gateway).
  const parse = express.json({ limit: limitBytes, strict: true, type: ['application/json', 'application/*+json'] });
  return (req, res, next) => {
    parse(req, res, (err?: unknown) => {
      if (!err) {
        if (req.method === 'POST' && (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body))) {
          const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
          if (!hasBody || req.body === undefined) return next(new ApiError(400, 'Request body must be a JSON object (send Content-Type: application/json)', 'invalid_request_error', 'invalid_json'));
          return next(new ApiError(400, 'Request body must be a JSON object', 'invalid_request_error', 'invalid_json'));
        }
        return next();
      }
      const e = err as { type?: string; status?: number; message?: string; limit?: number };
      if (e.type === 'entity.too.large') return next(new ApiError(413, `Request body is larger than the limit of ${limitBytes} bytes`, 'invalid_request_error', 'body_too_large'));
      if (e.type === 'entity.parse.failed') return next(new ApiError(400, 'Request body is not valid JSON', 'invalid_request_error', 'invalid_json'));
      if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') return next(new ApiError(415, 'Unsupported content encoding or charset', 'invalid_request_error', 'unsupported_encoding'));
      if (e.type === 'request.aborted') return next(new ApiError(400, 'Request body was not fully received', 'invalid_request_error', 'request_aborted'));
      return next(new ApiError(e.status && e.status >= 400 && e.status < 500 ? e.status : 400, 'Request body could not be read', 'invalid_request_error', 'invalid_body'));
    });
  };
}

function bearer(req: Request): string | undefined {
  const auth = req.get('authorization');
  if (auth?.toLowerCase().startsWith('bearer ')) return auth.slice(7).trim();
  return req.get('x-api-key') ?? undefined;
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** When client keys are configured, every request must carry one (Bearer or x-api-key). */
export function clientAuth(keys: string[]): RequestHandler {
  return (req, _res, next) => {
    const key = bearer(req);
    if (keys.length === 0) {
      // Unverified: kept only to tell clients apart for the "asked again" signal, never for limits.
      req.clientKey = key;
      req.clientKeyVerified = false;
      return next();
    }
    if (!key || !keys.some((k) => safeEqual(k, key))) {
      return next(new ApiError(401, 'Missing or invalid API key: send Authorization: Bearer <key> with a key from PROXY_API_KEYS', 'authentication_error', 'invalid_api_key'));
    }
    req.clientKey = key;
    req.clientKeyVerified = true;
    next();
  };
}

/** Token bucket per client key (or IP when keys are off). rps 0 disables it. */
export function rateLimit(opts: { rps: number; burst: number; now?: () => number }): RequestHandler {
  if (opts.rps <= 0) return (_req, _res, next) => next();
  const now = opts.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (req, res, next) => {
    // A made-up key must not buy a fresh bucket: only verified keys are limited per key.
    const who = req.clientKeyVerified ? `key:${req.clientKey}` : `ip:${req.ip ?? 'unknown'}`;
    const t = now();
    const b = buckets.get(who) ?? { tokens: opts.burst, at: t };
    b.tokens = Math.min(opts.burst, b.tokens + ((t - b.at) / 1000) * opts.rps);
    b.at = t;
    buckets.delete(who); // re-insert: the map's order is least recently used first
    buckets.set(who, b);
    if (buckets.size > 100_000) buckets.delete(buckets.keys().next().value!);
    if (b.tokens < 1) {
      const waitS = Math.max(1, Math.ceil((1 - b.tokens) / opts.rps));
      return next(new ApiError(429, `Rate limit exceeded: at most ${opts.rps} requests per second (burst ${opts.burst})`, 'rate_limit_error', 'rate_limited', null, undefined, { 'retry-after': String(waitS) }));
    }
    b.tokens -= 1;
    next();
  };
}

export type ErrorBodyShape = (err: ApiError, req: Request) => unknown;

/** The one place errors become HTTP responses. Never leaks stack traces or secrets. */
export function errorHandler(logger: Logger, shape: ErrorBodyShape = (e) => e.toBody()): ErrorRequestHandler {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: unknown } | null)?.status;
    const apiErr =
      err instanceof ApiError
        ? err
        : typeof status === 'number' && status >= 400 && status < 500
          ? new ApiError(status, status === 400 ? 'Bad request (malformed URL or headers)' : 'Request refused', 'invalid_request_error', 'bad_request')
          : new ApiError(500, 'Internal server error', 'server_error', 'internal_error');
    const log = req.log ?? logger;
    if (apiErr.status >= 500 && !(err instanceof ApiError)) log.error('unhandled error', { err: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack?.split('\n').slice(0, 4).join(' | ') : undefined });
    else log.info('request failed', { status: apiErr.status, code: apiErr.code });
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const [k, v] of Object.entries(apiErr.headers ?? {})) res.setHeader(k, v);
    res.status(apiErr.status === 499 ? 499 : apiErr.status).json(shape(apiErr, req));
  };
}

export function notFound(): RequestHandler {
  return (req, _res, next) => next(new ApiError(404, `No route for ${req.method} ${req.path}`, 'not_found_error', 'route_not_found'));
}
