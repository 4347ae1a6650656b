// Nearest-neighbour memory of past queries and how each model did on them: an HNSW index
// (hnswlib-node) and an exact brute-force twin, shared outcome scoring, and the `knn` routing stage.
import fs from 'node:fs/promises';
import path from 'node:path';
import hnswlib from 'hnswlib-node';
import type { ClientSignal } from '../core/stop-signal.ts';
import type { Embedder } from '../core/embedder.ts';
import type { CandidateModel, QueryFeatures, RoutingStage, StageResult } from '../core/routing.ts';
import { decodeSparse, encodeSparse, SparseTextIndex, textFeatures, writeAtomically, type SparseText, type TfidfOptions } from './tfidf.ts';
import { l2normalize } from './vector.ts';

export interface Outcome {
  model: string;
  success: boolean;
  /** 1..5 when a person or judge rated the answer. */
  rating?: number;
  latencyMs: number;
}

export interface Neighbour {
  id: string;
  /** Cosine similarity in [-1, 1]. */
  similarity: number;
  outcomes: Outcome[];
}

export interface ModelScores {
  /** score: shrunk toward the global mean; weight/sum: raw Σw and Σw·q over the neighbours. */
  perModel: Record<string, { score: number; support: number; weight: number; sum: number }>;
  confidence: number;
  neighbours: number;
  meanSimilarity: number;
}

/** What the benchmark and the dense indexes share: vectors in, neighbours and scores out. */
export interface NeighbourIndex<V = Float32Array> {
  readonly size: number;
  add(id: string, vector: V, outcomes: Outcome[]): void;
  search(vector: V, k: number): Neighbour[];
  scoreModels(vector: V, k: number, candidates: string[]): ModelScores;
}

/**
 * What `KnnStage`, the learner and calibration need: texts in. Two kinds: 'tfidf' (the built-in
 * sparse TF-IDF index, router/tfidf.ts) and 'dense' (an embedder's vectors in HNSW).
 */
export interface TextIndex {
  readonly kind: 'tfidf' | 'dense';
  readonly size: number;
  /** Adds queries; a known id merges its outcomes. */
  addTexts(entries: readonly { id: string; text: string; outcomes: Outcome[] }[]): Promise<void>;
  search(text: string, k: number): Promise<Neighbour[]>;
  scoreModels(text: string, k: number, candidates: string[]): Promise<ModelScores>;
  /** scoreModels without waiting, offered by an index that needs no I/O for it (TF-IDF; not an embedder). */
  scoreModelsNow?(text: string, k: number, candidates: string[]): ModelScores;
  save(dir: string): Promise<void>;
}

/**
 * Quality of one outcome in [0, 1], or null when the outcome says nothing about quality: a rating
 * r in 1..5 maps to (r - 1) / 4 and a failure counts 0, but an answered, unrated request is only
 * evidence that the model was up. Counting it as "good enough" made the router learn that
 * whatever it picked was fine, and collapse onto the cheapest model it had tried.
 */
export function outcomeQuality(o: Outcome): number | null {
  if (o.rating !== undefined && Number.isFinite(o.rating)) return Math.min(1, Math.max(0, (o.rating - 1) / 4));
  return o.success ? null : 0;
}

export interface ScoringOptions {
  /** λ: pseudo-weight of the model's global mean in the shrunk score (default 2). */
  priorStrength?: number;
}

interface Entry {
  id: string;
  outcomes: Outcome[];
}

/**
 * Ids, outcomes and global per-model means, plus the scoring shared by both indexes.
 *
 * Scoring, for neighbours i with similarity s_i and weight w_i = max(s_i, 0), and each model m:
 *   local mean  μ_m = Σ w_i·q(o) / Σ w_i      over m's outcomes o at the neighbours (q = outcomeQuality)
 *   score       s_m = (W_m·μ_m + λ·g_m) / (W_m + λ)   with W_m = Σ w_i, g_m = m's global mean quality
 *   support     n_m = number of m's outcomes among the neighbours
 * Models with no outcome anywhere are left out (no opinion); models seen only elsewhere score g_m.
 * Confidence = meanSim⁺ · agreement · coverage, where meanSim⁺ is the mean of max(s_i, 0),
 * agreement = 1 − 2·σ (σ = weighted std-dev of the best model's local qualities, at most 0.5),
 * coverage = n_best / (n_best + λ); 0 when no candidate has local support.
 */
