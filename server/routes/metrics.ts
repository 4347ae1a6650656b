// GET /metrics on the proxy port, in Prometheus text format. Metrics sum every caller's traffic,
// so a client key is not enough: a scrape must come from loopback or carry the admin token
// (Authorization: Bearer <ADMIN_TOKEN>). With several workers the answer sums all of them.
import type { RequestHandler } from 'express';
import { ApiError } from '../errors.ts';
import { safeEqual } from '../http/middleware.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { FailureLimiter } from '../http/failure-limit.ts';
import { clientAddress } from '../http/server.ts';

export interface MetricsRouteOptions {
  metrics: GatewayMetrics;
  adminToken?: string;
  /** With node:cluster workers: the exposition summed over every worker (asks the primary). */
  clusterText?: () => Promise<string>;
  /** Wrong admin tokens count as failed guesses of the caller's address (AUTH_FAILURE_LIMIT). */
  authFailures?: FailureLimiter;
  trustProxy?: boolean;
}

export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

export function metricsRoute(opts: MetricsRouteOptions): RequestHandler {
  return (req, res, next) => {
    const auth = req.get('authorization') ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
    const loopback = isLoopback(req.socket.remoteAddress);
    const address = clientAddress(req, opts.trustProxy ?? false);
    if (!loopback && token !== undefined && opts.adminToken !== undefined) {
      const refusal = opts.authFailures?.refusal(address);
      if (refusal) return next(refusal);
    }
    const allowed = loopback || (opts.adminToken !== undefined && token !== undefined && safeEqual(token, opts.adminToken));
    if (!allowed) {
      if (token !== undefined && opts.adminToken !== undefined) opts.authFailures?.fail(address);
      next(new ApiError(opts.adminToken ? 401 : 403,
        opts.adminToken
          ? 'GET /metrics needs Authorization: Bearer <ADMIN_TOKEN> when scraped from another host'
          : 'GET /metrics answers loopback only; set ADMIN_TOKEN to scrape it from another host with Authorization: Bearer <ADMIN_TOKEN>',
        'authentication_error', 'metrics_forbidden'));
      return;
    }
    (opts.clusterText ? opts.clusterText() : opts.metrics.text()).then(
      (text) => {
        res.setHeader('content-type', opts.metrics.contentType);
        res.setHeader('cache-control', 'no-store');
        res.end(text);
      },
      (e: unknown) => next(new ApiError(503, `metrics unavailable: ${e instanceof Error ? e.message : String(e)}`, 'server_error', 'metrics_unavailable')),
    );
  };
}
