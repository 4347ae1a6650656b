// Decisions (recent requests, filtered, keyset-paginated newest first), one request in full, the
// rating form used everywhere, and the queue of answers no person has rated yet.
import { Router as ExpressRouter } from 'express';
import { z } from 'zod';
import type { AdminContext } from '../index.ts';
import type { RequestCursor as Cursor, RequestFilter, StoredRequest } from '../../store/types.ts';
import type { RoutingMethod } from '../../../core/routing.ts';
import { routingView } from '../../routes/common.ts';
import { renderPage } from '../render.ts';
import { safeLocalPath } from '../security.ts';

export const PAGE_SIZE = 50;
export const METHODS: readonly RoutingMethod[] = ['explicit', 'request_rules', 'learned', 'knn', 'judge', 'keywords', 'weights'];
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** `ts.id` keyset cursor in a URL; anything malformed means "from the newest". */
export function parseCursor(v: unknown): Cursor | null {
  if (typeof v !== 'string') return null;
  const m = /^(\d{1,16})\.([A-Za-z0-9._:-]{1,128})$/.exec(v);
  return m ? { ts: Number(m[1]), id: m[2]! } : null;
}
export const cursorOf = (r: { ts: number; id: string }): string => `${r.ts}.${r.id}`;

const optionalText = z.string().trim().max(128).optional().transform((v) => (v ? v : undefined)).catch(undefined);
const listQuery = z.object({
  model: optionalText,
  domain: optionalText,
  language: optionalText,
  method: z.enum(METHODS as [RoutingMethod, ...RoutingMethod[]]).optional().catch(undefined),
  rating: z.enum(['unrated', 'rated', '1', '2', '3', '4', '5']).optional().catch(undefined),
  status: z.enum(['ok', 'error']).optional().catch(undefined),
  before: z.string().max(200).optional().catch(undefined),
});

const feedbackForm = z.object({
  request_id: z.string().regex(REQUEST_ID, 'request_id is not a request id'),
  rating: z.coerce.number().int('rating must be an integer from 1 to 5').min(1, 'rating must be from 1 to 5').max(5, 'rating must be from 1 to 5'),
  comment: z.string().max(5000, 'comment is limited to 5000 characters').optional(),
  return_to: z.string().max(2000).optional(),
});

const meanRating = (r: StoredRequest): number | null => {
  const fb = r.feedback.filter((f) => f.source !== 'implicit');
  return fb.length ? fb.reduce((s, f) => s + f.rating, 0) / fb.length : null;
};

/** What the list and rating queue show of a request (never the whole answer in the list). */
const listRow = (r: StoredRequest) => ({
  id: r.id, ts: r.ts, endpoint: r.endpoint, query: r.queryText, answer: r.answer, model: r.finalModel, status: r.status,
  httpStatus: r.httpStatus, latencyMs: r.latencyMs, costUsd: r.costUsd, domain: r.features.domain, language: r.features.language,
  method: r.decision?.method ?? null, confidence: r.decision?.confidence ?? null, attempts: r.calls.length,
  rating: meanRating(r), implicitNegative: r.feedback.some((f) => f.source === 'implicit'), demo: r.demo,
});

export function requestRoutes(ctx: AdminContext) {
  const r = ExpressRouter();
  const { store, registry } = ctx.services;

  r.get('/decisions', async (req, res) => {
    const q = listQuery.parse(req.query);
    const cursor = parseCursor(q.before);
    const filter: RequestFilter = {
      model: q.model, domain: q.domain, language: q.language, method: q.method, status: q.status,
      limit: PAGE_SIZE + 1,
      ...(q.rating === 'rated' ? { rated: true } : q.rating === 'unrated' ? { rated: false } : q.rating ? { minRating: Number(q.rating) } : {}),
      ...(cursor ? { beforeTs: cursor.ts, beforeId: cursor.id } : {}),
    };
    const [rows, cells] = await Promise.all([store.listRequests(filter), store.seenCells()]);
    const page = rows.slice(0, PAGE_SIZE).map(listRow);
    const filters = { model: q.model ?? '', domain: q.domain ?? '', language: q.language ?? '', method: q.method ?? '', rating: q.rating ?? '', status: q.status ?? '' };
    const params = new URLSearchParams(Object.entries(filters).filter(([, v]) => v !== ''));
    const last = page[page.length - 1];
    const olderParams = new URLSearchParams(params);
    if (last) olderParams.set('before', cursorOf(last));
    renderPage(ctx, req, res, 'decisions', {
      title: 'Decisions',
      rows: page,
      filters,
      options: { models: registry.ids(), domains: cells.domains, languages: cells.languages, methods: METHODS },
      firstPage: !cursor,
      newestHref: `/decisions${params.size ? `?${params}` : ''}`,
      olderHref: rows.length > PAGE_SIZE && last ? `/decisions?${olderParams}` : null,
      returnTo: req.originalUrl,
    });
  });

  r.get('/decisions/:id', async (req, res) => {
    const id = req.params.id;
    const found = REQUEST_ID.test(id) ? await store.getRequest(id) : null;
    if (!found) return renderPage(ctx, req, res, 'error', { title: 'Not found', message: `No stored request with id ${id}` }, 404);
    renderPage(ctx, req, res, 'decision', {
      title: `Request ${found.id}`,
      request: found,
      summary: listRow(found),
      routing: found.decision ? routingView(found.decision) : null,
      rated: req.query.rated === '1',
    });
  });

  r.post('/feedback', async (req, res) => {
    const parsed = feedbackForm.safeParse(req.body);
    if (!parsed.success) {
      return renderPage(ctx, req, res, 'error', { title: 'Rating not saved', message: parsed.error.issues[0]?.message ?? 'invalid rating' }, 400);
    }
    const f = parsed.data;
    if (!(await store.requestExists(f.request_id))) {
      return renderPage(ctx, req, res, 'error', { title: 'Rating not saved', message: `No stored request with id ${f.request_id}` }, 404);
    }
    store.recordFeedback({ requestId: f.request_id, ts: ctx.now(), rating: f.rating, comment: f.comment?.trim() ? f.comment.trim() : null, source: 'admin' });
    // Durable before the redirect, so the next page already shows the rating.
    await store.flush();
    const back = new URL(safeLocalPath(f.return_to) ?? `/decisions/${encodeURIComponent(f.request_id)}`, 'http://admin.local');
    back.searchParams.set('rated', '1');
    // Dot segments may normalise to '//host': never redirect anywhere but this origin.
    res.redirect(303, back.pathname.startsWith('//') ? '/decisions' : `${back.pathname}${back.search}`);
  });

  r.get('/rate', async (req, res) => {
    const cursor = parseCursor(req.query.before);
    const id = await store.nextUnrated(cursor);
    const found = id ? await store.getRequest(id) : null;
    const item = found ? listRow(found) : null;
    renderPage(ctx, req, res, 'rate', {
      title: 'Rate answers',
      item,
      features: found?.features ?? null,
      // After rating or skipping this one, the queue continues with the next older answer.
      nextHref: item ? `/rate?before=${encodeURIComponent(cursorOf(item))}` : '/rate',
      justRated: req.query.rated === '1',
    });
  });

  return r;
}
