// One gateway's connection to Redis (REDIS_URL): a command client and a subscriber, their health
// for /health, and logging of each outage once. Commands fail fast while Redis is away, so every
// caller can fall back to its per-instance state instead of waiting or failing the request.
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.ts';

export type RedisStatus = 'connecting' | 'ok' | 'down';

/** What /health shows of the shared state. */
export interface SharedHealth {
  backend: 'redis';
  status: RedisStatus;
  /** Why it is not 'ok', in a few words. */
  error: string | null;
}

/** Keys and channels of one gateway deployment. */
export const PREFIX = 'switchyard:';

export interface RedisLinkOptions {
  url: string;
  logger: Logger;
  /** Fail a command after this long (ms); the caller then uses local state. */
  commandTimeoutMs?: number;
}

/** The URL as it may be shown: no user name or password. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString();
  } catch {
    return 'redis://[unparseable url]';
  }
}

/** The password (and user name) in a Redis URL, for the logger's list of values never printed. */
export function redisUrlSecrets(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const u = new URL(url);
    return [u.password, u.password && decodeURIComponent(u.password)].filter((s): s is string => Boolean(s));
  } catch {
    return [];
  }
}

type Handler = (message: string) => void;

export class RedisLink {
  /** This process's id in published messages, so it can skip its own. */
  readonly instanceId = randomUUID();
  readonly client: Redis;
  private readonly sub: Redis;
  private readonly handlers = new Map<string, Handler[]>();
  private readonly readyListeners: (() => void)[] = [];
  private statusNow: RedisStatus = 'connecting';
  /** A ping loop is checking whether a Redis that stopped answering answers again. */
  private probing = false;
  private lastError: string | null = null;
  private closed = false;
  readonly where: string;

  constructor(private readonly opts: RedisLinkOptions) {
    this.where = redactRedisUrl(opts.url);
    const common: RedisOptions = {
      connectTimeout: 2000,
      // Reconnect for ever, at most every 2 s: the gateway serves on local state meanwhile.
      retryStrategy: (times) => Math.min(100 * times, 2000),
      maxRetriesPerRequest: 0,
      lazyConnect: true,
    };
    this.client = new Redis(opts.url, { ...common, enableOfflineQueue: false, enableAutoPipelining: true, commandTimeout: opts.commandTimeoutMs ?? 500, connectionName: 'switchyard' });
    // The subscriber re-subscribes by itself after a reconnect (autoResubscribe).
    this.sub = new Redis(opts.url, { ...common, connectionName: 'switchyard-sub' });
    this.client.on('ready', () => this.setStatus('ok'));
    this.client.on('error', (e: Error) => {
      this.lastError = scrub(e.message, opts.url);
    });
    this.client.on('close', () => {
      if (!this.closed && this.statusNow !== 'down' && this.client.status !== 'ready') this.setStatus('down');
    });
    this.sub.on('error', () => undefined);
    this.sub.on('message', (channel: string, message: string) => {
      for (const h of this.handlers.get(channel) ?? []) {
        try {
          h(message);
        } catch (e) {
          opts.logger.warn('redis: a shared-state update could not be applied', { channel, err: (e as Error).message });
        }
      }
    });
    this.sub.on('ready', () => {
      // After a reconnect, messages sent meanwhile are lost: listeners re-read what they share.
      if (this.statusNow === 'ok') for (const l of this.readyListeners) l();
    });
  }

  /** Connect; resolves when connected or after waitMs (the gateway then starts on local state). */
  async start(waitMs = 2000): Promise<void> {
    const connected = Promise.all([this.client.connect(), this.sub.connect()]).then(() => true, () => false);
    const ok = await Promise.race([connected, new Promise<false>((r) => setTimeout(() => r(false), waitMs).unref())]);
    if (!ok && this.statusNow !== 'ok') this.setStatus('down');
  }

  /** True while commands can be sent. */
  get up(): boolean {
    return this.statusNow === 'ok' && this.client.status === 'ready';
  }

  /** For /health: the reason in a few words, never the address or the client's own message (the log has those). */
  health(): SharedHealth {
    return { backend: 'redis', status: this.statusNow, error: this.statusNow === 'ok' ? null : reasonOf(this.lastError) };
  }

  /**
   * A command failed. A timeout means Redis holds the connection open but does not answer (hung,
   * overloaded, paused): stop sending commands until a ping is answered, so requests do not each
   * wait out the timeout. A closed connection is noticed by the client itself.
   */
  commandFailed(err: unknown): void {
    if (!(err instanceof Error) || !/timed out/i.test(err.message) || this.statusNow !== 'ok') return;
    this.lastError = 'commands time out';
    this.setStatus('down');
    if (this.probing) return;
    this.probing = true;
    const tick = () => {
      if (this.closed || this.statusNow === 'ok') {
        this.probing = false;
        return;
      }
      this.client.ping().then(
        () => {
          this.probing = false;
          if (this.client.status === 'ready') this.setStatus('ok');
        },
        () => setTimeout(tick, 1000).unref(),
      );
    };
    setTimeout(tick, 1000).unref();
  }

  /** Called whenever the connection (re)opens: re-read shared state that pub/sub may have missed. */
  onReady(listener: () => void): void {
    this.readyListeners.push(listener);
  }

  subscribe(channel: string, handler: Handler): void {
    const list = this.handlers.get(channel);
    if (list) list.push(handler);
    else {
      this.handlers.set(channel, [handler]);
      this.sub.subscribe(channel).catch((e: Error) => this.opts.logger.warn('redis: subscribe failed', { channel, err: scrub(e.message, this.opts.url) }));
    }
  }

  /**
   * Best effort: a lost message is made up for by polling and by re-reading on reconnect. Resolves
   * once sent (or given up), so a process about to close can wait for it; never rejects.
   */
  publish(channel: string, message: string): Promise<void> {
    if (!this.up) return Promise.resolve();
    return this.client.publish(channel, message).then(() => undefined, () => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.client.quit().catch(() => this.client.disconnect()), this.sub.quit().catch(() => this.sub.disconnect())]);
  }

  private setStatus(to: RedisStatus): void {
    if (this.closed || to === this.statusNow) return;
    const from = this.statusNow;
    this.statusNow = to;
    if (to === 'down') this.opts.logger.warn('redis unavailable: rate limits, breakers and the asked-again window are per instance until it is back', { redis: this.where, err: this.lastError });
    else if (to === 'ok') {
      if (from === 'down') this.opts.logger.info('redis back: state is shared again', { redis: this.where });
      for (const l of this.readyListeners) l();
    }
  }
}

function reasonOf(message: string | null): string {
  if (message === null) return 'not connected yet';
  if (message === 'commands time out') return message;
  if (/ECONNREFUSED/.test(message)) return 'connection refused';
  if (/WRONGPASS|NOAUTH|invalid password|AUTH/i.test(message)) return 'authentication failed';
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return 'host not found';
  if (/timed? ?out|ETIMEDOUT/i.test(message)) return 'connection timed out';
  return 'unreachable';
}

/** An error message without the URL's credentials. */
function scrub(message: string, url: string): string {
  let out = message;
  for (const s of redisUrlSecrets(url)) out = out.split(s).join('[redacted]');
  return out.slice(0, 300);
}
