// Model specialty profiles (strengths, weaknesses, rates, a summary in words) from priors and rows.
// Pure: the per-model running totals are merged incrementally and decayed like the priors.
import type { ModelProfile, PriorCell } from '../core/routing.ts';
import type { TrainingRow } from '../core/store.ts';
import { ANY, decayWeight, effectiveSamples, priorMean, type PriorOptions, defaultPriorOptions } from './priors.ts';

/** Decayed running totals for one model. Weights are sums of 0.5^(age/halfLife). */
export interface ModelStats {
  model: string;
  weight: number;
  /** Undecayed count of rows ever seen. */
  rows: number;
  successWeight: number;
  ratingWeight: number;
  ratingSum: number;
  latencyWeight: number;
  latencySum: number;
  outputTokensWeight: number;
  outputTokensSum: number;
}

export interface ModelTotals {
  at: number;
  models: Record<string, ModelStats>;
}

/** A training row, optionally with the output token count of its answer (from the store). */
export type RowWithTokens = TrainingRow & { outputTokens?: number | null };

function emptyStats(model: string): ModelStats {
  return { model, weight: 0, rows: 0, successWeight: 0, ratingWeight: 0, ratingSum: 0, latencyWeight: 0, latencySum: 0, outputTokensWeight: 0, outputTokensSum: 0 };
}

/** Merge the previous totals (decayed to `now`) with new rows. */
export function accumulateTotals(prev: ModelTotals | null, rows: readonly RowWithTokens[], now: number, halfLifeDays: number): ModelTotals {
  const models: Record<string, ModelStats> = {};
  if (prev) {
    const f = decayWeight(now - prev.at, halfLifeDays);
    for (const s of Object.values(prev.models)) {
      models[s.model] = {
        ...s,
        weight: s.weight * f, successWeight: s.successWeight * f, ratingWeight: s.ratingWeight * f, ratingSum: s.ratingSum * f,
        latencyWeight: s.latencyWeight * f, latencySum: s.latencySum * f, outputTokensWeight: s.outputTokensWeight * f, outputTokensSum: s.outputTokensSum * f,
      };
    }
  }
  for (const row of rows) {
    const s = (models[row.model] ??= emptyStats(row.model));
    const w = decayWeight(now - row.ts, halfLifeDays);
    s.weight += w;
    s.rows += 1;
    if (row.success) {
      s.successWeight += w;
      // Latency and length of failed calls say little about the model's answers.
      if (Number.isFinite(row.latencyMs) && row.latencyMs > 0) { s.latencyWeight += w; s.latencySum += w * row.latencyMs; }
      if (row.outputTokens != null && Number.isFinite(row.outputTokens) && row.outputTokens > 0) { s.outputTokensWeight += w; s.outputTokensSum += w * row.outputTokens; }
    }
    if (row.rating !== null && Number.isFinite(row.rating)) { s.ratingWeight += w; s.ratingSum += w * row.rating; }
  }
  return { at: now, models };
}

const ratio = (num: number, den: number): number | null => (den > 1e-9 ? num / den : null);

export interface ProfileOptions extends PriorOptions {
  /** Effective samples a marginal cell needs before it may count as a strength or weakness. */
  minSamples: number;
  /** Smallest gap between a model's mean and the others' mean that counts as "clearly". */
  minGap: number;
}

export const defaultProfileOptions: ProfileOptions = { ...defaultPriorOptions, minSamples: 5, minGap: 0.05 };

interface Marginal { model: string; kind: 'domain' | 'language'; value: string; mean: number; n: number }

/** Domains and languages where a model is clearly above (strengths) or below (weaknesses) the others. */
export function specialties(priors: readonly PriorCell[], opts: ProfileOptions = defaultProfileOptions): Record<string, { strengths: Marginal[]; weaknesses: Marginal[] }> {
  const overallN = new Map<string, number>();
  for (const c of priors) if (c.domain === ANY && c.language === ANY) overallN.set(c.model, effectiveSamples(c, opts));
  const marginals: Marginal[] = [];
  for (const c of priors) {
    if ((c.domain === ANY) === (c.language === ANY)) continue;
    const kind = c.domain === ANY ? 'language' : 'domain';
    const n = effectiveSamples(c, opts);
    // A marginal holding (nearly) all of a model's traffic is its overall level, not a specialty.
    if (n >= 0.9 * (overallN.get(c.model) ?? Infinity)) continue;
    marginals.push({ model: c.model, kind, value: kind === 'domain' ? c.domain : c.language, mean: priorMean(c), n });
  }
  const groups = new Map<string, Marginal[]>();
  for (const m of marginals) {
    const key = `${m.kind}:${m.value}`;
    const list = groups.get(key);
    if (list) list.push(m); else groups.set(key, [m]);
  }
  const out: Record<string, { strengths: Marginal[]; weaknesses: Marginal[] }> = {};
  for (const c of priors) out[c.model] ??= { strengths: [], weaknesses: [] };
  for (const list of groups.values()) {
    for (const m of list) {
      const others = list.filter((o) => o.model !== m.model && o.n >= opts.minSamples);
      if (m.n < opts.minSamples || others.length === 0) continue;
      const othersMean = others.reduce((a, o) => a + o.mean, 0) / others.length;
      // "Clearly": beyond a fixed gap and beyond one standard error of the model's own mean.
      const se = Math.sqrt((m.mean * (1 - m.mean)) / (m.n + 1));
      const gap = m.mean - othersMean;
      if (gap > Math.max(opts.minGap, se)) out[m.model].strengths.push(m);
      else if (-gap > Math.max(opts.minGap, se)) out[m.model].weaknesses.push(m);
    }
  }
  for (const s of Object.values(out)) {
    s.strengths.sort((a, b) => b.mean - a.mean);
    s.weaknesses.sort((a, b) => a.mean - b.mean);
  }
  return out;
}

