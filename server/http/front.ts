// The proxy's front door. The chat endpoints are the hot path: they are served straight from
// node:http (request id, client key, rate limit, JSON body, handler, error body) without Express's
// router, body-parser and response helpers, which cost more CPU per request than the gateway's
// own work. Every other path goes to the Express app. Both share one key check and one limiter.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Readable } from 'node:stream';
import { ApiError } from '../errors.ts';
import type { AllowedHosts } from './allowed-hosts.ts';
import type { FailureLimiter } from './failure-limit.ts';
import { clientAddress } from './server.ts';
import type { Cors } from './cors.ts';
import type { Logger } from '../logger.ts';
import { authenticateLimited, bodyError, correlationIdOf, newRequestId, presentedKey, RateLimiter, requestOwner, toApiError, type ErrorBodyShape, type RequestLimiter } from './middleware.ts';

/** One request on a hot route, after the checks every endpoint shares. */
export interface HotRequest {
  id: string;
  /** The client's own id for the request (x-request-id), when it sent a usable one. */
  correlationId?: string;
  /** Who made it (requestOwner): only they may rate it. */
  owner: string;
  /** The route's canonical path (lower case, no query, no trailing slash). */
  path: string;
  clientKey?: string;
  /** Parsed JSON object body, not yet validated (each handler validates its own shape with zod). */
  body: Record<string, unknown>;
  req: IncomingMessage;
  res: ServerResponse;
  log: Logger;
}

export interface HotRoute {
  handle(hr: HotRequest): Promise<void>;
  /** The error envelope for this route (default: the OpenAI shape). */
  errorBody?: ErrorBodyShape;
}

export interface FrontDoorOptions {
  /** POST routes served here, by canonical path. */
  routes: Record<string, HotRoute>;
  /** Everything else (the Express app). */
  fallback: RequestListener;
  logger: Logger;
  proxyApiKeys: string[];
  limiter: RequestLimiter;
  /** Wrong keys per client address (on by default); past the limit the address gets 429. */
  authFailures?: FailureLimiter;
  /** TRUST_PROXY: the address the limits count is the proxy's last X-Forwarded-For entry. */
  trustProxy?: boolean;
  bodyLimitBytes: number;
  /** Records waiting to be stored, and the most that may wait before new chat requests are refused. */
  backlog?: { pending: () => number; max: number };
  /** Without client keys, browser requests (with an Origin) must name an allowed Host. */
  allowedHosts?: AllowedHosts;
  /** Browser origins allowed to call the proxy (CORS_ALLOWED_ORIGINS). */
  cors?: Cors;
}

/** Express's default matching: case-insensitive, optional trailing slash, query ignored; an absolute-form target (`POST http://host/path`) counts by its path. */
function canonicalPath(url: string | undefined): string {
  let p = url ?? '/';
  if (!p.startsWith('/')) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(p);
    if (m) p = p.slice(m[0].length) || '/';
  }
  const q = p.indexOf('?');
  if (q >= 0) p = p.slice(0, q);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p.toLowerCase();
}

export function createFrontDoor(opts: FrontDoorOptions): RequestListener {
  const routes = new Map(Object.entries(opts.routes).map(([p, r]) => [p.toLowerCase(), r]));
  const { logger } = opts;
  // With client keys a rebinding page cannot act (it has no key); without them, a browser is told by its Origin.
  const hostGuard = opts.proxyApiKeys.length === 0 ? opts.allowedHosts : undefined;
  const cors = opts.cors?.enabled ? opts.cors : undefined;
  return (req, res) => {
    const path = canonicalPath(req.url);
    const route = routes.get(path);
    if (hostGuard && req.headers.origin !== undefined && !hostGuard.allows(req.headers.host)) {
      const err = new ApiError(403, hostGuard.refusal(req.headers.host), 'permission_error', 'host_not_allowed');
      res.setHeader('x-request-id', newRequestId());
      res.setHeader('connection', 'close');
      req.resume();
      return sendJson(res, 403, route?.errorBody ? route.errorBody(err, path) : err.toBody());
    }
    if (cors && cors.handle(req, res, path)) return;
    if (!route) return opts.fallback(req, res);
    if (req.method === 'POST') return void serveHot(route, path, req, res, opts, logger);
    void notPost(route, path, req, res, opts);
  };
}

