// Turns the bench's measurements into goal verdicts, the JSON written to bench-results/proxy.json
// and the markdown tables of docs/BENCHMARKS.md (ready to paste into the README).
import type { LoadResult, ProbeResult, TtfbResult } from './load.ts';
import type { ProfileSummary } from './profile.ts';
import type { SeedResult } from './seed.ts';

export interface ScenarioResult {
  name: string;
  label: string;
  load: LoadResult;
  probe: ProbeResult;
  /** Direct requests alternated with this row's probe, one by one (the baseline for "added"). */
  probeBaseline?: ProbeResult;
  /** CPU time of the serving process (upstream, nginx or Switchyard) per request, ms. */
  cpuMsPerRequest: number | null;
  rssMbAfter: number | null;
}

export interface SoakSample {
  atS: number;
  rssMb: number;
  /** V8 heap in use right after a forced full GC. */
  heapMb: number;
  /** Records queued for SQLite and not yet written (/health). */
  pendingWrites: number;
}

export interface SoakResult {
  durationS: number;
  requests: number;
  rps: number;
  samples: SoakSample[];
  /** Live heap at the end minus the first sample (taken after warm-up), MB. */
  heapGrowthMb: number;
  /** RSS at the end minus the highest RSS in the first half of the run, MB. */
  rssGrowthMb: number;
}

export interface Goal {
  goal: string;
  target: string;
  measured: string;
  verdict: 'PASS' | 'FAIL' | 'SKIPPED';
}

export interface BenchReport {
  when: string;
  machine: { cpu: string; cores: number; node: string; nginx: string | null; loadAvgBefore: number[]; loadAvgAfter: number[] };
  settings: { durationS: number; rounds?: number; connections: number; probeRequests: number; ttfbStreams: number; upstreamDelayMs: number; seededQueries: number };
  seed: SeedResult | null;
  scenarios: ScenarioResult[];
  ttfb: { name: string; label: string; result: TtfbResult }[];
  soak: SoakResult | null;
  shutdown: { exitCode: number | string; ms: number } | null;
  goals: Goal[];
  notes: string[];
  profiles: ProfileSummary[];
}

const f1 = (n: number) => (Math.round(n * 10) / 10).toFixed(1);
const f2 = (n: number) => (Math.round(n * 100) / 100).toFixed(2);
const f3 = (n: number) => (Math.round(n * 1000) / 1000).toFixed(3);

/**
 * Growth after warm-up. The live heap (after a forced GC) is compared end against start; RSS, which
 * V8 and the allocator raise in steps and rarely give back, end against the first half's highest.
 */
export function soakGrowth(samples: SoakSample[]): { heapGrowthMb: number; rssGrowthMb: number } {
  if (samples.length < 2) return { heapGrowthMb: 0, rssGrowthMb: 0 };
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const half = samples.slice(0, Math.max(1, Math.floor(samples.length / 2)));
  const round = (v: number) => Math.round(v * 10) / 10;
  return { heapGrowthMb: round(last.heapMb - first.heapMb), rssGrowthMb: round(last.rssMb - Math.max(...half.map((s) => s.rssMb))) };
}

/** Added p50 latency against the direct requests measured alongside (else the direct row's probe). */
export function addedP50(s: ScenarioResult, direct: ScenarioResult | undefined): number | null {
  const base = s.probeBaseline ?? direct?.probe;
  return base && s !== direct ? s.probe.latencyMs.p50 - base.latencyMs.p50 : null;
}

