// Beta priors per model x domain x language from training rows, with exponential time decay.
// Pure: the learner job feeds rows and the previous run's evidence; nothing here does I/O.
import { ANY, betaMean } from '../router/bandit.ts';
import { outcomeQuality } from '../router/knn.ts';
import type { PriorCell } from '../core/routing.ts';
import type { TrainingRow } from '../core/store.ts';

/** Wildcard domain/language of the marginal cells (all domains, all languages), as the bandit reads them. */
export { ANY };

const DAY_MS = 86_400_000;

export interface PriorOptions {
  /** Evidence loses half its weight every `halfLifeDays`. */
  halfLifeDays: number;
  /**
   * Pseudo-observations of the parent belief every cell starts from: a0 = k * parentMean,
   * b0 = k * (1 - parentMean). Small cells so stay near their model's overall mean instead of 0.5.
   */
  priorStrength: number;
  /** Subtracted from a row's quality when an implicit negative signal (quick retry...) was seen. */
  implicitPenalty: number;
}

/**
 * Pseudo-observations of the pooled mean behind each model's overall cell. Fixed and light, not
 * fitted with the others: there are a handful of models, too few to learn how alike they are,
 * and their being different is the reason to route at all. A fitted strength shrinks domain cells
 * toward their model; applied here it would also make a strong model look like the rest.
 */
export const MODEL_PRIOR_STRENGTH = 2;

export const defaultPriorOptions: PriorOptions = {
  halfLifeDays: 14,
  priorStrength: 2,
  implicitPenalty: 0.3,
};

/** Decayed evidence of one cell: weighted sums of quality (good) and of 1 - quality (bad). */
export interface EvidenceCell {
  model: string;
  domain: string;
  language: string;
  good: number;
  bad: number;
}

/** Everything the priors are derived from, valid as of `at` (ms). Persisted between runs. */
export interface Evidence {
  at: number;
  cells: EvidenceCell[];
}

/** Quality of an unrated answer the client asked again for at once: that of a rating of 2. */
export const IMPLICIT_NEGATIVE_QUALITY = 0.25;

/**
 * Observed quality of one row in [0, 1], or null when the row carries no quality evidence: the
 * rating if there is one (minus a penalty for an implicit negative signal), 0 for a failed call,
 * IMPLICIT_NEGATIVE_QUALITY for an unrated answer asked again; an answered, unrated request is
 * evidence of availability and latency only (null).
 */
export function rowQuality(row: TrainingRow, opts: PriorOptions = defaultPriorOptions): number | null {
  const base = outcomeQuality({ model: row.model, success: row.success, latencyMs: row.latencyMs, ...(row.rating === null ? {} : { rating: row.rating }) });
  if (base === null) return row.implicitNegative ? IMPLICIT_NEGATIVE_QUALITY : null;
  return row.implicitNegative && row.rating !== null ? Math.max(0, base - opts.implicitPenalty) : base;
}

/** Weight of evidence that is `ageMs` old: 0.5^(age / halfLife). Future timestamps count as now. */
export function decayWeight(ageMs: number, halfLifeDays: number): number {
  if (!(halfLifeDays > 0) || !Number.isFinite(halfLifeDays)) return 1;
  return Math.pow(0.5, Math.max(0, ageMs) / (halfLifeDays * DAY_MS));
}

const cellKey = (model: string, domain: string, language: string) => `${model}\u0000${domain}\u0000${language}`;

/** Largest inverse-propensity weight one row gets before self-normalisation. */
export const IPS_CAP = 20;

/**
 * Inverse-propensity weights of the rows with quality evidence, self-normalised per model so a
 * model's total evidence stays its number of observations: a row the router chose with
 * probability π counts 1/π (capped) relative to the model's other rows. The router picks a model
 * where it already believes that model is best, so its rows there describe those queries, not the
 * model; the rare rows where it was picked by exploration (small π) stand for all the others.
 * Rows without a logged propensity count 1.
 */
