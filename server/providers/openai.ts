// Adapter for OpenAI-compatible Chat Completions (OpenAI, Cursor, vLLM, LM Studio, ...):
// POST {baseUrl}/chat/completions, SSE streaming with a final usage chunk and `[DONE]`.
import { UpstreamError } from '../errors.ts';
import {
  asNumber, asRecord, estimateTokens, extractErrorMessage, fetchJson, postStream, joinUrl, mapFinish,
  mapParams, namesFrom, parseStreamJson, redact, truncatedStream,
} from './http.ts';
import type { ParamMap } from './http.ts';
import { allText, dataUrl, firstUnsupported, type FormatSupport } from './neutral.ts';
import { parseSse } from './sse.ts';
import { openaiEmbed } from './embeddings.ts';
import type {
  ChatMessage, ContentPart, EmbeddingRequest, EmbeddingResult, FinishReason, ModelEndpoint, Provider, ProviderRequest, ProviderResult, ReasoningPart, StreamHooks,
  StreamPart, ToolCall, ToolChoice, Usage,
} from './types.ts';
import type { ClientSignal } from '../stop-signal.ts';

const PROVIDER = 'openai';

const requestParams: ParamMap = {
  temperature: 'temperature', topP: 'top_p', stop: 'stop', seed: 'seed', presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty', logitBias: 'logit_bias', logprobs: 'logprobs', topLogprobs: 'top_logprobs',
  user: 'user', reasoningEffort: 'reasoning_effort', parallelToolCalls: 'parallel_tool_calls',
};

const support: FormatSupport = {
  format: 'openai',
  fields: new Set([...Object.keys(requestParams), 'maxTokens', 'tools', 'toolChoice', 'responseFormat']),
  parts: new Set(['text', 'image', 'document', 'tool_call', 'tool_result']),
  imageSources: new Set(['url', 'base64']),
  documentSources: new Set(['base64', 'file_id']),
  richToolResults: false,
  messageNames: true,
};

const finishReasons: Record<string, FinishReason> = {
  stop: 'stop',
  length: 'length',
  content_filter: 'content_filter',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
};

function headers(endpoint: ModelEndpoint): Record<string, string> {
  return { ...endpoint.headers, ...(endpoint.apiKey ? { authorization: `Bearer ${endpoint.apiKey}` } : {}) };
}

/** A user / system content part in OpenAI's shape. */
function wirePart(p: ContentPart): Record<string, unknown> {
  switch (p.type) {
    case 'text':
      return { type: 'text', text: p.text, ...p.extra };
    case 'image': {
      const url = p.source.kind === 'base64' ? dataUrl(p.source.mediaType, p.source.data) : p.source.kind === 'url' ? p.source.url : '';
      return { type: 'image_url', image_url: { url, ...(p.detail !== undefined ? { detail: p.detail } : {}) }, ...p.extra };
    }
    case 'document': {
      const file = p.source.kind === 'file_id'
        ? { file_id: p.source.fileId }
        : { ...(p.filename ?? p.title ? { filename: p.filename ?? p.title } : {}), file_data: p.source.kind === 'base64' ? dataUrl(p.source.mediaType, p.source.data) : '' };
      return { type: 'file', file, ...p.extra };
    }
    case 'raw':
      return p.value;
    default:
      // Tool calls, results and reasoning are placed by wireMessages(); firstUnsupported() refused the rest.
      return { type: p.type };
  }
}

function wireContent(content: ChatMessage['content']): string | Record<string, unknown>[] {
  return typeof content === 'string' ? content : content.map(wirePart);
}

/** Neutral messages as Chat Completions messages: tool results become `tool` messages, tool calls `tool_calls`. */
function wireMessages(messages: ChatMessage[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const m of messages) {
    const name = m.name !== undefined ? { name: m.name } : {};
    if (typeof m.content === 'string') {
      out.push({ role: m.role === 'system' && m.developer ? 'developer' : m.role, content: m.content, ...name, ...m.extra });
      continue;
    }
    if (m.role === 'assistant') {
      const texts: Record<string, unknown>[] = [];
      const toolCalls: Record<string, unknown>[] = [];
      for (const p of m.content) {
        if (p.type === 'tool_call') toolCalls.push({ id: p.id, type: 'function', function: { name: p.name, arguments: p.arguments }, ...p.extra });
        else texts.push(wirePart(p));
      }
      const allPlain = texts.every((t) => t.type === 'text' && Object.keys(t).length === 2);
      const content = texts.length === 0 ? null : allPlain ? texts.map((t) => t.text as string).join('') : texts;
      out.push({ role: 'assistant', content, ...(toolCalls.length ? { tool_calls: toolCalls } : {}), ...name, ...m.extra });
      continue;
    }
    const rest: ContentPart[] = [];
    for (const p of m.content) {
      if (p.type !== 'tool_result') {
        rest.push(p);
        continue;
      }
      const content = typeof p.content === 'string' ? p.content : p.content.map(wirePart);
      out.push({ role: 'tool', tool_call_id: p.toolCallId, content, ...p.extra });
    }
    if (rest.length > 0 || (m.content.length === 0 && m.role !== 'tool')) {
      out.push({ role: m.role === 'system' && m.developer ? 'developer' : m.role === 'tool' ? 'user' : m.role, content: wireContent(rest), ...name, ...m.extra });
    }
  }
  return out;
}

