// Performance (per model x domain x language table, success/rating over time, who-wins heat map)
// and Learning (learner runs with before/after replay metrics, learning curve, run-now button, the last
// off-policy evaluation with an "evaluate now" button, shadow comparisons and their verdicts).
import { Router as ExpressRouter } from 'express';
import type { AdminContext } from '../index.ts';
import type { LearnerRun, PerformanceRow, TimeSeriesPoint } from '../../store/types.ts';
import { colourClasses, heatMap, lineChart, seriesFromTimeSeries, type SeriesInput } from '../charts.ts';
import { renderPage, sendJson } from '../render.ts';
import { evaluationView, shadowView } from '../learning-view.ts';
import { runEvaluation } from '../learner-job.ts';

const HOUR = 3600_000;
const RANGES = {
  '24h': { bucketMs: HOUR, spanMs: 24 * HOUR, label: 'last 24 hours, hourly' },
  '7d': { bucketMs: 6 * HOUR, spanMs: 7 * 24 * HOUR, label: 'last 7 days, 6-hourly' },
  '30d': { bucketMs: 24 * HOUR, spanMs: 30 * 24 * HOUR, label: 'last 30 days, daily' },
} as const;
type RangeKey = keyof typeof RANGES;
/** The time-series scan grows with traffic; a minute-old chart is fine and keeps reloads cheap. */
const SERIES_CACHE_MS = 60_000;

/** Numeric leaves of a metrics object as `a.b` paths (two levels deep), for before/after tables. */
export function flattenMetrics(v: unknown, prefix = '', depth = 0, out: Record<string, number> = {}): Record<string, number> {
  if (typeof v === 'number' && Number.isFinite(v)) {
    if (prefix) out[prefix] = v;
  } else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 3) {
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) flattenMetrics(child, prefix ? `${prefix}.${k}` : k, depth + 1, out);
  }
  return out;
}

export interface MetricDelta {
  key: string;
  before: number | null;
  after: number | null;
  delta: number | null;
}

export function metricDeltas(before: unknown, after: unknown): MetricDelta[] {
  const b = flattenMetrics(before);
  const a = flattenMetrics(after);
  return [...new Set([...Object.keys(b), ...Object.keys(a)])].sort().map((key) => ({
    key,
    before: b[key] ?? null,
    after: a[key] ?? null,
    delta: b[key] !== undefined && a[key] !== undefined ? a[key]! - b[key]! : null,
  }));
}

const PREFERRED = /accuracy|success|rating|reward|regret|win|quality|score|cost/i;

/** Series of the after-run metrics across finished runs (oldest first): the learning curve. */
export function learningCurve(runs: LearnerRun[], maxSeries = 4): SeriesInput[] {
  const ok = runs.filter((r) => r.status === 'ok').sort((a, b) => a.id - b.id);
  const flat = ok.map((r) => ({ id: r.id, m: flattenMetrics(r.metricsAfter) }));
  const counts = new Map<string, number>();
  for (const f of flat) for (const k of Object.keys(f.m)) counts.set(k, (counts.get(k) ?? 0) + 1);
  const keys = [...counts.entries()]
    .filter(([, n]) => n >= 2)
    .sort((a, b) => Number(PREFERRED.test(b[0])) - Number(PREFERRED.test(a[0])) || b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, maxSeries)
    .map(([k]) => k);
  return keys.map((k) => ({ name: k, points: flat.map((f) => ({ x: f.id, y: f.m[k] ?? null })) }));
}

function perfTable(rows: PerformanceRow[], model: string | undefined) {
  return rows
    .filter((r) => !model || r.model === model)
    .map((r) => ({
      ...r,
      successRate: r.total > 0 ? r.successes / r.total : null,
      avgRating: r.ratingCount > 0 ? r.ratingSum / r.ratingCount : null,
    }))
    .sort((a, b) => a.model.localeCompare(b.model) || b.total - a.total);
}

const hourLabel = (ms: number) => new Date(ms).toISOString().slice(5, 13).replace('T', ' ') + 'h';
const dayLabel = (ms: number) => new Date(ms).toISOString().slice(5, 10);