export function evaluateGoals(scenarios: ScenarioResult[], soak: SoakResult | null): Goal[] {
  const get = (name: string) => scenarios.find((s) => s.name === name);
  const direct = get('direct');
  const nginx = get('nginx');
  const proxy = get('switchyard-explicit');
  const cluster = get('switchyard-explicit-cluster');
  const goals: Goal[] = [];
  const added = proxy ? addedP50(proxy, direct) : null;
  if (added !== null) {
    goals.push({ goal: 'added p50 latency, proxy path (explicit model), one request at a time', target: '< 1 ms', measured: `${f3(added)} ms`, verdict: added < 1 ? 'PASS' : 'FAIL' });
  }
  if (nginx && proxy) {
    // The issue allows using every core: the better of one process and one worker per core.
    const best = cluster && cluster.load.rps > proxy.load.rps ? cluster : proxy;
    const share = best.load.rps / nginx.load.rps;
    const other = best === cluster ? `; one process: ${f1((100 * proxy.load.rps) / nginx.load.rps)}%` : cluster ? `; ${cluster.label.replace(/^Switchyard, explicit model, /, '')}: ${f1((100 * cluster.load.rps) / nginx.load.rps)}%` : '';
    goals.push({ goal: "throughput, proxy path, as a share of nginx's", target: '>= 25%', measured: `${f1(100 * share)}% (${best === cluster ? 'cluster' : 'one process'}${other})`, verdict: share >= 0.25 ? 'PASS' : 'FAIL' });
  } else {
    goals.push({ goal: "throughput, proxy path, as a share of nginx's", target: '>= 25%', measured: 'nginx not installed', verdict: 'SKIPPED' });
  }
  const batched = get('switchyard-explicit-batched');
  if (proxy && batched) {
    const share = proxy.load.rps / batched.load.rps;
    goals.push({ goal: 'throughput, STORE_DURABILITY=commit as a share of batched (explicit model)', target: '>= 70%', measured: `${f1(100 * share)}% (${Math.round(proxy.load.rps)} vs ${Math.round(batched.load.rps)} req/s)`, verdict: share >= 0.7 ? 'PASS' : 'FAIL' });
    const commitAdded = addedP50(proxy, direct);
    const batchedAdded = addedP50(batched, direct);
    if (commitAdded !== null && batchedAdded !== null) {
      const extra = commitAdded - batchedAdded;
      goals.push({ goal: 'added p50 latency of commit over batched, one request at a time', target: '<= 3 ms', measured: `${f3(extra)} ms (commit ${f3(commitAdded)}, batched ${f3(batchedAdded)} over direct)`, verdict: extra <= 3 ? 'PASS' : 'FAIL' });
    }
  }
  const onPostgres = get('switchyard-explicit-postgres');
  if (proxy && onPostgres) {
    const share = onPostgres.load.rps / proxy.load.rps;
    goals.push({ goal: 'throughput, proxy path on PostgreSQL as a share of SQLite (explicit model, commit mode)', target: '>= 85%', measured: `${f1(100 * share)}% (${Math.round(onPostgres.load.rps)} vs ${Math.round(proxy.load.rps)} req/s)`, verdict: share >= 0.85 ? 'PASS' : 'FAIL' });
  }
  if (soak) {
    // A steady server still settles a little (JIT code, pools, SQLite page cache).
    const first = soak.samples[0];
    const heapOk = soak.heapGrowthMb <= Math.max(4, 0.1 * (first?.heapMb ?? 0));
    const rssOk = soak.rssGrowthMb <= Math.max(16, 0.1 * (first?.rssMb ?? 0));
    goals.push({
      goal: `no memory growth over a ${soak.durationS} s run (${soak.requests} requests)`,
      target: 'live heap +<= max(4 MB, 10%) and RSS +<= max(16 MB, 10%)',
      measured: `heap ${f1(first?.heapMb ?? 0)} -> ${f1(soak.samples[soak.samples.length - 1]?.heapMb ?? 0)} MB (${soak.heapGrowthMb >= 0 ? '+' : ''}${f1(soak.heapGrowthMb)}), RSS ${soak.rssGrowthMb >= 0 ? '+' : ''}${f1(soak.rssGrowthMb)} MB`,
      verdict: heapOk && rssOk ? 'PASS' : 'FAIL',
    });
  }
  return goals;
}

/**
 * Two instances behind nginx against one, as ratios of the same run: throughput, and CPU per
 * request of the serving processes (instances, and nginx where it is in front). Empty without those rows.
 */
export function scaleOutComparison(scenarios: ScenarioResult[]): string[] {
  const get = (name: string) => scenarios.find((s) => s.name === name);
  const two = get('scale-two-nginx');
  if (!two) return [];
  const cpu = (a: ScenarioResult, b: ScenarioResult) => (a.cpuMsPerRequest !== null && b.cpuMsPerRequest ? `${f2(a.cpuMsPerRequest / b.cpuMsPerRequest)}×` : '–');
  const against = (name: string, what: string) => {
    const one = get(name);
    return one ? [`Two instances behind nginx against ${what}: throughput ${f2(two.load.rps / one.load.rps)}× (${two.load.rps} vs ${one.load.rps} req/s), CPU per request ${cpu(two, one)}.`] : [];
  };
  return [...against('scale-one-nginx', 'one behind nginx'), ...against('scale-one-direct', 'one direct')];
}

