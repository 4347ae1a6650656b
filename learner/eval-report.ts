// The eval report (contract: shared/data/README.md), its headline figure, the terminal table and
// a hand-written SVG chart of quality against cost. Pure: callers write the files.

export interface ReportPoint {
  knob: number | null;
  quality: number;
  cost_usd: number;
  /** Mean latency of the chosen answers, when the dataset has latencies. */
  latency_ms?: number;
  choices: Record<string, string>;
}

export interface ReportPolicy {
  name: string;
  points: ReportPoint[];
}

export interface LearningCurvePoint {
  train_fraction: number;
  train_size: number;
  /** The router at the knob of the full-data point that first reaches 95% of the best single model. */
  knob: number;
  quality: number;
  cost_usd: number;
  cost_saved_at_95: number;
  /** cost_saved_at_95 minus the blind mix's. */
  premium: number;
  /** The whole knob sweep of the router trained on this fraction, so the curve can be recomputed. */
  points: ReportPoint[];
}

export interface Headline {
  best_single: string;
  best_single_quality: number;
  best_single_cost_usd: number;
  target_quality: number;
  /** Cheapest router point reaching the target, null when none does. */
  router_knob: number | null;
  router_cost_usd: number | null;
  cost_saved_at_95: number;
  /** Cost saved at 95% by the blind mix: a random share of queries to one single model, the rest to another. */
  blind_mix_saved_at_95: number;
  /** cost_saved_at_95 - blind_mix_saved_at_95: what routing per query adds over not routing at all. */
  premium: number;
}

/** Cost saved at 95% by the router and the blind mix, and the premium, for one category or the whole test part. */
export interface CategoryPremium {
  category: string;
  queries: number;
  cost_saved_at_95: number;
  blind_mix_saved_at_95: number;
  premium: number;
}

export interface EvalReport {
  dataset: string;
  seed: number;
  test_fraction: number;
  train_ids: string[];
  test_ids: string[];
  models: string[];
  policies: ReportPolicy[];
  learning_curve: LearningCurvePoint[];
  headline: Headline;
  /** The headline per dataset category (categories are never read by the router). */
  by_category: CategoryPremium[];
  /** Policies not run, with the reason (e.g. no judge configured). */
  skipped: { name: string; reason: string }[];
  /** How scores were fed to the learner and how the knob maps to the router. */
  notes: string[];
}

/** Best single model by test quality (ties: cheaper), from the `single:*` policies. */
export function bestSingle(policies: readonly ReportPolicy[]): { name: string; point: ReportPoint } {
  let best: { name: string; point: ReportPoint } | null = null;
  for (const p of policies) {
    if (!p.name.startsWith('single:') || !p.points[0]) continue;
    const point = p.points[0];
    if (!best || point.quality > best.point.quality || (point.quality === best.point.quality && point.cost_usd < best.point.cost_usd)) {
      best = { name: p.name.slice('single:'.length), point };
    }
  }
  if (!best) throw new Error('no single-model policy in the report');
  return best;
}

/**
 * Cost saved at 95% of the best single model's quality: 1 - (cost of the cheapest router point
 * with quality >= 0.95 x best) / (cost of the best single model); 0 when none reaches it or it
 * costs more.
 */
export function costSavedAt95(routerPoints: readonly ReportPoint[], best: ReportPoint): { saved: number; point: ReportPoint | null } {
  const target = 0.95 * best.quality;
  const reach = routerPoints.filter((p) => p.quality >= target);
  if (!reach.length) return { saved: 0, point: null };
  const cheapest = reach.reduce((a, b) => (b.cost_usd < a.cost_usd ? b : a));
  const saved = best.cost_usd > 0 ? Math.max(0, 1 - cheapest.cost_usd / best.cost_usd) : 0;
  return { saved, point: cheapest };
}

/**
 * Cheapest blind mix (RouterBench's zero router: send a share of queries to single model a, the
 * rest to b, with no regard to the query) whose expected quality reaches `target`; Infinity when
 * no single model reaches it. The mixes' points are the straight lines between single models.
 */
