// Adapter for the Gemini API: POST {baseUrl}/models/{model}:generateContent and
// :streamGenerateContent?alt=sse (SSE of GenerateContentResponse); key in x-goog-api-key.
import { UpstreamError } from '../errors.ts';
import {
  asNumber, asRecord, fetchJson, postStream, joinUrl, mapFinish, mapParams, namesFrom,
  parseStreamJson, truncatedStream,
} from './http.ts';
import type { ParamMap } from './http.ts';
import { firstUnsupported, partsOf, textOf, type FormatSupport } from './neutral.ts';
import { parseSse } from './sse.ts';
import { geminiEmbed } from './embeddings.ts';
import type { EmbeddingRequest, EmbeddingResult, FinishReason, ModelEndpoint, Provider, ProviderRequest, ProviderResult, StreamHooks, StreamPart, Usage } from './types.ts';
import type { ClientSignal } from '../stop-signal.ts';

const PROVIDER = 'gemini';

const generationParams: ParamMap = {
  temperature: 'temperature', maxTokens: 'maxOutputTokens', topP: 'topP', topK: 'topK', stop: 'stopSequences', seed: 'seed',
  presencePenalty: 'presencePenalty', frequencyPenalty: 'frequencyPenalty',
};

const support: FormatSupport = {
  format: null,
  fields: new Set(Object.keys(generationParams)),
  parts: new Set(['text']),
  imageSources: new Set(),
  documentSources: new Set(),
  richToolResults: false,
  messageNames: false,
};

const finishReasons: Record<string, FinishReason> = {
  STOP: 'stop',
  MAX_TOKENS: 'length',
  SAFETY: 'content_filter',
  RECITATION: 'content_filter',
  BLOCKLIST: 'content_filter',
  PROHIBITED_CONTENT: 'content_filter',
  SPII: 'content_filter',
  IMAGE_SAFETY: 'content_filter',
  MALFORMED_FUNCTION_CALL: 'tool_calls',
};

function headers(endpoint: ModelEndpoint): Record<string, string> {
  return { ...endpoint.headers, ...(endpoint.apiKey ? { 'x-goog-api-key': endpoint.apiKey } : {}) };
}