export function renderMarkdown(r: BenchReport): string {
  const direct = r.scenarios.find((s) => s.name === 'direct');
  const nginx = r.scenarios.find((s) => s.name === 'nginx');
  const ratio = (v: number, base: ScenarioResult | undefined) => (base ? `${f2(v / base.load.rps)}×` : '–');
  const lines: string[] = [];
  lines.push(
    `| Path | req/s | p50 / p99 under load (ms) | p50 one at a time (ms) | added p50 vs direct (ms) | CPU per request (ms) | RSS after (MB) | vs direct | vs nginx |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|`,
  );
  for (const s of r.scenarios) {
    const a = addedP50(s, direct);
    const added = a === null ? '–' : f3(a);
    lines.push(
      `| ${s.label} | ${s.load.rps} | ${f2(s.load.latencyMs.p50)} / ${f2(s.load.latencyMs.p99)} | ${f3(s.probe.latencyMs.p50)} | ${added} | ${s.cpuMsPerRequest === null ? '–' : f3(s.cpuMsPerRequest)} | ${s.rssMbAfter ?? '–'} | ${ratio(s.load.rps, direct)} | ${ratio(s.load.rps, nginx)} |`,
    );
  }
  const table = lines.join('\n');
  const ttfb = [
    `| Streaming path | TTFB p50 (ms) | TTFB p99 (ms) | whole stream p50 (ms) | added TTFB p50 vs direct (ms) |`,
    `|---|---:|---:|---:|---:|`,
    ...r.ttfb.map((t) => {
      const base = r.ttfb.find((x) => x.name === 'direct');
      const added = base && t !== base ? f3(t.result.ttfbMs.p50 - base.result.ttfbMs.p50) : '–';
      return `| ${t.label} | ${f3(t.result.ttfbMs.p50)} | ${f3(t.result.ttfbMs.p99)} | ${f3(t.result.totalMs.p50)} | ${added} |`;
    }),
  ].join('\n');
  const goals = [`| Goal | Target | Measured | Verdict |`, `|---|---|---|---|`, ...r.goals.map((g) => `| ${g.goal} | ${g.target} | ${g.measured} | **${g.verdict}** |`)].join('\n');
  const soak = r.soak
    ? `Memory of a Switchyard process every 5 s during the ${r.soak.durationS} s soak (${r.soak.rps} req/s, mixed explicit and auto), as time: RSS / live heap after GC / queued store writes: ${r.soak.samples.map((s) => `${s.atS}s ${s.rssMb} / ${s.heapMb} MB / ${s.pendingWrites}`).join(', ')}.`
    : '';
  const scaleOut = scaleOutComparison(r.scenarios).join(' ');
  return [table, '', ...(scaleOut ? [scaleOut, ''] : []), ttfb, '', goals, '', soak].join('\n');
}

export function renderProfiles(profiles: ProfileSummary[]): string {
  return profiles
    .map((p) => {
      const rows = p.top.map((t) => `| ${t.selfPct}% | ${t.selfMs} | \`${t.function}\` | ${t.where} |`).join('\n');
      const origins = p.byOrigin.slice(0, 8).map((o) => `${o.origin} ${o.selfPct}%`).join('; ');
      return `**${p.file}** (${p.busyMs} ms busy, GC ${p.gcPct}%). By origin: ${origins}.\n\n| self % | self ms | function | where |\n|---:|---:|---|---|\n${rows}`;
    })
    .join('\n\n');
}

export function printSummary(r: BenchReport): void {
  for (const s of r.scenarios) {
    console.log(
      `${s.label.padEnd(34)} ${String(s.load.rps).padStart(6)} req/s  p50 ${f2(s.load.latencyMs.p50)} ms  p99 ${f2(s.load.latencyMs.p99)} ms  one-at-a-time p50 ${f3(s.probe.latencyMs.p50)} ms  cpu ${s.cpuMsPerRequest === null ? '-' : f3(s.cpuMsPerRequest)} ms/req  rss ${s.rssMbAfter ?? '-'} MB  non-2xx ${s.load.non2xx} errors ${s.load.errors}`,
    );
  }
  for (const line of scaleOutComparison(r.scenarios)) console.log(line);
  for (const t of r.ttfb) console.log(`TTFB ${t.label.padEnd(29)} p50 ${f3(t.result.ttfbMs.p50)} ms  p99 ${f3(t.result.ttfbMs.p99)} ms  failures ${t.result.failures}`);
  for (const g of r.goals) console.log(`${g.verdict.padEnd(7)} ${g.goal}: ${g.measured} (target ${g.target})`);
  for (const n of r.notes) console.log(`note: ${n}`);
}
