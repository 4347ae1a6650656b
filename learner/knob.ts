// Calibrates the router's cost/quality knob offline, as RouteLLM calibrates its threshold: the knob
// t in [0, 1] becomes the trade-off λ that, on recent traffic, keeps t of the best estimated quality
// the router can reach (each query to its best model) at the least cost. So `quality_threshold:
// 0.95` means "95% of the best quality, as cheaply as possible", whatever the scale of the scores.
//
// Prices are per query, in dollars against one reference cost, not relative to the dearest model
// on that query: the knob is the Lagrange multiplier of "most quality for a budget", and a budget
// is spent in dollars. A short prompt sent to the strong model costs little, a long one a lot, and
// the same quality gain is worth buying on the first before the second. Pure.
import type { KnobCalibration } from '../core/routing.ts';
import type { QueryPrediction } from './calibrate.ts';

/** Knob settings in the table: 0, 0.01, ..., 1. */
export const KNOB_STEPS = 101;
/** Fewer recent queries than this and the knob keeps its default meaning. */
export const MIN_KNOB_QUERIES = 30;

/** λ candidates: 0 and a geometric grid wide enough for any price ratio and score scale. */
const LAMBDAS = [0, ...Array.from({ length: 400 }, (_, i) => 1e-5 * Math.pow(1e8, i / 399))];

/** Estimated cost in dollars of each model answering one query. */
export type QueryCosts = (p: QueryPrediction) => Readonly<Record<string, number>>;

/**
 * For each λ, the policy that picks argmax_m q̂_m(x) − λ·c_m(x) / c_ref on each recent query x (the
 * router's calibrated utility; c_ref, the reference cost, is the mean over the queries of the
 * dearest model's cost); its estimated quality Q(λ) = mean q̂ of its picks. Q(0) is the best
 * quality the router can reach. λ(t) is the largest λ with Q(λ) ≥ t·Q(0) (the cheapest such
 * policy), Q(0) with the optimism bonus in q̂ and Q(λ) without it (`estimate`); t = 1 is always
 * λ = 0, the best estimated quality whatever it costs. `costOf`: each model's cost on a query.
 * Null when there is too little to go on.
 */
export function calibrateKnob(predictions: readonly QueryPrediction[], costOf: QueryCosts): KnobCalibration | null {
  const priced = predictions.map((p) => ({ p, c: costOf(p) }));
  const models = [...new Set(priced.flatMap(({ c }) => Object.keys(c)))]
    .filter((m) => priced.every(({ p, c }) => p.quality[m] !== undefined && Number.isFinite(c[m]) && c[m]! >= 0)).sort();
  if (models.length < 2 || predictions.length < MIN_KNOB_QUERIES) return null;
  const referenceCost = priced.reduce((s, { c }) => s + Math.max(...models.map((m) => c[m]!)), 0) / priced.length;
  const price = priced.map(({ c }) => models.map((m) => (referenceCost > 0 ? c[m]! / referenceCost : 0)));
  const means = models.map((m) => predictions.reduce((s, p) => s + p.quality[m]!, 0) / predictions.length);
  const best = means.reduce((b, v, i) => (v > means[b]! ? i : b), 0);
  const picks = LAMBDAS.map((lambda) => predictions.map((p, x) => {
    const px = price[x]!;
    let pick = 0, top = -Infinity;
    models.forEach((m, i) => {
      const u = p.quality[m]! - lambda * px[i]!;
      if (u > top + 1e-12 || (Math.abs(u - top) <= 1e-12 && px[i]! < px[pick]!)) { top = u; pick = i; }
    });
    return pick;
  }));
  const qualityAt = picks.map((chosen) => chosen.reduce((s, pick, x) => s + predictions[x]!.quality[models[pick]!]!, 0) / predictions.length);
  const honestAt = picks.map((chosen) => chosen.reduce((s, pick, x) => s + (predictions[x]!.estimate ?? predictions[x]!.quality)[models[pick]!]!, 0) / predictions.length);
  // Past the first λ at which the picks stop changing, the data says nothing more: a larger λ would
  // only act on price differences never observed here (with equal observed costs the knob is inert).
  let last = LAMBDAS.length - 1;
  while (last > 0 && picks[last - 1]!.every((pick, x) => pick === picks[last]![x])) last--;
  // The target is t of the best quality the evidence allows (estimates with the router's optimism
  // bonus); what a λ keeps is counted without the bonus. While a model's estimate rests on few
  // observations the knob so aims above what is known and buys more of it, which is how its
  // estimate gets the observations it lacks; as they come in the two meet.
  const target = qualityAt[0]!;
  const lambdas = Array.from({ length: KNOB_STEPS }, (_, s) => {
    const t = s / (KNOB_STEPS - 1);
    let chosen = 0;
    for (let i = 0; i <= last; i++) if (honestAt[i]! >= t * target - 1e-12) chosen = LAMBDAS[i]!;
    return chosen;
  });
  lambdas[KNOB_STEPS - 1] = 0;
  // The table must not make a higher knob cheaper than a lower one.
  for (let s = 1; s < lambdas.length; s++) lambdas[s] = Math.min(lambdas[s]!, lambdas[s - 1]!);
  return { lambdas, referenceCost, bestSingle: models[best]!, bestSingleQuality: means[best]!, bestQuality: target, queries: predictions.length };
}
