// A new learned version announced to every instance: the process that finished a learner run
// (the admin page's "run now" or `npm run learn`) publishes, every other instance reloads at once
// instead of at its next 10 s poll (which stays as the fallback).
import { PREFIX, type RedisLink } from './link.ts';

export const LEARNED_CHANNEL = `${PREFIX}learned`;

export function announceLearned(link: RedisLink, version: number | null): Promise<void> {
  return link.publish(LEARNED_CHANNEL, JSON.stringify({ origin: link.instanceId, version }));
}

/** Calls `reload` with the announced version (null when unknown) for every announcement from another process. */
export function onLearnedAnnounced(link: RedisLink, reload: (version: number | null) => void): void {
  link.subscribe(LEARNED_CHANNEL, (message) => {
    const { origin, version } = JSON.parse(message) as { origin?: unknown; version?: unknown };
    if (origin !== link.instanceId) reload(typeof version === 'number' ? version : null);
  });
}
