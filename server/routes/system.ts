// Operational endpoints: GET /health, GET /models, POST /api/config/weights, POST /api/feedback,
// POST /api/routing/analyze (a routing decision without calling any model).
import { workerId } from '../cluster.ts';
import { Router as ExpressRouter } from 'express';
import { z } from 'zod';
import type { Gateway } from '../gateway.ts';
import type { ModelRegistry, WeightChange } from '../dispatch/registry.ts';
import type { SharedHealth } from '../redis/index.ts';
import type { Router } from '../../core/routing.ts';
import type { Store } from '../store/types.ts';
import { ApiError } from '../errors.ts';
import { requireAdmin, requestOwner, type AdminCredentials } from '../http/middleware.ts';
import { messagesSchema, modelNameSchema, parseOr400, requireUserText, routingPrefsSchema, routingRulesSchema, toChatMessages } from '../http/validate.ts';
import { DEMO_NOTICE, routingView, validateRoutingRules } from './common.ts';

const weightEntry = z.object({ model: modelNameSchema, weight: z.number().min(0).max(1000).optional(), enabled: z.boolean().optional() }).strict();
const weightsBody = z.union([
  z.object({ weights: z.record(modelNameSchema, z.number().min(0).max(1000)) }).strict(),
  z.object({ models: z.array(weightEntry).min(1).max(1000) }).strict(),
]);

const feedbackBody = z
  .object({
    request_id: z.string().min(1).max(128),
    rating: z.number().int('rating must be an integer from 1 to 5').min(1, 'rating must be from 1 to 5').max(5, 'rating must be from 1 to 5'),
    comment: z.string().max(5000).optional(),
  })
  .strict();

const analyzeBody = z
  .object({
    messages: messagesSchema.optional(),
    message: z.string().max(1_000_000).optional(),
    model: modelNameSchema.optional(),
    routing_rules: routingRulesSchema.optional(),
    routing: routingPrefsSchema.optional(),
  })
  .refine((b) => b.messages !== undefined || b.message !== undefined, { message: 'either messages or message is required', path: ['messages'] });

/** The ids clients see in answers (`chatcmpl-req_...` on /v1, `msg_req_...` on Anthropic paths, `resp_req_...` on /v1/responses) name the request `req_...`. */
export function answerIdToRequestId(id: string): string {
  return id.replace(/^(?:chatcmpl-|msg_|resp_)(?=req_)/, '');
}

/** A store error as /health shows it: no file system paths. */
function redactPaths(message: string): string {
  return message.replace(/(?:\/[\w.-]+)+/g, '[path]').slice(0, 300);
}

export interface SystemDeps {
  gateway: Gateway;
  registry: ModelRegistry;
  router: Router;
  store: Store;
  /** Store, apply and share weight changes (Services.applyWeights). */
  applyWeights: (entries: WeightChange[]) => Promise<void>;
  /** Redis's health when state is shared (REDIS_URL); absent: every instance keeps its own. */
  shared?: () => SharedHealth;
  /** STORE_MAX_PENDING: /health is degraded once more than half of it waits. */
  storeMaxPending?: number;
  /** Who may change global settings on the proxy port. */
  admin: AdminCredentials;
  demoMode: boolean;
  startedAt: number;
  version: string;
  embedderNote?: () => string | null;
  /**
   * With several workers, another worker may have answered a request and not stored it yet: how
   * long to keep looking for its id before a 404 (its write queue flushes every WRITE_FLUSH_MS).
   */
  feedbackWaitMs?: number;
}

