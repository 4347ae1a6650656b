// CORS for the proxy port (CORS_ALLOWED_ORIGINS, off when empty): allowed browser origins get the
// Access-Control headers and their preflights a 204. The admin page is another server: never here.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Headers a browser client may read from an answer (ids, the model that answered, rate limits). */
const EXPOSED = 'x-request-id, x-client-request-id, x-switchyard-model, x-switchyard-token-count, retry-after';
const METHODS = 'GET, POST, OPTIONS';
/** Request headers allowed when a preflight names none (what the OpenAI and Anthropic SDKs send). */
const DEFAULT_HEADERS = 'authorization, content-type, x-api-key, anthropic-version, anthropic-beta, x-request-id, x-client-request-id';
/** Paths CORS never opens: global settings and the metrics scrape are not for browser pages. */
const CLOSED = /^\/(?:metrics|api\/config)(?:\/|$)/;
const TOKEN_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

export class Cors {
  private readonly any: boolean;
  private readonly origins: ReadonlySet<string>;

  constructor(allowed: string[]) {
    this.any = allowed.includes('*');
    this.origins = new Set(allowed.filter((o) => o !== '*').map((o) => o.toLowerCase()));
  }

  get enabled(): boolean {
    return this.any || this.origins.size > 0;
  }

  private allows(origin: string | undefined, path: string): origin is string {
    return origin !== undefined && !CLOSED.test(path) && (this.any || this.origins.has(origin.toLowerCase()));
  }

  /**
   * Adds the CORS headers for an allowed origin; answers its preflight (OPTIONS with
   * Access-Control-Request-Method) with 204 and returns true when it did.
   */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
    if (!this.allows(origin, path)) return false;
    res.setHeader('access-control-allow-origin', this.any ? '*' : origin);
    if (!this.any) res.setHeader('vary', 'Origin');
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!preflight) {
      res.setHeader('access-control-expose-headers', EXPOSED);
      return false;
    }
    const asked = req.headers['access-control-request-headers'];
    // Echo the headers asked for when they are a well-formed token list (keys travel in them).
    res.setHeader('access-control-allow-headers', typeof asked === 'string' && TOKEN_LIST.test(asked.trim()) ? asked.trim() : DEFAULT_HEADERS);
    res.setHeader('access-control-allow-methods', METHODS);
    res.setHeader('access-control-max-age', '600');
    res.statusCode = 204;
    res.setHeader('content-length', '0');
    req.resume();
    res.end();
    return true;
  }
}