export function insightRoutes(ctx: AdminContext) {
  const r = ExpressRouter();
  const { store, registry } = ctx.services;
  const seriesCache = new Map<RangeKey, { at: number; points: TimeSeriesPoint[] }>();

  const timeSeries = async (range: RangeKey): Promise<{ points: TimeSeriesPoint[]; since: number; until: number } | null> => {
    const now = ctx.now();
    const { bucketMs, spanMs } = RANGES[range];
    const since = Math.floor((now - spanMs) / bucketMs) * bucketMs;
    const until = Math.floor(now / bucketMs) * bucketMs;
    const hit = seriesCache.get(range);
    if (hit && now - hit.at < SERIES_CACHE_MS) return { points: hit.points, since, until };
    const points = await store.timeSeries(bucketMs, since);
    seriesCache.set(range, { at: now, points });
    return { points, since, until };
  };

  r.get('/performance', async (req, res) => {
    const range: RangeKey = typeof req.query.range === 'string' && req.query.range in RANGES ? (req.query.range as RangeKey) : '24h';
    const model = typeof req.query.model === 'string' && registry.has(req.query.model) ? req.query.model : undefined;
    const [rows, ts] = await Promise.all([store.performance(), timeSeries(range)]);
    const series = ts ? seriesFromTimeSeries(ts.points) : null;
    // One colour per model across the charts, legends and heat map of the page.
    const classFor = colourClasses([...registry.ids(), ...rows.map((r) => r.model), ...(series?.success.map((s) => s.name) ?? [])]);
    const xLabel = RANGES[range].bucketMs >= 24 * HOUR ? dayLabel : hourLabel;
    const pct = (v: number) => `${Math.round(v * 100)}%`;
    const span = ts ? { xMin: ts.since, xMax: ts.until } : {};
    renderPage(ctx, req, res, 'performance', {
      title: 'Performance',
      range,
      ranges: Object.entries(RANGES).map(([key, v]) => ({ key, label: v.label })),
      model: model ?? '',
      modelIds: registry.ids(),
      table: perfTable(rows, model),
      heat: heatMap(rows, { classFor }),
      successChart: series ? lineChart(series.success, { yMin: 0, yMax: 1, yLabel: pct, xLabel, classFor, ...span }) : null,
      ratingChart: series ? lineChart(series.rating, { yMin: 1, yMax: 5, yLabel: (v) => v.toFixed(1), xLabel, classFor, ...span }) : null,
      legend: (series?.success ?? []).map((s) => ({ name: s.name, cls: classFor(s.name) })),
    });
  });

  const runsView = async () => {
    // Evaluation runs change nothing: they have their own section, not a place on the curve.
    const runs = await store.learnerRuns(50, 'learn');
    return {
      supported: runs !== null,
      runs: (runs ?? []).map((run) => ({
        ...run,
        durationMs: run.finishedAt === null ? null : run.finishedAt - run.startedAt,
        deltas: metricDeltas(run.metricsBefore, run.metricsAfter),
        changesText: run.changes === null || run.changes === undefined ? '' : JSON.stringify(run.changes, null, 2),
      })),
      curve: runs ? learningCurve(runs) : [],
    };
  };

  r.get('/learning', async (req, res) => {
    const [view, evaluations, shadow] = await Promise.all([
      runsView(),
      store.learnerRuns(5, 'evaluate'),
      shadowView(store, ctx.now()),
    ]);
    const curveChart = view.curve.length ? lineChart(view.curve, { xLabel: (v) => `#${Math.round(v)}`, yLabel: (v) => v.toFixed(3) }) : null;
    renderPage(ctx, req, res, 'learning', {
      title: 'Learning',
      ...view,
      curveChart,
      runner: ctx.runner.status(),
      settleSeconds: Math.round(ctx.services.config.limits.requestTimeoutMs / 1000),
      busy: req.query.busy === '1',
      evaluation: evaluationView(evaluations),
      evaluationError: typeof req.query.evaluate_error === 'string' ? req.query.evaluate_error.slice(0, 300) : null,
      shadow,
      shadowConfig: ctx.services.config.shadow,
      judgeHost: Boolean(ctx.services.config.routing.ollamaHost),
    });
  });

  // Off-policy evaluation in-process, like `npm run learn -- --evaluate` (reads the stored decisions, writes one learner run).
  r.post('/learning/evaluate', async (_req, res) => {
    try {
      await store.flush();
      const models = ctx.services.registry.candidates();
      await runEvaluation({ store, dataDir: ctx.services.config.dataDir, models, now: ctx.now });
      res.redirect(303, '/learning#evaluation');
    } catch (e) {
      ctx.services.logger.warn('admin: evaluation failed', { err: (e as Error).message });
      res.redirect(303, `/learning?evaluate_error=${encodeURIComponent((e as Error).message.slice(0, 300))}#evaluation`);
    }
  });

  r.post('/learning/run', (_req, res) => {
    res.redirect(303, ctx.runner.start() ? '/learning' : '/learning?busy=1');
  });

  r.get('/api/learning/status', async (_req, res) => {
    const runs = await store.learnerRuns(1, 'learn');
    sendJson(ctx, res, { runner: ctx.runner.status(), latestRun: runs[0] ? { id: runs[0].id, status: runs[0].status, rowsRead: runs[0].rowsRead } : null });
  });

  return r;
}
