// Versioned persistence of LearnedState: write version N completely (priors, profiles, kNN index
// directory), then swap the `learned.version` pointer in one transaction; keep the last 3 versions.
// Versions live in the database, so every instance on it loads the same one; where the store says
// index snapshots live in the database (PostgreSQL), the kNN index files go there too and an
// instance that lacks a version's directory fetches it.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KnnCalibration, KnobCalibration, LearnedState, ModelProfile, PriorCell } from '../core/routing.ts';
import type { Store } from '../core/store.ts';
import type { Evidence } from './priors.ts';
import type { ModelTotals } from './profiles.ts';

export const VERSION_KEY = 'learned.version';
export const LAST_TS_KEY = 'learner.lastTs';
const blobKey = (version: number) => `learned.v${version}`;
const KEEP_VERSIONS = 3;

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
  /** Versions written before priors had their own table carry them here. */
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

async function readBlob(store: Store, version: number): Promise<VersionBlob | null> {
  if (version <= 0) return null;
  const blob = await store.getState<VersionBlob>(blobKey(version));
  return blob && blob.version === version ? blob : null;
}

/** The version's priors, with its kNN index fetched into the data directory when it lives in the database. */
async function readPriors(store: Store, blob: VersionBlob, dataDir: string): Promise<PriorCell[]> {
  await fetchIndexSnapshot(store, blob, dataDir);
  if (blob.priors) return blob.priors;
  return (await store.readPriors(blob.version)).rows;
}

/** The version's kNN index into the data directory, from the database, when this instance lacks it. */
async function fetchIndexSnapshot(store: Store, blob: VersionBlob, dataDir: string): Promise<void> {
  const dir = indexDirFor(dataDir, blob.version);
  if (!blob.hasIndex || store.indexSnapshots !== 'store' || existsSync(dir)) return;
  const files = await store.loadIndexSnapshot(blob.version);
  if (!files) return;
  // Written beside and renamed into place: a reader sees the whole directory or none.
  const tmp = `${dir}.${process.pid}.${Date.now()}.tmp`;
  await mkdir(tmp, { recursive: true });
  for (const f of files) await writeFile(path.join(tmp, path.basename(f.name)), f.data);
  await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
    await rm(tmp, { recursive: true, force: true });
    if (!existsSync(dir)) throw err; // else another process fetched it first
  });
  // This instance does not run the pruning learner: drop fetched versions older than those kept.
  for (const name of await readdir(path.dirname(dir)).catch(() => [] as string[])) {
    const v = Number(/^v(\d+)$/.exec(name)?.[1] ?? NaN);
    if (v < blob.version - KEEP_VERSIONS + 1) await rm(path.join(path.dirname(dir), name), { recursive: true, force: true });
  }
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
  return blob ? toState(blob, await readPriors(store, blob, dataDir), dataDir) : null;
}

/** A kept version by number (the last 3 are kept), or null when it is gone. */
export async function loadLearnedVersion(store: Store, dataDir: string, version: number): Promise<LearnedState | null> {
  const blob = await readBlob(store, version);
  return blob ? toState(blob, await readPriors(store, blob, dataDir), dataDir) : null;
}

/** The current version with the learner's bookkeeping, for an incremental run. */
export async function loadLearnerSnapshot(store: Store, dataDir: string): Promise<{ state: LearnedState; memory: LearnerMemory } | null> {
  const blob = await readBlob(store, await currentVersion(store));
  return blob ? { state: toState(blob, await readPriors(store, blob, dataDir), dataDir), memory: blob.memory } : null;
}

/**
 * Write a new version and make it current: the kNN index directory first, then priors, the
 * version blob and the pointer in one transaction (store.commitLearnedVersion). A throw anywhere before the
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
    if (store.indexSnapshots === 'store') {
      const names = await readdir(dir);
      await store.saveIndexSnapshot(version, await Promise.all(names.map(async (name) => ({ name, data: await readFile(path.join(dir, name)) }))));
    }
  }
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
    memory: next.memory,
  };
  await store.commitLearnedVersion({
    version,
    priors: next.priors,
    // The pointer moves in the same transaction as the blob and the priors (store.readPriors follows 'priors.version').
    state: { [blobKey(version)]: blob, [VERSION_KEY]: version, [LAST_TS_KEY]: next.memory.lastTs },
  });
  return toState(blob, next.priors, dataDir);
}

/** Drop versions older than the last `keep` (priors rows, state blobs, index snapshots and directories). */
export async function pruneVersions(store: Store, dataDir: string, keep = KEEP_VERSIONS): Promise<number[]> {
  const current = await currentVersion(store);
  const oldestKept = current - keep + 1;
  if (oldestKept <= 1) return [];
  const pruned = new Set<number>(await store.pruneLearnedVersions(oldestKept, current));
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
  return [...pruned].sort((a, b) => a - b);
}