abstract class OutcomeIndex<V = Float32Array> implements NeighbourIndex<V> {
  protected readonly entries: Entry[] = [];
  protected readonly labels = new Map<string, number>();
  private readonly globalSum = new Map<string, number>();
  private readonly globalCount = new Map<string, number>();
  /** A number per model seen, for `rated`. */
  private readonly modelNumbers = new Map<string, number>();
  /**
   * Per label, its outcomes that say something about quality, in order, as model numbers and
   * qualities: what scoring reads for every routed request, kept flat and precomputed.
   */
  private readonly rated: { models: number[]; qualities: number[] }[] = [];
  protected readonly priorStrength: number;

  constructor(scoring: ScoringOptions = {}) {
    this.priorStrength = scoring.priorStrength ?? 2;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Stores the vector under a new label (only called for new ids). */
  protected abstract insert(label: number, vector: V): void;
  /** Nearest labels with similarity, best first; k <= size. */
  protected abstract nearest(vector: V, k: number): Array<{ label: number; similarity: number }>;
  /** Throws when a vector does not fit the index. */
  protected check(_vector: V): void {}

  /** Adds a query; adding a known id merges the outcomes and keeps the first vector. */
  add(id: string, vector: V, outcomes: Outcome[]): void {
    this.check(vector);
    let label = this.labels.get(id);
    if (label === undefined) {
      label = this.entries.length;
      this.insert(label, vector);
      this.entries.push({ id, outcomes: [] });
      this.rated.push({ models: [], qualities: [] });
      this.labels.set(id, label);
    }
    for (const o of outcomes) {
      // Copy only the known fields so persisted entries round-trip exactly.
      const copy: Outcome = { model: o.model, success: o.success, latencyMs: o.latencyMs };
      if (o.rating !== undefined) copy.rating = o.rating;
      this.entries[label]!.outcomes.push(copy);
      this.count(label, copy);
    }
  }

  /** Re-attaches an entry whose vector is already in the index (used when loading). */
  protected adopt(entry: Entry): void {
    const label = this.entries.length;
    this.labels.set(entry.id, label);
    this.entries.push({ id: entry.id, outcomes: entry.outcomes });
    this.rated.push({ models: [], qualities: [] });
    for (const o of entry.outcomes) this.count(label, o);
  }

  /** Counts an outcome of `label` in the global means and, when it has a quality, in `rated`. */
  private count(label: number, o: Outcome): void {
    const q = outcomeQuality(o);
    if (q === null) return;
    this.globalSum.set(o.model, (this.globalSum.get(o.model) ?? 0) + q);
    this.globalCount.set(o.model, (this.globalCount.get(o.model) ?? 0) + 1);
    let n = this.modelNumbers.get(o.model);
    if (n === undefined) this.modelNumbers.set(o.model, (n = this.modelNumbers.size));
    const r = this.rated[label]!;
    r.models.push(n);
    r.qualities.push(q);
  }

  /** Mean quality of a model over the whole index, or undefined when never seen. */
  globalMean(model: string): number | undefined {
    const n = this.globalCount.get(model);
    return n ? this.globalSum.get(model)! / n : undefined;
  }

  search(vector: V, k: number): Neighbour[] {
    const kk = Math.min(Math.max(0, Math.floor(k)), this.size);
    if (kk === 0) return [];
    return this.nearest(vector, kk).map(({ label, similarity }) => {
      const e = this.entries[label]!;
      return { id: e.id, similarity, outcomes: e.outcomes };
    });
  }

  scoreModels(vector: V, k: number, candidates: string[]): ModelScores {
    // search(), without building the neighbours' objects.
    const kk = Math.min(Math.max(0, Math.floor(k)), this.size);
    const neighbours = kk === 0 ? [] : this.nearest(vector, kk);
    const empty: ModelScores = { perModel: {}, confidence: 0, neighbours: neighbours.length, meanSimilarity: 0 };
    if (neighbours.length === 0) return empty;
    // Per-candidate sums in arrays, and each model number's candidate slot (-1: not a candidate).
    const models: string[] = [];
    for (const c of candidates) if (!models.includes(c)) models.push(c);
    const slot = new Array<number>(this.modelNumbers.size).fill(-1);
    for (let m = 0; m < models.length; m++) {
      const n = this.modelNumbers.get(models[m]!);
      if (n !== undefined) slot[n] = m;
    }
    const sumWQ = new Array<number>(models.length).fill(0);
    const sumW = new Array<number>(models.length).fill(0);
    const support = new Array<number>(models.length).fill(0);
    let simTotal = 0;
    for (const { label, similarity } of neighbours) {
      const w = Math.max(similarity, 0);
      simTotal += w;
      const r = this.rated[label]!;
      for (let j = 0; j < r.models.length; j++) {
        const m = slot[r.models[j]!]!;
        if (m < 0) continue;
        sumWQ[m] += w * r.qualities[j]!;
        sumW[m] += w;
        support[m]++;
      }
    }
    const meanSimilarity = simTotal / neighbours.length;
    const λ = this.priorStrength;
    const perModel: ModelScores['perModel'] = {};
    let best = -1;
    for (let m = 0; m < models.length; m++) {
      const g = this.globalMean(models[m]!);
      if (g === undefined) continue;
      const W = sumW[m]!;
      const score = (sumWQ[m]! + λ * g) / (W + λ);
      perModel[models[m]!] = { score, support: support[m]!, weight: W, sum: sumWQ[m]! };
      if (support[m]! > 0 && (best < 0 || score > perModel[models[best]!]!.score)) best = m;
    }
    if (best < 0) return { ...empty, perModel, meanSimilarity };
    const bestModel = models[best]!;
    const bestNumber = this.modelNumbers.get(bestModel)!;
    const mean = sumW[best]! > 0 ? sumWQ[best]! / sumW[best]! : 0;
    let varSum = 0;
    let wSum = 0;
    for (const { label, similarity } of neighbours) {
      const w = Math.max(similarity, 0);
      const r = this.rated[label]!;
      for (let j = 0; j < r.models.length; j++) {
        if (r.models[j] !== bestNumber) continue;
        varSum += w * (r.qualities[j]! - mean) ** 2;
        wSum += w;
      }
    }
    const sigma = wSum > 0 ? Math.sqrt(varSum / wSum) : 0.5;
    const agreement = Math.max(0, 1 - 2 * sigma);
    const nBest = perModel[bestModel]!.support;
    const coverage = nBest / (nBest + λ);
    const confidence = Math.min(1, Math.max(0, meanSimilarity * agreement * coverage));
    return { perModel, confidence, neighbours: neighbours.length, meanSimilarity };
  }
}

export interface KnnIndexOptions extends ScoringOptions {
  /** 'cosine' normalises inside hnswlib; 'ip' assumes unit vectors (ours are). */
  space?: 'cosine' | 'ip';
  /** Initial capacity; doubled whenever it is full. */
  maxElements?: number;
  m?: number;
  efConstruction?: number;
  /** Search breadth; raised to k when k is larger. */
  efSearch?: number;
  seed?: number;
}

const SIDECAR = 'knn.ndjson';

/** A saved index file's text; null when it does not exist (no index there). */
async function readIfPresent(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** HNSW-backed index: sub-linear search, persisted as an hnswlib file plus an NDJSON sidecar. */
export class KnnIndex extends OutcomeIndex {
  private static generation = 0;
  private efNow = 0;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    readonly dim: number,
    private readonly hnsw: hnswlib.HierarchicalNSW,
    private readonly opts: Required<Omit<KnnIndexOptions, 'priorStrength'>> & ScoringOptions,
  ) {
    super(opts);
  }

  protected override check(vector: Float32Array): void {
    if (vector.length !== this.dim) throw new Error(`vector has dim ${vector.length}, index has ${this.dim}`);
  }

  private static settle(opts: KnnIndexOptions): Required<Omit<KnnIndexOptions, 'priorStrength'>> & ScoringOptions {
    return {
      space: opts.space ?? 'cosine', maxElements: Math.max(16, opts.maxElements ?? 1024), m: opts.m ?? 16,
      efConstruction: opts.efConstruction ?? 100, efSearch: opts.efSearch ?? 64, seed: opts.seed ?? 100,
      priorStrength: opts.priorStrength,
    };
  }

  static create(dim: number, opts: KnnIndexOptions = {}): KnnIndex {
    const o = KnnIndex.settle(opts);
    const hnsw = new hnswlib.HierarchicalNSW(o.space, dim);
    hnsw.initIndex(o.maxElements, o.m, o.efConstruction, o.seed);
    return new KnnIndex(dim, hnsw, o);
  }

  get capacity(): number {
    return this.hnsw.getMaxElements();
  }

  protected insert(label: number, vector: Float32Array): void {
    if (this.hnsw.getCurrentCount() >= this.hnsw.getMaxElements()) {
      this.hnsw.resizeIndex(this.hnsw.getMaxElements() * 2);
    }
    this.hnsw.addPoint(Array.from(vector), label);
  }

  protected nearest(vector: Float32Array, k: number): Array<{ label: number; similarity: number }> {
    const ef = Math.max(this.opts.efSearch, k);
    if (ef !== this.efNow) {
      this.hnsw.setEf(ef);
      this.efNow = ef;
    }
    const { distances, neighbors } = this.hnsw.searchKnn(Array.from(vector), k);
    const out = neighbors.map((label, i) => ({ label, similarity: 1 - distances[i]! }));
    return out.sort((a, b) => b.similarity - a.similarity);
  }

  /**
   * Writes `knn-<generation>.hnsw` then the sidecar naming it, each via temp file + rename, so a
   * reader sees either the old pair or the new pair; older generations are removed afterwards.
   * The index file and the entry list are captured in one synchronous step, so adds racing a save
   * can neither touch hnswlib mid-write nor make the two disagree. Saves are serialised.
   */
  save(dir: string): Promise<void> {
    const run = this.saving.catch(() => undefined).then(() => this.saveNow(dir));
    this.saving = run;
    return run;
  }

  private async saveNow(dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true });
    const indexFile = `knn-${Date.now()}-${process.pid}-${++KnnIndex.generation}.hnsw`;
    const tmpIndex = path.join(dir, `${indexFile}.tmp`);
    this.hnsw.writeIndexSync(tmpIndex);
    const { space, m, efConstruction, efSearch, seed } = this.opts;
    const meta = { version: 1, dim: this.dim, count: this.size, indexFile, space, m, efConstruction, efSearch, seed, priorStrength: this.priorStrength };
    const sidecar = [JSON.stringify(meta), ...this.entries.map((e) => JSON.stringify(e))].join('\n') + '\n';
    await fs.rename(tmpIndex, path.join(dir, indexFile));
    const tmpSidecar = path.join(dir, `${SIDECAR}.${process.pid}.tmp`);
    await fs.writeFile(tmpSidecar, sidecar);
    await fs.rename(tmpSidecar, path.join(dir, SIDECAR));
    for (const name of await fs.readdir(dir)) {
      if (/^knn-.*\.hnsw$/.test(name) && name !== indexFile) await fs.rm(path.join(dir, name), { force: true });
    }
  }

  /** Loads what `save` wrote; null when `dir` holds no index; throws on a dim mismatch or damage. */
  static async load(dir: string, dim: number, opts: KnnIndexOptions = {}): Promise<KnnIndex | null> {
    const text = await readIfPresent(path.join(dir, SIDECAR));
    if (text === null) return null;
    const [head, ...rest] = text.split('\n').filter((l) => l.length > 0);
    const meta = JSON.parse(head ?? '{}') as {
      dim?: number; count?: number; indexFile?: string; space?: 'cosine' | 'ip'; m?: number;
      efConstruction?: number; efSearch?: number; seed?: number; priorStrength?: number;
    };
    if (meta.dim !== dim) throw new Error(`kNN index in ${dir} has dim ${meta.dim}, embedder has ${dim}: rebuild the index`);
    if (!meta.indexFile || rest.length !== meta.count) throw new Error(`kNN sidecar in ${dir} is damaged`);
    const o = KnnIndex.settle({ ...meta, ...opts });
    const hnsw = new hnswlib.HierarchicalNSW(o.space, dim);
    await hnsw.readIndex(path.join(dir, meta.indexFile));
    if (hnsw.getCurrentCount() !== meta.count) {
      throw new Error(`kNN index in ${dir} holds ${hnsw.getCurrentCount()} vectors, sidecar lists ${meta.count}`);
    }
    const index = new KnnIndex(dim, hnsw, { ...o, priorStrength: opts.priorStrength ?? meta.priorStrength });
    for (const line of rest) index.adopt(JSON.parse(line) as Entry);
    return index;
  }
}