function modelUrl(endpoint: ModelEndpoint, method: 'generateContent' | 'streamGenerateContent?alt=sse'): string {
  const model = endpoint.upstreamModel.replace(/^models\//, '');
  return joinUrl(endpoint.baseUrl, `models/${encodeURIComponent(model)}:${method}`);
}

function requestBody(req: ProviderRequest): Record<string, unknown> {
  const system = req.messages.filter((m) => m.role === 'system').map((m) => textOf(m.content));
  const generationConfig = mapParams(req, generationParams);
  return {
    contents: req.messages
      .filter((m) => m.role !== 'system')
      .map((m) => ({ role: m.role === 'assistant' ? 'model' : 'user', parts: textParts(m.content) })),
    ...(system.length > 0 ? { systemInstruction: { parts: [{ text: system.join('\n\n') }] } } : {}),
    ...(Object.keys(generationConfig).length > 0 ? { generationConfig } : {}),
  };
}

/** Each text part is a Gemini part of its own (an empty message still needs one part). */
function textParts(content: ProviderRequest['messages'][number]['content']): { text: string }[] {
  const parts = partsOf(content).map((p) => ({ text: p.type === 'text' ? p.text : '' }));
  return parts.length > 0 ? parts : [{ text: '' }];
}

interface Candidate {
  text: string;
  finishReason?: FinishReason;
}

/** Text and finish reason of the first candidate; a blocked prompt (no candidates) is a content filter stop. */
function readCandidate(response: Record<string, unknown>): Candidate {
  const candidates = Array.isArray(response.candidates) ? response.candidates : [];
  if (candidates.length === 0) {
    const blocked = asRecord(response.promptFeedback).blockReason;
    return typeof blocked === 'string' ? { text: '', finishReason: 'content_filter' } : { text: '' };
  }
  const candidate = asRecord(candidates[0]);
  const parts = Array.isArray(asRecord(candidate.content).parts) ? (asRecord(candidate.content).parts as unknown[]) : [];
  // Thinking models return their reasoning as parts flagged `thought`; only the answer is content.
  const text = parts
    .map((p) => asRecord(p))
    .filter((p) => typeof p.text === 'string' && p.thought !== true)
    .map((p) => p.text as string)
    .join('');
  const raw = candidate.finishReason;
  return typeof raw === 'string' && raw !== 'FINISH_REASON_UNSPECIFIED' ? { text, finishReason: mapFinish(finishReasons, raw) } : { text };
}

function readUsage(raw: unknown): Usage | undefined {
  const u = asRecord(raw);
  const input = asNumber(u.promptTokenCount);
  const output = asNumber(u.candidatesTokenCount);
  if (input === undefined && output === undefined) return undefined;
  // Thinking tokens are billed as output.
  return { inputTokens: input ?? 0, outputTokens: (output ?? 0) + (asNumber(u.thoughtsTokenCount) ?? 0) };
}

async function* streamParts(body: AsyncIterable<Uint8Array>): AsyncGenerator<StreamPart> {
  let finishReason: FinishReason | undefined;
  let usage: Usage | undefined;
  for await (const event of parseSse(body)) {
    const response = parseStreamJson(PROVIDER, event.data);
    if (response.error !== undefined) {
      const err = asRecord(response.error);
      const status = asNumber(err.code) ?? 500;
      throw new UpstreamError(PROVIDER, 'http', `${PROVIDER} upstream failed mid-stream: ${String(err.message ?? 'unknown error').slice(0, 500)}`, status);
    }
    const candidate = readCandidate(response);
    if (candidate.text !== '') yield { type: 'delta', text: candidate.text };
    finishReason = candidate.finishReason ?? finishReason;
    usage = readUsage(response.usageMetadata) ?? usage;
  }
  // Gemini has no end marker: the body simply ends after the chunk carrying finishReason.
  if (finishReason === undefined) throw truncatedStream(PROVIDER);
  yield { type: 'finish', finishReason, ...(usage ? { usage } : {}) };
}

export class GeminiProvider implements Provider {
  readonly kind = 'gemini' as const;

  unsupported(req: ProviderRequest): string | null {
    return firstUnsupported(req, support);
  }

  async chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult> {
    const response = await fetchJson(PROVIDER, 'POST', modelUrl(endpoint, 'generateContent'), requestBody(req), headers(endpoint), signal, endpoint.apiKey);
    if (!Array.isArray(response.candidates) && response.promptFeedback === undefined) {
      throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream response has no candidates`);
    }
    const candidate = readCandidate(response);
    return {
      content: candidate.text,
      finishReason: candidate.finishReason ?? 'other',
      usage: readUsage(response.usageMetadata) ?? { inputTokens: 0, outputTokens: 0 },
      ...(typeof response.modelVersion === 'string' ? { upstreamModel: response.modelVersion } : {}),
    };
  }

  stream(endpoint: ModelEndpoint, req: ProviderRequest, signal: AbortSignal, hooks?: StreamHooks): AsyncGenerator<StreamPart> {
    const url = modelUrl(endpoint, 'streamGenerateContent?alt=sse');
    const hdrs = { ...headers(endpoint), accept: 'text/event-stream' };
    return postStream(PROVIDER, url, requestBody(req), hdrs, signal, endpoint.apiKey, streamParts, hooks);
  }

  embed(endpoint: ModelEndpoint, req: EmbeddingRequest, signal: ClientSignal): Promise<EmbeddingResult> {
    return geminiEmbed(endpoint, req, headers(endpoint), signal);
  }

  async listModels(endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]> {
    const url = joinUrl(endpoint.baseUrl, 'models?pageSize=1000');
    const body = await fetchJson(PROVIDER, 'GET', url, undefined, headers(endpoint), signal, endpoint.apiKey);
    return namesFrom(PROVIDER, body, 'models', 'name').map((name) => name.replace(/^models\//, ''));
  }
}
