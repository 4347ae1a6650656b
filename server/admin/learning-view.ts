// What the Learning page shows of off-policy evaluation and shadow comparisons: the last
// `--evaluate` run (premium over the blind mix, explored share, current vs previous learned state,
// every policy's estimate) and the latest shadow verdicts. Reads only; the store does the SQL.
import type { CompactEvaluation } from './learner-job.ts';
import type { LearnerRun, Store, StoredShadowComparison } from '../store/types.ts';

type PolicyRow = CompactEvaluation['policies'][number];

export interface EvaluationView {
  runId: number;
  at: number;
  sinceTs: number | null;
  summary: CompactEvaluation['summary'];
  /** Share of routed decisions whose choice had propensity < 1, and per method. */
  exploredShare: number | null;
  exploredByMethod: { method: string; explored: number; rows: number }[];
  current: PolicyRow | null;
  previous: PolicyRow | null;
  policies: PolicyRow[];
}

export interface ShadowView {
  supported: boolean;
  comparisons: StoredShadowComparison[];
  verdicts: { request: number; shadow: number; tie: number; none: number };
  spentTodayUsd: number | null;
}

/** The newest finished evaluation run as the page shows it, or null when there is none. */
export function evaluationView(runs: readonly LearnerRun[]): EvaluationView | null {
  const run = runs.find((r) => r.kind === 'evaluate' && r.status === 'ok' && r.metricsAfter);
  if (!run) return null;
  const report = run.metricsAfter as CompactEvaluation;
  if (!report || !Array.isArray(report.policies) || !report.summary) return null;
  const changes = (run.changes ?? {}) as { sinceTs?: number; version?: number | null; previousVersion?: number | null };
  const s = report.summary;
  const named = (prefix: string, suffix = '') => report.policies.find((p) => p.name === `${prefix}${suffix}`) ?? null;
  return {
    runId: run.id,
    at: run.finishedAt ?? run.startedAt,
    sinceTs: changes.sinceTs ?? null,
    summary: s,
    exploredShare: s.rows > 0 ? s.explored / s.rows : null,
    exploredByMethod: Object.entries(s.rowsByMethod ?? {}).map(([method, rows]) => ({ method, rows, explored: s.exploredByMethod?.[method] ?? 0 }))
      .sort((a, b) => b.rows - a.rows),
    current: changes.version ? named(`learned v${changes.version}`) : null,
    previous: changes.previousVersion ? named(`learned v${changes.previousVersion}`, ' (previous)') : null,
    policies: report.policies,
  };
}

const DAY_MS = 86_400_000;

export async function shadowView(store: Store, now: number, limit = 30): Promise<ShadowView> {
  if (!store.shadowComparisons || !store.shadowSpend) return { supported: false, comparisons: [], verdicts: { request: 0, shadow: 0, tie: 0, none: 0 }, spentTodayUsd: null };
  const [comparisons, spentTodayUsd] = await Promise.all([store.shadowComparisons(limit), store.shadowSpend(Math.floor(now / DAY_MS) * DAY_MS)]);
  const verdicts = { request: 0, shadow: 0, tie: 0, none: 0 };
  for (const c of comparisons) verdicts[c.verdict ?? 'none']++;
  return { supported: true, comparisons, verdicts, spentTodayUsd };
}