/** Exact scan over unit vectors: the recall reference and the benchmark baseline. */
export class BruteForceIndex extends OutcomeIndex {
  private vectors: Float32Array;

  constructor(readonly dim: number, scoring: ScoringOptions = {}) {
    super(scoring);
    this.vectors = new Float32Array(dim * 1024);
  }

  protected override check(vector: Float32Array): void {
    if (vector.length !== this.dim) throw new Error(`vector has dim ${vector.length}, index has ${this.dim}`);
  }

  protected insert(label: number, vector: Float32Array): void {
    const offset = label * this.dim;
    if (offset + this.dim > this.vectors.length) {
      const grown = new Float32Array(this.vectors.length * 2);
      grown.set(this.vectors);
      this.vectors = grown;
    }
    this.vectors.set(vector, offset);
    l2normalize(this.vectors.subarray(offset, offset + this.dim));
  }

  protected nearest(vector: Float32Array, k: number): Array<{ label: number; similarity: number }> {
    const q = l2normalize(Float32Array.from(vector));
    const top: Array<{ label: number; similarity: number }> = [];
    const dim = this.dim;
    const data = this.vectors;
    for (let label = 0; label < this.size; label++) {
      // Inline dot product: a subarray per row would allocate on every comparison.
      const offset = label * dim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let j = 0;
      for (; j + 3 < dim; j += 4) {
        s0 += q[j]! * data[offset + j]!;
        s1 += q[j + 1]! * data[offset + j + 1]!;
        s2 += q[j + 2]! * data[offset + j + 2]!;
        s3 += q[j + 3]! * data[offset + j + 3]!;
      }
      for (; j < dim; j++) s0 += q[j]! * data[offset + j]!;
      const similarity = s0 + s1 + s2 + s3;
      if (top.length === k && similarity <= top[k - 1]!.similarity) continue;
      let i = top.length === k ? k - 1 : top.length;
      if (top.length === k) top.pop();
      while (i > 0 && top[i - 1]!.similarity < similarity) i--;
      top.splice(i, 0, { label, similarity });
    }
    return top;
  }
}