function wireToolChoice(choice: ToolChoice): unknown {
  return choice.type === 'tool' ? { type: 'function', function: { name: choice.name } } : choice.type;
}

function requestBody(endpoint: ModelEndpoint, req: ProviderRequest, stream: boolean): Record<string, unknown> {
  const same = req.wire?.format === 'openai';
  // o-series and gpt-5 refuse max_tokens; a request that came in OpenAI format keeps its own spelling.
  const maxField = same && req.wire?.maxTokensField ? req.wire.maxTokensField : 'max_completion_tokens';
  const rf = req.responseFormat;
  return {
    ...(same ? req.wire?.extra : {}),
    model: endpoint.upstreamModel,
    messages: wireMessages(req.messages),
    ...mapParams(req, requestParams),
    ...(req.maxTokens !== undefined ? { [maxField]: req.maxTokens } : {}),
    ...(req.tools?.length
      ? {
          tools: req.tools.map((t) => t.native?.value ?? {
            type: 'function',
            function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters, ...(t.strict !== undefined ? { strict: t.strict } : {}) },
            ...t.extra,
          }),
        }
      : {}),
    ...(req.toolChoice ? { tool_choice: wireToolChoice(req.toolChoice) } : {}),
    ...(rf
      ? {
          response_format: rf.type === 'json_schema'
            ? { type: 'json_schema', json_schema: { name: rf.name, schema: rf.schema, ...(rf.description !== undefined ? { description: rf.description } : {}), ...(rf.strict !== undefined ? { strict: rf.strict } : {}) } }
            : { type: rf.type },
        }
      : {}),
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  };
}

export function readOpenAIUsage(raw: unknown): Usage | undefined {
  const u = asRecord(raw);
  const input = asNumber(u.prompt_tokens);
  const output = asNumber(u.completion_tokens);
  if (input === undefined && output === undefined) return undefined;
  const cached = asNumber(asRecord(u.prompt_tokens_details).cached_tokens);
  const reasoning = asNumber(asRecord(u.completion_tokens_details).reasoning_tokens);
  return {
    inputTokens: input ?? 0,
    outputTokens: output ?? 0,
    ...(cached ? { cacheReadTokens: cached } : {}),
    ...(reasoning ? { reasoningTokens: reasoning } : {}),
  };
}

function firstChoice(body: Record<string, unknown>): Record<string, unknown> | undefined {
  return Array.isArray(body.choices) && body.choices.length > 0 ? asRecord(body.choices[0]) : undefined;
}

function readToolCalls(raw: unknown): ToolCall[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((c) => {
    const call = asRecord(c);
    const fn = asRecord(call.function);
    return { id: typeof call.id === 'string' ? call.id : '', name: typeof fn.name === 'string' ? fn.name : '', arguments: typeof fn.arguments === 'string' ? fn.arguments : '' };
  });
}