export function systemRoutes(d: SystemDeps) {
  const r = ExpressRouter();

  r.get('/health', (_req, res) => {
    const models = d.registry.status();
    const healthy = models.filter((m) => m.healthy).length;
    const pending = d.store.pending();
    const writeError = d.store.writeError?.() ?? null;
    const backlogged = d.storeMaxPending !== undefined && pending > d.storeMaxPending / 2;
    const storeOk = writeError === null && !backlogged;
    const shared = d.shared?.();
    res.json({
      status: healthy === 0 ? 'down' : healthy < models.filter((m) => m.enabled).length || !storeOk || (shared && shared.status !== 'ok') ? 'degraded' : 'ok',
      version: d.version,
      demo: d.demoMode,
      ...(d.demoMode ? { notice: DEMO_NOTICE } : {}),
      uptime_s: Math.round((Date.now() - d.startedAt) / 1000),
      // With SWITCHYARD_WORKERS > 1 each worker answers for itself (worker 0 = a single process).
      process: { pid: process.pid, worker: workerId() },
      models: models.map((m) => ({ id: m.id, provider: m.provider, state: m.state, healthy: m.healthy, enabled: m.enabled, weight: m.weight, consecutive_failures: m.consecutiveFailures, last_error: m.lastError, inflight: m.inflight, demo: m.demo })),
      router: d.router.status?.() ?? {},
      store: { status: storeOk ? 'ok' : 'degraded', pending_writes: pending, max_pending: d.storeMaxPending ?? null, write_error: writeError === null ? null : redactPaths(writeError) },
      // What instances share: 'none' = rate limits, breakers and the asked-again window are this instance's own.
      shared: shared ? { backend: shared.backend, status: shared.status, error: shared.error } : { backend: 'none' },
    });
  });

  r.get('/models', (_req, res) => {
    res.json({ demo: d.demoMode, models: d.registry.status() });
  });

  r.post('/api/config/weights', async (req, res) => {
    requireAdmin(req, d.admin);
    const body = parseOr400(weightsBody, req.body);
    const entries = 'weights' in body ? Object.entries(body.weights).map(([model, weight]) => ({ model, weight, enabled: undefined as boolean | undefined })) : body.models;
    const unknown = entries.filter((e) => !d.registry.has(e.model)).map((e) => e.model);
    if (unknown.length) throw new ApiError(400, `Invalid request: unknown model${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `'${u}'`).join(', ')}`, 'invalid_request_error', 'model_not_found', 'weights');
    await d.applyWeights(entries);
    req.log.info('weights updated', { models: entries.map((e) => e.model) });
    res.json({ ok: true, models: d.registry.status().map((m) => ({ id: m.id, weight: m.weight, enabled: m.enabled })) });
  });

  /**
   * A rating from whoever made the request (same key, or without keys the same address), or from
   * an admin credential (source 'admin'). Someone else's request answers 404 like an unknown one,
   * so ids cannot be probed. One rating per request and source: a new one replaces the old.
   */
  r.post('/api/feedback', async (req, res) => {
    const body = parseOr400(feedbackBody, req.body);
    const id = answerIdToRequestId(body.request_id);
    let stored = await d.store.getRequest(id);
    for (let waited = 0; !stored && waited < (d.feedbackWaitMs ?? 0); waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      stored = await d.store.getRequest(id);
    }
    const caller = requestOwner({ key: req.clientKey, verified: req.clientKeyVerified === true }, req.socket.remoteAddress);
    if (!stored || (!req.admin && stored.owner !== caller)) {
      throw new ApiError(404, `No request with id '${body.request_id}' made by this client`, 'not_found_error', 'request_not_found', 'request_id');
    }
    const source = req.admin ? 'admin' : 'user';
    d.store.recordFeedback({ requestId: id, ts: Date.now(), rating: body.rating, comment: body.comment ?? null, source });
    res.status(201).json({ ok: true, request_id: id, rating: body.rating, source });
  });

  r.post('/api/routing/analyze', async (req, res) => {
    const body = parseOr400(analyzeBody, req.body);
    const messages = body.messages ? toChatMessages(body.messages) : [{ role: 'user' as const, content: body.message ?? '' }];
    requireUserText(messages);
    const routingRules = validateRoutingRules(body.routing_rules, d.registry);
    const decision = await d.gateway.decide({ requestId: req.id, messages, model: body.model, routingRules, prefer: body.routing?.prefer, qualityThreshold: body.routing?.quality_threshold });
    res.json({ id: req.id, selected: decision.selected, _routing: routingView(decision) });
  });

  return r;
}
