// Anthropic Messages API shape in and out: POST /api/claude (the older system's path) and
// POST /v1/messages (so the official Anthropic SDK and Claude Code work with the gateway as base URL).
import type { ServerResponse } from 'node:http';
import type { Gateway } from '../gateway.ts';
import type { ModelRegistry } from '../dispatch/registry.ts';
import type { ApiError } from '../errors.ts';
import { sendEvent, startSse } from '../http/sse.ts';
import { sendJson, type HotRoute } from '../http/front.ts';
import { parseOr400, requireShallow } from '../http/validate.ts';
import { estimateTokens } from '../providers/http.ts';
import { allText } from '../providers/neutral.ts';
import type { StreamPart, Usage } from '../providers/types.ts';
import { answeredBy, toGatewayRequest } from './common.ts';
import { anthropicContent, anthropicStopReason, anthropicToNeutral, anthropicUsage, messagesBody } from './anthropic-wire.ts';

export const ANTHROPIC_PATHS = ['/api/claude', '/v1/messages'];

/** Anthropic's error envelope; it also carries the OpenAI fields (message, type, code, param). */
export function anthropicErrorBody(err: ApiError) {
  return { type: 'error', error: { ...err.toBody().error } };
}

const queryOf = (url: string | undefined) => {
  const q = url?.indexOf('?') ?? -1;
  return q >= 0 ? url!.slice(q + 1) : undefined;
};

export function anthropicRoute(gateway: Gateway, registry: ModelRegistry): HotRoute {
  const handle: HotRoute['handle'] = async (hr) => {
    const { res } = hr;
    requireShallow(hr.body);
    const body = parseOr400(messagesBody, hr.body);
    const beta = hr.req.headers['anthropic-beta'];
    const { messages, temperature, maxTokens, topP, stop, ...options } = anthropicToNeutral(body, Array.isArray(beta) ? beta.join(',') : beta, queryOf(hr.req.url));
    const greq = toGatewayRequest(hr, registry, hr.path, {
      messages,
      model: body.model,
      routingRules: body.routing_rules,
      routing: body.routing,
      stream: body.stream,
      temperature,
      maxTokens,
      topP,
      stop,
      options,
    });
    const id = `msg_${hr.id}`;

    if (!greq.stream) {
      const a = await gateway.complete(greq);
      const same = a.provider === 'anthropic';
      sendJson(res, 200, {
        id,
        type: 'message',
        role: 'assistant',
        model: a.model,
        content: anthropicContent(a, same),
        stop_reason: anthropicStopReason(a, same),
        stop_sequence: same && typeof a.extra?.stop_sequence === 'string' ? a.extra.stop_sequence : null,
        usage: anthropicUsage(a.usage),
        ...answeredBy(a, a.attempts),
      }, { 'x-switchyard-model': a.model });
      return;
    }

    const s = await gateway.stream(greq);
    const parts = s.parts;
    // message_start carries the input tokens: the upstream's count when it sent one first, else an estimate.
    const first = await parts.next();
    let startUsage: Usage = { inputTokens: estimateTokens(allText(messages)), outputTokens: 0 };
    let pending: StreamPart | undefined;
    if (!first.done) {
      if (first.value.type === 'usage') startUsage = first.value.usage;
      else pending = first.value;
    }
    startSse(res, { 'x-switchyard-model': s.model });
    await sendEvent(res, { type: 'message_start', message: { id, type: 'message', role: 'assistant', model: s.model, content: [], stop_reason: null, stop_sequence: null, usage: anthropicUsage(startUsage), ...answeredBy(s) } }, 'message_start');
    const blocks = new BlockWriter(res);
    try {
      if (pending) await blocks.write(pending, startUsage);
      for await (const part of parts) await blocks.write(part, startUsage);
    } catch (err) {
      await sendEvent(res, { type: 'error', error: { type: 'api_error', message: `upstream stream failed: ${(err as Error).message}` } }, 'error');
    }
    res.end();
  };
  return { handle, errorBody: anthropicErrorBody };
}

/** Neutral stream parts as Anthropic's content block events: one block open at a time, indices in order. */
class BlockWriter {
  private index = -1;
  private open: 'text' | 'thinking' | 'tool' | null = null;
  /** Tool call index -> its block index. */
  private readonly toolBlocks = new Map<number, number>();

  constructor(private readonly res: ServerResponse) {}

  async write(part: StreamPart, startUsage: Usage): Promise<void> {
    switch (part.type) {
      case 'delta':
        if (!part.text) return;
        if (this.open !== 'text') await this.start('text', { type: 'text', text: '' });
        return this.delta({ type: 'text_delta', text: part.text });
      case 'reasoning':
        if (part.redactedData !== undefined) {
          await this.start(null, { type: 'redacted_thinking', data: part.redactedData });
          return this.close();
        }
        if (this.open !== 'thinking') await this.start('thinking', { type: 'thinking', thinking: '', signature: '' });
        if (part.text) await this.delta({ type: 'thinking_delta', thinking: part.text });
        if (part.signature) await this.delta({ type: 'signature_delta', signature: part.signature });
        return;
      case 'tool_call_start':
        await this.start('tool', { type: 'tool_use', id: part.id, name: part.name, input: {} });
        this.toolBlocks.set(part.index, this.index);
        return;
      case 'tool_call_delta':
        // Deltas of a tool call whose block is closed (interleaved upstream) still name its block.
        return this.delta({ type: 'input_json_delta', partial_json: part.argumentsDelta }, this.toolBlocks.get(part.index));
      case 'usage':
        return;
      case 'finish': {
        if (this.index < 0) await this.start('text', { type: 'text', text: '' });
        await this.close();
        const usage = part.usage ?? startUsage;
        await sendEvent(this.res, { type: 'message_delta', delta: { stop_reason: anthropicStopReason({ finishReason: part.finishReason }, false), stop_sequence: null }, usage: anthropicUsage(usage) }, 'message_delta');
        await sendEvent(this.res, { type: 'message_stop' }, 'message_stop');
      }
    }
  }

  private async start(kind: 'text' | 'thinking' | 'tool' | null, block: Record<string, unknown>): Promise<void> {
    await this.close();
    this.index++;
    this.open = kind;
    await sendEvent(this.res, { type: 'content_block_start', index: this.index, content_block: block }, 'content_block_start');
    if (kind === null) this.open = 'text';
  }

  private delta(delta: Record<string, unknown>, index = this.index): Promise<void> {
    return sendEvent(this.res, { type: 'content_block_delta', index, delta }, 'content_block_delta');
  }

  private async close(): Promise<void> {
    if (this.open === null) return;
    this.open = null;
    await sendEvent(this.res, { type: 'content_block_stop', index: this.index }, 'content_block_stop');
  }
}
