// Models (weights, enable/disable, a probe per model) and the test console, which sends a prompt
// through the gateway in-process so it is routed, answered and stored like any client request.
import { randomUUID } from 'node:crypto';
import { Router as ExpressRouter, type Request, type Response } from 'express';
import { z } from 'zod';
import type { AdminContext } from '../index.ts';
import type { WeightChange } from '../../dispatch/registry.ts';
import { ApiError } from '../../errors.ts';
import type { GatewayAnswer } from '../../gateway.ts';
import { validateRoutingRules } from '../../routes/common.ts';
import { routingView } from '../../routes/common.ts';
import { modelNameSchema, routingRulesSchema } from '../../http/validate.ts';
import { clientAbortSignal } from '../../http/sse.ts';
import type { RouteRule } from '../../../core/routing.ts';
import { renderPage } from '../render.ts';

/** Same bounds as POST /api/config/weights. */
const weightValue = z.coerce.number({ invalid_type_error: 'weight must be a number' }).finite().min(0, 'weight must be >= 0').max(1000, 'weight must be <= 1000');
const enabledValue = z.enum(['1', '0']).transform((v) => v === '1');

export const PROBE_PROMPT = 'Reply with OK';
const MAX_PROMPT_CHARS = 100_000;

export interface ProbeResult {
  model: string;
  ok: boolean;
  latencyMs: number;
  answer: string | null;
  answeredBy: string | null;
  requestId: string;
  error: string | null;
}

type WeightEntry = WeightChange;

/** Parse `weight:<id>` / `enabled:<id>` form fields; unknown models and bad numbers are errors. */
export function parseWeightsForm(body: Record<string, unknown>, known: (id: string) => boolean): { entries: WeightEntry[]; errors: string[] } {
  const byModel = new Map<string, WeightEntry>();
  const errors: string[] = [];
  for (const [key, raw] of Object.entries(body)) {
    const m = /^(weight|enabled):(.+)$/.exec(key);
    if (!m) continue;
    const [, field, model] = m as unknown as [string, 'weight' | 'enabled', string];
    if (!modelNameSchema.safeParse(model).success || !known(model)) {
      errors.push(`unknown model '${model}'`);
      continue;
    }
    const entry = byModel.get(model) ?? { model };
    const parsed = field === 'weight' ? weightValue.safeParse(typeof raw === 'string' && raw.trim() === '' ? undefined : raw) : enabledValue.safeParse(raw);
    if (!parsed.success) {
      errors.push(`${model}: ${field === 'weight' ? parsed.error.issues[0]?.message ?? 'invalid weight' : 'enabled must be 1 or 0'}`);
      continue;
    }
    if (field === 'weight') entry.weight = parsed.data as number;
    else entry.enabled = parsed.data as boolean;
    byModel.set(model, entry);
  }
  if (byModel.size === 0 && errors.length === 0) errors.push('no model weights were submitted');
  return { entries: [...byModel.values()], errors };
}

/** `pattern -> model` per line; the last `->` splits, so patterns may contain arrows. */
export function parseRulesText(text: string): { rules: RouteRule[]; errors: string[] } {
  const rules: RouteRule[] = [];
  const errors: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    const at = line.lastIndexOf('->');
    if (at < 0) {
      errors.push(`rule line ${i + 1}: expected "pattern -> model"`);
      return;
    }
    rules.push({ pattern: line.slice(0, at).trim(), model: line.slice(at + 2).trim() });
  });
  const checked = routingRulesSchema.safeParse(rules);
  if (!checked.success) errors.push(`routing rules: ${checked.error.issues[0]?.path.join('.')}: ${checked.error.issues[0]?.message}`);
  return { rules, errors };
}

const consoleForm = z.object({
  prompt: z.string().max(MAX_PROMPT_CHARS, `prompt is limited to ${MAX_PROMPT_CHARS} characters`).default(''),
  model: z.string().max(128).default('auto'),
  rules: z.string().max(20_000).default(''),
});

