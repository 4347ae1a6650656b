// Adapter for the Anthropic Messages API: POST {baseUrl}/v1/messages with x-api-key; system
// prompts move to the top-level `system` field; streaming is the typed event sequence.
import { UpstreamError } from '../errors.ts';
import {
  asNumber, asRecord, fetchJson, postStream, joinUrl, mapFinish, mapParams, namesFrom,
  parseStreamJson, redact, truncatedStream,
} from './http.ts';
import type { ParamMap } from './http.ts';
import { argumentsObject, firstUnsupported, type FormatSupport } from './neutral.ts';
import { parseSse } from './sse.ts';
import type {
  ChatMessage, ContentPart, FinishReason, ModelEndpoint, Provider, ProviderRequest, ProviderResult, ReasoningPart, StreamHooks,
  StreamPart, ToolCall, Usage,
} from './types.ts';
import type { ClientSignal } from '../stop-signal.ts';

const PROVIDER = 'anthropic';
const API_VERSION = '2023-06-01';
/** Name of the forced tool that carries structured output (response_format) on Anthropic. */
export const JSON_TOOL = 'json_response';

const requestParams: ParamMap = { temperature: 'temperature', topP: 'top_p', topK: 'top_k', stop: 'stop_sequences' };

const support: FormatSupport = {
  format: 'anthropic',
  fields: new Set([...Object.keys(requestParams), 'maxTokens', 'user', 'thinking', 'tools', 'toolChoice', 'parallelToolCalls', 'responseFormat']),
  parts: new Set(['text', 'image', 'document', 'tool_call', 'tool_result', 'reasoning']),
  imageSources: new Set(['url', 'base64']),
  documentSources: new Set(['url', 'base64', 'text']),
  richToolResults: true,
  messageNames: false,
};

/**
 * Anthropic requires max_tokens. With none from the client, the model's own ceiling is used
 * (the config's maxOutputTokens, else what the model family allows), as OpenAI does unasked.
 */
export function defaultMaxTokens(endpoint: ModelEndpoint): number {
  if (endpoint.maxOutputTokens) return endpoint.maxOutputTokens;
  const m = endpoint.upstreamModel;
  if (/claude-3-(opus|sonnet|haiku)/.test(m)) return 4096;
  if (/claude-3-5/.test(m)) return 8192;
  if (/opus-4/.test(m)) return 32000;
  if (/claude-3-7|sonnet-4|haiku-4/.test(m)) return 64000;
  return 8192;
}

const finishReasons: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
  pause_turn: 'other',
};

/** Status implied by an in-stream `error` event, so retry policy can reason about it. */
const errorTypeStatus: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
};

function headers(endpoint: ModelEndpoint, req: ProviderRequest): Record<string, string> {
  const beta = req.wire?.format === 'anthropic' ? req.wire.headers : undefined;
  return {
    'anthropic-version': API_VERSION,
    ...endpoint.headers,
    ...beta,
    ...(endpoint.apiKey ? { 'x-api-key': endpoint.apiKey } : {}),
  };
}

const cacheOf = (p: { cache?: Record<string, unknown> }) => (p.cache ? { cache_control: p.cache } : {});

function wireSource(source: Extract<ContentPart, { type: 'image' }>['source']): Record<string, unknown> {
  switch (source.kind) {
    case 'url':
      return { type: 'url', url: source.url };
    case 'base64':
      return { type: 'base64', media_type: source.mediaType, data: source.data };
    case 'text':
      return { type: 'text', media_type: source.mediaType, data: source.data };
    default:
      return { type: 'file', file_id: source.fileId };
  }
}

function wireBlock(p: ContentPart): Record<string, unknown> {
  switch (p.type) {
    case 'text':
      return { type: 'text', text: p.text, ...cacheOf(p), ...p.extra };
    case 'image':
      return { type: 'image', source: wireSource(p.source), ...cacheOf(p), ...p.extra };
    case 'document':
      return { type: 'document', source: wireSource(p.source), ...(p.title !== undefined ? { title: p.title } : {}), ...cacheOf(p), ...p.extra };
    case 'tool_call':
      return { type: 'tool_use', id: p.id, name: p.name, input: argumentsObject(p.arguments), ...cacheOf(p), ...p.extra };
    case 'tool_result':
      return {
        type: 'tool_result',
        tool_use_id: p.toolCallId,
        content: typeof p.content === 'string' ? p.content : p.content.map(wireBlock),
        ...(p.isError !== undefined ? { is_error: p.isError } : {}),
        ...cacheOf(p),
        ...p.extra,
      };
    case 'reasoning':
      return p.redactedData !== undefined
        ? { type: 'redacted_thinking', data: p.redactedData, ...p.extra }
        : { type: 'thinking', thinking: p.text, signature: p.signature ?? '', ...p.extra };
    case 'raw':
      return p.value;
  }
}