export function ipsWeights(rows: readonly TrainingRow[], opts: PriorOptions = defaultPriorOptions): number[] {
  const raw = rows.map((r) => (rowQuality(r, opts) === null ? 0 : Math.min(IPS_CAP, 1 / (r.propensity ?? 1))));
  const sum = new Map<string, { w: number; n: number }>();
  rows.forEach((r, i) => {
    if (raw[i] === 0) return;
    const e = sum.get(r.model) ?? { w: 0, n: 0 };
    e.w += raw[i]!;
    e.n += 1;
    sum.set(r.model, e);
  });
  return rows.map((r, i) => {
    const e = sum.get(r.model);
    return e && raw[i]! > 0 ? (raw[i]! * e.n) / e.w : 0;
  });
}

/**
 * Merge the previous evidence (decayed from its `at` to `now`) with new rows (each decayed by
 * its own age and weighted by ipsWeights). Rows feed their exact cell and the three marginals
 * (domain x *, * x language, * x *).
 */
export function accumulateEvidence(prev: Evidence | null, rows: readonly TrainingRow[], now: number, opts: PriorOptions = defaultPriorOptions): Evidence {
  const cells = new Map<string, EvidenceCell>();
  if (prev) {
    const f = decayWeight(now - prev.at, opts.halfLifeDays);
    for (const c of prev.cells) cells.set(cellKey(c.model, c.domain, c.language), { ...c, good: c.good * f, bad: c.bad * f });
  }
  const add = (model: string, domain: string, language: string, good: number, bad: number) => {
    const key = cellKey(model, domain, language);
    const cell = cells.get(key);
    if (cell) { cell.good += good; cell.bad += bad; } else cells.set(key, { model, domain, language, good, bad });
  };
  const ips = ipsWeights(rows, opts);
  for (const [i, row] of rows.entries()) {
    const q = rowQuality(row, opts);
    if (q === null) continue;
    const w = decayWeight(now - row.ts, opts.halfLifeDays) * ips[i]!;
    const good = w * q, bad = w * (1 - q);
    add(row.model, row.domain, row.language, good, bad);
    add(row.model, row.domain, ANY, good, bad);
    add(row.model, ANY, row.language, good, bad);
    add(row.model, ANY, ANY, good, bad);
  }
  // Forget cells whose evidence has decayed to nothing, so the state does not grow forever.
  const kept = [...cells.values()].filter((c) => c.good + c.bad >= 1e-3);
  kept.sort((a, b) => cellKey(a.model, a.domain, a.language).localeCompare(cellKey(b.model, b.domain, b.language)));
  return { at: now, cells: kept };
}


/**
 * Ratings that arrived after their request was learned from: each row's contribution is moved from
 * its quality as first read (`before`) to its quality now. Both decay alike, so the difference at
 * today's weight is exact; cells never go below zero.
 */
export function correctEvidence(evidence: Evidence, changed: readonly { before: TrainingRow; now: TrainingRow }[], now: number, opts: PriorOptions = defaultPriorOptions): Evidence {
  const f = decayWeight(now - evidence.at, opts.halfLifeDays);
  const cells = new Map(evidence.cells.map((c) => [cellKey(c.model, c.domain, c.language), { ...c, good: c.good * f, bad: c.bad * f }]));
  // What a row adds to its cells: nothing when it carries no quality evidence.
  const share = (row: TrainingRow) => {
    const q = rowQuality(row, opts);
    return q === null ? { good: 0, bad: 0 } : { good: q, bad: 1 - q };
  };
  for (const { before, now: after } of changed) {
    const w = decayWeight(now - after.ts, opts.halfLifeDays);
    const a = share(after), b = share(before);
    const dGood = w * (a.good - b.good), dBad = w * (a.bad - b.bad);
    if (dGood === 0 && dBad === 0) continue;
    for (const [domain, language] of [[after.domain, after.language], [after.domain, ANY], [ANY, after.language], [ANY, ANY]] as const) {
      const key = cellKey(after.model, domain, language);
      let cell = cells.get(key);
      // A row that carried evidence fed its cells when it was read; a cell that decayed away since
      // has nothing to move. A row that carried none (unrated) starts its cells now.
      if (!cell) {
        if (b.good + b.bad > 0) continue;
        cell = { model: after.model, domain, language, good: 0, bad: 0 };
        cells.set(key, cell);
      }
      cell.good = Math.max(0, cell.good + dGood);
      cell.bad = Math.max(0, cell.bad + dBad);
    }
  }
  const kept = [...cells.values()].sort((a, b) => cellKey(a.model, a.domain, a.language).localeCompare(cellKey(b.model, b.domain, b.language)));
  return { at: now, cells: kept };
}

