// `npm run bench`: how much Switchyard adds on top of an upstream, against the upstream direct and
// nginx as a plain reverse proxy, all on loopback: throughput, latency, streaming TTFB, CPU per
// request, memory over a 60 s soak, and two instances on PostgreSQL + Redis behind nginx against
// one. Flags: --profile (CPU profiles), --quick.
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, spawnNodeChild } from './child.ts';
import { findNginx, startNginx } from './nginx.ts';
import { mergeRounds, probeLatency, probeTtfb, runLoad, type LoadResult, type ProbeTarget } from './load.ts';
import { mb, procAvailable, rssBytes, treeCpuTimeMs, treeRssBytes } from './procstat.ts';
import { attachHeapProbe, inspectorUrl } from './inspector.ts';
import { summarizeProfile, type ProfileSummary } from './profile.ts';
import { evaluateGoals, printSummary, soakGrowth, type BenchReport, type ScenarioResult, type SoakResult, type SoakSample } from './report.ts';
import { benchQuery, benchRng, seedLearnedState, type SeedResult } from './seed.ts';
import { spawnSwitchyard, type SwitchyardProcess } from './switchyard.ts';
import { scaleOutMissing, startScaleOut } from './scale-out.ts';
import { writeBenchmarksDoc } from './docs.ts';
import type { ModelSpecInput } from '../../server/config.ts';
import { findPostgresBinaries, startPostgres } from '../../test/helpers/postgres.ts';

const { values: flags } = parseArgs({
  options: {
    soak: { type: 'boolean', default: false }, // kept for old scripts: the soak is 60 s by default now
    profile: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    connections: { type: 'string' },
    'upstream-delay': { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
  },
});

const quick = flags.quick;
const ROUNDS = quick ? 3 : 5;
/** Load per row, in seconds, split into ROUNDS interleaved rounds. */
const DURATION_S = Number(flags.duration ?? (quick ? 3 : 15));
const ROUND_S = Math.max(1, Math.round(DURATION_S / ROUNDS));
const WARMUP_S = quick ? 1 : 5;
const CONNECTIONS = Number(flags.connections ?? 50);
const PROBE_N = quick ? 300 : 2000;
const TTFB_N = quick ? 50 : 300;
const SOAK_S = quick ? 10 : 60;
const SEEDED = quick ? 2000 : 10_000;
const UPSTREAM_DELAY_MS = Number(flags['upstream-delay'] ?? 0);
const MODELS = ['bench-coder', 'bench-fast', 'bench-large'];
const resultsDir = path.join(repoRoot, 'bench-results');

/** Unique texts (a repeated text from the same client counts as dissatisfaction in the gateway). */
const queries = (() => {
  const rng = benchRng(7);
  return Array.from({ length: 4096 }, () => benchQuery(rng));
})();
const text = (i: number) => `${queries[i % queries.length]} (#${i})`;
const upstreamBody = (i: number) => JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: text(i) }] });
const explicitBody = (i: number) => JSON.stringify({ model: 'bench-fast', messages: [{ role: 'user', content: text(i) }] });
const autoBody = (i: number) => JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: text(i) }] });
const streamBody = (modelId: string) => (i: number) => JSON.stringify({ model: modelId, stream: true, messages: [{ role: 'user', content: text(i) }] });
const mixedBody = (i: number) => (i % 2 === 0 ? explicitBody(i) : autoBody(i));

