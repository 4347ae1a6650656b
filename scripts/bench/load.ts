// Load generation and latency measurement: autocannon for throughput under concurrency (with exact
// per-response latencies), a sequential keep-alive probe for unloaded latency, and a streaming TTFB probe.
import { createRequire } from 'node:module';
import { Client, fetch } from 'undici';

const require = createRequire(import.meta.url);

/** The slice of autocannon's programmatic API used here (it ships no type declarations). */
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  requests: { total: number; sent: number };
  statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(event: 'response', fn: (client: unknown, statusCode: number, resBytes: number, responseTimeMs: number) => void): void;
}
type Autocannon = (opts: Record<string, unknown>) => AutocannonInstance;
const autocannon = require('autocannon') as Autocannon;

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
}

export function percentiles(values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: sorted.length ? sum / sorted.length : 0, max: sorted.length ? sorted[sorted.length - 1]! : 0 };
}

export interface LoadResult {
  durationS: number;
  connections: number;
  requests: number;
  rps: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Latency of 2xx responses under load, ms (exact, from each response's own timing). */
  latencyMs: Percentiles;
  statusCodes: Record<string, number>;
  /** Every 2xx latency (for merging rounds; not written to the report). */
  latencies?: number[];
  /** req/s of each round, when the result merges several. */
  roundsRps?: number[];
}

/**
 * Several rounds of one row as one result: throughput is the median round's (robust to a round
 * that shared the machine with something else; the bench uses an odd number of rounds, so it is
 * one round's own figure), latencies are pooled, counts are summed.
 */
export function mergeRounds(rounds: LoadResult[]): LoadResult {
  const sorted = rounds.map((r) => r.rps).sort((a, b) => a - b);
  const statusCodes: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.statusCodes)) statusCodes[k] = (statusCodes[k] ?? 0) + v;
  const sum = (f: (r: LoadResult) => number) => rounds.reduce((a, r) => a + f(r), 0);
  return {
    durationS: sum((r) => r.durationS),
    connections: rounds[0]?.connections ?? 0,
    requests: sum((r) => r.requests),
    rps: sorted.length ? Math.round((sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2) : 0,
    ok: sum((r) => r.ok),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    latencyMs: percentiles(rounds.flatMap((r) => r.latencies ?? [])),
    statusCodes,
    roundsRps: rounds.map((r) => r.rps),
  };
}

export interface LoadOptions {
  url: string;
  /** The i-th request's body (a fresh text per request, so queries are not identical repeats). */
  body: (i: number) => string;
  durationS: number;
  connections: number;
  headers?: Record<string, string>;
  /** Index of the first body (rounds of one row continue where the last one stopped). */
  firstIndex?: number;
}

/** POST over `connections` keep-alive connections for `durationS` seconds. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let n = opts.firstIndex ?? 0;
  // autocannon's own idReplacement miscounts Content-Length with this hyperid version; build bodies here.
  const setupRequest = (req: { body?: string }) => {
    req.body = opts.body(n++);
    return req;
  };
  const instance = autocannon({
    url: opts.url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...opts.headers },
    body: opts.body(n),
    requests: [{ setupRequest }],
    connections: opts.connections,
    duration: opts.durationS,
    pipelining: 1,
    timeout: 30,
  });
  instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTimeMs);
  });
  const r = await instance;
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = s.count;
  return {
    durationS: r.duration,
    connections: opts.connections,
    requests: r.requests.total,
    rps: Math.round(r.requests.total / r.duration),
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    latencyMs: percentiles(latencies),
    statusCodes,
    latencies,
  };
}

export interface ProbeResult {
  samples: number;
  failures: number;
  latencyMs: Percentiles;
}

export interface ProbeTarget {
  origin: string;
  path: string;
  body: (i: number) => string;
}

/**
 * `count` sequential requests on one keep-alive connection: latency with nothing queued ahead.
 * With a `baseline`, its requests alternate with the target's one by one (each on its own
 * connection), so both see the same machine: on a shared VM the latency of everything drifts
 * by tenths of a millisecond from minute to minute, more than a proxy adds.
 */
export async function probeLatency(target: ProbeTarget, count: number, baseline?: ProbeTarget, warmup = 200): Promise<{ target: ProbeResult; baseline: ProbeResult | null }> {
  const targets = baseline ? [target, baseline] : [target];
  const clients = targets.map((t) => new Client(t.origin, { pipelining: 1, keepAliveTimeout: 60_000 }));
  const times: number[][] = targets.map(() => []);
  const failures = targets.map(() => 0);
  try {
    for (let i = 0; i < warmup + count; i++) {
      for (let k = 0; k < targets.length; k++) {
        // Alternate which goes first, so neither always follows the other.
        const j = (i + k) % targets.length;
        const t = targets[j]!;
        const t0 = process.hrtime.bigint();
        const res = await clients[j]!.request({ method: 'POST', path: t.path, headers: { 'content-type': 'application/json' }, body: t.body(i) });
        await res.body.text();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (res.statusCode !== 200) failures[j]!++;
        else if (i >= warmup) times[j]!.push(ms);
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  const result = (j: number): ProbeResult => ({ samples: times[j]!.length, failures: failures[j]!, latencyMs: percentiles(times[j]!) });
  return { target: result(0), baseline: baseline ? result(1) : null };
}

export interface TtfbResult {
  streams: number;
  failures: number;
  /** Request sent -> first body chunk, ms. */
  ttfbMs: Percentiles;
  /** Request sent -> stream fully read, ms. */
  totalMs: Percentiles;
}

/** `count` sequential streaming requests with fetch: time to the first body chunk and to the end. */
export async function probeTtfb(url: string, body: (i: number) => string, count: number, warmup = 20): Promise<TtfbResult> {
  const ttfb: number[] = [];
  const total: number[] = [];
  let failures = 0;
  for (let i = 0; i < warmup + count; i++) {
    const t0 = process.hrtime.bigint();
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: body(i) });
    if (res.status !== 200 || !res.body) {
      failures++;
      await res.text().catch(() => undefined);
      continue;
    }
    const reader = res.body.getReader();
    const first = await reader.read();
    const t1 = process.hrtime.bigint();
    let text = first.value ? Buffer.from(first.value).toString('utf8') : '';
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      text += Buffer.from(next.value).toString('utf8');
    }
    const t2 = process.hrtime.bigint();
    if (!text.includes('[DONE]')) failures++;
    else if (i >= warmup) {
      ttfb.push(Number(t1 - t0) / 1e6);
      total.push(Number(t2 - t0) / 1e6);
    }
  }
  return { streams: ttfb.length, failures, ttfbMs: percentiles(ttfb), totalMs: percentiles(total) };
}