/** System messages become the `system` field: a string when plain, else text blocks (cache markers kept). */
function wireSystem(system: ChatMessage[]): unknown {
  if (system.length === 0) return undefined;
  if (system.every((m) => typeof m.content === 'string' && !m.extra)) return system.map((m) => m.content).join('\n\n');
  return system.flatMap((m) => (typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content.map(wireBlock)));
}

/** Conversation turns: tool messages become user turns of tool_result blocks; consecutive turns of one role merge. */
function wireMessages(messages: ChatMessage[]): Record<string, unknown>[] {
  const out: { role: string; content: string | Record<string, unknown>[]; extra?: Record<string, unknown> }[] = [];
  for (const m of messages) {
    if (m.role === 'system') continue;
    const role = m.role === 'assistant' ? 'assistant' : 'user';
    const prev = out.at(-1);
    if (prev && prev.role === role && !prev.extra && !m.extra) {
      const blocks = typeof prev.content === 'string' ? (prev.content === '' ? [] : [{ type: 'text', text: prev.content }]) : prev.content;
      const more = typeof m.content === 'string' ? (m.content === '' ? [] : [{ type: 'text', text: m.content }]) : m.content.map(wireBlock);
      // Anthropic wants a user turn's tool results before its other blocks.
      prev.content = [...blocks, ...more].sort((a, b) => Number(b.type === 'tool_result') - Number(a.type === 'tool_result'));
      continue;
    }
    out.push({ role, content: typeof m.content === 'string' ? m.content : m.content.map(wireBlock), ...(m.extra ? { extra: m.extra } : {}) });
  }
  return out.map((m) => ({ role: m.role, content: m.content, ...m.extra }));
}

function jsonTool(req: ProviderRequest): { name: string; description?: string; input_schema: Record<string, unknown> } | null {
  const rf = req.responseFormat;
  if (!rf || rf.type === 'text') return null;
  if (rf.type === 'json_object') return { name: JSON_TOOL, description: 'Respond with a JSON object.', input_schema: { type: 'object', additionalProperties: true } };
  return { name: JSON_TOOL, description: rf.description ?? `Respond with a JSON object matching the ${rf.name} schema.`, input_schema: rf.schema };
}

function wireToolChoice(req: ProviderRequest): Record<string, unknown> | undefined {
  const parallel = req.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  const c = req.toolChoice;
  if (!c) return req.parallelToolCalls === false ? { type: 'auto', ...parallel } : undefined;
  if (c.type === 'none') return { type: 'none' };
  if (c.type === 'required') return { type: 'any', ...parallel };
  if (c.type === 'tool') return { type: 'tool', name: c.name, ...parallel };
  return { type: 'auto', ...parallel };
}

function requestBody(endpoint: ModelEndpoint, req: ProviderRequest, stream: boolean): Record<string, unknown> {
  const same = req.wire?.format === 'anthropic';
  const system = wireSystem(req.messages.filter((m) => m.role === 'system'));
  const forced = jsonTool(req);
  const tools = req.tools?.length
    ? req.tools.map((t) => t.native?.value ?? {
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        input_schema: t.parameters,
        ...(t.eagerInputStreaming !== undefined ? { eager_input_streaming: t.eagerInputStreaming } : {}),
        ...cacheOf(t),
        ...t.extra,
      })
    : undefined;
  const toolChoice = forced ? { type: 'tool', name: JSON_TOOL } : wireToolChoice(req);
  const thinking = req.thinking?.type === 'enabled'
    ? { type: 'enabled', budget_tokens: req.thinking.budgetTokens, ...req.thinking.extra }
    : req.thinking ? { type: 'disabled' } : undefined;
  return {
    ...(same ? req.wire?.extra : {}),
    model: endpoint.upstreamModel,
    max_tokens: req.maxTokens ?? defaultMaxTokens(endpoint),
    ...(system !== undefined ? { system } : {}),
    messages: wireMessages(req.messages),
    ...mapParams(req, requestParams),
    ...(req.user !== undefined ? { metadata: { user_id: req.user } } : {}),
    ...(thinking ? { thinking } : {}),
    ...(forced ? { tools: [forced] } : tools ? { tools } : {}),
    ...(toolChoice ? { tool_choice: toolChoice } : {}),
    ...(stream ? { stream: true } : {}),
  };
}

function unsupported(req: ProviderRequest): string | null {
  const missing = firstUnsupported(req, support);
  if (missing) return missing;
  if (req.temperature !== undefined && req.temperature > 1) return 'temperature above 1 (Anthropic allows 0 to 1)';
  const rf = req.responseFormat;
  if (rf && rf.type !== 'text') {
    if (req.tools?.length || req.toolChoice) return 'response_format together with tools';
    if (req.thinking?.type === 'enabled') return 'response_format together with thinking';
  }
  return null;
}

