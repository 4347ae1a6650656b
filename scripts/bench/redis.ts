// `npm run bench:redis`: what sharing state through Redis costs the proxy path. The same gateway
// with rate limiting on (a bucket per client), once with its own buckets and once with REDIS_URL
// (one Lua call per request), in interleaved rounds against one fast upstream on loopback; then
// one request at a time, the two alternating. Writes bench-results/redis.json. Flags: --quick.
import { mkdir, writeFile } from 'node:fs/promises';
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
    { name: 'local', label: 'rate limit per instance (no REDIS_URL)', proc: await spawnSwitchyard({ models, env }) },
    { name: 'redis', label: 'rate limit shared (REDIS_URL, one Lua call per request)', proc: await spawnSwitchyard({ models, env: { ...env, REDIS_URL: redis.url } }) },
  ];
  try {
    const rounds = new Map<string, LoadResult[]>(rows.map((r) => [r.name, []]));
    let next = 0;
    for (const r of rows) await runLoad({ url: `${r.proc.url}/v1/chat/completions`, body, durationS: 1, connections: CONNECTIONS, firstIndex: (next += 1_000_000) });
    for (let round = 0; round < ROUNDS; round++) {
      for (const r of round % 2 ? [...rows].reverse() : rows) {
        const result = await runLoad({ url: `${r.proc.url}/v1/chat/completions`, body, durationS: ROUND_S, connections: CONNECTIONS, firstIndex: (next += 1_000_000) });
        rounds.get(r.name)!.push(result);
        log(`${r.name} round ${round + 1}: ${result.rps} req/s`);
      }
    }
    const probe = await probeLatency(
      { origin: rows[1]!.proc.url, path: '/v1/chat/completions', body: (i) => body(5_000_000 + i) },
      PROBE_N,
      { origin: rows[0]!.proc.url, path: '/v1/chat/completions', body: (i) => body(6_000_000 + i) },
    );
    const local = mergeRounds(rounds.get('local')!);
    const shared = mergeRounds(rounds.get('redis')!);
    const report = {
      rounds: ROUNDS, roundSeconds: ROUND_S, connections: CONNECTIONS,
      rows: [
        { name: 'local', label: rows[0]!.label, rps: local.rps, roundsRps: local.roundsRps, p50: local.latencyMs.p50, p99: local.latencyMs.p99, non2xx: local.non2xx, oneAtATimeP50: probe.baseline!.latencyMs.p50 },
        { name: 'redis', label: rows[1]!.label, rps: shared.rps, roundsRps: shared.roundsRps, p50: shared.latencyMs.p50, p99: shared.latencyMs.p99, non2xx: shared.non2xx, oneAtATimeP50: probe.target.latencyMs.p50 },
      ],
      addedP50OneAtATimeMs: probe.target.latencyMs.p50 - probe.baseline!.latencyMs.p50,
      throughputShare: local.rps ? shared.rps / local.rps : null,
    };
    console.log('\n| Rate limiter | req/s | p50 / p99 under load (ms) | p50 one at a time (ms) |\n|---|---:|---:|---:|');
    for (const r of report.rows) console.log(`| ${r.label} | ${r.rps} | ${r.p50.toFixed(2)} / ${r.p99.toFixed(2)} | ${r.oneAtATimeP50.toFixed(3)} |`);
    console.log(`\nshared limiter: ${(100 * (report.throughputShare ?? 0)).toFixed(1)}% of the local limiter's throughput; adds ${report.addedP50OneAtATimeMs.toFixed(3)} ms p50 one request at a time`);
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
