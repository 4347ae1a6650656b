// OpenAI-compatible API: POST /v1/chat/completions (plain and SSE) and GET /v1/models, so the
// official openai client works unchanged. model "auto" (or none) lets the router choose.
import { Router as ExpressRouter } from 'express';
import type { Gateway } from '../gateway.ts';
import type { ModelRegistry } from '../dispatch/registry.ts';
import { ApiError } from '../errors.ts';
import { sendEvent, startSse } from '../http/sse.ts';
import { sendJson, type HotRoute } from '../http/front.ts';
import { parseOr400, requireShallow } from '../http/validate.ts';
import { answeredBy, toGatewayRequest } from './common.ts';
import { BUILTIN_EMBEDDING_MODEL } from './embeddings.ts';
import { completionBody, openaiFinish, openaiMessage, openaiToNeutral, openaiUsage } from './openai-wire.ts';

const created = () => Math.floor(Date.now() / 1000);

/** GET /v1/models and /v1/models/:id (Express). */
export function openaiRoutes(registry: ModelRegistry, demoMode = false) {
  const r = ExpressRouter();

  r.get('/v1/models', (_req, res) => {
    const t = created();
    res.json({
      object: 'list',
      data: [
        { id: 'auto', object: 'model', created: t, owned_by: 'switchyard', description: 'Let the Switchyard router choose' },
        ...registry.all().filter((m) => m.enabled).map((m) => ({
          id: m.spec.id, object: 'model', created: t, owned_by: m.spec.provider, description: m.spec.description,
          ...(m.spec.kind === 'embedding' ? { kind: 'embedding', ...(m.spec.dimensions ? { dimensions: m.spec.dimensions } : {}) } : {}),
          ...(m.spec.aliases.length ? { aliases: m.spec.aliases } : {}),
        })),
        ...(demoMode && !registry.has(BUILTIN_EMBEDDING_MODEL) ? [{ id: BUILTIN_EMBEDDING_MODEL, object: 'model', created: t, owned_by: 'switchyard', description: 'DEMO: the built-in hashed n-gram embedder (offline)', kind: 'embedding', dimensions: 256 }] : []),
      ],
    });
  });

  r.get('/v1/models/:id', (req, res) => {
    const m = registry.resolve(req.params.id);
    if (!m && req.params.id !== 'auto') throw new ApiError(404, `The model '${req.params.id}' does not exist`, 'not_found_error', 'model_not_found', 'model');
    res.json({ id: req.params.id, object: 'model', created: created(), owned_by: m?.spec.provider ?? 'switchyard', ...(m && m.spec.id !== req.params.id ? { _resolves_to: m.spec.id } : {}) });
  });

  return r;
}

/** POST /v1/chat/completions, plain and SSE. */
export function openaiChatRoute(gateway: Gateway, registry: ModelRegistry): HotRoute {
  const handle: HotRoute['handle'] = async (hr) => {
    const { res } = hr;
    requireShallow(hr.body);
    const body = parseOr400(completionBody, hr.body);
    const { messages, temperature, maxTokens, topP, stop, ...options } = openaiToNeutral(body);
    const greq = toGatewayRequest(hr, registry, '/v1/chat/completions', {
      messages,
      model: body.model,
      routingRules: body.routing_rules,
      routing: body.routing,
      stream: body.stream ?? undefined,
      temperature,
      maxTokens,
      topP,
      stop,
      options,
    });
    const id = `chatcmpl-${hr.id}`;

    if (!greq.stream) {
      const a = await gateway.complete(greq);
      const same = a.provider === 'openai';
      sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created: created(),
        model: a.model,
        choices: [{ index: 0, message: openaiMessage(a, same), logprobs: same ? a.extra?.logprobs ?? null : null, finish_reason: openaiFinish(a.finishReason) }],
        usage: openaiUsage(a.usage),
        system_fingerprint: null,
        ...answeredBy(a, a.attempts),
      }, { 'x-switchyard-model': a.model });
      return;
    }

    const s = await gateway.stream(greq);
    const t = created();
    const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}, logprobs: unknown = null) => ({
      id,
      object: 'chat.completion.chunk',
      created: t,
      model: s.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs, finish_reason: finish }],
      ...extra,
    });
    startSse(res, { 'x-switchyard-model': s.model });
    await sendEvent(res, chunk({ role: 'assistant', content: '' }, null, answeredBy(s)));
    try {
      for await (const part of s.parts) {
        switch (part.type) {
          case 'delta':
            if (part.text) await sendEvent(res, chunk({ content: part.text }, null, {}, s.provider === 'openai' ? part.extra?.logprobs ?? null : null));
            break;
          case 'reasoning':
            if (part.text) await sendEvent(res, chunk({ reasoning_content: part.text }, null));
            break;
          case 'tool_call_start':
            await sendEvent(res, chunk({ tool_calls: [{ index: part.index, id: part.id, type: 'function', function: { name: part.name, arguments: '' } }] }, null));
            break;
          case 'tool_call_delta':
            await sendEvent(res, chunk({ tool_calls: [{ index: part.index, function: { arguments: part.argumentsDelta } }] }, null));
            break;
          case 'usage':
            break;
          case 'finish':
            await sendEvent(res, chunk({}, openaiFinish(part.finishReason)));
            if (body.stream_options?.include_usage) {
              const u = part.usage ?? { inputTokens: 0, outputTokens: 0 };
              await sendEvent(res, { id, object: 'chat.completion.chunk', created: t, model: s.model, system_fingerprint: null, choices: [], usage: openaiUsage(u) });
            }
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