/** Outcome scoring over the exact TF-IDF search (router/tfidf.ts). */
class SparseOutcomeIndex extends OutcomeIndex<SparseText> {
  private readonly sparse: SparseTextIndex;
  /** Each entry's features, kept to save the index. */
  readonly docs: SparseText[] = [];

  constructor(opts: ScoringOptions & TfidfOptions = {}) {
    super(opts);
    this.sparse = new SparseTextIndex(opts);
  }

  protected insert(label: number, vector: SparseText): void {
    const got = this.sparse.insert(vector);
    if (got !== label) throw new Error(`tf-idf index out of step: label ${got}, expected ${label}`);
    this.docs.push(vector);
  }

  protected nearest(vector: SparseText, k: number): Array<{ label: number; similarity: number }> {
    return this.sparse.nearest(vector, k);
  }

  settle(): void {
    this.sparse.settle();
  }

  /** Header and entry lines of the saved form. */
  lines(): string[] {
    const out = [JSON.stringify({ version: 1, kind: 'tfidf', count: this.size, priorStrength: this.priorStrength })];
    this.entries.forEach((e, i) => out.push(JSON.stringify({ id: e.id, outcomes: e.outcomes, ...encodeSparse(this.docs[i]!) })));
    return out;
  }
}

/** The built-in text index: exact TF-IDF search with the shared outcome scoring. */
export class TfidfIndex implements TextIndex {
  readonly kind = 'tfidf' as const;
  private readonly index: SparseOutcomeIndex;

