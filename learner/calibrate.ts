// Fits how far the router should trust kNN neighbours over the learned priors: λ in
// (λ·prior + Σ w·q) / (λ + Σ w), chosen by leave-one-out squared error on stored traffic.
import { outcomeQuality, type Neighbour, type TextIndex } from '../router/knn.ts';
import { betaMean, buildPriorIndex, evidenceCount, priorFor } from '../router/bandit.ts';
import type { KnnCalibration, PriorCell } from '../core/routing.ts';
import type { TrainingRow } from '../core/store.ts';
import { ANY, defaultPriorOptions, MODEL_PRIOR_STRENGTH, rowQuality, type Evidence, type PriorOptions } from './priors.ts';

/** Candidate λ values (pseudo-neighbours of full similarity the prior is worth). */
export const PRIOR_STRENGTH_GRID = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 1024];
/** Candidate neighbourhood sizes, fitted together with λ. */
export const NEIGHBOURS_GRID = [5, 10, 20, 40];
/** Fewer (query, model) pairs than this and the fit is not trusted. */
export const MIN_CALIBRATION_PAIRS = 30;

export interface CalibrationInput {
  index: TextIndex;
  priors: readonly PriorCell[];
  /** Recent stored rows; each distinct query is left out of its own neighbourhood. */
  rows: readonly TrainingRow[];
  /** The index key of a query text (must match how the index was built). */
  keyOf: (text: string) => string;
  /** Neighbourhood sizes to try (default NEIGHBOURS_GRID). */
  neighbours?: readonly number[];
  /**
   * The router's optimism (ROUTER_OPTIMISM): the predictions handed to the knob calibration carry
   * the same uncertainty bonus the router adds, so λ(t) is fitted in the utility the router uses.
   */
  optimism?: number;
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

/**
 * The one-standard-error rule over a grid ordered from least to most shrinkage: the index of the
 * most shrinkage whose mean error is within one standard error of the smallest. `err` and `err2`
 * are per grid point the sums of the errors and of their squares over `count` samples.
 */
function oneStandardError(err: readonly number[], err2: readonly number[], count: number): number {
  let min = 0;
  for (let g = 1; g < err.length; g++) if (err[g]! < err[min]!) min = g;
  const mean = err[min]! / count;
  const se = Math.sqrt(Math.max(0, err2[min]! / count - mean * mean) / count);
  for (let g = err.length - 1; g > min; g--) if (err[g]! / count <= mean + se) return g;
  return min;
}

/** Σ w and Σ w·q per model over neighbours (w = max(similarity, 0)), for outcomes with quality evidence. */
function addNeighbour(sums: Map<string, { W: number; S: number }>, n: Neighbour): void {
  const w = Math.max(n.similarity, 0);
  for (const o of n.outcomes) {
    const q = outcomeQuality(o);
    if (q === null) continue;
    const e = sums.get(o.model) ?? { W: 0, S: 0 };
    e.W += w;
    e.S += w * q;
    sums.set(o.model, e);
  }
}

/**
 * Leave-one-out fit of the neighbourhood size k and of λ, each query left out of its own
 * neighbourhood: λ by squared error with the one-standard-error rule, k by the correlation of the
 * estimates with what was observed (see below). Also returns every recent query's estimates at
 * the fit. Null when there is too little data or no neighbours.
 */
export async function calibrateKnn(input: CalibrationInput): Promise<(KnnCalibration & { predictions: QueryPrediction[] }) | null> {
  const ks = [...(input.neighbours ?? NEIGHBOURS_GRID)].sort((a, b) => a - b);
  const kMax = ks[ks.length - 1]!;
  const held = groupByQuery(input.rows, input.keyOf, input.maxQueries ?? 2000);
  if (held.length < 2 || input.index.size < 2) return null;
  const priorIndex = buildPriorIndex(input.priors);
  const grid = PRIOR_STRENGTH_GRID;
  const sse = ks.map(() => new Array<number>(grid.length).fill(0));
  // Σ of squared squared errors, for the standard error of the mean squared error (one-SE rule).
  const sse2 = ks.map(() => new Array<number>(grid.length).fill(0));
  let ssePrior = 0;
  let pairs = 0;
  // The same for the gap between two models that answered the same query (the choice turns on it).
  const sseGap = ks.map(() => new Array<number>(grid.length).fill(0));
  const sseGap2 = ks.map(() => new Array<number>(grid.length).fill(0));
  let gapPairs = 0;

  const lists: Neighbour[][] = [];
  // Per (k, λ) and model, sums for the squared error and for the correlation between estimate and
  // observed quality across queries: routing needs to tell which queries a model does better on,
  // and the (scale-free) correlation measures that where the squared error mostly rewards smoothing.
  const stats = ks.map(() => grid.map(() => new Map<string, { n: number; sp: number; sy: number; spp: number; syy: number; spy: number }>()));
  for (let i = 0; i < held.length; i++) {
    const h = held[i]!;
    const neighbours = (await input.index.search(h.text, kMax + 1)).filter((n) => n.id !== h.key).slice(0, kMax);
    lists.push(neighbours);
    const observed = [...h.observed.entries()].map(([model, obs]) => {
      const b = priorFor(priorIndex, model, h.domain, h.language);
      return { model, y: obs.sum / obs.n, prior: betaMean(b.alpha, b.beta) };
    });
    const sums = new Map<string, { W: number; S: number }>();
    const score = (a: number) => {
      for (let g = 0; g < grid.length; g++) {
        const m = stats[a]![g]!;
        const add = (key: string, pred: number, y: number) => {
          const e = m.get(key) ?? { n: 0, sp: 0, sy: 0, spp: 0, syy: 0, spy: 0 };
          e.n++; e.sp += pred; e.sy += y; e.spp += pred * pred; e.syy += y * y; e.spy += pred * y;
          m.set(key, e);
        };
        const preds = observed.map((o) => {
          const e = sums.get(o.model);
          return (grid[g]! * o.prior + (e?.S ?? 0)) / (grid[g]! + (e?.W ?? 0));
        });
        observed.forEach((o, x) => {
          const e2 = (preds[x]! - o.y) ** 2;
          sse[a]![g]! += e2;
          sse2[a]![g]! += e2 * e2;
          add(o.model, preds[x]!, o.y);
          // Gaps between two models answering the same query: what a cost-aware choice turns on.
          for (let z = x + 1; z < observed.length; z++) {
            const d = preds[x]! - preds[z]!, y = o.y - observed[z]!.y;
            add(`${o.model}\u0000${observed[z]!.model}`, d, y);
            sseGap[a]![g]! += (d - y) ** 2;
            sseGap2[a]![g]! += (d - y) ** 4;
          }
        });
      }
    };
    let kk = 0;
    neighbours.forEach((n, rank) => {
      addNeighbour(sums, n);
      // After the rank-th neighbour, every k that ends here scores the running sums.
      while (kk < ks.length && ks[kk] === rank + 1) score(kk++);
    });
    for (; kk < ks.length; kk++) score(kk);
    for (const o of observed) { ssePrior += (o.prior - o.y) ** 2; pairs++; }
    gapPairs += (observed.length * (observed.length - 1)) / 2;
    if (i % 256 === 255) await new Promise((r) => setImmediate(r));
  }
  if (pairs < MIN_CALIBRATION_PAIRS) return null;
  // Mean correlation over models, weighted by their observations (0 where either side is constant).
  // Gap correlations when queries were answered by several models (shadow comparisons, a full
  // evaluation), else each model's own.
  const gaps = [...stats[0]![0]!.entries()].filter(([k, e]) => k.includes('\u0000') && e.n >= 2).reduce((s, [, e]) => s + e.n, 0) >= MIN_CALIBRATION_PAIRS;
  const correlation = (m: Map<string, { n: number; sp: number; sy: number; spp: number; syy: number; spy: number }>) => {
    let num = 0, den = 0;
    for (const [key, e] of m) {
      if (key.includes('\u0000') !== gaps) continue;
      const cov = e.spy - (e.sp * e.sy) / e.n, vp = e.spp - (e.sp * e.sp) / e.n, vy = e.syy - (e.sy * e.sy) / e.n;
      num += e.n * (vp > 1e-12 && vy > 1e-12 ? cov / Math.sqrt(vp * vy) : 0);
      den += e.n;
    }
    return den > 0 ? num / den : 0;
  };
  // For each k, λ by squared error with the one-standard-error rule: the strongest shrinkage whose
  // error is within one standard error of the best. It sets how far estimates may stray from the
  // prior, and an argmax over several noisy estimates picks noise unless they are shrunk enough.
  // Then the k whose estimates correlate best with what was observed (ties: larger k).
  // Where gaps were observed, λ is fitted on the error of the gaps: a neighbourhood can predict
  // well how hard a query is for every model (which the per-model error rewards) and still say
  // little about which model does better on it (which is all the choice needs).
  const [err, err2, count] = gaps ? [sseGap, sseGap2, gapPairs] : [sse, sse2, pairs];
  let bestK = ks.length - 1, bestG = grid.length - 1, bestR = -Infinity;
  for (let a = ks.length - 1; a >= 0; a--) {
    const g = oneStandardError(err[a]!, err2[a]!, count);
    const r = correlation(stats[a]![g]!);
    if (r > bestR + 1e-9) { bestR = r; bestK = a; bestG = g; }
  }
  const fit = { priorStrength: grid[bestG]!, neighbours: ks[bestK]!, samples: pairs, mse: sse[bestK]![bestG]! / pairs, msePriorOnly: ssePrior / pairs };
  // Every recent query's leave-one-out estimate for every model with evidence, at the fitted k and λ:
  // what the knob calibration (learner/knob.ts) routes on.
  const models = [...new Set(input.rows.filter((r) => rowQuality(r) !== null).map((r) => r.model))].sort();
  const predictions = held.map((h, i) => {
    const q: Record<string, number> = {};
    const honest: Record<string, number> = {};
    const sums = new Map<string, { W: number; S: number }>();
    for (const n of lists[i]!.slice(0, fit.neighbours)) addNeighbour(sums, n);
    for (const model of models) {
      const b = priorFor(priorIndex, model, h.domain, h.language);
      const { W, S } = sums.get(model) ?? { W: 0, S: 0 };
      const est = (fit.priorStrength * betaMean(b.alpha, b.beta) + S) / (fit.priorStrength + W);
      const n = W + (b.level === 'cell' ? evidenceCount(b) : 0);
      q[model] = Math.min(1, est + (input.optimism ?? 0) * Math.sqrt((est * (1 - est)) / (1 + n)));
      honest[model] = est;
    }
    return { key: h.key, text: h.text, quality: q, estimate: honest };
  });
  return { ...fit, predictions };
}

/** A recent query's estimated quality per model, each left out of its own neighbourhood. */
export interface QueryPrediction {
  key: string;
  /** The query's text (its length sets what each model would cost). */
  text?: string;
  quality: Record<string, number>;
  /** The estimate without the optimism bonus (absent: the same as quality). */
  estimate?: Record<string, number>;
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
  // Per query text, each model's leave-one-out predictions and outcome: for the error of the gaps.
  const byQuery = new Map<string, Array<{ preds: number[]; q: number }>>();
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
    const m = (MODEL_PRIOR_STRENGTH * pooled + w.good) / (MODEL_PRIOR_STRENGTH + w.n);
    const preds = PRIOR_SHRINK_GRID.map((k, g) => {
      const md = (k * m + d.good) / (k + d.n);
      const ml = (k * m + l.good) / (k + l.n);
      const pred = (k * ((md + ml) / 2) + c.good) / (k + c.n);
      sse[g]! += (pred - q) ** 2;
      return pred;
    });
    const list = byQuery.get(row.queryText) ?? [];
    list.push({ preds, q });
    byQuery.set(row.queryText, list);
    samples++;
  }
  if (samples < MIN_CALIBRATION_PAIRS) return null;
  // Where queries were answered by several models, the strength is fitted on the gaps between
  // them (what the choice turns on), with the one-standard-error rule toward more shrinkage; cells
  // that tell how hard a query is for everyone, and not who does better, earn nothing there.
  const gapErr = new Array<number>(PRIOR_SHRINK_GRID.length).fill(0);
  const gapErr2 = new Array<number>(PRIOR_SHRINK_GRID.length).fill(0);
  let gapPairs = 0;
  for (const list of byQuery.values()) {
    for (let x = 0; x < list.length; x++) for (let z = x + 1; z < list.length; z++) {
      const y = list[x]!.q - list[z]!.q;
      PRIOR_SHRINK_GRID.forEach((_, g) => {
        const e = (list[x]!.preds[g]! - list[z]!.preds[g]! - y) ** 2;
        gapErr[g]! += e;
        gapErr2[g]! += e * e;
      });
      gapPairs++;
    }
  }
  let best = 0;
  if (gapPairs >= MIN_CALIBRATION_PAIRS) best = oneStandardError(gapErr, gapErr2, gapPairs);
  else for (let g = 1; g < sse.length; g++) if (sse[g]! < sse[best]!) best = g;
  return { priorStrength: PRIOR_SHRINK_GRID[best]!, samples, mse: sse[best]! / samples };
}