const label = (m: Marginal) => `${m.kind}:${m.value}`;
const LANGUAGE_NAMES: Record<string, string> = {
  zh: 'Chinese', en: 'English', ja: 'Japanese', ko: 'Korean', ru: 'Russian', es: 'Spanish', fr: 'French', de: 'German', code: 'code-only input', other: 'other languages',
};
const words = (list: Marginal[]) => list.map((m) => (m.kind === 'domain' ? m.value : LANGUAGE_NAMES[m.value] ?? `${m.value} language`)).join(', ');

function summarize(model: string, p: Omit<ModelProfile, 'summary' | 'model'>, strengths: Marginal[], weaknesses: Marginal[], avgOutputTokens: number | null): string {
  if (p.samples === 0) return `${model}: no answered requests seen yet, so nothing is known about its strengths.`;
  const parts = [`${model} answered ${p.samples} request${p.samples === 1 ? '' : 's'}`];
  if (p.successRate !== null) parts.push(`succeeded ${Math.round(p.successRate * 100)}% of the time`);
  if (p.avgRating !== null) parts.push(`averaged a rating of ${p.avgRating.toFixed(1)} out of 5`);
  if (p.avgLatencyMs !== null) parts.push(`took about ${(p.avgLatencyMs / 1000).toFixed(1)} s`);
  if (avgOutputTokens !== null) parts.push(`wrote about ${Math.round(avgOutputTokens)} tokens per answer`);
  let text = parts.length > 2 ? `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}.` : `${parts.join(' and ')}.`;
  text += strengths.length ? ` It does clearly better than the other models at ${words(strengths)}.` : ' No domain or language where it clearly beats the other models.';
  if (weaknesses.length) text += ` It does clearly worse at ${words(weaknesses)}.`;
  return text;
}

/** One profile per model seen in the priors or the totals. */
export function buildProfiles(priors: readonly PriorCell[], totals: ModelTotals, opts: ProfileOptions = defaultProfileOptions): Record<string, ModelProfile> {
  const special = specialties(priors, opts);
  const models = new Set([...Object.keys(totals.models), ...Object.keys(special)]);
  const out: Record<string, ModelProfile> = {};
  for (const model of [...models].sort()) {
    const s = totals.models[model] ?? emptyStats(model);
    const { strengths = [], weaknesses = [] } = special[model] ?? {};
    const base = {
      strengths: strengths.map(label),
      weaknesses: weaknesses.map(label),
      successRate: ratio(s.successWeight, s.weight),
      avgRating: ratio(s.ratingSum, s.ratingWeight),
      avgLatencyMs: ratio(s.latencySum, s.latencyWeight),
      samples: s.rows,
    };
    out[model] = { model, ...base, summary: summarize(model, base, strengths, weaknesses, ratio(s.outputTokensSum, s.outputTokensWeight)) };
  }
  return out;
}

/** Mean output tokens and mean latency per model (models without data are left out). */
export function modelAverages(totals: ModelTotals): { avgOutputTokens: Record<string, number>; avgLatencyMs: Record<string, number> } {
  const avgOutputTokens: Record<string, number> = {};
  const avgLatencyMs: Record<string, number> = {};
  for (const s of Object.values(totals.models)) {
    const tokens = ratio(s.outputTokensSum, s.outputTokensWeight);
    const latency = ratio(s.latencySum, s.latencyWeight);
    if (tokens !== null) avgOutputTokens[s.model] = tokens;
    if (latency !== null) avgLatencyMs[s.model] = latency;
  }
  return { avgOutputTokens, avgLatencyMs };
}
