// POST /api/chat: the gateway's own chat API. `{messages | message, model?, routing_rules?, stream?}`
// -> `{id, content, _actual_model_used, _routing, usage}`; SSE when stream is true.
import { z } from 'zod';
import type { Gateway } from '../gateway.ts';
import type { ModelRegistry } from '../dispatch/registry.ts';
import { sendEvent, startSse } from '../http/sse.ts';
import { sendJson, type HotRoute } from '../http/front.ts';
import { messagesSchema, modelNameSchema, parseOr400, routingPrefsSchema, routingRulesSchema, stopSchema, toChatMessages, toStopList } from '../http/validate.ts';
import { answeredBy, toGatewayRequest } from './common.ts';

const chatBody = z
  .object({
    messages: messagesSchema.optional(),
    message: z.string().max(1_000_000).optional(),
    system: z.string().max(1_000_000).optional(),
    model: modelNameSchema.optional(),
    routing_rules: routingRulesSchema.optional(),
    routing: routingPrefsSchema.optional(),
    stream: z.boolean().optional(),
    temperature: z.number().min(0).max(2).optional(),
    max_tokens: z.number().int().min(1).max(1_000_000).optional(),
    top_p: z.number().min(0).max(1).optional(),
    stop: stopSchema,
  })
  .refine((b) => b.messages !== undefined || b.message !== undefined, { message: 'either messages or message is required', path: ['messages'] });

export function chatRoute(gateway: Gateway, registry: ModelRegistry): HotRoute {
  const handle: HotRoute['handle'] = async (hr) => {
    const { res } = hr;
    const body = parseOr400(chatBody, hr.body);
    const messages = body.messages ? toChatMessages(body.messages) : [{ role: 'user' as const, content: body.message ?? '' }];
    if (body.system) messages.unshift({ role: 'system', content: body.system });
    const greq = toGatewayRequest(hr, registry, '/api/chat', {
      messages,
      model: body.model,
      routingRules: body.routing_rules,
      routing: body.routing,
      stream: body.stream,
      temperature: body.temperature,
      maxTokens: body.max_tokens,
      topP: body.top_p,
      stop: toStopList(body.stop),
    });

    if (!greq.stream) {
      const a = await gateway.complete(greq);
      sendJson(res, 200, {
        id: a.requestId,
        content: a.content,
        finish_reason: a.finishReason,
        ...answeredBy(a, a.attempts),
        usage: { prompt_tokens: a.usage.inputTokens, completion_tokens: a.usage.outputTokens, total_tokens: a.usage.inputTokens + a.usage.outputTokens },
        cost_usd: a.costUsd,
      }, { 'x-switchyard-model': a.model });
      return;
    }

    const s = await gateway.stream(greq);
    startSse(res, { 'x-switchyard-model': s.model });
    await sendEvent(res, { id: s.requestId, type: 'start', ...answeredBy(s) });
    try {
      for await (const part of s.parts) {
        if (part.type === 'delta') await sendEvent(res, { id: s.requestId, type: 'delta', delta: part.text });
        else if (part.type === 'finish')
          await sendEvent(res, {
            id: s.requestId,
            type: 'done',
            finish_reason: part.finishReason,
            _actual_model_used: s.model,
            usage: part.usage ? { prompt_tokens: part.usage.inputTokens, completion_tokens: part.usage.outputTokens, total_tokens: part.usage.inputTokens + part.usage.outputTokens } : undefined,
          });
      }
    } catch (err) {
      await sendEvent(res, { id: s.requestId, type: 'error', error: { message: `upstream stream failed: ${(err as Error).message}`, type: 'upstream_error', code: 'stream_interrupted' } }, 'error');
    }
    await sendEvent(res, '[DONE]');
    res.end();
  };
  return { handle };
}
