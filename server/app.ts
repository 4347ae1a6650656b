// createApp builds the proxy's request handler from injected services; it opens no ports and reads
// no env, so tests serve one on port 0 with stand-in upstreams. The chat endpoints (the hot path)
// are served by the front door straight from node:http; the rest by an Express app.
import type { RequestListener } from 'node:http';
import express from 'express';
import type { Services } from './services.ts';
import { clientAuth, errorHandler, jsonBody, notFound, RateLimiter, rateLimit, requestId } from './http/middleware.ts';
import { createFrontDoor } from './http/front.ts';
import { AllowedHosts } from './http/allowed-hosts.ts';
import { FailureLimiter } from './http/failure-limit.ts';
import { Cors } from './http/cors.ts';
import { chatRoute } from './routes/chat.ts';
import { openaiChatRoute, openaiRoutes } from './routes/openai.ts';
import { anthropicRoute, anthropicErrorBody, ANTHROPIC_PATHS } from './routes/anthropic.ts';
import { systemRoutes } from './routes/system.ts';
import { countTokensRoute, COUNT_TOKENS_PATHS } from './routes/count-tokens.ts';
import { embeddingsRoute } from './routes/embeddings.ts';
import { responsesRoute } from './routes/responses.ts';
import { metricsRoute } from './routes/metrics.ts';
import { clusterMetrics } from './cluster.ts';

export function createApp(s: Services): RequestListener {
  const { config, logger } = s;
  const limits = { rps: config.limits.rateLimitRps, burst: config.limits.rateLimitBurst };
  // With Redis, one bucket per client across every instance; the instance's own while Redis is away.
  const localLimiter = new RateLimiter(limits);
  const limiter = s.shared ? s.shared.limiter(localLimiter, limits) : localLimiter;
  // One count of failed credentials per address for both doors (chat paths and the rest).
  const authFailures = new FailureLimiter(config.authFailures);

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use(requestId(logger));
  app.use((req, res, next) => {
    if (!logger.enabled('info')) return next();
    const t0 = process.hrtime.bigint();
    res.on('finish', () => {
      req.log.info('request', { method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
    next();
  });
  const admin = { token: config.adminToken, keys: config.adminApiKeys };
  // Before the client-key check: a scrape is allowed from loopback or with the admin token.
  app.get('/metrics', metricsRoute({ metrics: s.metrics, adminToken: config.adminToken, clusterText: config.workers > 1 ? clusterMetrics(s.metrics.registry) ?? undefined : undefined, authFailures, trustProxy: config.trustProxy }));
  app.use(clientAuth(config.proxyApiKeys, limiter, admin, authFailures, config.trustProxy));
  app.use(rateLimit(limiter));
  app.use(jsonBody(config.limits.bodyBytes));
  app.use(systemRoutes({ gateway: s.gateway, registry: s.registry, router: s.router, store: s.store, applyWeights: s.applyWeights, shared: s.shared ? () => s.shared!.health() : undefined, storeMaxPending: config.store.maxPending, admin, demoMode: config.demoMode, startedAt: s.startedAt, version: s.version, feedbackWaitMs: config.workers > 1 || config.redisUrl ? config.store.flushMs * 4 + 500 : 0 }));
  app.use(openaiRoutes(s.registry, config.demoMode));
  app.use(notFound());
  const anthropicPath = (p: string) => { const c = p.toLowerCase().replace(/(.)\/$/, '$1'); return ANTHROPIC_PATHS.includes(c) || COUNT_TOKENS_PATHS.includes(c); };
  app.use(errorHandler(logger, (err, path) => (anthropicPath(path) ? anthropicErrorBody(err) : err.toBody())));

  const anthropic = anthropicRoute(s.gateway, s.registry);
  const countTokens = countTokensRoute(s.gateway, s.registry, s.dispatcher, config.limits.requestTimeoutMs);
  return createFrontDoor({
    routes: {
      '/api/chat': chatRoute(s.gateway, s.registry),
      '/v1/chat/completions': openaiChatRoute(s.gateway, s.registry),
      ...Object.fromEntries(ANTHROPIC_PATHS.map((p) => [p, anthropic])),
      ...Object.fromEntries(COUNT_TOKENS_PATHS.map((p) => [p, countTokens])),
      '/v1/responses': responsesRoute(s.gateway, s.registry),
      '/v1/embeddings': embeddingsRoute(s.registry, s.dispatcher, { demoMode: config.demoMode, requestTimeoutMs: config.limits.requestTimeoutMs }),
    },
    fallback: app,
    logger,
    proxyApiKeys: config.proxyApiKeys,
    limiter,
    authFailures,
    trustProxy: config.trustProxy,
    bodyLimitBytes: config.limits.bodyBytes,
    backlog: { pending: () => s.store.pending(), max: config.store.maxPending },
    allowedHosts: new AllowedHosts(config.allowedHosts),
    cors: new Cors(config.corsOrigins),
  });
}
