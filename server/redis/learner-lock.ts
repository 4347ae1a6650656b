// The learner lock across instances: a Redis key set only if absent (SET NX) with a lease that
// its holder renews while it runs, so a crashed run frees the lock within one lease. Only the
// holder's token can renew or delete it. Without Redis reachable no run starts (two hosts could
// otherwise learn at once); the data dir's lock file is still taken after this one.
import type { Result } from 'ioredis';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { LearnerBusyError, type LearnerLock, type LockInfo, type SharedLearnerLock } from '../../core/learner-lock.ts';
import { PREFIX, type RedisLink } from './link.ts';

export const LEARNER_LOCK_KEY = `${PREFIX}learner-lock`;

/** KEYS[1] lock; ARGV token, lease ms. Renews only the holder's own lock. */
const RENEW = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, info = pcall(cjson.decode, v)
if ok and type(info) == 'table' and info.token == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** KEYS[1] lock; ARGV token. Deletes only the holder's own lock. */
const RELEASE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, info = pcall(cjson.decode, v)
if ok and type(info) == 'table' and info.token == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchyardRenewLock(key: string, token: string, leaseMs: number): Result<number, Context>;
    switchyardReleaseLock(key: string, token: string): Result<number, Context>;
  }
}

const holderSchema = z.object({ pid: z.number(), host: z.string(), startedAt: z.number(), token: z.string() });

export class RedisLearnerLock implements SharedLearnerLock {
  constructor(
    private readonly link: RedisLink,
    private readonly opts: { leaseMs?: number; now?: () => number } = {},
  ) {
    link.client.defineCommand('switchyardRenewLock', { numberOfKeys: 1, lua: RENEW });
    link.client.defineCommand('switchyardReleaseLock', { numberOfKeys: 1, lua: RELEASE });
  }

  async take(): Promise<LearnerLock> {
    const leaseMs = this.opts.leaseMs ?? 60_000;
    const info: LockInfo = { pid: process.pid, host: hostname(), startedAt: (this.opts.now ?? Date.now)(), token: randomUUID() };
    const client = this.link.client;
    let set: string | null;
    try {
      set = await client.set(LEARNER_LOCK_KEY, JSON.stringify(info), 'PX', leaseMs, 'NX');
    } catch (e) {
      throw new Error(`the learner lock is in Redis (${this.link.where}), which cannot be reached (${(e as Error).message}); not starting a run`);
    }
    if (set !== 'OK') {
      const raw = await client.get(LEARNER_LOCK_KEY).catch(() => null);
      let holder: LockInfo | null = null;
      try {
        const parsed = holderSchema.safeParse(raw ? JSON.parse(raw) : null);
        holder = parsed.success ? parsed.data : null;
      } catch {
        holder = null;
      }
      throw new LearnerBusyError(holder, LEARNER_LOCK_KEY, `Redis key ${LEARNER_LOCK_KEY}`);
    }
    // Renew at a third of the lease: two renewals may fail (a Redis blip) before it lapses.
    const renewal = setInterval(() => {
      client.switchyardRenewLock(LEARNER_LOCK_KEY, info.token, leaseMs).catch(() => undefined);
    }, Math.max(10, Math.floor(leaseMs / 3)));
    renewal.unref();
    return {
      path: `redis:${LEARNER_LOCK_KEY}`,
      async release() {
        clearInterval(renewal);
        await client.switchyardReleaseLock(LEARNER_LOCK_KEY, info.token).catch(() => undefined);
      },
    };
  }
}