export function readAnthropicUsage(raw: unknown): Usage {
  const u = asRecord(raw);
  const read = asNumber(u.cache_read_input_tokens) ?? 0;
  const write = asNumber(u.cache_creation_input_tokens) ?? 0;
  return {
    // Anthropic's input_tokens leaves out cache reads and writes; ours counts every input token.
    inputTokens: (asNumber(u.input_tokens) ?? 0) + read + write,
    outputTokens: asNumber(u.output_tokens) ?? 0,
    ...(read ? { cacheReadTokens: read } : {}),
    ...(write ? { cacheWriteTokens: write } : {}),
  };
}

function streamError(data: Record<string, unknown>, apiKey?: string): UpstreamError {
  const err = asRecord(data.error);
  const type = typeof err.type === 'string' ? err.type : 'api_error';
  const message = typeof err.message === 'string' ? err.message : 'unknown error';
  const status = errorTypeStatus[type] ?? 500;
  return new UpstreamError(PROVIDER, 'http', redact(`${PROVIDER} upstream failed mid-stream: ${type}: ${message}`, apiKey), status);
}

/** What an open content block turns into: text, the structured-output tool (text too), a tool call, or thinking. */
type OpenBlock = { kind: 'text' } | { kind: 'json' } | { kind: 'tool'; index: number; sent: boolean } | { kind: 'thinking' } | { kind: 'other' };

async function* streamParts(body: AsyncIterable<Uint8Array>, json: boolean, apiKey?: string): AsyncGenerator<StreamPart> {
  let usage: Usage = { inputTokens: 0, outputTokens: 0 };
  let finishReason: FinishReason = 'other';
  let finished = false;
  const blocks = new Map<number, OpenBlock>();
  let tools = 0;
  for await (const event of parseSse(body)) {
    // Keep reading after message_stop so the socket goes back to the pool instead of being cut.
    if (finished) continue;
    const data = parseStreamJson(PROVIDER, event.data);
    const type = typeof data.type === 'string' ? data.type : event.event;
    switch (type) {
      case 'message_start': {
        usage = readAnthropicUsage(asRecord(data.message).usage);
        yield { type: 'usage', usage: { ...usage } };
        break;
      }
      case 'content_block_start': {
        const block = asRecord(data.content_block);
        const at = asNumber(data.index) ?? blocks.size;
        if (block.type === 'tool_use' && json && block.name === JSON_TOOL) blocks.set(at, { kind: 'json' });
        else if (block.type === 'tool_use') {
          const index = tools++;
          blocks.set(at, { kind: 'tool', index, sent: false });
          yield { type: 'tool_call_start', index, id: String(block.id ?? `toolu_${index}`), name: String(block.name ?? '') };
        } else if (block.type === 'thinking') blocks.set(at, { kind: 'thinking' });
        else if (block.type === 'redacted_thinking') {
          blocks.set(at, { kind: 'other' });
          if (typeof block.data === 'string') yield { type: 'reasoning', redactedData: block.data };
        } else {
          blocks.set(at, { kind: block.type === 'text' ? 'text' : 'other' });
          if (block.type === 'text' && typeof block.text === 'string' && block.text !== '') yield { type: 'delta', text: block.text };
        }
        break;
      }
      case 'content_block_delta': {
        const delta = asRecord(data.delta);
        const open = blocks.get(asNumber(data.index) ?? -1);
        if (delta.type === 'text_delta' && typeof delta.text === 'string' && delta.text !== '') yield { type: 'delta', text: delta.text };
        else if (delta.type === 'thinking_delta' && typeof delta.thinking === 'string') yield { type: 'reasoning', text: delta.thinking };
        else if (delta.type === 'signature_delta' && typeof delta.signature === 'string') yield { type: 'reasoning', signature: delta.signature };
        else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string' && delta.partial_json !== '') {
          if (open?.kind === 'json') yield { type: 'delta', text: delta.partial_json };
          else if (open?.kind === 'tool') {
            open.sent = true;
            yield { type: 'tool_call_delta', index: open.index, argumentsDelta: delta.partial_json };
          }
        }
        break;
      }
      case 'content_block_stop': {
        const open = blocks.get(asNumber(data.index) ?? -1);
        // A tool called with no input still has arguments: "{}", as OpenAI clients expect.
        if (open?.kind === 'tool' && !open.sent) yield { type: 'tool_call_delta', index: open.index, argumentsDelta: '{}' };
        break;
      }
      case 'message_delta': {
        const delta = asRecord(data.delta);
        if (delta.stop_reason !== undefined && delta.stop_reason !== null) {
          finishReason = json && delta.stop_reason === 'tool_use' ? 'stop' : mapFinish(finishReasons, delta.stop_reason);
        }
        // Counts in message_delta are cumulative for the whole message; newer APIs repeat the input counts too.
        const u = asRecord(data.usage);
        usage.outputTokens = asNumber(u.output_tokens) ?? usage.outputTokens;
        if (asNumber(u.input_tokens) !== undefined) usage = { ...readAnthropicUsage({ ...u, output_tokens: usage.outputTokens }) };
        break;
      }
      case 'message_stop':
        finished = true;
        yield { type: 'finish', finishReason, usage: { ...usage } };
        break;
      case 'error':
        throw streamError(data, apiKey);
      default:
        // ping, and event types added later, are not needed here.
        break;
    }
  }
  if (!finished) throw truncatedStream(PROVIDER);
}

