// The learner-lock contract: one learner run writes versions at a time. learner/lock.ts takes the
// store's lock or a lock file; server/redis/learner-lock.ts implements the lock shared by every
// instance (Redis). Both throw LearnerBusyError when another run holds it.

export interface LockInfo {
  pid: number;
  host: string;
  startedAt: number;
  token: string;
}

/** Thrown when another learner run holds the lock; the message says who and since when. */
export class LearnerBusyError extends Error {
  /** `where`: the lock's place, e.g. `lock file data/learner.lock` or `Redis key switchyard:learner-lock`. */
  constructor(readonly holder: LockInfo | null, lockPath: string, where = `lock file ${lockPath}`) {
    super(holder
      ? `another learner run is in progress (pid ${holder.pid} on ${holder.host}, started ${new Date(holder.startedAt).toISOString()}); ${where}`
      : `another learner run is in progress; ${where}`);
    this.name = 'LearnerBusyError';
  }
}

/**
 * A lock shared by every instance (Redis), taken before the file lock when instances on several
 * hosts share one database: take() resolves with the held lock or throws LearnerBusyError.
 */
export interface SharedLearnerLock {
  take(): Promise<LearnerLock>;
}

export interface LearnerLock {
  readonly path: string;
  release(): Promise<void>;
}
