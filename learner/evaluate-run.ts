// `npm run learn -- --evaluate`: reads the decision log from the store, estimates the current and
// previous learned states, always-cheapest, each fixed model and a few knob settings off-policy,
// and records the result as a learner run of kind 'evaluate'.
import type { CandidateModel, LearnedState } from '../core/routing.ts';
import type { DecisionLogRow, Store } from '../core/store.ts';
import { alwaysCheapest, alwaysModel, evaluationReport, priorsPolicy, toLoggedDecisions, type EvaluationReport, type NamedPolicy } from './evaluate.ts';
import type { Estimate, LoggedDecision, MetricEstimate, TargetPolicy } from './ope.ts';
import { currentVersion, loadLearnedVersion } from './state.ts';

const DAY_MS = 86_400_000;
/** Knob settings estimated besides the default: cost, balanced, quality (router/combine.ts qualityKnob). */
export const EVALUATED_KNOBS = [0.6, 0.9, 1] as const;

/** Builds a learned state's policy at a knob; router/ provides the production one. */
export type PolicyForState = (state: LearnedState, models: readonly CandidateModel[], knob: number) => TargetPolicy;

export interface EvaluateOptions {
  store: Store;
  dataDir: string;
  /** The configured models (ids, prices, weights). */
  models: CandidateModel[];
  /** Only decisions at or after this time (default: 30 days before now). */
  sinceTs?: number;
  now?: () => number;
  policyFor?: PolicyForState;
  /** Knob the learned states are compared at (default 0.9, the router's default). */
  defaultKnob?: number;
  pageSize?: number;
  /** Record the run in learner_runs (default true). */
  record?: boolean;
}

export interface EvaluateResult {
  runId: number | null;
  version: number | null;
  previousVersion: number | null;
  report: EvaluationReport;
  /** Lines for the terminal. */
  table: string;
}

/** Every routed decision since `sinceTs`, oldest first, page by page. */
export async function readDecisionLog(store: Store, sinceTs: number, pageSize = 5000): Promise<DecisionLogRow[]> {
  if (!store.decisionLog) throw new Error('this store cannot read the decision log');
  const out: DecisionLogRow[] = [];
  let after = { ts: sinceTs - 1, id: '\uffff' };
  for (;;) {
    const page = await store.decisionLog(after, pageSize);
    out.push(...page);
    if (page.length < pageSize) return out;
    const last = page[page.length - 1]!;
    after = { ts: last.ts, id: last.id };
  }
}

/** Models that were candidates in the log, with the mean cost of the requests they served. */
function loggedModels(log: readonly LoggedDecision[]): Map<string, { meanCost: number | undefined }> {
  const sums = new Map<string, { s: number; n: number }>();
  for (const r of log) {
    for (const c of r.context.candidates) if (!sums.has(c)) sums.set(c, { s: 0, n: 0 });
    const e = sums.get(r.chosen)!;
    e.s += r.costUsd;
    e.n += 1;
  }
  return new Map([...sums].map(([m, e]) => [m, { meanCost: e.n > 0 ? e.s / e.n : undefined }]));
}

/**
 * The models a policy can be judged on: configured ones that were candidates in the log, plus
 * logged ones no longer configured (weight 1, unknown list price). A configured model that was
 * never a candidate has no support in the log and gets no row.
 */
function evaluatedModels(configured: readonly CandidateModel[], seen: ReadonlyMap<string, unknown>): CandidateModel[] {
  const out = configured.filter((m) => seen.has(m.id));
  for (const id of [...seen.keys()].sort()) {
    if (!out.some((m) => m.id === id)) out.push({ id, description: '', tags: [], weight: 1, costPer1kInput: 0, costPer1kOutput: 0, healthy: true });
  }
  return out;
}

async function previousState(store: Store, dataDir: string, version: number): Promise<LearnedState | null> {
  for (let v = version - 1; v >= Math.max(1, version - 3); v--) {
    const s = await loadLearnedVersion(store, dataDir, v);
    if (s) return s;
  }
  return null;
}

/** The policies of one evaluation, in table order. */
export function evaluatedPolicies(models: readonly CandidateModel[], current: LearnedState | null, previous: LearnedState | null, policyFor: PolicyForState, defaultKnob = 0.9, costOf?: (model: string) => number | undefined): NamedPolicy[] {
  const out: NamedPolicy[] = [];
  if (current) {
    out.push({ name: `learned v${current.version}`, knob: defaultKnob, policy: policyFor(current, models, defaultKnob) });
    for (const k of EVALUATED_KNOBS) if (k !== defaultKnob) out.push({ name: `learned v${current.version} knob ${k}`, knob: k, policy: policyFor(current, models, k) });
  }
  if (previous) out.push({ name: `learned v${previous.version} (previous)`, knob: defaultKnob, policy: policyFor(previous, models, defaultKnob) });
  out.push(alwaysCheapest(models, costOf));
  for (const m of models) out.push(alwaysModel(m.id, models, costOf));
  return out;
}

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');
const usd = (v: number) => (Number.isFinite(v) ? `$${v.toPrecision(3)}` : '-');
const ci = (e: Estimate | undefined, fmt: (v: number) => string) => (e ? `${fmt(e.value)} [${fmt(e.interval.low)}, ${fmt(e.interval.high)}]` : '-');