async function* streamParts(body: AsyncIterable<Uint8Array>, apiKey?: string): AsyncGenerator<StreamPart> {
  let finishReason: FinishReason | undefined;
  let usage: Usage | undefined;
  let finished = false;
  /** Upstream tool_call index -> our index (some servers start at 1 or skip numbers). */
  const toolIndex = new Map<number, number>();
  for await (const event of parseSse(body)) {
    // Keep reading after the end marker so the socket goes back to the pool instead of being cut.
    if (finished) continue;
    if (event.data === '[DONE]') {
      finished = true;
      yield { type: 'finish', finishReason: finishReason ?? 'stop', ...(usage ? { usage } : {}) };
      continue;
    }
    const chunk = parseStreamJson(PROVIDER, event.data);
    if (chunk.error !== undefined) {
      const detail = extractErrorMessage(chunk) ?? 'unknown error';
      throw new UpstreamError(PROVIDER, 'http', redact(`${PROVIDER} upstream failed mid-stream: ${detail}`, apiKey), 500);
    }
    usage = readOpenAIUsage(chunk.usage) ?? usage;
    const choice = firstChoice(chunk);
    if (!choice) continue;
    const delta = asRecord(choice.delta);
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (typeof reasoning === 'string' && reasoning !== '') yield { type: 'reasoning', text: reasoning };
    const content = delta.content;
    const logprobs = choice.logprobs;
    if (typeof content === 'string' && content !== '') yield { type: 'delta', text: content, ...(logprobs ? { extra: { logprobs } } : {}) };
    if (Array.isArray(delta.tool_calls)) {
      for (const raw of delta.tool_calls) {
        const call = asRecord(raw);
        const fn = asRecord(call.function);
        const upstreamIndex = asNumber(call.index) ?? 0;
        let index = toolIndex.get(upstreamIndex);
        if (index === undefined) {
          index = toolIndex.size;
          toolIndex.set(upstreamIndex, index);
          yield { type: 'tool_call_start', index, id: typeof call.id === 'string' ? call.id : `call_${index}`, name: typeof fn.name === 'string' ? fn.name : '' };
        }
        if (typeof fn.arguments === 'string' && fn.arguments !== '') yield { type: 'tool_call_delta', index, argumentsDelta: fn.arguments };
      }
    }
    if (typeof choice.finish_reason === 'string') finishReason = mapFinish(finishReasons, choice.finish_reason);
  }
  if (finished) return;
  // Some compatible servers omit `[DONE]`; a finish_reason still proves the answer is complete.
  if (finishReason === undefined) throw truncatedStream(PROVIDER);
  yield { type: 'finish', finishReason, ...(usage ? { usage } : {}) };
}

const knownMessageKeys = new Set(['role', 'content', 'tool_calls', 'reasoning_content', 'reasoning', 'function_call']);

export class OpenAIProvider implements Provider {
  readonly kind = 'openai' as const;

  unsupported(req: ProviderRequest): string | null {
    return firstUnsupported(req, support);
  }

  async chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult> {
    const url = joinUrl(endpoint.baseUrl, 'chat/completions');
    const body = await fetchJson(PROVIDER, 'POST', url, requestBody(endpoint, req, false), headers(endpoint), signal, endpoint.apiKey);
    const choice = firstChoice(body);
    if (!choice) throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream response has no choices`);
    const message = asRecord(choice.message);
    const content = typeof message.content === 'string' ? message.content : '';
    const toolCalls = readToolCalls(message.tool_calls);
    const finishReason = typeof message.refusal === 'string' && message.refusal !== '' && content === ''
      ? 'content_filter'
      : mapFinish(finishReasons, choice.finish_reason);
    const usage = readOpenAIUsage(body.usage) ?? {
      inputTokens: estimateTokens(allText(req.messages)),
      outputTokens: estimateTokens(content),
    };
    const thought = message.reasoning_content ?? message.reasoning;
    const reasoning: ReasoningPart[] = typeof thought === 'string' && thought !== '' ? [{ type: 'reasoning', text: thought }] : [];
    // Fields of the answer the neutral model does not name (refusal, annotations, audio, logprobs), for OpenAI clients.
    const messageExtra: Record<string, unknown> = {};
    for (const k in message) if (!knownMessageKeys.has(k)) messageExtra[k] = message[k];
    return {
      content,
      ...(toolCalls.length ? { toolCalls } : {}),
      ...(reasoning.length ? { reasoning } : {}),
      finishReason,
      usage,
      ...(typeof body.model === 'string' ? { upstreamModel: body.model } : {}),
      extra: { message: messageExtra, ...(choice.logprobs !== undefined ? { logprobs: choice.logprobs } : {}) },
    };
  }

  stream(endpoint: ModelEndpoint, req: ProviderRequest, signal: AbortSignal, hooks?: StreamHooks): AsyncGenerator<StreamPart> {
    const url = joinUrl(endpoint.baseUrl, 'chat/completions');
    const hdrs = { ...headers(endpoint), accept: 'text/event-stream' };
    return postStream(PROVIDER, url, requestBody(endpoint, req, true), hdrs, signal, endpoint.apiKey, (body) => streamParts(body, endpoint.apiKey), hooks);
  }

  embed(endpoint: ModelEndpoint, req: EmbeddingRequest, signal: ClientSignal): Promise<EmbeddingResult> {
    return openaiEmbed(endpoint, req, headers(endpoint), signal);
  }

  async listModels(endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]> {
    const body = await fetchJson(PROVIDER, 'GET', joinUrl(endpoint.baseUrl, 'models'), undefined, headers(endpoint), signal, endpoint.apiKey);
    return namesFrom(PROVIDER, body, 'data', 'id');
  }
}
