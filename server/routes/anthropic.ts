// Anthropic Messages API shape in and out: POST /api/claude (the older system's path) and
// POST /v1/messages (so the official Anthropic SDK works with baseURL set to the gateway).
import { z } from 'zod';
import type { Gateway } from '../gateway.ts';
import type { ModelRegistry } from '../dispatch/registry.ts';
import type { ApiError } from '../errors.ts';
import { sendEvent, startSse } from '../http/sse.ts';
import { sendJson, type HotRoute } from '../http/front.ts';
import { contentSchema, contentToText, modelNameSchema, parseOr400, routingPrefsSchema, routingRulesSchema } from '../http/validate.ts';
import type { ChatMessage, FinishReason } from '../providers/types.ts';
import { answeredBy, toGatewayRequest } from './common.ts';

export const ANTHROPIC_PATHS = ['/api/claude', '/v1/messages'];

const messagesBody = z.object({
  model: modelNameSchema.optional(),
  messages: z.array(z.object({ role: z.enum(['user', 'assistant']), content: contentSchema })).min(1, 'at least one message is required').max(1000),
  system: contentSchema.optional(),
  max_tokens: z.number().int().min(1).max(1_000_000).optional(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  stop_sequences: z.array(z.string().max(256)).max(8).optional(),
  metadata: z.record(z.unknown()).optional(),
  routing_rules: routingRulesSchema.optional(),
  routing: routingPrefsSchema.optional(),
});

const stopReason = (f: FinishReason) => (f === 'length' ? 'max_tokens' : 'end_turn');

/** Anthropic's error envelope; it also carries the OpenAI fields (message, type, code, param). */
export function anthropicErrorBody(err: ApiError) {
  return { type: 'error', error: { ...err.toBody().error } };
}

export function anthropicRoute(gateway: Gateway, registry: ModelRegistry): HotRoute {
  const handle: HotRoute['handle'] = async (hr) => {
    const { res } = hr;
    const body = parseOr400(messagesBody, hr.body);
    const messages: ChatMessage[] = body.messages.map((m) => ({ role: m.role, content: contentToText(m.content) }));
    if (body.system !== undefined) messages.unshift({ role: 'system', content: contentToText(body.system) });
    const greq = toGatewayRequest(hr, registry, hr.path, {
      messages,
      model: body.model,
      routingRules: body.routing_rules,
      routing: body.routing,
      stream: body.stream,
      temperature: body.temperature,
      maxTokens: body.max_tokens,
      topP: body.top_p,
      stop: body.stop_sequences,
    });
    const id = `msg_${hr.id}`;

    if (!greq.stream) {
      const a = await gateway.complete(greq);
      sendJson(res, 200, {
        id,
        type: 'message',
        role: 'assistant',
        model: a.model,
        content: [{ type: 'text', text: a.content }],
        stop_reason: stopReason(a.finishReason),
        stop_sequence: null,
        usage: { input_tokens: a.usage.inputTokens, output_tokens: a.usage.outputTokens },
        ...answeredBy(a, a.attempts),
      }, { 'x-switchyard-model': a.model });
      return;
    }

    const s = await gateway.stream(greq);
    startSse(res, { 'x-switchyard-model': s.model });
    await sendEvent(res, { type: 'message_start', message: { id, type: 'message', role: 'assistant', model: s.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 }, ...answeredBy(s) } }, 'message_start');
    await sendEvent(res, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start');
    try {
      for await (const part of s.parts) {
        if (part.type === 'delta') {
          if (part.text) await sendEvent(res, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: part.text } }, 'content_block_delta');
          continue;
        }
        await sendEvent(res, { type: 'content_block_stop', index: 0 }, 'content_block_stop');
        await sendEvent(res, { type: 'message_delta', delta: { stop_reason: stopReason(part.finishReason), stop_sequence: null }, usage: { input_tokens: part.usage?.inputTokens ?? 0, output_tokens: part.usage?.outputTokens ?? 0 } }, 'message_delta');
        await sendEvent(res, { type: 'message_stop' }, 'message_stop');
      }
    } catch (err) {
      await sendEvent(res, { type: 'error', error: { type: 'api_error', message: `upstream stream failed: ${(err as Error).message}` } }, 'error');
    }
    res.end();
  };
  return { handle, errorBody: anthropicErrorBody };
}
