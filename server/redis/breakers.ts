// Circuit breakers shared between instances. Each instance decides on its own calls with its own
// breaker (the request path never waits on Redis); every open and close it decides is written to
// a Redis hash and published, and every instance adopts the others' decisions as they arrive.
// The later decision wins: a Lua script keeps a model's entry only if it is newer than the stored one.
import type { Result } from 'ioredis';
import { z } from 'zod';
import type { ModelRegistry } from '../dispatch/registry.ts';
import type { BreakerChange } from '../dispatch/breaker.ts';
import type { Logger } from '../logger.ts';
import { PREFIX, type RedisLink } from './link.ts';

const HASH = `${PREFIX}breakers`;
export const BREAKER_CHANNEL = `${PREFIX}breaker-changes`;

/** KEYS[1] hash; ARGV model, decision JSON, its time, message. Stores and publishes only a newer decision. */
const SHARE_DECISION = `
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local ok, prev = pcall(cjson.decode, stored)
  if ok and type(prev) == 'table' and tonumber(prev.at) and tonumber(prev.at) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[4])
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    switchyardShareBreaker(hash: string, channel: string, model: string, decision: string, at: number, message: string): Result<number, Context>;
  }
}

const decisionSchema = z.object({
  state: z.enum(['open', 'closed']),
  at: z.number().finite().positive(),
  reason: z.string().max(2000).nullable(),
});
const messageSchema = decisionSchema.extend({ origin: z.string().max(100), model: z.string().min(1).max(200) });

export class SharedBreakers {
  constructor(
    private readonly link: RedisLink,
    private readonly registry: ModelRegistry,
    private readonly logger: Logger,
  ) {
    link.client.defineCommand('switchyardShareBreaker', { numberOfKeys: 2, lua: SHARE_DECISION });
    for (const m of registry.all()) m.breaker.onChange = (change) => this.share(m.spec.id, change);
    link.subscribe(BREAKER_CHANNEL, (message) => {
      const parsed = messageSchema.safeParse(JSON.parse(message));
      if (!parsed.success || parsed.data.origin === link.instanceId) return;
      this.adopt(parsed.data.model, parsed.data);
    });
    link.onReady(() => void this.resync());
  }

  private adopt(model: string, change: BreakerChange): void {
    const rt = this.registry.get(model);
    if (!rt) return;
    const before = rt.breaker.state;
    rt.breaker.adopt(change);
    if (rt.breaker.state !== before) this.logger.info('breaker changed by another instance', { model, state: rt.breaker.state });
  }

  private share(model: string, change: BreakerChange): void {
    if (!this.link.up) return; // shared again by resync() once Redis is back
    const decision = JSON.stringify({ state: change.state, at: change.at, reason: change.reason?.slice(0, 2000) ?? null });
    const message = JSON.stringify({ origin: this.link.instanceId, model, state: change.state, at: change.at, reason: change.reason?.slice(0, 2000) ?? null });
    this.link.client.switchyardShareBreaker(HASH, BREAKER_CHANNEL, model, decision, change.at, message).catch((err: unknown) => this.link.commandFailed(err));
  }

  /** After (re)connecting: share what was decided here meanwhile, then adopt what others decided. */
  async resync(): Promise<void> {
    try {
      for (const m of this.registry.all()) {
        const d = m.breaker.lastDecision();
        if (d) this.share(m.spec.id, d);
      }
      const stored = await this.link.client.hgetall(HASH);
      for (const [model, raw] of Object.entries(stored)) {
        let value: unknown;
        try {
          value = JSON.parse(raw);
        } catch {
          continue;
        }
        const parsed = decisionSchema.safeParse(value);
        if (parsed.success) this.adopt(model, parsed.data);
      }
    } catch (e) {
      this.logger.debug('redis: breaker resync failed', { err: (e as Error).message });
    }
  }
}