const adminRequestId = () => `adm_${randomUUID()}`;

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function modelRoutes(ctx: AdminContext) {
  const r = ExpressRouter();
  const { registry, gateway, logger } = ctx.services;

  const renderModels = (req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) => {
    renderPage(ctx, req, res, 'models', {
      title: 'Models',
      models: registry.status(),
      saved: req.query.saved === '1',
      errors: [],
      probe: null,
      ...extra,
    }, status);
  };

  /** The same effect as POST /api/config/weights: persisted, applied to the live registry, pushed to other instances. */
  const applyWeights = async (entries: WeightEntry[]) => {
    await ctx.services.applyWeights(entries);
    logger.info('admin: weights updated', { models: entries.map((e) => e.model) });
  };

  r.get('/models', (req, res) => renderModels(req, res));

  r.post('/models/weights', async (req, res) => {
    const { entries, errors } = parseWeightsForm(req.body as Record<string, unknown>, (id) => registry.has(id));
    if (errors.length) return renderModels(req, res, { errors }, 400);
    await applyWeights(entries);
    res.redirect(303, '/models?saved=1');
  });

  r.post('/models/toggle', async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const model = typeof body.model === 'string' ? body.model : '';
    const enabled = enabledValue.safeParse(body.enabled);
    if (!registry.has(model) || !enabled.success) return renderModels(req, res, { errors: [`cannot toggle model '${model}'`] }, 400);
    await applyWeights([{ model, enabled: enabled.data }]);
    res.redirect(303, '/models?saved=1');
  });

  r.post('/models/test', async (req, res) => {
    const model = String((req.body as Record<string, unknown>).model ?? '');
    if (!registry.has(model)) return renderModels(req, res, { errors: [`unknown model '${model}'`] }, 400);
    const requestId = adminRequestId();
    const t0 = ctx.now();
    let probe: ProbeResult;
    try {
      const a = await gateway.complete({
        requestId, endpoint: '/admin/test', messages: [{ role: 'user', content: PROBE_PROMPT }], model,
        stream: false, maxTokens: 16, signal: clientAbortSignal(req, res),
      });
      probe = { model, ok: true, latencyMs: ctx.now() - t0, answer: a.content, answeredBy: a.model, requestId, error: null };
    } catch (e) {
      probe = { model, ok: false, latencyMs: ctx.now() - t0, answer: null, answeredBy: null, requestId, error: messageOf(e) };
    }
    renderModels(req, res, { probe });
  });

  const renderConsole = (req: Request, res: Response, extra: Record<string, unknown>, status = 200) => {
    renderPage(ctx, req, res, 'console', {
      title: 'Test console',
      modelIds: registry.ids(),
      form: { prompt: '', model: 'auto', rules: '' },
      errors: [],
      result: null,
      ...extra,
    }, status);
  };

  r.get('/console', (req, res) => renderConsole(req, res, {}));

  r.post('/console', async (req, res) => {
    const parsed = consoleForm.safeParse(req.body);
    if (!parsed.success) return renderConsole(req, res, { errors: [parsed.error.issues[0]?.message ?? 'invalid form'] }, 400);
    const form = parsed.data;
    const errors: string[] = [];
    if (!form.prompt.trim()) errors.push('write a prompt first');
    const model = form.model === 'auto' || form.model === '' ? undefined : form.model;
    if (model && !registry.has(model)) errors.push(`unknown model '${model}'`);
    const { rules, errors: ruleErrors } = parseRulesText(form.rules);
    errors.push(...ruleErrors);
    if (!errors.length) {
      try {
        validateRoutingRules(rules, registry, 'rules');
      } catch (e) {
        errors.push(messageOf(e));
      }
    }
    if (errors.length) return renderConsole(req, res, { form, errors }, 400);

    const requestId = adminRequestId();
    const t0 = ctx.now();
    try {
      const a: GatewayAnswer = await gateway.complete({
        requestId, endpoint: '/admin/test', messages: [{ role: 'user', content: form.prompt }], model,
        routingRules: rules.length ? rules : undefined, stream: false, signal: clientAbortSignal(req, res),
      });
      renderConsole(req, res, {
        form,
        result: {
          ok: true, requestId, model: a.model, content: a.content, latencyMs: ctx.now() - t0, costUsd: a.costUsd,
          usage: a.usage, demo: a.demo, routing: routingView(a.decision, a.attempts), error: null,
        },
      });
    } catch (e) {
      const status = e instanceof ApiError ? e.status : 500;
      renderConsole(req, res, {
        form,
        result: { ok: false, requestId, model: null, content: null, latencyMs: ctx.now() - t0, costUsd: 0, usage: null, demo: false, routing: null, error: messageOf(e) },
      }, status >= 400 && status < 600 ? status : 500);
    }
  });

  return r;
}
