// Adapter for Ollama's native chat API: POST {baseUrl}/api/chat, either one JSON answer
// (`stream: false`) or NDJSON lines ending with a `done: true` line carrying the counts.
import { UpstreamError } from '../errors.ts';
import {
  asNumber, asRecord, estimateTokens, fetchJson, postStream, joinUrl, mapFinish, mapParams, namesFrom,
  parseStreamJson, redact, truncatedStream,
} from './http.ts';
import type { ParamMap } from './http.ts';
import { allText, firstUnsupported, textOf, type FormatSupport } from './neutral.ts';
import { parseNdjson } from './sse.ts';
import { ollamaEmbed } from './embeddings.ts';
import type { EmbeddingRequest, EmbeddingResult, FinishReason, ModelEndpoint, Provider, ProviderRequest, ProviderResult, StreamHooks, StreamPart, Usage } from './types.ts';
import type { ClientSignal } from '../stop-signal.ts';

const PROVIDER = 'ollama';

/** Sampling settings live under `options` in Ollama's request. */
const optionParams: ParamMap = {
  temperature: 'temperature', maxTokens: 'num_predict', topP: 'top_p', topK: 'top_k', stop: 'stop', seed: 'seed',
  presencePenalty: 'presence_penalty', frequencyPenalty: 'frequency_penalty',
};

const support: FormatSupport = {
  format: null,
  fields: new Set(Object.keys(optionParams)),
  parts: new Set(['text']),
  imageSources: new Set(),
  documentSources: new Set(),
  richToolResults: false,
  messageNames: false,
};

const finishReasons: Record<string, FinishReason> = { stop: 'stop', length: 'length' };

function headers(endpoint: ModelEndpoint): Record<string, string> {
  // Plain Ollama needs no key; one is sent when Ollama sits behind an authenticating proxy.
  return { ...endpoint.headers, ...(endpoint.apiKey ? { authorization: `Bearer ${endpoint.apiKey}` } : {}) };
}

function requestBody(endpoint: ModelEndpoint, req: ProviderRequest, stream: boolean): Record<string, unknown> {
  const options = mapParams(req, optionParams);
  return {
    model: endpoint.upstreamModel,
    messages: req.messages.map((m) => ({ role: m.role, content: textOf(m.content) })),
    stream,
    ...(Object.keys(options).length > 0 ? { options } : {}),
  };
}

function readUsage(line: Record<string, unknown>, req: ProviderRequest, output: string): Usage {
  // prompt_eval_count is omitted when the prompt was served from Ollama's cache.
  return {
    inputTokens: asNumber(line.prompt_eval_count) ?? estimateTokens(allText(req.messages)),
    outputTokens: asNumber(line.eval_count) ?? estimateTokens(output),
  };
}

function lineError(line: Record<string, unknown>, apiKey?: string): UpstreamError | undefined {
  if (typeof line.error !== 'string') return undefined;
  return new UpstreamError(PROVIDER, 'http', redact(`${PROVIDER} upstream failed mid-stream: ${line.error.slice(0, 500)}`, apiKey), 500);
}

async function* streamParts(body: AsyncIterable<Uint8Array>, req: ProviderRequest, apiKey?: string): AsyncGenerator<StreamPart> {
  let finished = false;
  let output = '';
  for await (const raw of parseNdjson(body)) {
    if (finished) continue;
    const line = parseStreamJson(PROVIDER, raw);
    const err = lineError(line, apiKey);
    if (err) throw err;
    const content = asRecord(line.message).content;
    if (typeof content === 'string' && content !== '') {
      output += content;
      yield { type: 'delta', text: content };
    }
    if (line.done === true) {
      finished = true;
      yield { type: 'finish', finishReason: mapFinish(finishReasons, line.done_reason ?? 'stop'), usage: readUsage(line, req, output) };
    }
  }
  if (!finished) throw truncatedStream(PROVIDER);
}

export class OllamaProvider implements Provider {
  readonly kind = 'ollama' as const;

  unsupported(req: ProviderRequest): string | null {
    return firstUnsupported(req, support);
  }

  async chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult> {
    const url = joinUrl(endpoint.baseUrl, 'api/chat');
    const body = await fetchJson(PROVIDER, 'POST', url, requestBody(endpoint, req, false), headers(endpoint), signal, endpoint.apiKey);
    const err = lineError(body, endpoint.apiKey);
    if (err) throw err;
    const message = asRecord(body.message);
    if (typeof message.content !== 'string') throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream response has no message content`);
    return {
      content: message.content,
      finishReason: mapFinish(finishReasons, body.done_reason ?? 'stop'),
      usage: readUsage(body, req, message.content),
      ...(typeof body.model === 'string' ? { upstreamModel: body.model } : {}),
    };
  }

  stream(endpoint: ModelEndpoint, req: ProviderRequest, signal: AbortSignal, hooks?: StreamHooks): AsyncGenerator<StreamPart> {
    const url = joinUrl(endpoint.baseUrl, 'api/chat');
    return postStream(PROVIDER, url, requestBody(endpoint, req, true), headers(endpoint), signal, endpoint.apiKey, (body) => streamParts(body, req, endpoint.apiKey), hooks);
  }

  embed(endpoint: ModelEndpoint, req: EmbeddingRequest, signal: ClientSignal): Promise<EmbeddingResult> {
    return ollamaEmbed(endpoint, req, headers(endpoint), signal);
  }

  async listModels(endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]> {
    const body = await fetchJson(PROVIDER, 'GET', joinUrl(endpoint.baseUrl, 'api/tags'), undefined, headers(endpoint), signal, endpoint.apiKey);
    return namesFrom(PROVIDER, body, 'models', 'name');
  }
}
