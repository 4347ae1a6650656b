// Assembles the learned router for the running gateway: embedder (with offline fallback), kNN
// index (loaded from the learner's current version, grown online), the Llama3 judge when Ollama
// is configured, and a poll that swaps in new learned versions without a restart.
import type { AppConfig } from './config.ts';
import type { Logger } from './logger.ts';
import type { Store } from './store/types.ts';
import type { LearnedState, Router } from '../router/types.ts';
import { createEmbedder, type Embedder } from '../router/embedder.ts';
import { KnnIndex, KnnStage } from '../router/knn.ts';
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
  const { embedder, fallbackReason } = await createEmbedder({
    kind: config.routing.embedder,
    modelId: config.routing.embeddingModel,
    allowRemote: config.routing.allowModelDownload,
    ollamaHost: config.routing.ollamaHost,
    log,
  });
  if (fallbackReason) logger.warn('embedder unavailable; using the built-in embedder', { configured: config.routing.embedder, reason: fallbackReason });

  const knn = new KnnStage(KnnIndex.create(embedder.dim), embedder);
  let learned: LearnedState | null = null;
  let loadedIndexDir: string | null = null;

  /** Load the learner's current version; swap the kNN index when the version brings a new one. */
  const loadLearned = async (): Promise<LearnedState | null> => {
    const state = await loadLearnedState(store, config.dataDir);
    if (state?.indexDir && state.indexDir !== loadedIndexDir) {
      const index = await KnnIndex.load(state.indexDir, embedder.dim);
      if (index) {
        knn.useIndex(index);
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
    onObserve: (o) => {
      knn.learn(o.requestId, o.text, [{ model: o.model, success: o.success, latencyMs: o.latencyMs }]).catch((e: Error) => logger.warn('kNN online update failed', { err: e.message }));
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

  return {
    router,
    embedder,
    embedderFallback: fallbackReason,
    close: async () => {
      if (timer) clearInterval(timer);
      await router.close?.();
    },
  };
}