export function blindMixCost(singles: readonly { quality: number; cost_usd: number }[], target: number): number {
  let best = Infinity;
  for (const a of singles) {
    if (a.quality >= target) best = Math.min(best, a.cost_usd);
    for (const b of singles) {
      if (a.quality < target && b.quality > target) best = Math.min(best, a.cost_usd + ((target - a.quality) / (b.quality - a.quality)) * (b.cost_usd - a.cost_usd));
    }
  }
  return best;
}

/** Cost saved at 95% of the best single model's quality by the blind mix. */
export function blindMixSavedAt95(policies: readonly ReportPolicy[]): number {
  const best = bestSingle(policies).point;
  const singles = policies.filter((p) => p.name.startsWith('single:') && p.points[0]).map((p) => p.points[0]!);
  return best.cost_usd > 0 ? Math.max(0, 1 - blindMixCost(singles, 0.95 * best.quality) / best.cost_usd) : 0;
}

export function headlineOf(policies: readonly ReportPolicy[]): Headline {
  const best = bestSingle(policies);
  const router = policies.find((p) => p.name === 'router');
  const { saved, point } = costSavedAt95(router?.points ?? [], best.point);
  const mix = blindMixSavedAt95(policies);
  return {
    blind_mix_saved_at_95: mix,
    premium: saved - mix,
    best_single: best.name,
    best_single_quality: best.point.quality,
    best_single_cost_usd: best.point.cost_usd,
    target_quality: 0.95 * best.point.quality,
    router_knob: point?.knob ?? null,
    router_cost_usd: point?.cost_usd ?? null,
    cost_saved_at_95: saved,
  };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** Terminal table: one line per policy point, with the share of the random-to-oracle gap closed. */
export function formatTable(report: EvalReport): string {
  const random = report.policies.find((p) => p.name === 'random')?.points[0]?.quality ?? 0;
  const oracle = report.policies.find((p) => p.name === 'oracle')?.points[0]?.quality ?? 0;
  const gap = oracle - random;
  const hasLatency = report.policies.some((p) => p.points.some((pt) => pt.latency_ms !== undefined));
  const head = [pad('policy', 34), lpad('knob', 5), lpad('quality', 8), lpad('cost $', 10), hasLatency ? lpad('latency', 9) : '', lpad('gap closed', 11)].join(' ');
  const lines = [head, '-'.repeat(head.length)];
  for (const pol of report.policies) {
    for (const pt of pol.points) {
      lines.push([
        pad(pol.name, 34),
        lpad(pt.knob === null ? '-' : String(pt.knob), 5),
        lpad(pt.quality.toFixed(4), 8),
        lpad(pt.cost_usd.toFixed(4), 10),
        hasLatency ? lpad(pt.latency_ms === undefined ? '-' : `${Math.round(pt.latency_ms)}ms`, 9) : '',
        lpad(gap > 0 ? `${((100 * (pt.quality - random)) / gap).toFixed(1)}%` : '-', 11),
      ].join(' '));
    }
  }
  const h = report.headline;
  lines.push('');
  lines.push(`best single model on the test part: ${h.best_single} quality ${h.best_single_quality.toFixed(4)} cost $${h.best_single_cost_usd.toFixed(4)}`);
  lines.push(h.router_knob === null
    ? `cost saved at 95% of the best single model's quality: 0.0% (no router point reaches ${h.target_quality.toFixed(4)})`
    : `cost saved at 95% of the best single model's quality: ${(100 * h.cost_saved_at_95).toFixed(1)}% (router knob ${h.router_knob}: cost $${(h.router_cost_usd ?? 0).toFixed(4)})`);
  lines.push(`blind mix (no routing: a random share to one model, the rest to another) saves ${(100 * h.blind_mix_saved_at_95).toFixed(1)}% at that quality; the router's premium over it: ${(100 * h.premium).toFixed(1)} points` +
    (h.premium <= 0 ? ' (none: the router has learned nothing about queries here)' : ''));
  if (report.by_category.length > 1) {
    lines.push('per category (cost saved at 95% / blind mix / premium):');
    for (const c of report.by_category) lines.push(`  ${c.category} (${c.queries}): ${(100 * c.cost_saved_at_95).toFixed(1)}% / ${(100 * c.blind_mix_saved_at_95).toFixed(1)}% / ${(100 * c.premium).toFixed(1)}`);
  }
  if (report.learning_curve.length) {
    lines.push('learning curve (train fraction -> quality, cost, cost saved at 95%, premium):');
    for (const p of report.learning_curve) {
      lines.push(`  ${p.train_fraction.toFixed(2)} (${p.train_size} queries): quality ${p.quality.toFixed(4)}, cost $${p.cost_usd.toFixed(4)}, saved ${(100 * p.cost_saved_at_95).toFixed(1)}%, premium ${(100 * p.premium).toFixed(1)}`);
    }
  }
  for (const s of report.skipped) lines.push(`skipped ${s.name}: ${s.reason}`);
  return lines.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
// Red is kept for the router, so no other policy shares its colour.
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31'];

/** Quality (y) against cost (x): the router as a line through its knob settings, others as dots. */
export function renderSvg(report: EvalReport, width = 760, height = 480): string {
  const m = { left: 64, right: 220, top: 36, bottom: 48 };
  const pw = width - m.left - m.right, ph = height - m.top - m.bottom;
  const all = report.policies.flatMap((p) => p.points);
  const maxCost = Math.max(1e-9, ...all.map((p) => p.cost_usd)) * 1.05;
  const maxQ = Math.max(1e-9, ...all.map((p) => p.quality)) * 1.1;
  const x = (c: number) => m.left + (c / maxCost) * pw;
  const y = (q: number) => m.top + ph - (q / maxQ) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${m.left}" y="20" font-size="13" font-weight="bold">${esc(`Quality vs cost on ${report.test_ids.length} test queries (${report.dataset}, seed ${report.seed})`)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const cv = (maxCost * i) / 5, qv = (maxQ * i) / 5;
    out.push(`<line x1="${x(cv).toFixed(1)}" y1="${m.top}" x2="${x(cv).toFixed(1)}" y2="${m.top + ph}" stroke="#eee"/>`);
    out.push(`<line x1="${m.left}" y1="${y(qv).toFixed(1)}" x2="${m.left + pw}" y2="${y(qv).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${x(cv).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle">${cv.toFixed(cv < 0.1 ? 4 : 2)}</text>`);
    out.push(`<text x="${m.left - 6}" y="${(y(qv) + 4).toFixed(1)}" text-anchor="end">${qv.toFixed(3)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${height - 10}" text-anchor="middle">cost (USD, sum over test queries)</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">quality (mean score)</text>`);
  const target = report.headline.target_quality;
  out.push(`<line x1="${m.left}" y1="${y(target).toFixed(1)}" x2="${m.left + pw}" y2="${y(target).toFixed(1)}" stroke="#999" stroke-dasharray="4 3"/>`);
  out.push(`<text x="${m.left + pw - 4}" y="${(y(target) - 4).toFixed(1)}" text-anchor="end" fill="#666">95% of best single</text>`);
  let next = 0;
  report.policies.forEach((pol, i) => {
    const color = pol.name === 'router' ? '#d62728' : palette[next++ % palette.length]!;
    const pts = pol.points.map((p) => `${x(p.cost_usd).toFixed(1)},${y(p.quality).toFixed(1)}`);
    if (pol.points.length > 1) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const p of pol.points) {
      out.push(`<circle cx="${x(p.cost_usd).toFixed(1)}" cy="${y(p.quality).toFixed(1)}" r="${pol.name === 'router' ? 3 : 4}" fill="${color}"><title>${esc(`${pol.name}${p.knob === null ? '' : ` knob ${p.knob}`}: quality ${p.quality.toFixed(4)}, cost ${p.cost_usd.toFixed(4)}`)}</title></circle>`);
    }
    const ly = m.top + 8 + i * 16;
    out.push(`<circle cx="${m.left + pw + 16}" cy="${ly}" r="4" fill="${color}"/><text x="${m.left + pw + 26}" y="${ly + 4}">${esc(pol.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
