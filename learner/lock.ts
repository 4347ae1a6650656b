// Exclusive learner lock, so only one learner run writes versions at a time: the store's own lock
// when it has one (PostgreSQL: an advisory lock, held across every instance on the database), else
// a file created with 'wx' under the data dir. A lock file whose process is gone (same host) or
// that is too old is stale.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LearnerBusyError, type LearnerLock, type LockInfo } from '../core/learner-lock.ts';
import type { Store } from '../core/store.ts';

// The lock contract (also implemented by server/redis/learner-lock.ts) lives in core/learner-lock.ts.
export { LearnerBusyError, type LearnerLock, type LockInfo, type SharedLearnerLock } from '../core/learner-lock.ts';

export interface LockOptions {
  now?: () => number;
  /** A lock older than this is considered abandoned whatever its pid (default 6 h). */
  staleAfterMs?: number;
  /** The store whose shared lock (if it has one) replaces the lock file. */
  store?: Pick<Store, 'tryLearnerLock' | 'engine'>;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(file: string): Promise<LockInfo | null> {
  try {
    const info = JSON.parse(await readFile(file, 'utf8')) as Partial<LockInfo>;
    if (typeof info.pid === 'number' && typeof info.host === 'string' && typeof info.startedAt === 'number' && typeof info.token === 'string') return info as LockInfo;
    return null;
  } catch {
    return null;
  }
}

/**
 * The holder of a lock file that may have been created a moment ago: 'wx' creates the file before
 * its content is written, so an empty read is retried for up to 100 ms before it counts as unreadable.
 */
async function readSettledHolder(file: string): Promise<LockInfo | null> {
  for (let i = 0; ; i++) {
    const holder = await readHolder(file);
    if (holder || i === 10) return holder;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function isStale(file: string, holder: LockInfo | null, now: number, staleAfterMs: number): Promise<boolean> {
  if (!holder) {
    // Unreadable: either being written right now by its creator, or left half-written by a crash.
    const mtime = await stat(file).then((s) => s.mtimeMs, () => 0);
    return Date.now() - mtime > 10_000;
  }
  if (now - holder.startedAt > staleAfterMs) return true;
  return holder.host === hostname() && !processAlive(holder.pid);
}

/** Take the lock or throw LearnerBusyError. A stale lock is removed once and taking it retried. */
export async function acquireLearnerLock(dataDir: string, opts: LockOptions = {}): Promise<LearnerLock> {
  const now = opts.now ?? Date.now;
  const staleAfterMs = opts.staleAfterMs ?? 6 * 3_600_000;
  if (opts.store?.tryLearnerLock) {
    const held = await opts.store.tryLearnerLock();
    const where = `${opts.store.engine} advisory lock`;
    if (!held) throw new LearnerBusyError(null, where, `${where} held by another instance`);
    return { path: where, release: () => held.release() };
  }
  const file = path.join(dataDir, 'learner.lock');
  await mkdir(dataDir, { recursive: true });
  const info: LockInfo = { pid: process.pid, host: hostname(), startedAt: now(), token: randomUUID() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, JSON.stringify(info), { flag: 'wx' });
      return {
        path: file,
        async release() {
          const holder = await readHolder(file);
          if (holder?.token === info.token) await unlink(file).catch(() => undefined);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await readSettledHolder(file);
      if (attempt > 0 || !(await isStale(file, holder, now(), staleAfterMs))) throw new LearnerBusyError(holder, file);
      await unlink(file).catch(() => undefined);
    }
  }
  throw new LearnerBusyError(null, file);
}
