// Adapter for the Anthropic Messages API: POST {baseUrl}/v1/messages with x-api-key; system
// prompts move to the top-level `system` field; streaming is the typed event sequence.
import { UpstreamError } from '../errors.ts';
import {
  asNumber, asRecord, fetchJson, postStream, joinUrl, mapFinish, mapParams, namesFrom,
  parseStreamJson, redact, truncatedStream,
} from './http.ts';
import type { ParamMap } from './http.ts';
import { parseSse } from './sse.ts';
import type { FinishReason, ModelEndpoint, Provider, ProviderRequest, ProviderResult, StreamHooks, StreamPart, Usage } from './types.ts';
import type { ClientSignal } from '../stop-signal.ts';

const PROVIDER = 'anthropic';
const API_VERSION = '2023-06-01';
/** Anthropic requires max_tokens; this is used when the client sets none. */
export const DEFAULT_MAX_TOKENS = 1024;

const requestParams: ParamMap = { temperature: 'temperature', topP: 'top_p', stop: 'stop_sequences' };

const finishReasons: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
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

function headers(endpoint: ModelEndpoint): Record<string, string> {
  return {
    'anthropic-version': API_VERSION,
    ...endpoint.headers,
    ...(endpoint.apiKey ? { 'x-api-key': endpoint.apiKey } : {}),
  };
}

function requestBody(endpoint: ModelEndpoint, req: ProviderRequest, stream: boolean): Record<string, unknown> {
  const system = req.messages.filter((m) => m.role === 'system').map((m) => m.content);
  return {
    model: endpoint.upstreamModel,
    max_tokens: req.maxTokens ?? DEFAULT_MAX_TOKENS,
    ...(system.length > 0 ? { system: system.join('\n\n') } : {}),
    messages: req.messages.filter((m) => m.role !== 'system').map((m) => ({ role: m.role, content: m.content })),
    ...mapParams(req, requestParams),
    ...(stream ? { stream: true } : {}),
  };
}

function streamError(data: Record<string, unknown>, apiKey?: string): UpstreamError {
  const err = asRecord(data.error);
  const type = typeof err.type === 'string' ? err.type : 'api_error';
  const message = typeof err.message === 'string' ? err.message : 'unknown error';
  const status = errorTypeStatus[type] ?? 500;
  return new UpstreamError(PROVIDER, 'http', redact(`${PROVIDER} upstream failed mid-stream: ${type}: ${message}`, apiKey), status);
}

async function* streamParts(body: AsyncIterable<Uint8Array>, apiKey?: string): AsyncGenerator<StreamPart> {
  const usage: Usage = { inputTokens: 0, outputTokens: 0 };
  let finishReason: FinishReason = 'other';
  let finished = false;
  for await (const event of parseSse(body)) {
    // Keep reading after message_stop so the socket goes back to the pool instead of being cut.
    if (finished) continue;
    const data = parseStreamJson(PROVIDER, event.data);
    const type = typeof data.type === 'string' ? data.type : event.event;
    switch (type) {
      case 'message_start': {
        const u = asRecord(asRecord(data.message).usage);
        usage.inputTokens = asNumber(u.input_tokens) ?? 0;
        usage.outputTokens = asNumber(u.output_tokens) ?? 0;
        break;
      }
      case 'content_block_delta': {
        const delta = asRecord(data.delta);
        if (delta.type === 'text_delta' && typeof delta.text === 'string' && delta.text !== '') yield { type: 'delta', text: delta.text };
        break;
      }
      case 'message_delta': {
        const delta = asRecord(data.delta);
        if (delta.stop_reason !== undefined && delta.stop_reason !== null) finishReason = mapFinish(finishReasons, delta.stop_reason);
        // output_tokens in message_delta is cumulative for the whole message.
        usage.outputTokens = asNumber(asRecord(data.usage).output_tokens) ?? usage.outputTokens;
        break;
      }
      case 'message_stop':
        finished = true;
        yield { type: 'finish', finishReason, usage: { ...usage } };
        break;
      case 'error':
        throw streamError(data, apiKey);
      default:
        // ping, content_block_start/stop, and event types added later are not needed here.
        break;
    }
  }
  if (!finished) throw truncatedStream(PROVIDER);
}

export class AnthropicProvider implements Provider {
  readonly kind = 'anthropic' as const;

  async chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult> {
    const url = joinUrl(endpoint.baseUrl, 'v1/messages');
    const body = await fetchJson(PROVIDER, 'POST', url, requestBody(endpoint, req, false), headers(endpoint), signal, endpoint.apiKey);
    if (!Array.isArray(body.content)) throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream response has no content array`);
    const content = body.content
      .map((block) => asRecord(block))
      .filter((block) => block.type === 'text' && typeof block.text === 'string')
      .map((block) => block.text as string)
      .join('');
    const u = asRecord(body.usage);
    return {
      content,
      finishReason: mapFinish(finishReasons, body.stop_reason),
      usage: { inputTokens: asNumber(u.input_tokens) ?? 0, outputTokens: asNumber(u.output_tokens) ?? 0 },
      ...(typeof body.model === 'string' ? { upstreamModel: body.model } : {}),
    };
  }

  stream(endpoint: ModelEndpoint, req: ProviderRequest, signal: AbortSignal, hooks?: StreamHooks): AsyncGenerator<StreamPart> {
    const url = joinUrl(endpoint.baseUrl, 'v1/messages');
    const hdrs = { ...headers(endpoint), accept: 'text/event-stream' };
    return postStream(PROVIDER, url, requestBody(endpoint, req, true), hdrs, signal, endpoint.apiKey, (body) => streamParts(body, endpoint.apiKey), hooks);
  }

  async listModels(endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]> {
    const url = joinUrl(endpoint.baseUrl, 'v1/models?limit=1000');
    const body = await fetchJson(PROVIDER, 'GET', url, undefined, headers(endpoint), signal, endpoint.apiKey);
    return namesFrom(PROVIDER, body, 'data', 'id');
  }
}
