// `npm run learn`: one learner run against the configured database and data dir, with progress
// and a summary. Exit codes: 0 ok, 1 failed (previous version kept), 2 bad usage, 3 another run holds the lock.
import path from 'node:path';
import { loadConfig } from '../server/config.ts';
import { describeStore, openStore } from '../server/store/index.ts';
import { embedderFromConfig } from '../router/embedder.ts';
import { runLearner, type LearnerProgress, type LearnerRunResult } from './job.ts';
import { cliArgs } from './cli-args.ts';
import { LearnerBusyError } from './lock.ts';
import type { ReplayMetrics } from './replay.ts';
import { runEvaluation } from './evaluate-run.ts';
import { standaloneShadowStep } from '../server/shadow-wiring.ts';
import { describeShadow } from './shadow.ts';
import type { CandidateModel } from '../router/types.ts';
import { connectLearnerLock } from '../server/redis/index.ts';
import { redisUrlSecrets } from '../server/redis/link.ts';
import { createLogger } from '../server/logger.ts';

const usage = `usage: npm run learn -- [--data-dir DIR] [--db FILE] [--full] [--half-life-days N]
       npm run learn -- --evaluate [--since-days N] [--json]
  --data-dir DIR        data directory (default: SWITCHYARD_DATA_DIR or ./data)
  --db FILE             SQLite database (default: SWITCHYARD_DB or <data-dir>/switchyard.db)
  --full                rebuild priors, profiles and the kNN index from all stored rows
  --half-life-days N    evidence half-life in days (default 14)
  --evaluate            no learning: estimate off-policy, from the stored decisions and their propensities,
                        the quality and cost of the current and previous learned states, knob settings,
                        always-cheapest and each model (IPS, SNIPS, doubly robust, 95% intervals)
  --since-days N        with --evaluate: decisions of the last N days (default 30)
  --json                with --evaluate: print the full report as JSON instead of the table`;

const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
const num = (v: number | null) => (v === null ? '-' : v.toFixed(3));
const metrics = (m: ReplayMetrics | null) =>
  m ? `picked quality ${num(m.pickedQuality)} (coverage ${pct(m.coverage)}), agreement with best known model ${pct(m.agreement)} on ${m.comparableQueries} queries` : '-';

