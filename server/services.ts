// Builds the running system from an AppConfig: store, model registry, dispatcher, router (with its
// embedder, kNN index and judge) and the gateway. Used by main.ts and by tests (with stand-ins).
import { readFileSync } from 'node:fs';
import type { AppConfig } from './config.ts';
import type { Logger } from './logger.ts';
import type { Store } from './store/types.ts';
import { openStore } from './store/index.ts';
import { ModelRegistry, type WeightChange } from './dispatch/registry.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import { Gateway } from './gateway.ts';
import { createProvider, endpointFor, closeUpstreamPool, setUpstreamMaxBytes } from './providers/index.ts';
import type { Router } from '../core/routing.ts';
import type { Embedder } from '../router/embedder.ts';
import { createLearnedRouter, type LearnedRouterHandle } from './router-wiring.ts';
import { GatewayMetrics } from './metrics.ts';
import { connectSharedState, type SharedState } from './redis/index.ts';
import { logTo } from '../core/log.ts';

export interface Services {
  config: AppConfig;
  logger: Logger;
  store: Store;
  registry: ModelRegistry;
  dispatcher: Dispatcher;
  router: Router;
  /** The router's embedder (null when a custom router was injected); the learner reuses it. */
  embedder: Embedder | null;
  gateway: Gateway;
  metrics: GatewayMetrics;
  /** State shared with other instances through Redis (REDIS_URL); null: every instance keeps its own. */
  shared: SharedState | null;
  /** Store weight and enable/disable changes, apply them here and push them to the other instances. */
  applyWeights(entries: WeightChange[]): Promise<void>;
  startedAt: number;
  version: string;
  /** Pick up a new learned state (priors, profiles, index) now. */
  reloadLearned(): Promise<void>;
  close(): Promise<void>;
}

export interface BuildOptions {
  logger: Logger;
  /** Use this router instead of the learned one (tests of the gateway alone). */
  router?: Router;
  rng?: () => number;
  now?: () => number;
  /** How often to check for a new learned version (ms); 0 disables polling. */
  learnedPollMs?: number;
}

export const version: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export async function buildServices(config: AppConfig, opts: BuildOptions): Promise<Services> {
  const { logger } = opts;
  setUpstreamMaxBytes(config.dispatch.upstreamMaxBytes);
  // SQLite goes through the start-up check (store/startup.ts): a database that cannot be opened or
  // written stops start-up with a StartupError naming the file and the fix.
  const store = await openStore(config, {
    // Shutdown must end within the grace period even if the database stays locked.
    closeTimeoutMs: Math.max(1000, config.shutdownGraceMs),
    logger: logTo(logger),
    atStartup: true,
  });

  const registry = new ModelRegistry(config, (spec) => createProvider(spec.provider), endpointFor, opts.now);
  for (const w of await store.getWeights()) registry.setWeight(w.model, w.weight, w.enabled);
  const reloadWeights = () => {
    store.getWeights().then(
      (ws) => { for (const w of ws) registry.setWeight(w.model, w.weight, w.enabled); },
      (e: Error) => logger.warn('reloading model weights failed', { err: e.message }),
    );
  };
  const shared = config.redisUrl ? await connectSharedState({ url: config.redisUrl, logger, registry, reloadWeights }) : null;

  const dispatcher = new Dispatcher(registry, {
    policy: { maxRetries: config.dispatch.maxRetries, baseMs: config.dispatch.retryBaseMs, maxMs: config.dispatch.retryMaxMs, maxRetryAfterMs: config.dispatch.retryAfterMaxMs },
    attemptTimeoutMs: config.dispatch.attemptTimeoutMs,
    rng: opts.rng,
    now: opts.now,
  });

  let learned: LearnedRouterHandle | null = null;
  let router: Router;
  if (opts.router) router = opts.router;
  else {
    learned = await createLearnedRouter(config, store, logger, { rng: opts.rng, pollMs: opts.learnedPollMs ?? 10_000 });
    router = learned.router;
  }
  // A learner run elsewhere announces its version: load it now rather than at the next poll. A
  // reload that fails, or still reads an older version, is tried again a few times (backing off to
  // about 3 s in all) before the poll is left to it.
  const loadedVersion = () => (router.status?.().learned as { version?: unknown } | null | undefined)?.version;
  shared?.onLearned((announced) => {
    void (async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
        try {
          await router.reload?.();
          const v = loadedVersion();
          if (announced === null || (typeof v === 'number' && v >= announced)) return;
        } catch (e) {
          logger.warn('reloading the learned state failed', { err: (e as Error).message, attempt: attempt + 1 });
        }
      }
      logger.warn('the announced learned version was not loaded; the next poll will try again', { version: announced });
    })();
  });

  const metrics = new GatewayMetrics({
    breakers: () => registry.all().map((m) => ({ model: m.spec.id, state: m.breaker.state })),
    storePending: () => store.pending(),
    learnerRuns: () => store.learnerRunTotals(),
    ...(shared ? { sharedStateUp: () => shared.health().status === 'ok' } : {}),
    learnedVersion: () => {
      const v = loadedVersion();
      return typeof v === 'number' ? v : 0;
    },
  });
  const gateway = new Gateway({ registry, dispatcher, router, store, logger, requestTimeoutMs: config.limits.requestTimeoutMs, now: opts.now, metrics, durability: config.store.durability, commitTimeoutMs: config.store.commitTimeoutMs, sharedRepeats: shared?.repeats });

  // With several workers or instances (several on one PostgreSQL, or sharing Redis), weights and
  // enable/disable set through one of them (API or admin page) reach the others at once through
  // Redis, and from the database within 10 s (the fallback for messages lost while Redis was away,
  // and the only way without it).
  const weightsTimer = config.workers > 1 || store.engine === 'postgres' || shared ? setInterval(reloadWeights, 10_000) : null;
  weightsTimer?.unref();

  return {
    config,
    logger,
    store,
    registry,
    dispatcher,
    router,
    embedder: learned?.embedder ?? null,
    gateway,
    metrics,
    shared,
    applyWeights: async (entries) => {
      await store.setWeights(entries);
      for (const e of entries) registry.setWeight(e.model, e.weight, e.enabled);
      shared?.publishWeights(entries);
    },
    startedAt: Date.now(),
    version,
    reloadLearned: async () => {
      await router.reload?.();
    },
    close: async () => {
      if (weightsTimer) clearInterval(weightsTimer);
      await learned?.close();
      await store.close();
      await shared?.close();
      await closeUpstreamPool();
    },
  };
}