  constructor(opts: ScoringOptions & TfidfOptions = {}) {
    this.index = new SparseOutcomeIndex(opts);
  }

  get size(): number {
    return this.index.size;
  }

  async addTexts(entries: readonly { id: string; text: string; outcomes: Outcome[] }[]): Promise<void> {
    for (const e of entries) this.index.add(e.id, textFeatures(e.text), e.outcomes);
  }

  async search(text: string, k: number): Promise<Neighbour[]> {
    return this.index.search(textFeatures(text), k);
  }

  async scoreModels(text: string, k: number, candidates: string[]): Promise<ModelScores> {
    return this.scoreModelsNow(text, k, candidates);
  }

  scoreModelsNow(text: string, k: number, candidates: string[]): ModelScores {
    return this.index.scoreModels(textFeatures(text), k, candidates);
  }

  /** One NDJSON file: a header, then each entry with its outcomes and features (written atomically). */
  async save(dir: string): Promise<void> {
    await writeAtomically(path.join(dir, TFIDF_FILE), this.index.lines().join('\n') + '\n');
  }

  /** Loads what `save` wrote; null when `dir` holds none. Yields to the event loop every 2,000 entries. */
  static async load(dir: string, opts: ScoringOptions = {}): Promise<TfidfIndex | null> {
    const text = await readIfPresent(path.join(dir, TFIDF_FILE));
    if (text === null) return null;
    const [head, ...rest] = text.split('\n').filter((l) => l.length > 0);
    const meta = JSON.parse(head ?? '{}') as { count?: number; priorStrength?: number };
    if (rest.length !== meta.count) throw new Error(`tf-idf index in ${dir} is damaged: ${rest.length} entries, header says ${meta.count}`);
    const out = new TfidfIndex({ priorStrength: opts.priorStrength ?? meta.priorStrength });
    for (let i = 0; i < rest.length; i++) {
      const e = JSON.parse(rest[i]!) as { id: string; outcomes: Outcome[]; k: number[]; t: number[] };
      out.index.add(e.id, decodeSparse(e), e.outcomes);
      if (i % 2000 === 1999) await new Promise((r) => setImmediate(r));
    }
    // Norms now, while loading, rather than in the first request's search.
    out.index.settle();
    return out;
  }
}

