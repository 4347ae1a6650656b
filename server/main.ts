// The only module that reads the environment and opens ports: loads config, builds services,
// starts the proxy (and the admin page), and shuts down cleanly on SIGTERM/SIGINT.
import type { Server } from 'node:http';
import { loadConfig, ConfigError } from './config.ts';
import { createLogger } from './logger.ts';
import { buildServices } from './services.ts';
import { redisUrlSecrets } from './redis/link.ts';
import { createApp } from './app.ts';
import { createHttpServer } from './http/server.ts';
import { StartupError } from './store/startup.ts';
import { startAdmin } from './admin/index.ts';
import cluster from 'node:cluster';
import { supervise, workerId } from './cluster.ts';
import { describeStore } from './store/index.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`switchyard: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const rootLogger = createLogger({ level: config.logLevel, secrets: [...Object.values(config.secrets), ...(config.adminToken ? [config.adminToken] : []), ...config.proxyApiKeys, ...redisUrlSecrets(config.redisUrl)] });
  if (config.workers > 1 && cluster.isPrimary) return supervise(config, rootLogger);
  // In a cluster, worker 1 serves the admin page (and migrated the database before the others started).
  const worker = workerId();
  const logger = worker ? rootLogger.child({ worker }) : rootLogger;
  const services = await buildServices(config, { logger });
  const app = createApp(services);

  const proxy: Server = await new Promise((resolve, reject) => {
    const srv = createHttpServer(app, config.http).listen(config.proxyPort, config.host, () => resolve(srv));
    srv.once('error', reject);
  });
  const proxyAddr = proxy.address();
  const proxyPort = typeof proxyAddr === 'object' && proxyAddr ? proxyAddr.port : config.proxyPort;
  const admin = worker <= 1 ? await startAdmin(services, { port: config.adminPort, proxyPort }) : null;

  if (config.demoMode && worker <= 1) {
    logger.warn('DEMO MODE: no API key or Ollama configured; serving built-in local demo models (answers are canned, not real LLM output)', { models: config.models.map((m) => m.id) });
  }
  logger.info('switchyard started', {
    proxy: `http://${config.host}:${proxyPort}`,
    admin: admin?.url ?? null,
    models: config.models.map((m) => `${m.id} (${m.provider})`),
    db: describeStore(config),
  });
  if (process.send) process.send({ type: 'ready', proxyPort, adminPort: admin?.port ?? null });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal, graceMs: config.shutdownGraceMs });
    const force = setTimeout(() => {
      logger.warn('grace period over; closing remaining connections');
      proxy.closeAllConnections();
    }, config.shutdownGraceMs);
    force.unref();
    // Stop accepting, let in-flight requests finish, then flush every queued write. The admin side
    // may be waiting for a learner run: it gets the same grace period, no more.
    const adminClosed = admin ? Promise.race([admin.close(), new Promise<void>((r) => setTimeout(r, config.shutdownGraceMs).unref())]) : Promise.resolve();
    const closed = Promise.all([new Promise<void>((r) => proxy.close(() => r())), adminClosed]);
    // Connections busy at close() become idle keep-alive sockets once they answer: sweep them.
    proxy.closeIdleConnections();
    const sweep = setInterval(() => proxy.closeIdleConnections(), 50);
    await closed;
    clearInterval(sweep);
    clearTimeout(force);
    // Requests cut at the end of the grace period record their outcome a tick later.
    await new Promise((r) => setImmediate(r));
    try {
      await services.close();
    } catch (e) {
      logger.error('shutdown could not write everything', { err: e instanceof Error ? e.message : String(e) });
      process.exit(1);
    }
    logger.info('stopped', { signal });
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // A primary killed outright (SIGKILL, OOM) disconnects its workers, and node:cluster would end
  // each at once with its queued writes unwritten. Claiming the disconnect as planned keeps the
  // process alive to finish its requests and flush, as on SIGTERM.
  cluster.worker?.once('disconnect', () => {
    if (stopping) return;
    cluster.worker!.exitedAfterDisconnect = true;
    void shutdown('primary gone');
  });
}

main().catch((e) => {
  if (e instanceof StartupError) {
    process.stderr.write(`switchyard: failed to start: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`switchyard: failed to start: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