/**
 * Beta priors from evidence, shrunk hierarchically: the model's overall cell toward the pooled
 * mean of all models (lightly, MODEL_PRIOR_STRENGTH), its domain and language marginals toward its
 * overall mean, and each domain x language cell toward the average of its two marginals.
 */
export function priorsFromEvidence(evidence: Evidence, opts: PriorOptions = defaultPriorOptions): PriorCell[] {
  const k = opts.priorStrength;
  let poolGood = 0, poolBad = 0;
  for (const c of evidence.cells) if (c.domain === ANY && c.language === ANY) { poolGood += c.good; poolBad += c.bad; }
  const pooledMean = betaMean(1 + poolGood, 1 + poolBad);

  const out: PriorCell[] = [];
  const emit = (c: EvidenceCell, parentMean: number, strength = k): number => {
    const alpha = strength * parentMean + c.good;
    const beta = strength * (1 - parentMean) + c.bad;
    out.push({ model: c.model, domain: c.domain, language: c.language, alpha, beta });
    return betaMean(alpha, beta);
  };
  const modelMean = new Map<string, number>();
  const marginalMean = new Map<string, number>();
  for (const c of evidence.cells) if (c.domain === ANY && c.language === ANY) modelMean.set(c.model, emit(c, pooledMean, MODEL_PRIOR_STRENGTH));
  for (const c of evidence.cells) {
    if ((c.domain === ANY) === (c.language === ANY)) continue;
    marginalMean.set(cellKey(c.model, c.domain, c.language), emit(c, modelMean.get(c.model) ?? pooledMean));
  }
  for (const c of evidence.cells) {
    if (c.domain === ANY || c.language === ANY) continue;
    const overall = modelMean.get(c.model) ?? pooledMean;
    const d = marginalMean.get(cellKey(c.model, c.domain, ANY)) ?? overall;
    const l = marginalMean.get(cellKey(c.model, ANY, c.language)) ?? overall;
    emit(c, (d + l) / 2);
  }
  return out;
}

/** Posterior mean of a cell. */
export function priorMean(cell: Pick<PriorCell, 'alpha' | 'beta'>): number {
  return betaMean(cell.alpha, cell.beta);
}

/** Effective number of (decayed) observations behind a cell, excluding the pseudo-counts. */
export function effectiveSamples(cell: PriorCell, opts: PriorOptions = defaultPriorOptions): number {
  return Math.max(0, cell.alpha + cell.beta - (cell.domain === ANY && cell.language === ANY ? MODEL_PRIOR_STRENGTH : opts.priorStrength));
}

/**
 * Which priors moved most between two runs (absolute change of the posterior mean). A cell new in
 * this run is compared with 0.5, the uniform belief the router assumes where no cell exists.
 */
export function priorChanges(before: readonly PriorCell[], after: readonly PriorCell[], limit = 10): { model: string; domain: string; language: string; from: number | null; to: number; delta: number }[] {
  const old = new Map(before.map((c) => [cellKey(c.model, c.domain, c.language), priorMean(c)]));
  const changes = after.map((c) => {
    const from = old.get(cellKey(c.model, c.domain, c.language)) ?? null;
    const to = priorMean(c);
    return { model: c.model, domain: c.domain, language: c.language, from, to, delta: to - (from ?? 0.5) };
  });
  changes.sort((a, b) => Math.abs(b.delta) - Math.abs(a.delta));
  return changes.slice(0, limit);
}
