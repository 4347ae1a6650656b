// POST /v1/responses (OpenAI Responses API), plain and streamed, routed like chat (model "auto" =
// the router) and answered by any adapter through the neutral model. Output items and the
// conversations the gateway answered are kept a while in memory, so a client's item_reference and
// previous_response_id can be resolved.
import type { ServerResponse } from 'node:http';
import type { Gateway, GatewayAnswer } from '../gateway.ts';
import type { ModelRegistry } from '../dispatch/registry.ts';
import { sendEvent, startSse } from '../http/sse.ts';
import { sendJson, type HotRoute } from '../http/front.ts';
import { parseOr400, requireShallow } from '../http/validate.ts';
import type { ChatMessage, ContentPart, FinishReason, ReasoningPart, StreamPart, ToolCall, Usage } from '../providers/types.ts';
import { answeredBy, toGatewayRequest } from './common.ts';
import { responsesBody, responsesToNeutral, type ResponseMemory, type ResponsesBody } from './responses-wire.ts';

/** A map bounded in count and age, oldest evicted first. */
class Recent<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();
  constructor(private readonly max: number, private readonly ttlMs: number, private readonly now: () => number) {}

  get(key: string): V | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (this.now() - hit.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(key: string, value: V): void {
    this.entries.set(key, { value, at: this.now() });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }
}

/** One answered response: the messages it added to its conversation, and the response it continued. */
interface Turn {
  previous?: string;
  added: ChatMessage[];
}

/** The longest previous_response_id chain followed (each turn is a link). */
const MAX_CHAIN = 10_000;

/**
 * Output items and conversations the gateway answered in the last hour (per process): each
 * response keeps only what it added, linked to the response it continued, so memory grows with
 * the messages, not with the square of a conversation's length.
 */
export class RecentResponses implements ResponseMemory {
  private readonly items: Recent<Record<string, unknown>>;
  private readonly turns: Recent<Turn>;

  constructor(opts: { maxItems?: number; maxResponses?: number; ttlMs?: number; now?: () => number } = {}) {
    const now = opts.now ?? Date.now;
    const ttl = opts.ttlMs ?? 3_600_000;
    this.items = new Recent(opts.maxItems ?? 20_000, ttl, now);
    this.turns = new Recent(opts.maxResponses ?? 10_000, ttl, now);
  }

  item(id: string): Record<string, unknown> | undefined {
    return this.items.get(id);
  }

  conversation(responseId: string): ChatMessage[] | undefined {
    const chain: Turn[] = [];
    for (let id: string | undefined = responseId; id !== undefined; ) {
      const turn = this.turns.get(id);
      if (!turn || chain.length >= MAX_CHAIN) return undefined;
      chain.push(turn);
      id = turn.previous;
    }
    // Copies: the caller may extend the last assistant turn in place.
    return chain.reverse().flatMap((t) => t.added.map((m) => ({ ...m, content: typeof m.content === 'string' ? m.content : [...m.content] })));
  }

  remember(responseId: string, previous: string | undefined, added: ChatMessage[], output: Record<string, unknown>[]): void {
    for (const item of output) if (typeof item.id === 'string') this.items.set(item.id, item);
    const answer = assistantMessage(output);
    this.turns.set(responseId, { ...(previous ? { previous } : {}), added: answer ? [...added, answer] : added });
  }
}

/** Output items as the assistant turn a later request continues (reasoning summaries are not sent back). */
function assistantMessage(output: Record<string, unknown>[]): ChatMessage | null {
  const parts: ContentPart[] = [];
  for (const item of output) {
    if (item.type === 'message') {
      const text = (item.content as { text: string }[]).map((c) => c.text).join('');
      if (text !== '') parts.push({ type: 'text', text });
    } else if (item.type === 'function_call') {
      parts.push({ type: 'tool_call', id: String(item.call_id), name: String(item.name), arguments: String(item.arguments) });
    }
  }
  return parts.length ? { role: 'assistant', content: parts } : null;
}

const now = () => Math.floor(Date.now() / 1000);

export function responsesUsage(u: Usage) {
  return {
    input_tokens: u.inputTokens,
    input_tokens_details: { cached_tokens: u.cacheReadTokens ?? 0 },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
    total_tokens: u.inputTokens + u.outputTokens,
  };
}

function incomplete(f: FinishReason): { reason: string } | null {
  return f === 'length' ? { reason: 'max_output_tokens' } : f === 'content_filter' ? { reason: 'content_filter' } : null;
}

