// Versioned persistence of LearnedState: write version N completely (priors, profiles, kNN index
// directory), then swap the `learned.version` pointer in one statement; keep the last 3 versions.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { KnnCalibration, KnobCalibration, LearnedState, ModelProfile, PriorCell } from '../router/types.ts';
import type { Store } from '../server/store/types.ts';
import type { Evidence } from './priors.ts';
import type { ModelTotals } from './profiles.ts';

export const VERSION_KEY = 'learned.version';
export const LAST_TS_KEY = 'learner.lastTs';
const PRIORS_VERSION_KEY = 'priors.version';
const blobKey = (version: number) => `learned.v${version}`;
const KEEP_VERSIONS = 3;
/** Rows per multi-row INSERT: 6 parameters each stays below SQLite's 999-parameter floor. */
const PRIOR_INSERT_CHUNK = 150;

/** The learner's own bookkeeping, stored with each version so an incremental run resumes exactly. */
export interface LearnerMemory {
  evidence: Evidence;
  totals: ModelTotals;
  /** Highest row timestamp consumed, and the ids consumed at exactly that timestamp. */
  lastTs: number;
  boundaryIds: string[];
  rowsSeen: number;
  /** Feedback up to this time is in the evidence; later feedback on rows already read is a late rating. */
  feedbackTs?: number;
  /** What the kNN index was built with ('tfidf', or a dense embedder's name): vectors of another kind do not mix. */
  embedder?: string;
}

interface VersionBlob {
  version: number;
  createdAt: number;
  profiles: Record<string, ModelProfile>;
  avgOutputTokens: Record<string, number>;
  avgLatencyMs: Record<string, number>;
  hasIndex: boolean;
  keywordRuleWeights?: Record<string, number>;
  knnCalibration?: KnnCalibration;
  knobCalibration?: KnobCalibration;
  /** Only when the store has no routing_priors table. */
  priors?: PriorCell[];
  memory: LearnerMemory;
}

export interface NewVersion {
  createdAt: number;
  priors: PriorCell[];
  profiles: Record<string, ModelProfile>;
  avgOutputTokens: Record<string, number>;
  avgLatencyMs: Record<string, number>;
  keywordRuleWeights?: Record<string, number>;
  knnCalibration?: KnnCalibration;
  knobCalibration?: KnobCalibration;
  memory: LearnerMemory;
  /** Writes the kNN index into the given (empty, existing) directory. */
  saveIndex?: (dir: string) => Promise<void>;
}

export const indexDirFor = (dataDir: string, version: number) => path.join(dataDir, 'index', `v${version}`);

/** The version the pointer names, 0 when the learner never completed a run. */
export async function currentVersion(store: Store): Promise<number> {
  const v = await store.getState<number>(VERSION_KEY);
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 0;
}

async function hasPriorsTable(store: Store): Promise<boolean> {
  try {
    await store.all('SELECT version FROM routing_priors LIMIT 1');
    return true;
  } catch {
    return false;
  }
}

async function readBlob(store: Store, version: number): Promise<VersionBlob | null> {
  if (version <= 0) return null;
  const blob = await store.getState<VersionBlob>(blobKey(version));
  return blob && blob.version === version ? blob : null;
}

async function readPriors(store: Store, blob: VersionBlob): Promise<PriorCell[]> {
  if (blob.priors) return blob.priors;
  return store.all<PriorCell>('SELECT model, domain, language, alpha, beta FROM routing_priors WHERE version = ? ORDER BY model, domain, language', [blob.version]);
}

function toState(blob: VersionBlob, priors: PriorCell[], dataDir: string): LearnedState {
  const dir = indexDirFor(dataDir, blob.version);
  return {
    version: blob.version,
    createdAt: blob.createdAt,
    priors,
    profiles: blob.profiles,
    avgOutputTokens: blob.avgOutputTokens,
    avgLatencyMs: blob.avgLatencyMs,
    indexDir: blob.hasIndex && existsSync(dir) ? dir : null,
    ...(blob.keywordRuleWeights ? { keywordRuleWeights: blob.keywordRuleWeights } : {}),
    ...(blob.knnCalibration ? { knnCalibration: blob.knnCalibration } : {}),
    ...(blob.knobCalibration ? { knobCalibration: blob.knobCalibration } : {}),
  };
}

/** The router's loader: the version the pointer names, or null before the first learner run. */
export async function loadLearnedState(store: Store, dataDir: string): Promise<LearnedState | null> {
  const blob = await readBlob(store, await currentVersion(store));
  return blob ? toState(blob, await readPriors(store, blob), dataDir) : null;
}

/** A kept version by number (the last 3 are kept), or null when it is gone. */
export async function loadLearnedVersion(store: Store, dataDir: string, version: number): Promise<LearnedState | null> {
  const blob = await readBlob(store, version);
  return blob ? toState(blob, await readPriors(store, blob), dataDir) : null;
}