const TFIDF_FILE = 'tfidf.ndjson';

/** An embedder's vectors in a vector index (HNSW, or the exact scan for benchmarks). */
export class DenseTextIndex implements TextIndex {
  readonly kind = 'dense' as const;
  constructor(readonly index: NeighbourIndex & { save?(dir: string): Promise<void> }, private readonly embedder: Embedder) {}

  get size(): number {
    return this.index.size;
  }

  private async vector(text: string): Promise<Float32Array> {
    const [v] = await this.embedder.embed([text]);
    return v!;
  }

  async addTexts(entries: readonly { id: string; text: string; outcomes: Outcome[] }[]): Promise<void> {
    for (let i = 0; i < entries.length; i += 256) {
      const chunk = entries.slice(i, i + 256);
      const vectors = await this.embedder.embed(chunk.map((e) => e.text));
      if (vectors.length !== chunk.length) throw new Error(`embedder returned ${vectors.length} vectors for ${chunk.length} texts`);
      chunk.forEach((e, j) => this.index.add(e.id, vectors[j]!, e.outcomes));
    }
  }

  async search(text: string, k: number): Promise<Neighbour[]> {
    return this.index.search(await this.vector(text), k);
  }

  async scoreModels(text: string, k: number, candidates: string[]): Promise<ModelScores> {
    return this.index.scoreModels(await this.vector(text), k, candidates);
  }

  async save(dir: string): Promise<void> {
    if (!this.index.save) throw new Error('this vector index cannot be saved');
    await this.index.save(dir);
  }
}

/**
 * The routing index for an embedder: the built-in embedder routes on exact TF-IDF (better
 * neighbours than its 256-dimension hash); a real embedding model (transformers, Ollama) on its
 * own vectors in HNSW.
 */
export function routingIndexKind(embedder: Embedder): TextIndex['kind'] {
  return embedder.name.startsWith('builtin') ? 'tfidf' : 'dense';
}

