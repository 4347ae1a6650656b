// Replay metrics: how well a learned state's priors would have routed recent stored traffic.
// Pure. Used by the learner to compare the previous and the new version on the same rows.
import { betaMean, buildPriorIndex, priorFor, type PriorIndex } from '../router/bandit.ts';
import type { PriorCell } from '../core/routing.ts';
import type { TrainingRow } from '../core/store.ts';
import { rowQuality, type PriorOptions, defaultPriorOptions } from './priors.ts';

/**
 * What is measured, on the last N stored rows (each row: one answered request, its model and its
 * observed quality q = rowQuality, i.e. the rating if any, else success, minus implicit penalty):
 *
 * - `pick(domain, language)`: the model with the highest posterior mean among the models seen in
 *   the window, looked up with the router's back-off (cell, domain, language, model overall), i.e.
 *   what the priors stage alone would choose. The kNN index is not replayed: its rows would find
 *   themselves as their nearest neighbours.
 * - `pickedQuality`: mean q over the rows whose model equals pick(row's domain, language): the
 *   classic replay (rejection-sampling) estimate of the policy's quality; `coverage` = share of
 *   rows that matched.
 * - `agreement`: over queries (same text) answered by at least two different models in the
 *   window, the share where pick() is one of the models with the best mean observed q.
 * - `observedQuality`: mean q of the rows with quality evidence (rated, failed or asked again):
 *   what the traffic actually got. Answered, unrated rows carry none and are left out throughout.
 */
export interface ReplayMetrics {
  rows: number;
  observedQuality: number | null;
  pickedQuality: number | null;
  matched: number;
  coverage: number | null;
  comparableQueries: number;
  agreement: number | null;
}

function picker(priors: readonly PriorCell[], models: readonly string[]): (domain: string, language: string) => string | null {
  const index: PriorIndex = buildPriorIndex(priors);
  const cache = new Map<string, string | null>();
  return (domain, language) => {
    const key = `${domain}\u0000${language}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    let best: string | null = null;
    let bestMean = -1;
    if (priors.length > 0) {
      for (const m of models) {
        const b = priorFor(index, m, domain, language);
        const mean = betaMean(b.alpha, b.beta);
        if (mean > bestMean) { bestMean = mean; best = m; }
      }
    }
    cache.set(key, best);
    return best;
  };
}

export function replayMetrics(priors: readonly PriorCell[], rows: readonly TrainingRow[], opts: PriorOptions = defaultPriorOptions): ReplayMetrics {
  const models = [...new Set(rows.map((r) => r.model))].sort();
  const pick = picker(priors, models);
  let total = 0, withQuality = 0, matched = 0, matchedSum = 0;
  const byQuery = new Map<string, { domain: string; language: string; perModel: Map<string, { sum: number; n: number }> }>();
  for (const r of rows) {
    const q = rowQuality(r, opts);
    // Rows without quality evidence (answered, unrated) say nothing about the policy's quality.
    if (q === null) continue;
    total += q;
    withQuality++;
    if (pick(r.domain, r.language) === r.model) { matched++; matchedSum += q; }
    let g = byQuery.get(r.queryText);
    if (!g) byQuery.set(r.queryText, (g = { domain: r.domain, language: r.language, perModel: new Map() }));
    const s = g.perModel.get(r.model) ?? { sum: 0, n: 0 };
    s.sum += q;
    s.n += 1;
    g.perModel.set(r.model, s);
  }
  let comparable = 0, agree = 0;
  for (const g of byQuery.values()) {
    if (g.perModel.size < 2) continue;
    const chosen = pick(g.domain, g.language);
    if (chosen === null) continue;
    comparable++;
    const means = [...g.perModel.entries()].map(([m, s]) => [m, s.sum / s.n] as const);
    const top = Math.max(...means.map(([, v]) => v));
    if (means.some(([m, v]) => m === chosen && v >= top - 1e-9)) agree++;
  }
  return {
    rows: rows.length,
    observedQuality: withQuality ? total / withQuality : null,
    pickedQuality: matched ? matchedSum / matched : null,
    matched,
    coverage: withQuality ? matched / withQuality : null,
    comparableQueries: comparable,
    agreement: comparable ? agree / comparable : null,
  };
}
