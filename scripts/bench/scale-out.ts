// The bench's scale-out rows: two Switchyard instances sharing one PostgreSQL and one Redis behind
// nginx (round robin), against one instance on the same servers, directly and behind nginx alone.
import { findPostgresBinaries, startPostgres } from '../../test/helpers/postgres.ts';
import { redisUnavailable, startRedis } from '../../test/helpers/redis.ts';
import { startNginx } from './nginx.ts';
import type { SwitchyardProcess } from './switchyard.ts';

export interface ScaleOutRow {
  name: string;
  label: string;
  origin: string;
  /** Processes whose CPU is the row's: the Switchyard instances, and nginx when it is in front. */
  pids: number[];
  /** Switchyard processes serving the row (each needs its own JIT warm-up). */
  processes: number;
  /** Waits until every instance of the row has written its queued records. */
  settle(): Promise<void>;
  /** Added to the request index, so no row sends another's texts (the "asked again" window is shared in Redis). */
  textOffset: number;
}

export interface ScaleOut {
  rows: ScaleOutRow[];
  stop(): Promise<void>;
}

const portOf = (sy: SwitchyardProcess): number => sy.ready.proxyPort;

/** What is missing for these rows (nginx, PostgreSQL, redis-server), or null when they can run. */
export function scaleOutMissing(nginxBin: string | null): string | null {
  let redisMissing: boolean;
  try {
    redisMissing = redisUnavailable() !== null;
  } catch {
    redisMissing = true; // under CI the helper throws instead; the bench only skips
  }
  const missing = [nginxBin ? null : 'nginx', findPostgresBinaries() ? null : 'postgresql', redisMissing ? 'redis-server' : null].filter((m) => m !== null);
  return missing.length > 0 ? missing.join(', ') : null;
}

/**
 * A durable PostgreSQL and a Redis in temp dirs, three instances on them (one alone, two behind one
 * nginx) and a second nginx with the one instance as its only upstream. `spawn` starts an instance
 * with the given extra environment; `drained` waits for one instance's queued writes.
 */
export async function startScaleOut(opts: {
  nginxBin: string;
  spawn: (env: Record<string, string>) => Promise<SwitchyardProcess>;
  drained: (origin: string) => Promise<void>;
}): Promise<ScaleOut> {
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  };
  try {
    const pgServer = await startPostgres({ durable: true });
    stops.push(() => pgServer.stop());
    const redis = await startRedis();
    stops.push(() => redis.close());
    const env = { DATABASE_URL: await pgServer.createDatabase('bench_scale_out'), REDIS_URL: redis.url };
    const instance = async () => {
      const sy = await opts.spawn(env);
      stops.push(async () => {
        await sy.stop();
        await sy.cleanup();
      });
      return sy;
    };
    const one = await instance();
    const pair = [await instance(), await instance()];
    const nginxOne = await startNginx(opts.nginxBin, portOf(one));
    stops.push(nginxOne.stop);
    const nginxPair = await startNginx(opts.nginxBin, pair.map(portOf));
    stops.push(nginxPair.stop);
    const on = 'Switchyard on PostgreSQL + Redis (explicit model, commit mode)';
    return {
      rows: [
        { name: 'scale-one-direct', label: `${on}: 1 instance, direct`, origin: one.url, pids: [one.pid], processes: 1, settle: () => opts.drained(one.url), textOffset: 20_000_000 },
        { name: 'scale-one-nginx', label: `${on}: 1 instance behind nginx`, origin: nginxOne.url, pids: [one.pid, nginxOne.pid], processes: 1, settle: () => opts.drained(one.url), textOffset: 40_000_000 },
        {
          name: 'scale-two-nginx', label: `${on}: 2 instances behind nginx (round robin)`, origin: nginxPair.url, pids: [...pair.map((p) => p.pid), nginxPair.pid], processes: 2,
          settle: async () => {
            for (const p of pair) await opts.drained(p.url);
          },
          textOffset: 60_000_000,
        },
      ],
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
