// Assembles the learned router for the running gateway: embedder (with offline fallback), kNN
// index (loaded from the learner's current version, grown online), the Llama3 judge when Ollama
// is configured, and a poll that swaps in new learned versions without a restart.
import { performance } from 'node:perf_hooks';
import type { AppConfig } from './config.ts';
import type { Logger } from './logger.ts';
import type { Store } from './store/types.ts';
import type { LearnedState, Router, RoutingOutcome } from '../router/types.ts';
import { embedderFromConfig, type Embedder } from '../router/embedder.ts';
import { createTextIndex, KnnStage, loadTextIndex } from '../router/knn.ts';
import { createJudge } from '../router/judge.ts';
import { createRouter } from '../router/index.ts';
import { currentVersion, loadLearnedState } from '../learner/state.ts';

export interface LearnedRouterHandle {
  router: Router;
  embedder: Embedder;
  /** Why the configured embedder was replaced by the built-in one, if it was. */
  embedderFallback: string | null;
  close(): Promise<void>;
}

export async function createLearnedRouter(
  config: AppConfig,
  store: Store,
  logger: Logger,
  opts: { rng?: () => number; pollMs?: number } = {},
): Promise<LearnedRouterHandle> {
  const log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => logger[level](msg, fields);
  const { embedder, fallbackReason } = await embedderFromConfig(config.routing, log);
  if (fallbackReason) logger.warn('embedder unavailable; using the built-in embedder', { configured: config.routing.embedder, reason: fallbackReason });

  const knn = new KnnStage(createTextIndex(embedder), { k: () => learned?.knnCalibration?.neighbours ?? 20 });
  const feeder = new OnlineIndexFeeder(knn, logger);
  let learned: LearnedState | null = null;
  let loadedIndexDir: string | null = null;

  /** Load the learner's current version; swap the kNN index when the version brings a new one. */
  const loadLearned = async (): Promise<LearnedState | null> => {
    const state = await loadLearnedState(store, config.dataDir);
    if (state?.indexDir && state.indexDir !== loadedIndexDir) {
      const index = await loadTextIndex(state.indexDir, embedder);
      if (index) {
        knn.useIndex(index);
        feeder.reset();
        loadedIndexDir = state.indexDir;
      } else logger.warn('learned kNN index could not be loaded; keeping the current one', { dir: state.indexDir });
    }
    learned = state;
    return state;
  };

  // The judge needs Ollama: only when the user configured OLLAMA_HOST.
  const judge = config.routing.ollamaHost ? createJudge(config.routing, { learned: () => learned }) : null;

  const router = createRouter({
    config: { ...config.routing, keywordRules: config.keywordRules },
    embedder,
    knnStage: knn,
    judge,
    loadLearned,
    rng: opts.rng,
    log,
    // Only outcomes that say something about quality grow the index online: failures (and rated
    // ones, should a caller pass them). An answered, unrated request is no evidence, so indexing it
    // would only cost time and memory; ratings that come later reach the index at the next learner run.
    onObserve: (o) => {
      if (!o.success || o.rating !== undefined) feeder.push(o);
    },
  });
  await router.reload?.();

  let version = await currentVersion(store).catch(() => 0);
  let polling = false;
  const timer = opts.pollMs
    ? setInterval(() => {
        if (polling) return;
        polling = true;
        currentVersion(store)
          .then(async (v) => {
            if (v === version) return;
            version = v;
            await router.reload?.();
            logger.info('learned routing state reloaded', { version: v });
          })
          .catch((e: Error) => logger.warn('learned state poll failed', { err: e.message }))
          .finally(() => {
            polling = false;
          });
      }, opts.pollMs)
    : null;
  timer?.unref();

  // /health shows why the configured embedder was replaced, and how the online index growth keeps up.
  const status = router.status.bind(router);
  router.status = () => ({ ...status(), embedderFallback: fallbackReason, onlineIndex: feeder.stats() });

  return {
    router,
    embedder,
    embedderFallback: fallbackReason,
    close: async () => {
      if (timer) clearInterval(timer);
      feeder.close();
      await router.close?.();
    },
  };
}

export interface OnlineIndexFeederOptions {
  everyMs: number;
  /** CPU time per tick for inserts. */
  budgetMs: number;
  maxQueue: number;
  /** Most online additions between learner runs. */
  maxOnline: number;
  /** Event-loop utilisation (0..1) since the last tick above which the tick is skipped... */
  maxUtilization: number;
  /** ...except every this many busy ticks in a row, so growth never stops outright. */
  busyEvery: number;
  /** Event-loop utilisation since the previous call (injectable for tests). */
  utilization?: () => number;
}

/** Event-loop utilisation since the previous call of the returned function. */
export function utilizationMeter(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

/**
 * Grows the kNN index with served outcomes, off the request path: outcomes queue up and a timer
 * inserts them within a small CPU budget per tick (an HNSW insert costs about a millisecond).
 * Growth is spare-time work: while the event loop is saturated with requests only every
 * `busyEvery`-th tick inserts (1 ms a second by default), and the oldest queued outcomes are
 * dropped once the queue is full (logged once per learner run). Online growth also stops at a cap
 * between learner runs; the nightly learner indexes every stored request anyway.
 */
export class OnlineIndexFeeder {
  private queue: RoutingOutcome[] = [];
  private added = 0;
  private dropped = 0;
  private busyTicks = 0;
  private busyInARow = 0;
  private droppingLogged = false;
  private draining = false;
  private readonly timer: NodeJS.Timeout;
  private readonly utilization: () => number;

  constructor(
    private readonly knn: KnnStage,
    private readonly logger: Logger,
    private readonly opts: OnlineIndexFeederOptions = { everyMs: 50, budgetMs: 1, maxQueue: 1000, maxOnline: 50_000, maxUtilization: 0.9, busyEvery: 20 },
  ) {
    this.utilization = opts.utilization ?? utilizationMeter();
    this.timer = setInterval(() => void this.drain(), opts.everyMs);
    this.timer.unref();
  }

  push(o: RoutingOutcome): void {
    if (this.added + this.queue.length >= this.opts.maxOnline) {
      this.dropped++;
      return;
    }
    this.queue.push(o);
    if (this.queue.length > this.opts.maxQueue) {
      this.queue.shift();
      this.dropped++;
      if (!this.droppingLogged) {
        this.droppingLogged = true;
        this.logger.info('kNN online growth is behind the load; dropping the oldest queued outcomes (the nightly learner indexes them)', { maxQueue: this.opts.maxQueue });
      }
    }
  }

  /** A new learned index is in force: its online additions start from zero. */
  reset(): void {
    this.added = 0;
    this.droppingLogged = false;
  }

  stats() {
    return { queued: this.queue.length, added: this.added, dropped: this.dropped, busyTicks: this.busyTicks };
  }

  async drain(): Promise<void> {
    const utilization = this.utilization();
    if (this.draining || this.queue.length === 0) return;
    if (utilization > this.opts.maxUtilization && ++this.busyInARow < this.opts.busyEvery) {
      this.busyTicks++;
      return;
    }
    this.busyInARow = 0;
    this.draining = true;
    const start = performance.now();
    try {
      while (this.queue.length > 0 && performance.now() - start < this.opts.budgetMs) {
        const o = this.queue.shift()!;
        await this.knn.learn(o.requestId, o.text, [{ model: o.model, success: o.success, latencyMs: o.latencyMs }]);
        this.added++;
      }
    } catch (e) {
      this.logger.warn('kNN online update failed', { err: (e as Error).message });
    } finally {
      this.draining = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.queue = [];
  }
}