function upstreamPath(req: ProviderRequest): string {
  const query = req.wire?.format === 'anthropic' && req.wire.query ? `?${req.wire.query}` : '';
  return `v1/messages${query}`;
}

export class AnthropicProvider implements Provider {
  readonly kind = 'anthropic' as const;

  unsupported(req: ProviderRequest): string | null {
    return unsupported(req);
  }

  async chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult> {
    const url = joinUrl(endpoint.baseUrl, upstreamPath(req));
    const body = await fetchJson(PROVIDER, 'POST', url, requestBody(endpoint, req, false), headers(endpoint, req), signal, endpoint.apiKey);
    if (!Array.isArray(body.content)) throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream response has no content array`);
    const json = jsonTool(req) !== null;
    let content = '';
    const toolCalls: ToolCall[] = [];
    const reasoning: ReasoningPart[] = [];
    for (const raw of body.content) {
      const block = asRecord(raw);
      if (block.type === 'text' && typeof block.text === 'string') content += block.text;
      else if (block.type === 'tool_use' && json && block.name === JSON_TOOL) content += JSON.stringify(block.input ?? {});
      else if (block.type === 'tool_use') toolCalls.push({ id: String(block.id ?? ''), name: String(block.name ?? ''), arguments: JSON.stringify(block.input ?? {}) });
      else if (block.type === 'thinking') reasoning.push({ type: 'reasoning', text: String(block.thinking ?? ''), ...(typeof block.signature === 'string' ? { signature: block.signature } : {}) });
      else if (block.type === 'redacted_thinking' && typeof block.data === 'string') reasoning.push({ type: 'reasoning', text: '', redactedData: block.data });
    }
    const finishReason = json && body.stop_reason === 'tool_use' ? 'stop' : mapFinish(finishReasons, body.stop_reason);
    return {
      content,
      ...(toolCalls.length ? { toolCalls } : {}),
      ...(reasoning.length ? { reasoning } : {}),
      finishReason,
      usage: readAnthropicUsage(body.usage),
      ...(typeof body.model === 'string' ? { upstreamModel: body.model } : {}),
      // An Anthropic client gets the upstream's blocks as they were (citations, server tool results...).
      ...(json ? {} : { extra: { content: body.content, ...(body.stop_sequence !== undefined ? { stop_sequence: body.stop_sequence } : {}), ...(body.stop_reason !== undefined ? { stop_reason: body.stop_reason } : {}) } }),
    };
  }

  stream(endpoint: ModelEndpoint, req: ProviderRequest, signal: AbortSignal, hooks?: StreamHooks): AsyncGenerator<StreamPart> {
    const url = joinUrl(endpoint.baseUrl, upstreamPath(req));
    const hdrs = { ...headers(endpoint, req), accept: 'text/event-stream' };
    const json = jsonTool(req) !== null;
    return postStream(PROVIDER, url, requestBody(endpoint, req, true), hdrs, signal, endpoint.apiKey, (body) => streamParts(body, json, endpoint.apiKey), hooks);
  }

  /** POST /v1/messages/count_tokens: the request's fields a count takes (no max_tokens, sampling or stream). */
  async countTokens(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<number> {
    const query = req.wire?.format === 'anthropic' && req.wire.query ? `?${req.wire.query}` : '';
    const { max_tokens: _max, stream: _stream, ...body } = requestBody(endpoint, req, false);
    const out = await fetchJson(PROVIDER, 'POST', joinUrl(endpoint.baseUrl, `v1/messages/count_tokens${query}`), body, headers(endpoint, req), signal, endpoint.apiKey);
    const n = asNumber(out.input_tokens);
    if (n === undefined) throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream count_tokens answer has no input_tokens`);
    return n;
  }

  async listModels(endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]> {
    const url = joinUrl(endpoint.baseUrl, 'v1/models?limit=1000');
    const body = await fetchJson(PROVIDER, 'GET', url, undefined, headers(endpoint, { messages: [] }), signal, endpoint.apiKey);
    return namesFrom(PROVIDER, body, 'data', 'id');
  }
}
