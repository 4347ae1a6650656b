// createApp builds the proxy's Express app from injected services; it opens no ports and reads no
// env, so tests build one on port 0 with stand-in upstreams.
import express from 'express';
import type { Services } from './services.ts';
import { clientAuth, errorHandler, jsonBody, notFound, rateLimit, requestId } from './http/middleware.ts';
import { chatRoutes } from './routes/chat.ts';
import { openaiRoutes } from './routes/openai.ts';
import { anthropicRoutes, anthropicErrorBody, ANTHROPIC_PATHS } from './routes/anthropic.ts';
import { systemRoutes } from './routes/system.ts';

export function createApp(s: Services): express.Express {
  const { config, logger } = s;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  app.use(requestId(logger));
  app.use((req, res, next) => {
    const t0 = process.hrtime.bigint();
    res.on('finish', () => {
      req.log.info('request', { method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
    });
    next();
  });
  app.use(clientAuth(config.proxyApiKeys));
  app.use(rateLimit({ rps: config.limits.rateLimitRps, burst: config.limits.rateLimitBurst }));
  app.use(jsonBody(config.limits.bodyBytes));

  const system = systemRoutes({ gateway: s.gateway, registry: s.registry, router: s.router, store: s.store, demoMode: config.demoMode, startedAt: s.startedAt, version: s.version });
  app.use(system);
  app.use(chatRoutes(s.gateway, s.registry));
  app.use(openaiRoutes(s.gateway, s.registry));
  app.use(anthropicRoutes(s.gateway, s.registry));

  app.use(notFound());
  app.use(errorHandler(logger, (err, req) => (ANTHROPIC_PATHS.includes(req.path) ? anthropicErrorBody(err, req) : err.toBody())));
  return app;
}