export function createTextIndex(embedder: Embedder): TextIndex {
  return routingIndexKind(embedder) === 'tfidf' ? new TfidfIndex() : new DenseTextIndex(KnnIndex.create(embedder.dim), embedder);
}

/** Loads the index a learner version saved in `dir`, of the kind this embedder routes on; null when there is none. */
export async function loadTextIndex(dir: string, embedder: Embedder): Promise<TextIndex | null> {
  if (routingIndexKind(embedder) === 'tfidf') return TfidfIndex.load(dir);
  const index = await KnnIndex.load(dir, embedder.dim);
  return index ? new DenseTextIndex(index, embedder) : null;
}

/** The `knn` routing stage: what models did on the most similar past queries. */
export class KnnStage implements RoutingStage {
  readonly name = 'knn';
  private readonly k: () => number;

  /** `k`: neighbours read per query, a number or a function (the learner fits it: KnnCalibration.neighbours). */
  constructor(private index: TextIndex, opts: { k?: number | (() => number) } = {}) {
    const k = opts.k ?? 20;
    this.k = typeof k === 'number' ? () => k : k;
  }

  /** Swaps in a rebuilt index (e.g. after the learner ran). */
  useIndex(index: TextIndex): void {
    this.index = index;
  }

  get indexSize(): number {
    return this.index.size;
  }

  /** Records a served query's outcome so the index grows online. */
  async learn(id: string, text: string, outcomes: Outcome[]): Promise<void> {
    await this.index.addTexts([{ id, text, outcomes }]);
  }

  /** The last answer, reused while the text, candidates and index are unchanged (e.g. a knob sweep). */
  private last: { key: string; index: TextIndex; size: number; result: StageResult } | null = null;

  async score(text: string, _features: QueryFeatures, candidates: CandidateModel[], signal?: ClientSignal): Promise<StageResult | null> {
    if (this.index.size === 0) return null;
    const key = this.cacheKey(text, candidates);
    const known = this.known(key);
    if (known) return known;
    const r = await this.index.scoreModels(text, this.k(), candidates.map((c) => c.id));
    if (signal?.aborted) throw signal.reason;
    return this.remember(key, stageResult(r));
  }

  /**
   * score() without waiting, when the index needs no I/O to answer (TF-IDF): the router runs it in
   * place, since no timeout could interrupt it anyway. Undefined when the index needs score().
   */
  scoreNow(text: string, candidates: readonly CandidateModel[]): StageResult | null | undefined {
    if (this.index.size === 0) return null;
    if (!this.index.scoreModelsNow) return undefined;
    const key = this.cacheKey(text, candidates);
    return this.known(key) ?? this.remember(key, stageResult(this.index.scoreModelsNow(text, this.k(), candidates.map((c) => c.id))));
  }

  private cacheKey(text: string, candidates: readonly CandidateModel[]): string {
    return `${this.k()}\u0002${candidates.map((c) => c.id).join('\u0001')}\u0000${text}`;
  }

  private known(key: string): StageResult | null {
    const last = this.last;
    return last && last.key === key && last.index === this.index && last.size === this.index.size ? last.result : null;
  }

  private remember(key: string, result: StageResult): StageResult {
    this.last = { key, index: this.index, size: this.index.size, result };
    return result;
  }
}

/** The kNN stage's answer from the index's model scores. */
function stageResult(r: ModelScores): StageResult {
  const perModel: Record<string, number> = {};
  const local: Record<string, { weight: number; sum: number }> = {};
  let best: string | undefined;
  for (const [model, { score, weight, sum }] of Object.entries(r.perModel)) {
    perModel[model] = score;
    local[model] = { weight, sum };
    if (best === undefined || score > perModel[best]!) best = model;
  }
  const head = `k=${r.neighbours} neighbours, mean sim ${r.meanSimilarity.toFixed(2)}`;
  const evidence = best === undefined
    ? `${head}, no outcomes for these candidates`
    : `${head}, best ${best} (${perModel[best]!.toFixed(2)}, n=${r.perModel[best]!.support})`;
  return { perModel, confidence: r.confidence, evidence, local };
}
