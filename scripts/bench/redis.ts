// `npm run bench:redis`: what sharing state through Redis costs the proxy path. The same gateway
// with rate limiting on (a bucket per client) and its own state; with REDIS_URL and no rate limit
// (the asked-again swap after each answer); and with REDIS_URL and the shared limiter (plus one
// Lua call per request): interleaved rounds against one fast upstream on loopback, then one
// request at a time, each alternating with the first. Writes bench-results/redis.json. Flags: --quick.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from './child.ts';
import { mergeRounds, probeLatency, runLoad, type LoadResult } from './load.ts';
import { spawnSwitchyard } from './switchyard.ts';
import { startBenchUpstream } from './upstream.ts';
import { redisUnavailable, startRedis } from '../../test/helpers/redis.ts';
import type { ModelSpecInput } from '../../server/config.ts';

const { values: flags } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const ROUNDS = flags.quick ? 3 : 5;
const ROUND_S = flags.quick ? 2 : 4;
const CONNECTIONS = 50;
const PROBE_N = flags.quick ? 300 : 2000;

const log = (msg: string) => console.log(`[bench:redis ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const body = (i: number) => JSON.stringify({ model: 'bench-fast', messages: [{ role: 'user', content: `bench question number ${i}` }] });

async function main(): Promise<void> {
  const missing = redisUnavailable();
  if (missing) {
    console.error(`bench:redis ${missing}`);
    process.exit(2);
  }
  const redis = await startRedis();
  const upstream = await startBenchUpstream();
  const models: ModelSpecInput[] = [{ id: 'bench-fast', provider: 'openai', baseUrl: upstream.url, upstreamModel: 'bench-fast' }];
  // A limit no client reaches: every request pays for its token, none is refused.
  const env = { SWITCHYARD_LOG_LEVEL: 'warn', JUDGE_ENABLED: '0', MAX_CONCURRENT_PER_MODEL: '1024', RATE_LIMIT_RPS: '1000000', RATE_LIMIT_BURST: '1000000' };
  const rows = [
    { name: 'local', label: 'no REDIS_URL, rate limit per instance', proc: await spawnSwitchyard({ models, env }) },
    { name: 'redis-no-limit', label: 'REDIS_URL, no rate limit (asked-again swap after each answer)', proc: await spawnSwitchyard({ models, env: { ...env, RATE_LIMIT_RPS: '0', REDIS_URL: redis.url } }) },
    { name: 'redis', label: 'REDIS_URL, shared rate limit (one Lua call per request too)', proc: await spawnSwitchyard({ models, env: { ...env, REDIS_URL: redis.url } }) },
  ];
  try {
    const rounds = new Map<string, LoadResult[]>(rows.map((r) => [r.name, []]));
    let next = 0;
    for (const r of rows) await runLoad({ url: `${r.proc.url}/v1/chat/completions`, body, durationS: 1, connections: CONNECTIONS, firstIndex: (next += 1_000_000) });
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order, so no row always runs first or last.
      for (const r of rows.map((_, i) => rows[(i + round) % rows.length]!)) {
        const result = await runLoad({ url: `${r.proc.url}/v1/chat/completions`, body, durationS: ROUND_S, connections: CONNECTIONS, firstIndex: (next += 1_000_000) });
        rounds.get(r.name)!.push(result);
        log(`${r.name} round ${round + 1}: ${result.rps} req/s`);
      }
    }
    const baseline = rows[0]!;
    const report = {
      rounds: ROUNDS, roundSeconds: ROUND_S, connections: CONNECTIONS, machineLoadAverage: os.loadavg(),
      rows: [] as { name: string; label: string; rps: number; roundsRps?: number[]; p50: number; p99: number; non2xx: number; oneAtATimeP50: number | null; addedP50VsLocal: number | null }[],
    };
    for (const r of rows) {
      const load = mergeRounds(rounds.get(r.name)!);
      let oneAtATime: number | null = null;
      let added: number | null = null;
      if (r !== baseline) {
        const probe = await probeLatency(
          { origin: r.proc.url, path: '/v1/chat/completions', body: () => body((next += 1)) },
          PROBE_N,
          { origin: baseline.proc.url, path: '/v1/chat/completions', body: () => body((next += 1)) },
        );
        oneAtATime = probe.target.latencyMs.p50;
        added = probe.target.latencyMs.p50 - probe.baseline!.latencyMs.p50;
      }
      report.rows.push({ name: r.name, label: r.label, rps: load.rps, roundsRps: load.roundsRps, p50: load.latencyMs.p50, p99: load.latencyMs.p99, non2xx: load.non2xx, oneAtATimeP50: oneAtATime, addedP50VsLocal: added });
    }
    console.log('\n| Gateway | req/s (median round) | p50 / p99 under load (ms) | added p50 one at a time vs the first row (ms) |\n|---|---:|---:|---:|');
    for (const r of report.rows) console.log(`| ${r.label} | ${r.rps} | ${r.p50.toFixed(2)} / ${r.p99.toFixed(2)} | ${r.addedP50VsLocal === null ? '–' : r.addedP50VsLocal.toFixed(3)} |`);
    console.log(`\nload average while measuring: ${os.loadavg().map((v) => v.toFixed(1)).join(' ')} on ${os.availableParallelism()} cores`);
    const out = path.join(repoRoot, 'bench-results', 'redis.json');
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, JSON.stringify(report, null, 2));
    log(`wrote ${path.relative(process.cwd(), out)}`);
  } finally {
    for (const r of rows) {
      await r.proc.stop();
      await r.proc.cleanup();
    }
    await upstream.close();
    await redis.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
