// Store write benchmark: how many answered requests per second each engine stores through the
// batched write-behind path, and with every record awaiting its commit (STORE_DURABILITY=commit's
// group commit). PostgreSQL is a real server started in a temp dir with durable commits (fsync on,
// synchronous_commit on); SQLite is a WAL file. Target: >= 5,000 requests/s into PostgreSQL.
// Usage: npm run bench:store [-- --records 50000] [-- --engine postgres|sqlite|both] [-- --json FILE]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { QueryFeatures, RoutingDecision } from '../../router/types.ts';
import { openPostgresStore } from '../../server/store/postgres.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import type { ModelCallRecord, RequestRecord, Store } from '../../server/store/types.ts';
import { findPostgresBinaries, startPostgres, type TestPostgres } from '../../test/helpers/postgres.ts';

const args = z.object({
  records: z.coerce.number().int().min(1000).default(50_000),
  engine: z.enum(['postgres', 'sqlite', 'both']).default('both'),
  concurrency: z.coerce.number().int().min(1).default(256),
  json: z.string().optional(),
}).parse(parseArgs({ options: { records: { type: 'string' }, engine: { type: 'string' }, concurrency: { type: 'string' }, json: { type: 'string' } } }).values);

const MODELS = ['gpt-4o', 'claude-sonnet', 'gemini-flash', 'demo-fast'];
const DOMAINS = ['code', 'math', 'writing', 'chat'] as const;
const features = (i: number): QueryFeatures => ({
  language: i % 7 === 0 ? 'zh' : 'en', mixed: false, domain: DOMAINS[i % DOMAINS.length]!, complexity: 'medium',
  lengthBucket: 'm', chars: 220, hasCode: i % 4 === 0, depth: 1,
});

/** A request as the gateway records it: a decision with candidates and timings, one or two attempts. */
function requestOf(run: string, i: number): [RequestRecord, RoutingDecision, ModelCallRecord[]] {
  const id = `req_${run}_${i}`;
  const ts = Date.now();
  const model = MODELS[i % MODELS.length]!;
  const f = features(i);
  const req: RequestRecord = {
    id, ts, endpoint: '/v1/chat/completions', queryText: `Question ${i}: ${'explain how the write-behind queue batches rows '.repeat(4)}`,
    messageCount: 3, requestedModel: 'auto', stream: i % 2 === 0, features: f, finalModel: model, status: 'ok', httpStatus: 200,
    latencyMs: 300 + (i % 200), answer: `Answer ${i}: ${'the batch is one INSERT over a JSON array of rows. '.repeat(10)}`,
    inputTokens: 120, outputTokens: 240, costUsd: 0.0012, error: null, demo: false, correlationId: null, owner: 'ip:127.0.0.1',
  };
  const decision: RoutingDecision = {
    method: 'learned', selected: model, confidence: 0.72, reasoning: 'priors and 12 neighbours favour it for this domain', features: f,
    candidates: MODELS.map((m, k) => ({ model: m, score: 0.9 - k * 0.1, parts: { priors: 0.5, knn: 0.3 } })),
    timings: { features: 0.05, knn: 0.2, total: 0.4 },
  };
  const calls: ModelCallRecord[] = [{
    requestId: id, ts, model, attempt: 1, status: 'ok', httpStatus: 200, latencyMs: 290, inputTokens: 120, outputTokens: 240, costUsd: 0.0012, error: null,
  }];
  return [req, decision, calls];
}

interface Row {
  engine: string; mode: string; records: number; seconds: number; perSecond: number;
  /** CPU time of this (the gateway's) process per record: with SQLite its writes run on the process's own threads; PostgreSQL's server works in its own processes. */
  cpuUsPerRecord: number;
}

/** Time and this process's CPU over `fn`, which stores `n` records. */
async function measured(engine: string, mode: string, n: number, fn: () => Promise<void>): Promise<Row> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await fn();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { engine, mode, records: n, seconds, perSecond: n / seconds, cpuUsPerRecord: (used.user + used.system) / n };
}

/** Write-behind: records arrive as fast as the event loop takes them (in slices, as traffic would); time until all are committed. */
async function batched(store: Store, n: number, run: string): Promise<Row> {
  return measured(store.engine, 'batched (write-behind)', n, async () => {
    for (let i = 0; i < n; i++) {
      store.recordRequest(...requestOf(run, i));
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    await store.flush();
  });
}

/** Commit mode: `concurrency` clients, each recording a request and awaiting its commit before the next (group commit). */
async function committed(store: Store, n: number, concurrency: number, run: string): Promise<Row> {
  let next = 0;
  return measured(store.engine, `commit (${concurrency} concurrent, each awaits its commit)`, n, async () => {
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < n) {
        store.recordRequest(...requestOf(run, next++));
        await store.flush();
      }
    }));
  });
}

async function bench(store: Store): Promise<Row[]> {
  await batched(store, Math.min(5000, args.records), 'warm'); // connections, prepared statements, JIT
  const rows = [await batched(store, args.records, 'b'), await committed(store, Math.ceil(args.records / 2), args.concurrency, 'c')];
  if (await store.countRequests() !== Math.min(5000, args.records) + args.records + Math.ceil(args.records / 2)) throw new Error('not every record was stored');
  return rows;
}

const results: Row[] = [];
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-store-'));
let server: TestPostgres | null = null;
try {
  if (args.engine !== 'postgres') {
    const store = await openSqliteStore({ path: path.join(dir, 'switchyard.db') });
    try { results.push(...await bench(store)); } finally { await store.close(); }
  }
  if (args.engine !== 'sqlite') {
    if (!findPostgresBinaries()) throw new Error('PostgreSQL binaries not found: apt-get install -y postgresql');
    server = await startPostgres({ durable: true });
    const store = await openPostgresStore({ url: await server.createDatabase('bench') });
    try { results.push(...await bench(store)); } finally { await store.close(); }
  }
} finally {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
}

console.log('| Engine | Mode | Records | Seconds | Requests/s | Gateway CPU per request (µs) |');
console.log('|---|---|---:|---:|---:|---:|');
for (const r of results) console.log(`| ${r.engine} | ${r.mode} | ${r.records} | ${r.seconds.toFixed(2)} | ${Math.round(r.perSecond)} | ${Math.round(r.cpuUsPerRecord)} |`);
const pg = results.find((r) => r.engine === 'postgres' && r.mode.startsWith('batched'));
if (pg) console.log(`\nGoal: >= 5,000 requests/s into PostgreSQL (batched): ${Math.round(pg.perSecond)} -> ${pg.perSecond >= 5000 ? 'PASS' : 'FAIL'}`);
if (args.json) await writeFile(args.json, JSON.stringify({ at: new Date().toISOString(), cpus: os.cpus().length, results }, null, 2));
