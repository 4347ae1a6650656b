// The "asked again" window shared by every instance: one SET ... GET per answered request swaps
// in this request and hands back the previous one with the same fingerprint, whichever instance
// answered it. Keys expire with the window, so Redis holds at most one window of fingerprints.
import { z } from 'zod';
import { PREFIX, type RedisLink } from './link.ts';

export interface RepeatEntry {
  requestId: string;
  ts: number;
}

/** What the gateway needs: swap in the latest request for a fingerprint, get the one before. */
export interface SharedRepeatWindow {
  /** Rejects when Redis cannot answer (the gateway then uses its own window). */
  swap(fingerprint: number, entry: RepeatEntry, windowMs: number): Promise<RepeatEntry | null>;
  readonly up: boolean;
}

const entrySchema = z.object({ requestId: z.string().min(1).max(200), ts: z.number().finite() });

export class RedisRepeatWindow implements SharedRepeatWindow {
  constructor(private readonly link: RedisLink) {}

  get up(): boolean {
    return this.link.up;
  }

  async swap(fingerprint: number, entry: RepeatEntry, windowMs: number): Promise<RepeatEntry | null> {
    const key = `${PREFIX}asked:${fingerprint.toString(36)}`;
    let previous: string | null;
    try {
      previous = (await this.link.client.call('SET', key, JSON.stringify(entry), 'PX', String(windowMs), 'GET')) as string | null;
    } catch (err) {
      this.link.commandFailed(err);
      throw err;
    }
    if (previous === null) return null;
    try {
      const parsed = entrySchema.safeParse(JSON.parse(previous));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }
}
