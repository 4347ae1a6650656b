// Fits how far the router should trust kNN neighbours over the learned priors: λ in
// (λ·prior + Σ w·q) / (λ + Σ w), chosen by leave-one-out squared error on stored traffic.
import type { Embedder } from '../router/embedder.ts';
import type { NeighbourIndex } from '../router/knn.ts';
import { betaMean, buildPriorIndex, priorFor } from '../router/bandit.ts';
import type { KnnCalibration, PriorCell } from '../router/types.ts';
import type { TrainingRow } from '../server/store/types.ts';
import { ANY, defaultPriorOptions, rowQuality, type Evidence, type PriorOptions } from './priors.ts';

/** Candidate λ values (pseudo-neighbours of full similarity the prior is worth). */
export const PRIOR_STRENGTH_GRID = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 1024];
/** Fewer (query, model) pairs than this and the fit is not trusted. */
export const MIN_CALIBRATION_PAIRS = 30;

export interface CalibrationInput {
  index: NeighbourIndex;
  embedder: Embedder;
  priors: readonly PriorCell[];
  /** Recent stored rows; each distinct query is left out of its own neighbourhood. */
  rows: readonly TrainingRow[];
  /** The index key of a query text (must match how the index was built). */
  keyOf: (text: string) => string;
  k?: number;
  maxQueries?: number;
}

interface Held {
  key: string;
  text: string;
  domain: string;
  language: string;
  /** Observed mean quality per model on this query. */
  observed: Map<string, { sum: number; n: number }>;
}

function groupByQuery(rows: readonly TrainingRow[], keyOf: (text: string) => string, maxQueries: number): Held[] {
  const byKey = new Map<string, Held>();
  for (let i = rows.length - 1; i >= 0 && byKey.size <= maxQueries; i--) {
    const r = rows[i]!;
    const key = keyOf(r.queryText);
    let h = byKey.get(key);
    if (!h) {
      if (byKey.size === maxQueries) continue;
      h = { key, text: r.queryText, domain: r.domain, language: r.language, observed: new Map() };
      byKey.set(key, h);
    }
    const q = rowQuality(r);
    if (q === null) continue;
    const o = h.observed.get(r.model) ?? { sum: 0, n: 0 };
    o.sum += q;
    o.n += 1;
    h.observed.set(r.model, o);
  }
  return [...byKey.values()];
}

/** Leave-one-out fit of λ; null when there is too little data or no neighbours to learn from. */
export async function calibrateKnn(input: CalibrationInput): Promise<KnnCalibration | null> {
  const k = input.k ?? 20;
  const held = groupByQuery(input.rows, input.keyOf, input.maxQueries ?? 2000);
  if (held.length < 2 || input.index.size < 2) return null;
  const priorIndex = buildPriorIndex(input.priors);
  const grid = PRIOR_STRENGTH_GRID;
  const sse = new Array<number>(grid.length).fill(0);
  let ssePrior = 0;
  let pairs = 0;

  for (let i = 0; i < held.length; i += 256) {
    const chunk = held.slice(i, i + 256);
    const vectors = await input.embedder.embed(chunk.map((h) => h.text));
    chunk.forEach((h, j) => {
      const neighbours = input.index.search(vectors[j]!, k + 1).filter((n) => n.id !== h.key).slice(0, k);
      for (const [model, obs] of h.observed) {
        const y = obs.sum / obs.n;
        const b = priorFor(priorIndex, model, h.domain, h.language);
        const prior = betaMean(b.alpha, b.beta);
        let W = 0;
        let S = 0;
        for (const n of neighbours) {
          const w = Math.max(n.similarity, 0);
          for (const o of n.outcomes) {
            if (o.model !== model) continue;
            const q = o.rating !== undefined ? Math.min(1, Math.max(0, (o.rating - 1) / 4)) : o.success ? 0.7 : 0;
            W += w;
            S += w * q;
          }
        }
        for (let g = 0; g < grid.length; g++) {
          const pred = (grid[g]! * prior + S) / (grid[g]! + W);
          sse[g]! += (pred - y) ** 2;
        }
        ssePrior += (prior - y) ** 2;
        pairs++;
      }
    });
  }
  if (pairs < MIN_CALIBRATION_PAIRS) return null;
  let best = 0;
  for (let g = 1; g < grid.length; g++) if (sse[g]! < sse[best]!) best = g;
  return { priorStrength: grid[best]!, samples: pairs, mse: sse[best]! / pairs, msePriorOnly: ssePrior / pairs };
}

/** Candidate pseudo-counts for the hierarchical prior shrinkage. */
export const PRIOR_SHRINK_GRID = [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 1024];

export interface PriorShrinkFit {
  priorStrength: number;
  samples: number;
  mse: number;
}

/**
 * Empirical-Bayes strength of the prior hierarchy (cell -> domain/language marginals -> model):
 * each recent row is predicted from its own domain x language cell with itself left out, for
 * every candidate strength k; the k with the least squared error wins. Noisy, barely different
 * cells get a large k (stay near the model's mean); cells that really differ get a small one.
 */
export function calibratePriorStrength(evidence: Evidence, rows: readonly TrainingRow[], opts: PriorOptions = defaultPriorOptions): PriorShrinkFit | null {
  if (rows.length < MIN_CALIBRATION_PAIRS) return null;
  const cells = new Map<string, { good: number; n: number }>();
  for (const c of evidence.cells) cells.set(`${c.model}\u0000${c.domain}\u0000${c.language}`, { good: c.good, n: c.good + c.bad });
  const get = (model: string, domain: string, language: string) => cells.get(`${model}\u0000${domain}\u0000${language}`);
  let poolGood = 0;
  let poolN = 0;
  for (const c of evidence.cells) if (c.domain === ANY && c.language === ANY) { poolGood += c.good; poolN += c.good + c.bad; }
  const pooled = poolN > 0 ? poolGood / poolN : 0.5;
  const sse = new Array<number>(PRIOR_SHRINK_GRID.length).fill(0);
  let samples = 0;
  for (const row of rows) {
    const q = rowQuality(row, opts);
    if (q === null) continue;
    const cell = get(row.model, row.domain, row.language);
    const whole = get(row.model, ANY, ANY);
    if (!cell || !whole) continue;
    const dom = get(row.model, row.domain, ANY);
    const lang = get(row.model, ANY, row.language);
    // Leave this row out of every level it fed (weights ~1 for recent rows).
    const out = (c: { good: number; n: number } | undefined) => (c ? { good: Math.max(0, c.good - q), n: Math.max(0, c.n - 1) } : { good: 0, n: 0 });
    const [c, w, d, l] = [out(cell), out(whole), out(dom), out(lang)];
    PRIOR_SHRINK_GRID.forEach((k, g) => {
      const m = (k * pooled + w.good) / (k + w.n);
      const md = (k * m + d.good) / (k + d.n);
      const ml = (k * m + l.good) / (k + l.n);
      const pred = (k * ((md + ml) / 2) + c.good) / (k + c.n);
      sse[g]! += (pred - q) ** 2;
    });
    samples++;
  }
  if (samples < MIN_CALIBRATION_PAIRS) return null;
  let best = 0;
  for (let g = 1; g < sse.length; g++) if (sse[g]! < sse[best]!) best = g;
  return { priorStrength: PRIOR_SHRINK_GRID[best]!, samples, mse: sse[best]! / samples };
}
