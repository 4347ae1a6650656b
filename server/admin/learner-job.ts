// Adapts the learner (learner/job.ts) to the admin "run now" button: the same run `npm run learn`
// does, in-process, against the live store, with progress reported to the page.
import type { Services } from '../services.ts';
import { embedderFromConfig, type Embedder } from '../../router/embedder.ts';
import { runLearner } from '../../learner/job.ts';
import type { LearnerJob } from './learner-runner.ts';
import { shadowStepFor } from '../shadow-wiring.ts';

export function defaultLearnerJob(services: Services): LearnerJob {
  const { config, store } = services;
  // Built on first use, the same way the router and the learner CLI build theirs, so index
  // vectors agree in dimension with the ones the router queries.
  let embedder: Promise<Embedder> | null = services.embedder ? Promise.resolve(services.embedder) : null;
  const getEmbedder = () => (embedder ??= embedderFromConfig(config.routing).then((r) => r.embedder));

  return async (onProgress) => {
    // Rows are stored when a request ends, stamped with its start: any request still running
    // started at most one request timeout ago, so older rows are complete.
    // In-process, we know exactly which requests are still running: rows older than the oldest
    // of them are final once the write queue is flushed, so a run right after some test prompts
    // learns from them.
    await store.flush();
    const now = Date.now();
    const oldest = services.gateway.oldestInFlight();
    // With several workers (or instances sharing Redis) the others' requests and queues are out of
    // sight: wait out a whole request timeout plus a flush (and a margin), as a scheduled run does.
    const settleMs = config.workers > 1 || config.redisUrl
      ? config.limits.requestTimeoutMs + config.store.flushMs + 5_000
      // Measured from the learner's own clock a few ms later; 50 ms covers requests that start meanwhile.
      : (oldest === null ? 0 : Math.max(0, now - oldest)) + 50;
    const result = await runLearner({
      store,
      sharedLock: services.shared?.learnerLock,
      shadow: shadowStepFor(config, store, { registry: services.registry, dispatcher: services.dispatcher }),
      dataDir: config.dataDir,
      embedder: await getEmbedder(),
      optimism: config.routing.optimism,
      settleMs,
      onProgress: (p) => onProgress({
        phase: p.phase === 'read' ? 'reading stored requests' : p.phase === 'replay' ? 'replaying recent traffic' : 'writing the new version',
        rowsRead: p.phase === 'read' ? p.processed : undefined,
        fraction: p.total ? Math.min(1, p.processed / p.total) : undefined,
      }),
    });
    if (result.status === 'failed') throw new Error(result.error ?? 'learner run failed');
    // Same process: swap the new version in now rather than at the next poll.
    await services.reloadLearned();
    services.shared?.announceLearned(result.version);
    return { runId: result.runId, version: result.version, previousVersion: result.previousVersion, rowsRead: result.rowsRead, durationMs: result.durationMs, full: result.full, shadow: result.shadow ?? null };
  };
}