const log = (msg: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** Waits (at most 30 s) until Switchyard has written its queued records, so a probe runs on an idle server. */
async function storeDrained(origin: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const health = (await (await fetch(`${origin}/health`)).json()) as { store?: { pending_writes?: number } };
    if (!health.store?.pending_writes) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  log('the store still had queued writes after 30 s; probing anyway');
}

/** Warm up, then load for DURATION_S while reading the serving process's CPU time, then probe. */
const ROUTE = '/v1/chat/completions';

interface Row {
  name: string;
  label: string;
  origin: string;
  body: (i: number) => string;
  pid: number;
  /** More processes whose CPU and memory are the row's (the other instances, nginx in front). */
  morePids?: number[];
  /** The row has its process to itself: all its CPU time during the phase (queued writes too) is the row's. */
  ownProcess: boolean;
  /** Wait until the process has caught up with deferred work (Switchyard: queued writes). */
  settle?: () => Promise<void>;
  /** Direct requests alternated with this row's one-at-a-time probe. */
  baseline?: ProbeTarget;
  /** Processes serving the row (cluster workers each need their own JIT warm-up). */
  processes?: number;
}

const rowPids = (r: Row): number[] => [r.pid, ...(r.morePids ?? [])];
const rowCpu = (r: Row): number => rowPids(r).reduce((sum, pid) => sum + treeCpuTimeMs(pid), 0);
/** RSS of every process of the row, or null once one is gone. */
function rowRss(r: Row): number | null {
  let total = 0;
  for (const pid of rowPids(r)) {
    const rss = treeRssBytes(pid);
    if (rss === null) return null;
    total += rss;
  }
  return total;
}

/**
 * Every row in ROUNDS rounds, interleaved (row 1, row 2, ..., row 1, ...), so a noisy neighbour on
 * a shared machine slows every row alike instead of whichever happened to run at that moment; a
 * row's throughput is its median round. Then each row's one-at-a-time probe, after the store
 * has caught up.
 */
async function measureRows(rows: Row[]): Promise<ScenarioResult[]> {
  log(`load: ${rows.length} rows interleaved, ${ROUNDS} rounds of ${ROUND_S} s x ${CONNECTIONS} connections each (after a ${WARMUP_S} s warm-up per row and serving process)`);
  const next = rows.map(() => 0);
  const load = async (i: number, durationS: number): Promise<LoadResult> => {
    const r = rows[i]!;
    const l = await runLoad({ url: r.origin + ROUTE, body: r.body, durationS, connections: CONNECTIONS, firstIndex: next[i] });
    next[i]! += l.requests + CONNECTIONS;
    return l;
  };
  for (let i = 0; i < rows.length; i++) await load(i, WARMUP_S * (rows[i]!.processes ?? 1));
  for (const r of rows) await r.settle?.();
  const cpuStart = rows.map(rowCpu);
  const windowCpu = rows.map(() => 0);
  const rounds: LoadResult[][] = rows.map(() => []);
  for (let k = 0; k < ROUNDS; k++) {
    for (let i = 0; i < rows.length; i++) {
      const c = rowCpu(rows[i]!);
      rounds[i]!.push(await load(i, ROUND_S));
      windowCpu[i]! += rowCpu(rows[i]!) - c;
    }
  }
  for (const r of rows) await r.settle?.();
  const results: ScenarioResult[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const merged = mergeRounds(rounds[i]!);
    const cpuMs = r.ownProcess ? rowCpu(r) - cpuStart[i]! : windowCpu[i]!;
    const rss = rowRss(r);
    log(`${r.label}: ${merged.rps} req/s (rounds ${merged.roundsRps!.join(', ')}); ${PROBE_N} sequential requests${r.baseline ? ' alternating with direct ones' : ''}`);
    // Texts the load did not use: a repeated text counts as "asked again" in Switchyard.
    const probe = await probeLatency({ origin: r.origin, path: ROUTE, body: (j) => r.body(10_000_000 + j) }, PROBE_N, r.baseline);
    results.push({ name: r.name, label: r.label, load: merged, probe: probe.target, probeBaseline: probe.baseline ?? undefined, cpuMsPerRequest: merged.requests ? cpuMs / merged.requests : null, rssMbAfter: rss === null ? null : mb(rss) });
  }
  return results;
}

function switchyardModels(upstreamUrl: string): ModelSpecInput[] {
  return [
    { id: 'bench-coder', provider: 'openai', baseUrl: upstreamUrl, upstreamModel: 'bench-coder', costPer1kInput: 0.0005, costPer1kOutput: 0.0015, tags: ['code'], description: 'bench model: code and data' },
    { id: 'bench-fast', provider: 'openai', baseUrl: upstreamUrl, upstreamModel: 'bench-fast', costPer1kInput: 0.0001, costPer1kOutput: 0.0002, tags: ['chat', 'fast'], description: 'bench model: fast chat' },
    { id: 'bench-large', provider: 'openai', baseUrl: upstreamUrl, upstreamModel: 'bench-large', costPer1kInput: 0.003, costPer1kOutput: 0.015, tags: ['reasoning', 'writing', 'math'], description: 'bench model: reasoning and writing' },
  ];
}

const switchyardEnv = { SWITCHYARD_LOG_LEVEL: 'warn', JUDGE_ENABLED: '0', MAX_CONCURRENT_PER_MODEL: '1024', UPSTREAM_TIMEOUT_MS: '30000' };

async function profileRun(upstreamUrl: string, dataDir: string, kind: 'explicit' | 'auto'): Promise<ProfileSummary | null> {
  // One directory per run: Node writes one profile per thread (the tsx loader has its own).
  const dir = path.join(resultsDir, 'profiles', kind);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  log(`profile (${kind}): Switchyard under --cpu-prof, ${WARMUP_S} s warm-up + ${DURATION_S} s of load`);
  const spawnedAt = Date.now();
  const sy = await spawnSwitchyard({ models: switchyardModels(upstreamUrl), env: switchyardEnv, dataDir, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  const body = kind === 'auto' ? autoBody : explicitBody;
  let measuredFrom = 0;
  try {
    await runLoad({ url: `${sy.url}/v1/chat/completions`, body, durationS: WARMUP_S, connections: CONNECTIONS });
    measuredFrom = Date.now() - spawnedAt;
    await runLoad({ url: `${sy.url}/v1/chat/completions`, body, durationS: DURATION_S, connections: CONNECTIONS });
  } finally {
    await sy.stop();
  }
  const files = await Promise.all((await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).map(async (f) => ({ f: path.join(dir, f), size: (await stat(path.join(dir, f))).size })));
  const main = files.sort((a, b) => b.size - a.size)[0];
  // The main thread's profile is by far the largest; start-up and warm-up are left out.
  return main ? summarizeProfile(main.f, 25, measuredFrom) : null;
}

/**
 * A fresh Switchyard under --inspect for the memory check: every 5 s, RSS and (after a forced full
 * GC over the DevTools protocol) the live V8 heap, during SOAK_S of mixed explicit/auto load.
 */
async function soakRun(upstreamUrl: string, dataDir: string): Promise<SoakResult> {
  log(`soak: ${SOAK_S} s of mixed explicit/auto load; RSS and live heap after a forced GC every 5 s`);
  const sy = await spawnSwitchyard({ models: switchyardModels(upstreamUrl), env: switchyardEnv, dataDir, nodeArgs: ['--inspect=127.0.0.1:0'] });
  const heap = await attachHeapProbe(await inspectorUrl(sy.stderr));
  try {
    await runLoad({ url: `${sy.url}/v1/chat/completions`, body: mixedBody, durationS: WARMUP_S, connections: CONNECTIONS });
    const samples: SoakSample[] = [];
    const t0 = Date.now();
    const take = async (): Promise<void> => {
      const heapMb = await heap.heapAfterGcMb();
      const health = (await (await fetch(`${sy.url}/health`)).json()) as { store?: { pending_writes?: number } };
      samples.push({ atS: Math.round((Date.now() - t0) / 1000), rssMb: mb(rssBytes(sy.pid) ?? 0), heapMb, pendingWrites: health.store?.pending_writes ?? 0 });
    };
    await take();
    let sampling = Promise.resolve();
    const timer = setInterval(() => {
      sampling = sampling.then(take);
    }, 5000);
    const load = await runLoad({ url: `${sy.url}/v1/chat/completions`, body: mixedBody, durationS: SOAK_S, connections: CONNECTIONS });
    clearInterval(timer);
    await sampling;
    await take();
    return { durationS: SOAK_S, requests: load.requests, rps: load.rps, samples, ...soakGrowth(samples) };
  } finally {
    heap.close();
    await sy.stop();
  }
}

async function main(): Promise<void> {
  if (!procAvailable()) throw new Error('this bench reads /proc for CPU time and RSS; run it on Linux');
  const notes: string[] = [
    'Load generator (autocannon, one thread), upstream and proxy each run in their own process on the same machine, all on 127.0.0.1; on a small machine they compete for cores, so the ratios matter more than the absolute numbers.',
    'Latency "under load" is each response\'s own time at the given concurrency; "one at a time" is a sequential keep-alive probe, so it shows the latency a proxy adds with no queueing.',
  ];
  const loadAvgBefore = os.loadavg().map((v) => Math.round(v * 100) / 100);
  if (loadAvgBefore[0]! > os.cpus().length * 0.5) notes.push(`The machine was busy when the bench started (1-min load average ${loadAvgBefore[0]} on ${os.cpus().length} cores); numbers are noisier than usual.`);

  const upstream = await spawnNodeChild<{ type: 'ready'; port: number }>('scripts/bench/upstream.ts', { env: { BENCH_UPSTREAM_DELAY_MS: String(UPSTREAM_DELAY_MS) } });
  const upstreamOrigin = `http://127.0.0.1:${upstream.ready.port}`;
  const upstreamUrl = `${upstreamOrigin}/v1`;
  const scenarios: ScenarioResult[] = [];
  const ttfb: BenchReport['ttfb'] = [];
  let soak: SoakResult | null = null;
  let shutdown: BenchReport['shutdown'] = null;
  let seed: SeedResult | null = null;
  const profiles: ProfileSummary[] = [];
  const nginxBin = findNginx();
  let nginxVersion: string | null = null;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-bench-'));

  // Every server of the run is up at once; the rows' load is interleaved (measureRows).
  const stops: (() => Promise<unknown>)[] = [];
  try {
    // Every proxy's one-at-a-time probe alternates with direct requests (see probeLatency).
    const direct: ProbeTarget = { origin: upstreamOrigin, path: ROUTE, body: upstreamBody };
    const rows: Row[] = [{ name: 'direct', label: 'upstream direct (no proxy)', origin: upstreamOrigin, body: upstreamBody, pid: upstream.pid, ownProcess: false }];

    let nginxUrl: string | null = null;
    if (nginxBin) {
      const nginx = await startNginx(nginxBin, upstream.ready.port);
      stops.push(nginx.stop);
      nginxVersion = nginx.version;
      nginxUrl = nginx.url;
      rows.push({ name: 'nginx', label: `nginx reverse proxy (${nginx.version.replace(/^nginx version: /, '')}, 1 worker)`, origin: nginx.url, body: upstreamBody, pid: nginx.pid, ownProcess: true, baseline: direct });
    } else {
      notes.push('nginx is not installed, so the nginx baseline was skipped (apt-get install -y nginx to include it).');
    }

    const nodeProxy = await spawnNodeChild<{ type: 'ready'; port: number }>('scripts/bench/node-proxy.ts', { env: { BENCH_UPSTREAM_ORIGIN: upstreamOrigin } });
    stops.push(() => nodeProxy.stop());
    rows.push({ name: 'node-proxy', label: 'minimal Node proxy (node:http + undici)', origin: `http://127.0.0.1:${nodeProxy.ready.port}`, body: upstreamBody, pid: nodeProxy.pid, ownProcess: true, baseline: direct });

    log(`seeding ${SEEDED} stored requests with ratings and running the learner (kNN index for model "auto")`);
    seed = await seedLearnedState(dataDir, path.join(dataDir, 'switchyard.db'), MODELS, SEEDED);
    if (seed.learnerStatus !== 'ok') notes.push(`The learner run failed (${seed.learnerError}); "auto" routed without a learned index.`);

    // One Switchyard process per row (all on the one seeded database), so each row's CPU is its own.
    const spawnRow = (workers = 1) => spawnSwitchyard({ models: switchyardModels(upstreamUrl), env: workers > 1 ? { ...switchyardEnv, SWITCHYARD_WORKERS: String(workers) } : switchyardEnv, dataDir });
    const sy = await spawnRow();
    stops.push(async () => {
      const t0 = Date.now();
      const exitCode = await sy.stop();
      shutdown = { exitCode, ms: Date.now() - t0 };
    });
    rows.push({ name: 'switchyard-explicit', label: 'Switchyard, explicit model (proxy path; STORE_DURABILITY=commit, the default)', origin: sy.url, body: explicitBody, pid: sy.pid, ownProcess: true, settle: () => storeDrained(sy.url), baseline: direct });
    // The same path with write-behind storage: what acknowledging only committed answers costs.
    const syBatched = await spawnSwitchyard({ models: switchyardModels(upstreamUrl), env: { ...switchyardEnv, STORE_DURABILITY: 'batched' }, dataDir });
    stops.push(() => syBatched.stop());
    rows.push({ name: 'switchyard-explicit-batched', label: 'Switchyard, explicit model, STORE_DURABILITY=batched', origin: syBatched.url, body: explicitBody, pid: syBatched.pid, ownProcess: true, settle: () => storeDrained(syBatched.url), baseline: direct });
    const syAuto = await spawnRow();
    stops.push(() => syAuto.stop());
    rows.push({ name: 'switchyard-auto', label: `Switchyard, model "auto" (routing, kNN over ${SEEDED / 1000}k)`, origin: syAuto.url, body: autoBody, pid: syAuto.pid, ownProcess: true, settle: () => storeDrained(syAuto.url), baseline: direct });
    // The proxy path storing in PostgreSQL (a real server in a temp dir, durable commits) instead of SQLite.
    if (findPostgresBinaries()) {
      const pgServer = await startPostgres({ durable: true });
      stops.push(() => pgServer.stop());
      const pgDir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-bench-pg-'));
      stops.push(() => rm(pgDir, { recursive: true, force: true }));
      const syPg = await spawnSwitchyard({ models: switchyardModels(upstreamUrl), env: { ...switchyardEnv, DATABASE_URL: await pgServer.createDatabase('bench') }, dataDir: pgDir });
      stops.push(() => syPg.stop());
      rows.push({ name: 'switchyard-explicit-postgres', label: 'Switchyard, explicit model, PostgreSQL (DATABASE_URL; commit mode)', origin: syPg.url, body: explicitBody, pid: syPg.pid, ownProcess: true, settle: () => storeDrained(syPg.url), baseline: direct });
    } else {
      notes.push('PostgreSQL is not installed, so the PostgreSQL row was skipped (apt-get install -y postgresql to include it).');
    }
    // The proxy path again with one worker process per core (node:cluster, SWITCHYARD_WORKERS).
    const workers = os.availableParallelism();
    if (workers > 1) {
      const cl = await spawnRow(workers);
      stops.push(() => cl.stop());
      rows.push({ name: 'switchyard-explicit-cluster', label: `Switchyard, explicit model, ${workers} workers (SWITCHYARD_WORKERS=${workers})`, origin: cl.url, body: explicitBody, pid: cl.pid, ownProcess: true, settle: () => storeDrained(cl.url), baseline: direct, processes: workers });
    }

    // Scale-out: two instances on one PostgreSQL and one Redis behind nginx, against one.
    const scaleOutLacks = scaleOutMissing(nginxBin);
    if (scaleOutLacks) {
      notes.push(`The scale-out rows (two instances on PostgreSQL + Redis behind nginx against one) were skipped: ${scaleOutLacks} not installed (apt-get install -y ${scaleOutLacks.replaceAll(',', '')} to include them).`);
    } else {
      const scaleOut = await startScaleOut({
        nginxBin: nginxBin!,
        spawn: (env) => spawnSwitchyard({ models: switchyardModels(upstreamUrl), env: { ...switchyardEnv, ...env } }),
        drained: storeDrained,
      });
      stops.push(scaleOut.stop);
      for (const r of scaleOut.rows) {
        // Not ownProcess: the one instance serves two rows, so each row counts the CPU of its own rounds.
        rows.push({ name: r.name, label: r.label, origin: r.origin, body: (i) => explicitBody(r.textOffset + i), pid: r.pids[0]!, morePids: r.pids.slice(1), ownProcess: false, settle: r.settle, baseline: direct, processes: r.processes });
      }
    }

    scenarios.push(...(await measureRows(rows)));

    ttfb.push({ name: 'direct', label: 'upstream direct', result: await probeTtfb(`${upstreamUrl}/chat/completions`, streamBody('bench'), TTFB_N) });
    if (nginxUrl) ttfb.push({ name: 'nginx', label: 'nginx', result: await probeTtfb(`${nginxUrl}/v1/chat/completions`, streamBody('bench'), TTFB_N) });
    ttfb.push({ name: 'switchyard', label: 'Switchyard, explicit model', result: await probeTtfb(`${sy.url}/v1/chat/completions`, streamBody('bench-fast'), TTFB_N) });

    for (const stop of stops.splice(0).reverse()) await stop();
    soak = await soakRun(upstreamUrl, dataDir);

    if (flags.profile) {
      for (const kind of ['explicit', 'auto'] as const) {
        const p = await profileRun(upstreamUrl, dataDir, kind);
        if (p) profiles.push(p);
        else notes.push(`The ${kind} CPU profile was not written.`);
      }
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await upstream.stop();
    await rm(dataDir, { recursive: true, force: true });
  }

  const report: BenchReport = {
    when: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, nginx: nginxVersion, loadAvgBefore, loadAvgAfter: os.loadavg().map((v) => Math.round(v * 100) / 100) },
    settings: { durationS: DURATION_S, rounds: ROUNDS, connections: CONNECTIONS, probeRequests: PROBE_N, ttfbStreams: TTFB_N, upstreamDelayMs: UPSTREAM_DELAY_MS, seededQueries: SEEDED },
    seed,
    scenarios,
    ttfb,
    soak,
    shutdown,
    goals: evaluateGoals(scenarios, soak),
    notes,
    profiles,
  };
  for (const s of scenarios) if (s.load.non2xx || s.load.errors) notes.push(`${s.label}: ${s.load.non2xx} non-2xx responses and ${s.load.errors} errors during the load (${JSON.stringify(s.load.statusCodes)}).`);

  printSummary(report);
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, 'proxy.json'), JSON.stringify(report, (k, v) => (k === 'latencies' ? undefined : v), 2) + '\n');
  log('wrote bench-results/proxy.json');
  if (!flags['no-docs'] && !quick) {
    await writeBenchmarksDoc(report);
    log('wrote docs/BENCHMARKS.md');
  }
}

main().catch((e) => {
  console.error(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exitCode = 1;
});
