// Overview (uptime, traffic, latency, per-model health) and Logs, each as a page plus a small
// JSON endpoint the page polls for live updates.
import { Router as ExpressRouter } from 'express';
import { z } from 'zod';
import type { LogLevel, LogLine } from '../../logger.ts';
import type { AdminContext } from '../index.ts';
import { fmt, renderPage, sendJson } from '../render.ts';

/** Latency and success figures cover this recent window, never the whole table. */
export const OVERVIEW_WINDOW_MS = 15 * 60_000;
const RATE_WINDOW_MS = 5 * 60_000;
const DAY_MS = 24 * 3600_000;

async function overviewData(ctx: AdminContext) {
  const { store, registry, router, startedAt } = ctx.services;
  const now = ctx.now();
  const [stats, lastFive, unrated, latest, runs] = await Promise.all([
    store.stats(now - OVERVIEW_WINDOW_MS),
    store.countSince(now - RATE_WINDOW_MS),
    store.unratedSince(now - DAY_MS),
    store.latestRequest(),
    store.learnerRuns(1),
  ]);
  const models = registry.status().map((m) => ({
    id: m.id, provider: m.provider, state: m.state, healthy: m.healthy, enabled: m.enabled, weight: m.weight,
    consecutiveFailures: m.consecutiveFailures, lastError: m.lastError, inflight: m.inflight, demo: m.demo,
  }));
  // Only plain values from the router's status: it is free-form and may hold nested internals.
  const routerStatus = Object.entries(router.status?.() ?? {})
    .filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))
    .map(([k, v]) => ({ key: k, value: String(v) }));
  return {
    now,
    uptimeMs: now - startedAt,
    windowMinutes: OVERVIEW_WINDOW_MS / 60_000,
    requestsPerMinute: lastFive / (RATE_WINDOW_MS / 60_000),
    stats,
    models,
    routerStatus,
    unrated24h: unrated,
    latestRequestId: latest?.id ?? null,
    pendingWrites: store.pending(),
    lastLearnerRun: runs[0] ? { id: runs[0].id, status: runs[0].status, startedAt: runs[0].startedAt, finishedAt: runs[0].finishedAt } : null,
  };
}

/** The overview's figures as the page shows them, so the polling script only swaps text. */
export function overviewDisplay(d: Awaited<ReturnType<typeof overviewData>>): Record<string, string> {
  return {
    uptime: fmt.duration(d.uptimeMs),
    requestsPerMinute: fmt.num(d.requestsPerMinute, 1),
    windowRequests: d.stats ? String(d.stats.requests) : '—',
    successRate: d.stats && d.stats.requests > 0 ? fmt.pct(d.stats.successRate) : '—',
    p50: d.stats && d.stats.requests > 0 ? fmt.ms(d.stats.p50LatencyMs) : '—',
    p95: d.stats && d.stats.requests > 0 ? fmt.ms(d.stats.p95LatencyMs) : '—',
    cost: d.stats ? fmt.usd(d.stats.costUsd) : '—',
    avgRating: d.stats?.avgRating != null ? fmt.num(d.stats.avgRating, 2) : '—',
    unrated24h: String(d.unrated24h),
    pendingWrites: String(d.pendingWrites),
    healthyModels: `${d.models.filter((m) => m.healthy).length} / ${d.models.filter((m) => m.enabled).length}`,
  };
}

const logQuery = z.object({
  level: z.enum(['debug', 'info', 'warn', 'error']).optional().catch(undefined),
  request_id: z.string().trim().max(128).optional().catch(undefined),
});

const LOG_LIMIT = 500;

/** Log lines newest first, with the fixed fields split from the rest for display. */
function logLines(ctx: AdminContext, level: LogLevel | undefined, requestId: string | undefined) {
  const lines: LogLine[] = ctx.services.logger.recent({ level, requestId: requestId || undefined, limit: LOG_LIMIT });
  return lines.slice().reverse().map((l) => {
    const { ts, level: lv, msg, requestId: rid, ...rest } = l;
    return { ts, level: lv, msg, requestId: typeof rid === 'string' ? rid : null, fields: Object.keys(rest).length ? JSON.stringify(rest) : '' };
  });
}

export function overviewRoutes(ctx: AdminContext) {
  const r = ExpressRouter();

  r.get('/', async (req, res) => {
    const data = await overviewData(ctx);
    renderPage(ctx, req, res, 'overview', { title: 'Overview', data, display: overviewDisplay(data), proxyPort: ctx.proxyPort });
  });

  r.get('/api/overview', async (_req, res) => {
    const data = await overviewData(ctx);
    sendJson(ctx, res, { ...data, display: overviewDisplay(data) });
  });

  r.get('/logs', (req, res) => {
    const q = logQuery.parse(req.query);
    renderPage(ctx, req, res, 'logs', { title: 'Logs', level: q.level ?? '', requestId: q.request_id ?? '', lines: logLines(ctx, q.level, q.request_id), limit: LOG_LIMIT });
  });

  r.get('/api/logs', (req, res) => {
    const q = logQuery.parse(req.query);
    sendJson(ctx, res, { lines: logLines(ctx, q.level, q.request_id) });
  });

  return r;
}