/**
 * The chat paths take POST only: OPTIONS says so with 204 (CORS preflights carry no key, so none
 * is asked for), any other method gets 405 with the same Allow header in the route's envelope.
 * Both spend a token of the caller's IP bucket. A body sent along is not read: the connection
 * closes after the answer.
 */
async function notPost(route: HotRoute, path: string, req: IncomingMessage, res: ServerResponse, opts: FrontDoorOptions): Promise<void> {
  res.setHeader('x-request-id', newRequestId());
  res.setHeader('allow', 'POST');
  if (hasBody(req)) res.setHeader('connection', 'close');
  req.resume();
  let err: ApiError;
  try {
    await opts.limiter.take(RateLimiter.who({ verified: false }, req.socket.remoteAddress));
    if (req.method === 'OPTIONS') {
      res.statusCode = 204;
      res.end();
      return;
    }
    err = new ApiError(405, `Method ${req.method} is not allowed on ${path}; use POST`, 'invalid_request_error', 'method_not_allowed');
  } catch (e) {
    err = toApiError(e, opts.logger);
  }
  sendJson(res, err.status, route.errorBody ? route.errorBody(err, path) : err.toBody(), err.headers);
}

async function serveHot(route: HotRoute, path: string, req: IncomingMessage, res: ServerResponse, opts: FrontDoorOptions, logger: Logger): Promise<void> {
  const id = newRequestId();
  res.setHeader('x-request-id', id);
  const correlationId = correlationIdOf(req.headers);
  if (correlationId) res.setHeader('x-client-request-id', correlationId);
  const log = logger.enabled('info') ? logger.child({ requestId: id, ...(correlationId ? { correlationId } : {}) }) : logger;
  if (log.enabled('info')) {
    const t0 = process.hrtime.bigint();
    res.once('finish', () => log.info('request', { method: 'POST', path, status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
  }
  try {
    const guard = opts.authFailures ? { failures: opts.authFailures, address: clientAddress(req, opts.trustProxy ?? false) } : undefined;
    const who = await authenticateLimited(opts.proxyApiKeys, presentedKey(header(req, 'authorization'), req.headers['x-api-key']), opts.limiter, req.socket.remoteAddress, guard);
    await opts.limiter.take(RateLimiter.who(who, req.socket.remoteAddress));
    // Every answered request must be stored; when the database falls this far behind, shed load
    // instead of holding an ever longer queue in memory (or answering what cannot be recorded).
    if (opts.backlog && opts.backlog.pending() >= opts.backlog.max) {
      req.resume();
      throw new ApiError(503, `The gateway is storing requests more slowly than they arrive (${opts.backlog.pending()} waiting); retry shortly`, 'server_error', 'store_backlog', null, undefined, { 'retry-after': '1' });
    }
    const body = await readJsonObject(req, opts.bodyLimitBytes);
    await route.handle({ id, correlationId, owner: requestOwner(who, req.socket.remoteAddress), path, clientKey: who.key, body, req, res, log });
  } catch (err) {
    const apiErr = toApiError(err, log === logger ? logger.child({ requestId: id }) : log);
    if (res.headersSent) {
      res.end();
      return;
    }
    sendJson(res, apiErr.status, route.errorBody ? route.errorBody(apiErr, path) : apiErr.toBody(), apiErr.headers);
  }
}

/** Whether the request says a body follows (a non-zero Content-Length, or chunked). */
function hasBody(req: IncomingMessage): boolean {
  const declared = header(req, 'content-length');
  return (declared !== undefined && declared !== '0') || req.headers['transfer-encoding'] !== undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** A JSON response in one write: status, headers and body. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  if (headers) for (const k in headers) res.setHeader(k, headers[k]!);
  res.end(text);
}

/** The other charsets body-parser decoded for JSON (UTF-32 aside, which no client sends): UTF-16 with or without a byte order mark. */
const UTF16: Record<string, 'utf-16le' | 'utf-16be' | undefined> = { 'utf-16': 'utf-16le', 'utf-16le': 'utf-16le', 'utf-16be': 'utf-16be' };

const JSON_TYPE = /^application\/(?:json|[^;\s]+\+json)\s*(?:;|$)/i;

/**
 * The request body as a JSON object, refused the way the Express side's body parser refuses:
 * 400 for a missing, malformed or non-object body; 413 over the limit; 415 for an unknown
 * encoding or charset. gzip, deflate and br bodies are inflated (the limit applies after, and
 * inflating stops at the limit). Whatever is left of a refused body is read and dropped, so the
 * keep-alive connection stays usable.
 */
export async function readJsonObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const type = header(req, 'content-type');
  const declared = header(req, 'content-length');
  if (!type || !JSON_TYPE.test(type)) {
    req.resume();
    throw bodyError.notObject(!hasBody(req));
  }
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1]?.toLowerCase();
  const text = charset === undefined || charset === 'utf-8' || charset === 'utf8' ? 'utf8' : UTF16[charset];
  if (!text) {
    req.resume();
    throw bodyError.unsupported();
  }
  const encoded = (header(req, 'content-encoding') ?? 'identity').trim().toLowerCase();
  if (declared !== undefined && Number(declared) > limit && (encoded === 'identity' || encoded === '')) {
    req.resume();
    throw bodyError.tooLarge(limit);
  }
  let raw = await readAll(decoded(req, encoded), limit);
  // A UTF-8 byte order mark is not JSON, but some clients send one (body-parser accepted it).
  if (raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) raw = raw.subarray(3);
  if (raw.length === 0) {
    if (declared === undefined && req.headers['transfer-encoding'] === undefined) throw bodyError.notObject(true);
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(text === 'utf8' ? raw.toString('utf8') : new TextDecoder(text, { fatal: true }).decode(raw));
  } catch {
    throw bodyError.invalidJson();
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bodyError.notObject(false);
  return value as Record<string, unknown>;
}

interface BodySource {
  stream: Readable;
  /** Stop reading: tear down the inflater (if any) and drop whatever is left of the raw body. */
  release(): void;
}

function decoded(req: IncomingMessage, enc: string): BodySource {
  if (enc === 'identity' || enc === '') return { stream: req, release: () => req.resume() };
  const inflate = enc === 'gzip' || enc === 'x-gzip' ? createGunzip() : enc === 'deflate' ? createInflate() : enc === 'br' ? createBrotliDecompress() : null;
  if (!inflate) {
    req.resume();
    throw bodyError.unsupported();
  }
  const forward = (e: Error) => inflate.destroy(e);
  req.on('error', forward);
  req.pipe(inflate);
  return {
    stream: inflate,
    // An inflater can end before the request does (bytes after the compressed data) or be cut off
    // at the limit (a small body can inflate to gigabytes): either way it must not outlive the read,
    // nor forward a later client abort as an error nobody listens to.
    release: () => {
      req.unpipe(inflate);
      req.off('error', forward);
      inflate.on('error', () => undefined);
      inflate.destroy();
      req.resume();
    },
  };
}

/** Reads the (inflated) body up to `limit` bytes, then releases the source. */
function readAll(source: BodySource, limit: number): Promise<Buffer> {
  const { stream } = source;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (e: ApiError) => {
      cleanup();
      source.release();
      reject(e);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) return fail(bodyError.tooLarge(limit));
      chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      source.release();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => fail(/aborted/i.test(e.message) ? bodyError.aborted() : bodyError.unreadable());
    const onAborted = () => fail(bodyError.aborted());
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('aborted', onAborted);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('aborted', onAborted);
  });
}
