// Adapter for OpenAI-compatible Chat Completions (OpenAI, Cursor, vLLM, LM Studio, ...):
// POST {baseUrl}/chat/completions, SSE streaming with a final usage chunk and `[DONE]`.
import { UpstreamError } from '../errors.ts';
import {
  asNumber, asRecord, estimateTokens, extractErrorMessage, fetchJson, postStream, joinUrl, mapFinish,
  mapParams, namesFrom, parseStreamJson, redact, truncatedStream,
} from './http.ts';
import type { ParamMap } from './http.ts';
import { parseSse } from './sse.ts';
import type { FinishReason, ModelEndpoint, Provider, ProviderRequest, ProviderResult, StreamHooks, StreamPart, Usage } from './types.ts';
import type { ClientSignal } from '../stop-signal.ts';

const PROVIDER = 'openai';

const requestParams: ParamMap = { temperature: 'temperature', maxTokens: 'max_tokens', topP: 'top_p', stop: 'stop' };

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

function requestBody(endpoint: ModelEndpoint, req: ProviderRequest, stream: boolean): Record<string, unknown> {
  return {
    model: endpoint.upstreamModel,
    messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
    ...mapParams(req, requestParams),
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  };
}

function readUsage(raw: unknown): Usage | undefined {
  const u = asRecord(raw);
  const input = asNumber(u.prompt_tokens);
  const output = asNumber(u.completion_tokens);
  return input === undefined && output === undefined ? undefined : { inputTokens: input ?? 0, outputTokens: output ?? 0 };
}

function firstChoice(body: Record<string, unknown>): Record<string, unknown> | undefined {
  return Array.isArray(body.choices) && body.choices.length > 0 ? asRecord(body.choices[0]) : undefined;
}

async function* streamParts(body: AsyncIterable<Uint8Array>, apiKey?: string): AsyncGenerator<StreamPart> {
  let finishReason: FinishReason | undefined;
  let usage: Usage | undefined;
  let finished = false;
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
    usage = readUsage(chunk.usage) ?? usage;
    const choice = firstChoice(chunk);
    if (!choice) continue;
    const content = asRecord(choice.delta).content;
    if (typeof content === 'string' && content !== '') yield { type: 'delta', text: content };
    if (typeof choice.finish_reason === 'string') finishReason = mapFinish(finishReasons, choice.finish_reason);
  }
  if (finished) return;
  // Some compatible servers omit `[DONE]`; a finish_reason still proves the answer is complete.
  if (finishReason === undefined) throw truncatedStream(PROVIDER);
  yield { type: 'finish', finishReason, ...(usage ? { usage } : {}) };
}

export class OpenAIProvider implements Provider {
  readonly kind = 'openai' as const;

  async chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult> {
    const url = joinUrl(endpoint.baseUrl, 'chat/completions');
    const body = await fetchJson(PROVIDER, 'POST', url, requestBody(endpoint, req, false), headers(endpoint), signal, endpoint.apiKey);
    const choice = firstChoice(body);
    if (!choice) throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream response has no choices`);
    const message = asRecord(choice.message);
    const content = typeof message.content === 'string' ? message.content : '';
    const finishReason = typeof message.refusal === 'string' && message.refusal !== '' && content === ''
      ? 'content_filter'
      : mapFinish(finishReasons, choice.finish_reason);
    const usage = readUsage(body.usage) ?? {
      inputTokens: estimateTokens(req.messages.map((m) => m.content).join('\n')),
      outputTokens: estimateTokens(content),
    };
    return { content, finishReason, usage, ...(typeof body.model === 'string' ? { upstreamModel: body.model } : {}) };
  }

  stream(endpoint: ModelEndpoint, req: ProviderRequest, signal: AbortSignal, hooks?: StreamHooks): AsyncGenerator<StreamPart> {
    const url = joinUrl(endpoint.baseUrl, 'chat/completions');
    const hdrs = { ...headers(endpoint), accept: 'text/event-stream' };
    return postStream(PROVIDER, url, requestBody(endpoint, req, true), hdrs, signal, endpoint.apiKey, (body) => streamParts(body, endpoint.apiKey), hooks);
  }

  async listModels(endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]> {
    const body = await fetchJson(PROVIDER, 'GET', joinUrl(endpoint.baseUrl, 'models'), undefined, headers(endpoint), signal, endpoint.apiKey);
    return namesFrom(PROVIDER, body, 'data', 'id');
  }
}
