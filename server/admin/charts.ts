// Pure chart geometry for the admin pages: line charts and the "who wins where" heat map. The
// templates draw the SVG from these numbers with escaped output, so no markup is built here.
import type { PerformanceRow, TimeSeriesPoint } from '../store/types.ts';

export interface SeriesInput {
  name: string;
  points: { x: number; y: number | null }[];
}

export interface LineChart {
  width: number;
  height: number;
  /** Plot area inside the axes. */
  plot: { left: number; top: number; right: number; bottom: number };
  lines: { name: string; cls: string; d: string; dots: { cx: number; cy: number; label: string }[] }[];
  xTicks: { x: number; label: string; anchor: 'start' | 'middle' | 'end' }[];
  yTicks: { y: number; label: string }[];
  empty: boolean;
}

export interface ChartOptions {
  width?: number;
  height?: number;
  yMin?: number;
  yMax?: number;
  /** Fixed x range (e.g. the whole selected time span) instead of the data's extent. */
  xMin?: number;
  xMax?: number;
  yLabel?: (v: number) => string;
  xLabel?: (v: number) => string;
  /** Colour class per series name, stable across charts on a page. */
  classFor?: (name: string) => string;
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/** Assigns each name a colour class s0..s7 in first-seen order. */
export function colourClasses(names: readonly string[]): (name: string) => string {
  const order = [...new Set(names)];
  return (name) => `s${Math.max(0, order.indexOf(name)) % 8}`;
}

export function lineChart(series: SeriesInput[], opts: ChartOptions = {}): LineChart {
  const width = opts.width ?? 640;
  const height = opts.height ?? 220;
  const plot = { left: 48, top: 12, right: width - 12, bottom: height - 28 };
  const xs = series.flatMap((s) => s.points.filter((p) => p.y !== null).map((p) => p.x));
  const ys = series.flatMap((s) => s.points.flatMap((p) => (p.y === null ? [] : [p.y])));
  const classFor = opts.classFor ?? colourClasses(series.map((s) => s.name));
  if (xs.length === 0) return { width, height, plot, lines: [], xTicks: [], yTicks: [], empty: true };

  const xMin = opts.xMin ?? Math.min(...xs);
  const xMax = opts.xMax ?? Math.max(...xs);
  const yMin = opts.yMin ?? Math.min(...ys);
  let yMax = opts.yMax ?? Math.max(...ys);
  if (yMax === yMin) yMax = yMin + 1;
  const sx = (x: number) => (xMax === xMin ? (plot.left + plot.right) / 2 : plot.left + ((x - xMin) / (xMax - xMin)) * (plot.right - plot.left));
  const sy = (y: number) => plot.bottom - ((y - yMin) / (yMax - yMin)) * (plot.bottom - plot.top);
  const yLabel = opts.yLabel ?? ((v: number) => String(round1(v)));
  const xLabel = opts.xLabel ?? ((v: number) => String(v));

  const lines = series.map((s) => {
    const pts = s.points.filter((p): p is { x: number; y: number } => p.y !== null).sort((a, b) => a.x - b.x);
    // A gap (null) in the data lifts the pen, so missing buckets are not drawn as flat lines.
    let d = '';
    let penDown = false;
    for (const p of [...s.points].sort((a, b) => a.x - b.x)) {
      if (p.y === null) {
        penDown = false;
        continue;
      }
      d += `${penDown ? 'L' : 'M'}${round1(sx(p.x))} ${round1(sy(p.y))} `;
      penDown = true;
    }
    return {
      name: s.name,
      cls: classFor(s.name),
      d: d.trim(),
      dots: pts.map((p) => ({ cx: round1(sx(p.x)), cy: round1(sy(p.y)), label: `${s.name}: ${yLabel(p.y)} at ${xLabel(p.x)}` })),
    };
  });

  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = yMin + f * (yMax - yMin);
    return { y: round1(sy(v)), label: yLabel(v) };
  });
  const tickCount = opts.xMin !== undefined && opts.xMax !== undefined ? 6 : Math.min(6, new Set(xs).size);
  const xTicks = Array.from({ length: tickCount }, (_, i) => {
    const v = tickCount === 1 ? xMin : xMin + (i / (tickCount - 1)) * (xMax - xMin);
    // The outer labels hug the plot edges so they are not clipped by the SVG box.
    const anchor = tickCount > 1 && i === 0 ? 'start' : tickCount > 1 && i === tickCount - 1 ? 'end' : 'middle';
    return { x: round1(sx(v)), label: xLabel(v), anchor } as const;
  });
  return { width, height, plot, lines, xTicks, yTicks, empty: false };
}