function summary(r: LearnerRunResult): string {
  const lines = [
    `learner run ${r.status}: ${r.rowsRead} new rows${r.lateRatings ? `, ${r.lateRatings} late ratings` : ""} in ${(r.durationMs / 1000).toFixed(1)} s` + (r.full ? ` (full rebuild${r.fullReason ? `: ${r.fullReason}` : ''})` : ''),
    r.version === r.previousVersion ? `version unchanged: ${r.version ?? 'none'}` : `version ${r.previousVersion ?? 'none'} -> ${r.version}`,
  ];
  if (r.priorStrength !== null) lines.push(`prior shrinkage: each cell borrows ${r.priorStrength} observations from its parent (fitted by leave-one-out)`);
  if (r.knnCalibration) lines.push(`kNN trust: the prior weighs as much as ${r.knnCalibration.priorStrength} similar neighbours (LOO mse ${r.knnCalibration.mse.toFixed(4)} vs prior alone ${r.knnCalibration.msePriorOnly.toFixed(4)}, ${r.knnCalibration.samples} pairs)`);
  if (r.metricsAfter) lines.push(`replay on ${r.metricsAfter.rows} recent rows:`, `  before: ${metrics(r.metricsBefore)}`, `  after:  ${metrics(r.metricsAfter)}`);
  if (r.changes.length) {
    lines.push('priors that moved most:');
    for (const c of r.changes.slice(0, 5)) {
      lines.push(`  ${c.model} ${c.domain}/${c.language}: ${c.from === null ? 'new' : c.from.toFixed(3)} -> ${c.to.toFixed(3)}`);
    }
  }
  if (r.prunedVersions.length) lines.push(`pruned versions: ${r.prunedVersions.join(', ')}`);
  if (r.shadow) lines.push(describeShadow(r.shadow));
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  if (r.error) lines.push(`error: ${r.error}`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  const args = cliArgs({
    'data-dir': { type: 'string' },
    db: { type: 'string' },
    full: { type: 'boolean', default: false },
    'half-life-days': { type: 'string' },
    evaluate: { type: 'boolean', default: false },
    'since-days': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  }, usage);
  if (typeof args === 'number') return args;
  const halfLifeDays = args['half-life-days'] === undefined ? undefined : Number(args['half-life-days']);
  if (halfLifeDays !== undefined && !(halfLifeDays > 0)) {
    console.error(`--half-life-days must be a positive number, got ${args['half-life-days']}\n${usage}`);
    return 2;
  }
  const sinceDays = args['since-days'] === undefined ? 30 : Number(args['since-days']);
  if (!(sinceDays > 0)) {
    console.error(`--since-days must be a positive number, got ${args['since-days']}\n${usage}`);
    return 2;
  }
  if (!args.evaluate && (args['since-days'] !== undefined || args.json)) {
    console.error(`--since-days and --json go with --evaluate\n${usage}`);
    return 2;
  }
  const env = { ...process.env };
  if (args['data-dir']) env.SWITCHYARD_DATA_DIR = args['data-dir'];
  if (args.db) env.SWITCHYARD_DB = args.db;
  const config = loadConfig(env);

  const store = await openStore(config);
  if (args.evaluate) {
    try {
      const models: CandidateModel[] = config.models.filter((m) => m.enabled).map((m) => ({
        id: m.id, description: m.description ?? '', tags: m.tags ?? [], weight: m.weight, costPer1kInput: m.costPer1kInput, costPer1kOutput: m.costPer1kOutput, healthy: true,
      }));
      const result = await runEvaluation({ store, dataDir: config.dataDir, models, sinceTs: Date.now() - sinceDays * 86_400_000 });
      if (args.json) console.log(JSON.stringify({ runId: result.runId, version: result.version, previousVersion: result.previousVersion, ...result.report }, null, 2));
      else {
        console.log(`off-policy evaluation of the last ${sinceDays} days (learned version ${result.version ?? 'none'}${result.previousVersion ? `, previous ${result.previousVersion}` : ''}):`);
        console.log(result.table);
        if (result.runId !== null) console.log(`recorded as learner run ${result.runId} (kind evaluate)`);
      }
      return 0;
    } finally {
      await store.close();
    }
  }
  // With REDIS_URL, instances on several hosts may share the database: one run at a time across them.
  const redis = config.redisUrl ? await connectLearnerLock(config.redisUrl, createLogger({ level: 'warn', secrets: redisUrlSecrets(config.redisUrl) })) : null;
  try {
    const { embedder, fallbackReason } = await embedderFromConfig(config.routing);
    if (fallbackReason) console.error(`warning: ${fallbackReason}; using ${embedder.name}`);
    console.log(`learner: database ${config.store.databaseUrl ? describeStore(config) : path.relative(process.cwd(), config.dbPath) || config.dbPath}, data dir ${config.dataDir}, embedder ${embedder.name}`);
    let lastPrint = 0;
    const onProgress = (p: LearnerProgress) => {
      const t = Date.now();
      if (p.phase === 'read' && p.processed !== 0 && p.processed !== p.total && t - lastPrint < 1000) return;
      lastPrint = t;
      console.log(`  ${p.phase}: ${p.processed}${p.total === null ? '' : ` / ${p.total}`}`);
    };
    // Requests are stored when they end, stamped with their start: rows older than one request
    // timeout are complete (the admin "run now" button uses the same rule).
    const settleMs = config.limits.requestTimeoutMs;
    const shadow = standaloneShadowStep(config, store);
    const result = await runLearner({ store, dataDir: config.dataDir, sharedLock: redis?.lock, embedder, halfLifeDays, full: args.full, settleMs, onProgress, shadow, optimism: config.routing.optimism });
    console.log(summary(result));
    if (result.status === 'ok' && result.version !== result.previousVersion) await redis?.announce(result.version);
    return result.status === 'ok' ? 0 : 1;
  } catch (err) {
    if (err instanceof LearnerBusyError) {
      console.error(`learner: ${err.message}; not starting a second run`);
      return 3;
    }
    throw err;
  } finally {
    await redis?.close();
    await store.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`learner: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
