// Weight and enable/disable changes pushed to every instance at once: the instance that stored a
// change publishes it, the others apply it to their registry. Polling the database stays as the
// fallback for messages lost while Redis was away (and every reconnect re-reads the weights).
import { z } from 'zod';
import type { ModelRegistry, WeightChange } from '../dispatch/registry.ts';
import type { Logger } from '../logger.ts';
import { PREFIX, type RedisLink } from './link.ts';

export const WEIGHTS_CHANNEL = `${PREFIX}weights`;

const messageSchema = z.object({
  origin: z.string().max(100),
  models: z.array(z.object({ model: z.string().min(1).max(200), weight: z.number().min(0).max(1000).optional(), enabled: z.boolean().optional() })).max(1000),
});

export class SharedWeights {
  constructor(
    private readonly link: RedisLink,
    registry: ModelRegistry,
    logger: Logger,
    /** Re-read the stored weights (after a reconnect: changes published meanwhile were lost). */
    reload: () => void,
  ) {
    link.subscribe(WEIGHTS_CHANNEL, (message) => {
      const parsed = messageSchema.safeParse(JSON.parse(message));
      if (!parsed.success || parsed.data.origin === link.instanceId) return;
      for (const e of parsed.data.models) registry.setWeight(e.model, e.weight, e.enabled);
      logger.info('weights updated by another instance', { models: parsed.data.models.map((e) => e.model) });
    });
    link.onReady(reload);
  }

  /** Tell the other instances about a change already stored and applied here. */
  publish(entries: WeightChange[]): void {
    void this.link.publish(WEIGHTS_CHANNEL, JSON.stringify({ origin: this.link.instanceId, models: entries.map((e) => ({ model: e.model, weight: e.weight, enabled: e.enabled })) }));
  }
}
