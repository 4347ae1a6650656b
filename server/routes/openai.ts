// OpenAI-compatible API: POST /v1/chat/completions (plain and SSE) and GET /v1/models, so the
// official openai client works unchanged. model "auto" (or none) lets the router choose.
import { Router as ExpressRouter } from 'express';
import { z } from 'zod';
import type { Gateway } from '../gateway.ts';
import type { ModelRegistry } from '../dispatch/registry.ts';
import { ApiError } from '../errors.ts';
import { sendEvent, startSse } from '../http/sse.ts';
import { sendJson, type HotRoute } from '../http/front.ts';
import { messagesSchema, modelNameSchema, parseOr400, routingPrefsSchema, routingRulesSchema, stopSchema, toChatMessages, toStopList } from '../http/validate.ts';
import { answeredBy, toGatewayRequest } from './common.ts';

const completionBody = z.object({
  model: modelNameSchema.optional(),
  messages: messagesSchema,
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  max_tokens: z.number().int().min(1).max(1_000_000).nullish(),
  max_completion_tokens: z.number().int().min(1).max(1_000_000).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: stopSchema.nullable(),
  n: z.literal(1).nullish(),
  tools: z.array(z.unknown()).max(0, 'tools are not supported by this gateway yet').optional(),
  user: z.string().max(256).optional(),
  routing_rules: routingRulesSchema.optional(),
  routing: routingPrefsSchema.optional(),
});

const created = () => Math.floor(Date.now() / 1000);

/** GET /v1/models and /v1/models/:id (Express). */
export function openaiRoutes(registry: ModelRegistry) {
  const r = ExpressRouter();

  r.get('/v1/models', (_req, res) => {
    const t = created();
    res.json({
      object: 'list',
      data: [
        { id: 'auto', object: 'model', created: t, owned_by: 'switchyard', description: 'Let the Switchyard router choose' },
        ...registry.all().filter((m) => m.enabled).map((m) => ({ id: m.spec.id, object: 'model', created: t, owned_by: m.spec.provider, description: m.spec.description })),
      ],
    });
  });

  r.get('/v1/models/:id', (req, res) => {
    const m = registry.get(req.params.id);
    if (!m && req.params.id !== 'auto') throw new ApiError(404, `The model '${req.params.id}' does not exist`, 'not_found_error', 'model_not_found', 'model');
    res.json({ id: req.params.id, object: 'model', created: created(), owned_by: m?.spec.provider ?? 'switchyard' });
  });

  return r;
}

/** POST /v1/chat/completions, plain and SSE. */
export function openaiChatRoute(gateway: Gateway, registry: ModelRegistry): HotRoute {
  const handle: HotRoute['handle'] = async (hr) => {
    const { res } = hr;
    const body = parseOr400(completionBody, hr.body);
    const messages = toChatMessages(body.messages);
    const greq = toGatewayRequest(hr, registry, '/v1/chat/completions', {
      messages,
      model: body.model,
      routingRules: body.routing_rules,
      routing: body.routing,
      stream: body.stream,
      temperature: body.temperature ?? undefined,
      maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
      topP: body.top_p ?? undefined,
      stop: toStopList(body.stop ?? undefined),
    });
    const id = `chatcmpl-${hr.id}`;

    if (!greq.stream) {
      const a = await gateway.complete(greq);
      sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created: created(),
        model: a.model,
        choices: [{ index: 0, message: { role: 'assistant', content: a.content, refusal: null }, logprobs: null, finish_reason: a.finishReason === 'other' ? 'stop' : a.finishReason }],
        usage: { prompt_tokens: a.usage.inputTokens, completion_tokens: a.usage.outputTokens, total_tokens: a.usage.inputTokens + a.usage.outputTokens },
        system_fingerprint: null,
        ...answeredBy(a, a.attempts),
      }, { 'x-switchyard-model': a.model });
      return;
    }

    const s = await gateway.stream(greq);
    const t = created();
    const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) => ({
      id,
      object: 'chat.completion.chunk',
      created: t,
      model: s.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...extra,
    });
    startSse(res, { 'x-switchyard-model': s.model });
    await sendEvent(res, chunk({ role: 'assistant', content: '' }, null, answeredBy(s)));
    try {
      for await (const part of s.parts) {
        if (part.type === 'delta') {
          if (part.text) await sendEvent(res, chunk({ content: part.text }, null));
          continue;
        }
        await sendEvent(res, chunk({}, part.finishReason === 'other' ? 'stop' : part.finishReason));
        if (body.stream_options?.include_usage) {
          const u = part.usage ?? { inputTokens: 0, outputTokens: 0 };
          await sendEvent(res, { id, object: 'chat.completion.chunk', created: t, model: s.model, system_fingerprint: null, choices: [], usage: { prompt_tokens: u.inputTokens, completion_tokens: u.outputTokens, total_tokens: u.inputTokens + u.outputTokens } });
        }
      }
      await sendEvent(res, '[DONE]');
    } catch (err) {
      // OpenAI clients raise an APIError when a stream event carries `error`.
      await sendEvent(res, { error: { message: `upstream stream failed: ${(err as Error).message}`, type: 'upstream_error', code: 'stream_interrupted', param: null } });
    }
    res.end();
  };
  return { handle };
}