const messageItem = (id: string, text: string, status = 'completed') => ({ type: 'message', id, status, role: 'assistant', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] });
const callItem = (id: string, c: ToolCall, status = 'completed') => ({ type: 'function_call', id, call_id: c.id, name: c.name, arguments: c.arguments, status });
const reasoningItem = (id: string, r: ReasoningPart[]) => ({ type: 'reasoning', id, summary: r.filter((p) => p.text).map((p) => ({ type: 'summary_text', text: p.text })) });

/** The response object: everything the request set, echoed as OpenAI echoes it, around the output. */
function responseObject(id: string, created: number, body: ResponsesBody, model: string, status: string, output: unknown[], usage: Usage | null, finish?: FinishReason) {
  return {
    id,
    object: 'response',
    created_at: created,
    status,
    error: null,
    incomplete_details: finish ? incomplete(finish) : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model,
    output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: 'disabled',
    usage: usage ? responsesUsage(usage) : null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

function outputItems(base: string, a: Pick<GatewayAnswer, 'content' | 'toolCalls' | 'reasoning'>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  if (a.reasoning?.some((r) => r.text)) out.push(reasoningItem(`rs_${base}`, a.reasoning));
  if (a.content !== '' || !a.toolCalls?.length) out.push(messageItem(`msg_${base}`, a.content));
  a.toolCalls?.forEach((c, i) => out.push(callItem(`fc_${base}_${i}`, c)));
  return out;
}

export function responsesRoute(gateway: Gateway, registry: ModelRegistry, memory = new RecentResponses()): HotRoute {
  const handle: HotRoute['handle'] = async (hr) => {
    requireShallow(hr.body);
    const body = parseOr400(responsesBody, hr.body);
    const { request, added } = responsesToNeutral(body, memory);
    const { messages, temperature, maxTokens, topP, stop, ...options } = request;
    const remember = (output: Record<string, unknown>[]) => {
      if (body.store !== false) memory.remember(id, body.previous_response_id ?? undefined, added, output);
    };
    const greq = toGatewayRequest(hr, registry, '/v1/responses', { messages, model: body.model, routingRules: body.routing_rules, routing: body.routing, stream: body.stream ?? undefined, temperature, maxTokens, topP, stop, options });
    const id = `resp_${hr.id}`;
    const created = now();

    if (!greq.stream) {
      const a = await gateway.complete(greq);
      const output = outputItems(hr.id, a);
      remember(output);
      const status = incomplete(a.finishReason) ? 'incomplete' : 'completed';
      sendJson(hr.res, 200, { ...responseObject(id, created, body, a.model, status, output, a.usage, a.finishReason), ...answeredBy(a, a.attempts) }, { 'x-switchyard-model': a.model });
      return;
    }

    const s = await gateway.stream(greq);
    startSse(hr.res, { 'x-switchyard-model': s.model });
    const w = new EventWriter(hr.res, hr.id);
    const start = responseObject(id, created, body, s.model, 'in_progress', [], null);
    await w.send('response.created', { response: { ...start, ...answeredBy(s) } });
    await w.send('response.in_progress', { response: start });
    try {
      for await (const part of s.parts) await w.write(part);
      const output = w.items();
      remember(output);
      const finish = w.finishReason ?? 'stop';
      const status = incomplete(finish) ? 'incomplete' : 'completed';
      await w.send(status === 'completed' ? 'response.completed' : 'response.incomplete', { response: responseObject(id, created, body, s.model, status, output, w.usage, finish) });
    } catch (err) {
      await w.send('error', { code: 'stream_interrupted', message: `upstream stream failed: ${(err as Error).message}`, param: null });
    }
    hr.res.end();
  };
  return { handle };
}

type OpenItem =
  | { kind: 'message'; index: number; id: string; text: string }
  | { kind: 'reasoning'; index: number; id: string; text: string }
  | { kind: 'call'; index: number; id: string; call: ToolCall };

/** Neutral stream parts as Responses events: output items opened and closed in order, numbered. */
class EventWriter {
  private seq = 0;
  private readonly done: Record<string, unknown>[] = [];
  private open: OpenItem | null = null;
  /** Tool call index -> its item (calls stay addressable while open). */
  private readonly calls = new Map<number, Extract<OpenItem, { kind: 'call' }>>();
  private openCalls: Extract<OpenItem, { kind: 'call' }>[] = [];
  private next = 0;
  finishReason: FinishReason | null = null;
  usage: Usage | null = null;

  constructor(private readonly res: ServerResponse, private readonly base: string) {}

  send(type: string, data: Record<string, unknown>): Promise<void> {
    return sendEvent(this.res, { type, sequence_number: this.seq++, ...data }, type);
  }

  items(): Record<string, unknown>[] {
    return this.done;
  }

  async write(part: StreamPart): Promise<void> {
    switch (part.type) {
      case 'delta': {
        if (!part.text) return;
        if (this.open?.kind !== 'message') {
          await this.closeOpen();
          const item = { kind: 'message' as const, index: this.next++, id: `msg_${this.base}${this.next > 1 ? `_${this.next - 1}` : ''}`, text: '' };
          this.open = item;
          await this.send('response.output_item.added', { output_index: item.index, item: { ...messageItem(item.id, '', 'in_progress'), content: [] } });
          await this.send('response.content_part.added', { item_id: item.id, output_index: item.index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } });
        }
        const m = this.open;
        m.text += part.text;
        return this.send('response.output_text.delta', { item_id: m.id, output_index: m.index, content_index: 0, delta: part.text, logprobs: [] });
      }
      case 'reasoning': {
        if (!part.text) return;
        if (this.open?.kind !== 'reasoning') {
          await this.closeOpen();
          const item = { kind: 'reasoning' as const, index: this.next++, id: `rs_${this.base}_${this.next - 1}`, text: '' };
          this.open = item;
          await this.send('response.output_item.added', { output_index: item.index, item: { type: 'reasoning', id: item.id, summary: [] } });
          await this.send('response.reasoning_summary_part.added', { item_id: item.id, output_index: item.index, summary_index: 0, part: { type: 'summary_text', text: '' } });
        }
        const r = this.open;
        r.text += part.text;
        return this.send('response.reasoning_summary_text.delta', { item_id: r.id, output_index: r.index, summary_index: 0, delta: part.text });
      }
      case 'tool_call_start': {
        await this.closeOpen();
        const item = { kind: 'call' as const, index: this.next++, id: `fc_${this.base}_${part.index}`, call: { id: part.id, name: part.name, arguments: '' } };
        this.calls.set(part.index, item);
        this.openCalls.push(item);
        return this.send('response.output_item.added', { output_index: item.index, item: callItem(item.id, item.call, 'in_progress') });
      }
      case 'tool_call_delta': {
        const item = this.calls.get(part.index);
        if (!item || !part.argumentsDelta) return;
        item.call.arguments += part.argumentsDelta;
        return this.send('response.function_call_arguments.delta', { item_id: item.id, output_index: item.index, delta: part.argumentsDelta });
      }
      case 'usage':
        return;
      case 'finish':
        await this.closeOpen();
        this.finishReason = part.finishReason;
        this.usage = part.usage ?? { inputTokens: 0, outputTokens: 0 };
    }
  }

  /** Ends the open text or reasoning item and every open function call, in output order. */
  private async closeOpen(): Promise<void> {
    const o = this.open;
    this.open = null;
    if (o?.kind === 'message') {
      const part = { type: 'output_text', text: o.text, annotations: [], logprobs: [] };
      await this.send('response.output_text.done', { item_id: o.id, output_index: o.index, content_index: 0, text: o.text, logprobs: [] });
      await this.send('response.content_part.done', { item_id: o.id, output_index: o.index, content_index: 0, part });
      await this.finishItem(o.index, messageItem(o.id, o.text));
    } else if (o?.kind === 'reasoning') {
      await this.send('response.reasoning_summary_text.done', { item_id: o.id, output_index: o.index, summary_index: 0, text: o.text });
      await this.send('response.reasoning_summary_part.done', { item_id: o.id, output_index: o.index, summary_index: 0, part: { type: 'summary_text', text: o.text } });
      await this.finishItem(o.index, { type: 'reasoning', id: o.id, summary: [{ type: 'summary_text', text: o.text }] });
    }
    const calls = this.openCalls;
    this.openCalls = [];
    for (const c of calls) {
      // A call with no argument fragments still has arguments: "{}".
      if (c.call.arguments === '') c.call.arguments = '{}';
      await this.send('response.function_call_arguments.done', { item_id: c.id, output_index: c.index, name: c.call.name, arguments: c.call.arguments });
      await this.finishItem(c.index, callItem(c.id, c.call));
    }
  }

  private finishItem(index: number, item: Record<string, unknown>): Promise<void> {
    this.indices.set(item, index);
    this.done.push(item);
    this.done.sort((a, b) => this.indexOf(a) - this.indexOf(b));
    return this.send('response.output_item.done', { output_index: index, item });
  }

  private readonly indices = new Map<Record<string, unknown>, number>();
  private indexOf(item: Record<string, unknown>): number {
    return this.indices.get(item) ?? Number.MAX_SAFE_INTEGER;
  }
}