/** Success rate and mean rating per model and bucket, as chart series (null where no data). */
export function seriesFromTimeSeries(points: TimeSeriesPoint[]): { success: SeriesInput[]; rating: SeriesInput[]; buckets: number[] } {
  const buckets = [...new Set(points.map((p) => p.bucketTs))].sort((a, b) => a - b);
  const models = [...new Set(points.map((p) => p.model || '(none)'))].sort();
  const byKey = new Map(points.map((p) => [`${p.model || '(none)'}\u0000${p.bucketTs}`, p]));
  const success: SeriesInput[] = [];
  const rating: SeriesInput[] = [];
  for (const m of models) {
    success.push({ name: m, points: buckets.map((b) => { const p = byKey.get(`${m}\u0000${b}`); return { x: b, y: p && p.requests > 0 ? p.successes / p.requests : null }; }) });
    rating.push({ name: m, points: buckets.map((b) => { const p = byKey.get(`${m}\u0000${b}`); return { x: b, y: p && p.ratingCount > 0 ? p.ratingSum / p.ratingCount : null }; }) });
  }
  return { success, rating, buckets };
}

export interface HeatCell {
  domain: string;
  language: string;
  winner: string | null;
  /** 0..1 quality of the winner. */
  score: number;
  samples: number;
  /** Runner-up, for the tooltip. */
  runnerUp: string | null;
  cls: string;
  /** 0..4 shading step from the score. */
  level: number;
}

export interface HeatMap {
  domains: string[];
  languages: string[];
  cells: HeatCell[][];
  models: { name: string; cls: string }[];
}

/**
 * Quality of one model on one cell: success rate, blended half and half with the mean rating
 * (mapped from 1..5 to 0..1) once the model has ratings there.
 */
export function cellScore(r: PerformanceRow): number {
  const success = r.total > 0 ? r.successes / r.total : 0;
  if (r.ratingCount === 0) return success;
  const rating = (r.ratingSum / r.ratingCount - 1) / 4;
  return 0.5 * success + 0.5 * rating;
}

export function heatMap(rows: PerformanceRow[], opts: { minSamples?: number; classFor?: (model: string) => string } = {}): HeatMap {
  const minSamples = opts.minSamples ?? 3;
  const domains = [...new Set(rows.map((r) => r.domain))].sort();
  const languages = [...new Set(rows.map((r) => r.language))].sort();
  const modelNames = [...new Set(rows.map((r) => r.model))].sort();
  const classFor = opts.classFor ?? colourClasses(modelNames);
  const cells = domains.map((domain) =>
    languages.map((language): HeatCell => {
      const ranked = rows
        .filter((r) => r.domain === domain && r.language === language && r.total >= minSamples)
        .map((r) => ({ r, score: cellScore(r) }))
        .sort((a, b) => b.score - a.score || b.r.total - a.r.total || a.r.model.localeCompare(b.r.model));
      const best = ranked[0];
      const samples = rows.filter((r) => r.domain === domain && r.language === language).reduce((n, r) => n + r.total, 0);
      if (!best) return { domain, language, winner: null, score: 0, samples, runnerUp: null, cls: 'none', level: 0 };
      return {
        domain,
        language,
        winner: best.r.model,
        score: best.score,
        samples,
        runnerUp: ranked[1]?.r.model ?? null,
        cls: classFor(best.r.model),
        level: Math.min(4, Math.floor(best.score * 5)),
      };
    }),
  );
  return { domains, languages, cells, models: modelNames.map((name) => ({ name, cls: classFor(name) })) };
}
