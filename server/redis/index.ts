// State shared between gateway instances through Redis (REDIS_URL): rate-limit buckets, breaker
// decisions, the "asked again" window, weight changes and the learner lock. Built once per
// process by services.ts; without REDIS_URL nothing here exists and every instance keeps its own.
import type { ModelRegistry, WeightChange } from '../dispatch/registry.ts';
import type { RateLimiter, RequestLimiter } from '../http/middleware.ts';
import type { Logger } from '../logger.ts';
import type { SharedLearnerLock } from '../../core/learner-lock.ts';
import { RedisLink, type SharedHealth } from './link.ts';
import { SharedRateLimiter } from './rate-limit.ts';
import { SharedBreakers } from './breakers.ts';
import { SharedWeights } from './weights.ts';
import { RedisRepeatWindow, type SharedRepeatWindow } from './repeats.ts';
import { RedisLearnerLock } from './learner-lock.ts';
import { announceLearned, onLearnedAnnounced } from './learned.ts';

export type { SharedHealth } from './link.ts';

export interface SharedState {
  /** The rate limiter every route uses, given the instance's own as the fallback. */
  limiter(local: RateLimiter, opts: { rps: number; burst: number }): RequestLimiter;
  repeats: SharedRepeatWindow;
  learnerLock: SharedLearnerLock;
  /** Tell the other instances about a weight change stored and applied here. */
  publishWeights(entries: WeightChange[]): void;
  /** Tell the other instances a learner run wrote a new version. */
  announceLearned(version: number | null): void;
  /** Run `reload` whenever another process announces a new learned version (null: not said). */
  onLearned(reload: (version: number | null) => void): void;
  health(): SharedHealth;
  close(): Promise<void>;
}

export interface SharedStateOptions {
  url: string;
  logger: Logger;
  registry: ModelRegistry;
  /** Re-read the stored weights (on every (re)connect). */
  reloadWeights: () => void;
  /** How long start-up waits for Redis before serving on local state (ms). */
  connectWaitMs?: number;
}

export async function connectSharedState(opts: SharedStateOptions): Promise<SharedState> {
  const link = new RedisLink({ url: opts.url, logger: opts.logger });
  new SharedBreakers(link, opts.registry, opts.logger);
  const weights = new SharedWeights(link, opts.registry, opts.logger, opts.reloadWeights);
  const repeats = new RedisRepeatWindow(link);
  const learnerLock = new RedisLearnerLock(link);
  await link.start(opts.connectWaitMs);
  if (link.up) opts.logger.info('sharing state through redis', { redis: link.where });
  return {
    limiter: (local, limits) => new SharedRateLimiter(link, local, limits),
    repeats,
    learnerLock,
    publishWeights: (entries) => weights.publish(entries),
    announceLearned: (version) => void announceLearned(link, version),
    onLearned: (reload) => onLearnedAnnounced(link, reload),
    health: () => link.health(),
    close: () => link.close(),
  };
}

/** What `npm run learn` needs: the learner lock, and telling the gateways about a new version. */
export async function connectLearnerLock(url: string, logger: Logger): Promise<{ lock: SharedLearnerLock; announce(version: number | null): Promise<void>; close(): Promise<void> }> {
  const link = new RedisLink({ url, logger });
  const lock = new RedisLearnerLock(link);
  await link.start();
  return { lock, announce: (version) => announceLearned(link, version), close: () => link.close() };
}
