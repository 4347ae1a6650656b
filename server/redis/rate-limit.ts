// Token buckets shared by every instance: one Lua script reads, refills and takes from a client's
// bucket atomically on the Redis server's clock. While Redis is away the instance's own buckets serve.
import type { Result } from 'ioredis';
import { createHash } from 'node:crypto';
import { rateLimitError, type RateLimiter, type RequestLimiter } from '../http/middleware.ts';
import { PREFIX, type RedisLink } from './link.ts';

/**
 * KEYS[1] bucket; ARGV rps, burst. Returns {1|0 taken, tokens left as a string}. Time comes from
 * the server (TIME), so instances with skewed clocks still share one refill rate. The bucket
 * expires once it would be full again anyway.
 */
const TAKE_TOKEN = `
local rps = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) / 1000 * rps) end
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rps * 1000) + 1000)
return {taken, tostring(tokens)}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchyardTakeToken(key: string, rps: number, burst: number): Result<[number, string], Context>;
  }
}

export class SharedRateLimiter implements RequestLimiter {
  constructor(
    private readonly link: RedisLink,
    /** Serves while Redis is away (the same buckets as without Redis). */
    private readonly local: RateLimiter,
    private readonly opts: { rps: number; burst: number },
  ) {
    link.client.defineCommand('switchyardTakeToken', { numberOfKeys: 1, lua: TAKE_TOKEN });
  }

  take(who: string): void | Promise<void> {
    const { rps, burst } = this.opts;
    if (rps <= 0) return;
    if (!this.link.up) return this.local.take(who);
    return this.link.client.switchyardTakeToken(bucketKey(who), rps, burst).then(
      ([taken, tokens]) => {
        if (taken !== 1) throw rateLimitError(rps, burst, Number(tokens));
      },
      (err: unknown) => {
        this.link.commandFailed(err);
        return this.local.take(who);
      },
    );
  }
}

/** Client keys never appear in Redis: the bucket is named by a hash of who. */
function bucketKey(who: string): string {
  return `${PREFIX}rl:${createHash('sha256').update(who).digest('base64url').slice(0, 22)}`;
}