/** The current version with the learner's bookkeeping, for an incremental run. */
export async function loadLearnerSnapshot(store: Store, dataDir: string): Promise<{ state: LearnedState; memory: LearnerMemory } | null> {
  const blob = await readBlob(store, await currentVersion(store));
  return blob ? { state: toState(blob, await readPriors(store, blob), dataDir), memory: blob.memory } : null;
}

const upsertState = (key: string, value: unknown, now: number) => ({
  sql: `INSERT INTO app_state (key, value_json, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at`,
  params: [key, JSON.stringify(value), now],
});

function priorStatements(version: number, priors: readonly PriorCell[]): { sql: string; params: unknown[] }[] {
  const out: { sql: string; params: unknown[] }[] = [{ sql: 'DELETE FROM routing_priors WHERE version = ?', params: [version] }];
  for (let i = 0; i < priors.length; i += PRIOR_INSERT_CHUNK) {
    const chunk = priors.slice(i, i + PRIOR_INSERT_CHUNK);
    const params: unknown[] = [];
    for (const c of chunk) params.push(version, c.model, c.domain, c.language, c.alpha, c.beta);
    out.push({ sql: `INSERT INTO routing_priors (version, model, domain, language, alpha, beta) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`, params });
  }
  return out;
}

/**
 * Write a new version and make it current: the kNN index directory first, then priors, the
 * version blob and the pointer in one transaction (store.runBatch). A throw anywhere before the
 * commit leaves the previous version in force. The caller holds the learner lock.
 */
export async function writeLearnedVersion(store: Store, dataDir: string, next: NewVersion, now: number = Date.now()): Promise<LearnedState> {
  const version = (await currentVersion(store)) + 1;
  const dir = indexDirFor(dataDir, version);
  // Leftovers of a run that died before its swap may occupy this number: start clean.
  await rm(dir, { recursive: true, force: true });
  if (next.saveIndex) {
    await mkdir(dir, { recursive: true });
    await next.saveIndex(dir);
  }
  const inTable = await hasPriorsTable(store);
  const blob: VersionBlob = {
    version,
    createdAt: next.createdAt,
    profiles: next.profiles,
    avgOutputTokens: next.avgOutputTokens,
    avgLatencyMs: next.avgLatencyMs,
    hasIndex: Boolean(next.saveIndex),
    ...(next.keywordRuleWeights ? { keywordRuleWeights: next.keywordRuleWeights } : {}),
    ...(next.knnCalibration ? { knnCalibration: next.knnCalibration } : {}),
    ...(next.knobCalibration ? { knobCalibration: next.knobCalibration } : {}),
    ...(inTable ? {} : { priors: next.priors }),
    memory: next.memory,
  };
  const statements = [
    ...(inTable ? priorStatements(version, next.priors) : []),
    upsertState(blobKey(version), blob, now),
    upsertState(VERSION_KEY, version, now),
    // Informational mirrors for admin pages (store.readPriors follows 'priors.version').
    upsertState(LAST_TS_KEY, next.memory.lastTs, now),
    ...(inTable ? [upsertState(PRIORS_VERSION_KEY, version, now)] : []),
  ];
  if (store.runBatch) await store.runBatch(statements);
  else for (const s of statements) await store.run(s.sql, s.params); // pointer last: still write-then-swap
  return toState(blob, next.priors, dataDir);
}

/** Drop versions older than the last `keep` (priors rows, state blobs, index directories). */
export async function pruneVersions(store: Store, dataDir: string, keep = KEEP_VERSIONS): Promise<number[]> {
  const current = await currentVersion(store);
  const oldestKept = current - keep + 1;
  if (oldestKept <= 1) return [];
  const pruned = new Set<number>();
  if (await hasPriorsTable(store)) {
    const rows = await store.all<{ version: number }>('SELECT DISTINCT version FROM routing_priors WHERE version < ? OR version > ?', [oldestKept, current]);
    for (const r of rows) pruned.add(r.version);
    await store.run('DELETE FROM routing_priors WHERE version < ? OR version > ?', [oldestKept, current]);
  }
  const indexRoot = path.join(dataDir, 'index');
  const entries = await readdir(indexRoot).catch(() => [] as string[]);
  for (const name of entries) {
    const m = /^v(\d+)$/.exec(name);
    if (!m) continue;
    const v = Number(m[1]);
    if (v >= oldestKept && v <= current) continue;
    await rm(path.join(indexRoot, name), { recursive: true, force: true });
    pruned.add(v);
  }
  const blobVersions = await store
    .all<{ key: string }>("SELECT key FROM app_state WHERE key GLOB 'learned.v[0-9]*'")
    .then((rows) => rows.map((r) => Number(/^learned\.v(\d+)$/.exec(r.key)?.[1])).filter((v) => Number.isInteger(v)));
  for (const v of blobVersions) {
    if (v >= oldestKept && v <= current) continue;
    await store.run('DELETE FROM app_state WHERE key = ?', [blobKey(v)]);
    pruned.add(v);
  }
  return [...pruned].sort((a, b) => a - b);
}