/** The report as a terminal table: quality by DR/SNIPS/IPS with 95% intervals, cost per request by DR. */
export function formatEvaluation(report: EvaluationReport): string {
  const s = report.summary;
  const lines = [
    `decision log: ${s.rows} routed decisions, ${s.rated} rated (user, admin, eval or shadow ratings), ${s.explored} explored (drawn at random), ` +
      `${s.missingPropensity} without a logged propensity (read as 1), ${s.fallbacks} answered by a fallback`,
  ];
  if (s.rows > 0 && s.missingPropensity === s.rows) {
    lines.push('warning: no decision logged its propensities; every choice is read as certain, so a policy is only judged where it agrees with the log (see "unsupported")');
  }
  const head = ['policy', 'quality DR [95%]', 'SNIPS', 'IPS', 'cost/request DR', 'ESS', 'unsupported', 'premium vs blind mix'];
  const rows = report.policies.map((p) => [
    p.name,
    ci(p.quality.dr, f3),
    ci(p.quality.snips, f3),
    ci(p.quality.ips, f3),
    ci(p.cost.dr, usd),
    p.quality.ess.toFixed(1),
    `${(100 * p.unsupportedMass).toFixed(0)}%`,
    p.blindMix ? `${p.blindMix.premium >= 0 ? '+' : ''}${p.blindMix.premium.toFixed(3)} (${p.blindMix.between?.join(' / ') ?? ''})` : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmtRow = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  lines.push(fmtRow(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmtRow));
  return lines.join('\n');
}

/** The compact, JSON-able form stored in learner_runs and shown on the admin page. */
export function compactReport(report: EvaluationReport) {
  const est = (e: Estimate | undefined) => (e ? { value: e.value, low: e.interval.low, high: e.interval.high } : null);
  const metric = (m: MetricEstimate) => ({ dr: est(m.dr), snips: est(m.snips), ips: est(m.ips), rows: m.rows, ess: m.ess, clipped: m.clipped });
  return {
    summary: report.summary,
    policies: report.policies.map((p) => ({
      name: p.name, model: p.model ?? null, knob: p.knob ?? null, quality: metric(p.quality), cost: metric(p.cost),
      unsupportedMass: p.unsupportedMass, agreement: p.agreement, blindMix: p.blindMix,
    })),
  };
}
export type CompactEvaluation = ReturnType<typeof compactReport>;

export async function runEvaluation(opts: EvaluateOptions): Promise<EvaluateResult> {
  const { store, dataDir, models } = opts;
  const now = (opts.now ?? Date.now)();
  const sinceTs = opts.sinceTs ?? now - 30 * DAY_MS;
  const runId = opts.record !== false && store.startLearnerRun ? await store.startLearnerRun(now, 'evaluate') : null;
  try {
    const version = await currentVersion(store);
    const current = version > 0 ? await loadLearnedVersion(store, dataDir, version) : null;
    const previous = current ? await previousState(store, dataDir, version) : null;
    const rows = await readDecisionLog(store, sinceTs, opts.pageSize);
    const { log, summary } = toLoggedDecisions(rows);
    const policyFor = opts.policyFor ?? ((state, ms, knob) => priorsPolicy(state, ms, knob));
    const seen = loggedModels(log);
    const policies = evaluatedPolicies(evaluatedModels(models, seen), current, previous, policyFor, opts.defaultKnob, (m) => seen.get(m)?.meanCost);
    const report = evaluationReport(log, summary, policies);
    if (runId !== null && store.finishLearnerRun) {
      await store.finishLearnerRun(runId, {
        status: 'ok', rowsRead: rows.length,
        changes: { kind: 'evaluate', sinceTs, version: current?.version ?? null, previousVersion: previous?.version ?? null },
        metricsAfter: compactReport(report),
      });
    }
    return { runId, version: current?.version ?? null, previousVersion: previous?.version ?? null, report, table: formatEvaluation(report) };
  } catch (err) {
    if (runId !== null && store.finishLearnerRun) {
      await store.finishLearnerRun(runId, { status: 'failed', rowsRead: 0, error: err instanceof Error ? err.message : String(err) });
    }
    throw err;
  }
}
