// Adapter for the Gemini API: POST {baseUrl}/models/{model}:generateContent and
// :streamGenerateContent?alt=sse (SSE of GenerateContentResponse); key in x-goog-api-key. Tools are
// functionDeclarations (JSON Schema in parametersJsonSchema), calls functionCall / functionResponse
// parts, images and PDFs inlineData, structured output responseMimeType + responseJsonSchema.
import { UpstreamError } from '../errors.ts';
import {
  asNumber, asRecord, fetchJson, postStream, joinUrl, mapFinish, mapParams, namesFrom,
  parseStreamJson, truncatedStream,
} from './http.ts';
import type { ParamMap } from './http.ts';
import { argumentsObject, firstUnsupported, partsOf, textOf, type FormatSupport } from './neutral.ts';
import { parseSse } from './sse.ts';
import { geminiEmbed } from './embeddings.ts';
import type {
  ChatMessage, ContentPart, EmbeddingRequest, EmbeddingResult, FinishReason, ModelEndpoint, Provider, ProviderRequest, ProviderResult, StreamHooks,
  StreamPart, ToolCall, Usage,
} from './types.ts';
import type { ClientSignal } from '../stop-signal.ts';

const PROVIDER = 'gemini';

const generationParams: ParamMap = {
  temperature: 'temperature', maxTokens: 'maxOutputTokens', topP: 'topP', topK: 'topK', stop: 'stopSequences', seed: 'seed',
  presencePenalty: 'presencePenalty', frequencyPenalty: 'frequencyPenalty',
};

const support: FormatSupport = {
  format: null,
  fields: new Set([...Object.keys(generationParams), 'tools', 'toolChoice', 'responseFormat']),
  parts: new Set(['text', 'image', 'document', 'tool_call', 'tool_result']),
  imageSources: new Set(['base64']),
  documentSources: new Set(['base64']),
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

function modelUrl(endpoint: ModelEndpoint, method: 'generateContent' | 'streamGenerateContent?alt=sse' | 'countTokens'): string {
  const model = endpoint.upstreamModel.replace(/^models\//, '');
  return joinUrl(endpoint.baseUrl, `models/${encodeURIComponent(model)}:${method}`);
}

function requestBody(req: ProviderRequest): Record<string, unknown> {
  const system = req.messages.filter((m) => m.role === 'system').map((m) => textOf(m.content));
  const generationConfig: Record<string, unknown> = mapParams(req, generationParams);
  const rf = req.responseFormat;
  if (rf && rf.type !== 'text') {
    generationConfig.responseMimeType = 'application/json';
    if (rf.type === 'json_schema') generationConfig.responseJsonSchema = rf.schema;
  }
  // A function response names its function; the id of the call it answers tells which one.
  const names = new Map<string, string>();
  for (const m of req.messages) for (const p of partsOf(m.content)) if (p.type === 'tool_call') names.set(p.id, p.name);
  const contents: { role: string; parts: Record<string, unknown>[] }[] = [];
  for (const m of req.messages) {
    if (m.role === 'system') continue;
    const role = m.role === 'assistant' ? 'model' : 'user';
    const parts = partsOf(m.content).map((p) => wirePart(p, names));
    const prev = contents.at(-1);
    // The results of one turn's calls (one tool message each, from OpenAI clients) are one Gemini turn.
    const results = (ps: Record<string, unknown>[]) => ps.length > 0 && ps.every((x) => x.functionResponse !== undefined);
    if (prev && prev.role === role && results(prev.parts) && results(parts)) prev.parts.push(...parts);
    else contents.push({ role, parts });
  }
  for (const c of contents) if (c.parts.length === 0) c.parts.push({ text: '' });
  const tools = req.tools?.length
    ? [{ functionDeclarations: req.tools.map((t) => ({ name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parametersJsonSchema: t.parameters })) }]
    : undefined;
  const toolConfig = wireToolConfig(req);
  return {
    contents,
    ...(system.length > 0 ? { systemInstruction: { parts: [{ text: system.join('\n\n') }] } } : {}),
    ...(tools ? { tools } : {}),
    ...(toolConfig ? { toolConfig } : {}),
    ...(Object.keys(generationConfig).length > 0 ? { generationConfig } : {}),
  };
}

function wireToolConfig(req: ProviderRequest): Record<string, unknown> | undefined {
  const c = req.toolChoice;
  if (!c) return undefined;
  if (c.type === 'tool') return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [c.name] } };
  return { functionCallingConfig: { mode: c.type === 'required' ? 'ANY' : c.type === 'none' ? 'NONE' : 'AUTO' } };
}

/** A function's result as the object functionResponse.response must be: JSON objects as they are, anything else under `result`. */
function responseObject(content: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(content);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* plain text */
  }
  return { result: content };
}

function wirePart(p: ContentPart, names: Map<string, string>): Record<string, unknown> {
  switch (p.type) {
    case 'text':
      return { text: p.text };
    case 'image':
    case 'document':
      // firstUnsupported lets only base64 sources through.
      return p.source.kind === 'base64' ? { inlineData: { mimeType: p.source.mediaType, data: p.source.data } } : { text: '' };
    case 'tool_call':
      return { functionCall: { id: p.id, name: p.name, args: argumentsObject(p.arguments) } };
    case 'tool_result':
      return { functionResponse: { id: p.toolCallId, name: names.get(p.toolCallId) ?? p.toolCallId, response: responseObject(typeof p.content === 'string' ? p.content : textOf(p.content)) } };
    default:
      return { text: '' };
  }
}

function unsupported(req: ProviderRequest): string | null {
  const missing = firstUnsupported(req, support);
  if (missing) return missing;
  // A result must name its function: the call it answers has to be in the conversation.
  const calls = new Set<string>();
  for (const [i, m] of req.messages.entries()) {
    for (const p of partsOf(m.content)) {
      if (p.type === 'tool_call') calls.add(p.id);
      if (p.type === 'tool_result' && !calls.has(p.toolCallId)) return `messages[${i}] (a tool result whose call is not in the conversation)`;
    }
  }
  return null;
}

interface Candidate {
  text: string;
  calls: { id?: string; name: string; args: unknown }[];
  finishReason?: FinishReason;
}

/** Text and finish reason of the first candidate; a blocked prompt (no candidates) is a content filter stop. */
function readCandidate(response: Record<string, unknown>): Candidate {
  const candidates = Array.isArray(response.candidates) ? response.candidates : [];
  if (candidates.length === 0) {
    const blocked = asRecord(response.promptFeedback).blockReason;
    return typeof blocked === 'string' ? { text: '', calls: [], finishReason: 'content_filter' } : { text: '', calls: [] };
  }
  const candidate = asRecord(candidates[0]);
  const parts = Array.isArray(asRecord(candidate.content).parts) ? (asRecord(candidate.content).parts as unknown[]) : [];
  // Thinking models return their reasoning as parts flagged `thought`; only the answer is content.
  const text = parts
    .map((p) => asRecord(p))
    .filter((p) => typeof p.text === 'string' && p.thought !== true)
    .map((p) => p.text as string)
    .join('');
  const calls = parts
    .map((p) => asRecord(asRecord(p).functionCall))
    .filter((f) => typeof f.name === 'string')
    .map((f) => ({ ...(typeof f.id === 'string' ? { id: f.id } : {}), name: f.name as string, args: f.args ?? {} }));
  const raw = candidate.finishReason;
  // Gemini says STOP after function calls; the neutral model says tool_calls.
  const finish = typeof raw === 'string' && raw !== 'FINISH_REASON_UNSPECIFIED' ? mapFinish(finishReasons, raw) : undefined;
  return { text, calls, ...(finish ? { finishReason: calls.length > 0 && finish === 'stop' ? 'tool_calls' : finish } : {}) };
}

/** Gemini's calls as neutral tool calls; a call without an id (older models) gets one by position. */
function toolCall(c: Candidate['calls'][number], index: number): ToolCall {
  return { id: c.id ?? `call_${index}`, name: c.name, arguments: JSON.stringify(c.args) };
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
  let calls = 0;
  for await (const event of parseSse(body)) {
    const response = parseStreamJson(PROVIDER, event.data);
    if (response.error !== undefined) {
      const err = asRecord(response.error);
      const status = asNumber(err.code) ?? 500;
      throw new UpstreamError(PROVIDER, 'http', `${PROVIDER} upstream failed mid-stream: ${String(err.message ?? 'unknown error').slice(0, 500)}`, status);
    }
    const candidate = readCandidate(response);
    if (candidate.text !== '') yield { type: 'delta', text: candidate.text };
    // Gemini sends each function call whole, in one chunk.
    for (const c of candidate.calls) {
      const call = toolCall(c, calls);
      yield { type: 'tool_call_start', index: calls, id: call.id, name: call.name };
      yield { type: 'tool_call_delta', index: calls, argumentsDelta: call.arguments };
      calls++;
    }
    finishReason = candidate.finishReason ?? finishReason;
    if (calls > 0 && finishReason === 'stop') finishReason = 'tool_calls';
    usage = readUsage(response.usageMetadata) ?? usage;
  }
  // Gemini has no end marker: the body simply ends after the chunk carrying finishReason.
  if (finishReason === undefined) throw truncatedStream(PROVIDER);
  yield { type: 'finish', finishReason, ...(usage ? { usage } : {}) };
}

export class GeminiProvider implements Provider {
  readonly kind = 'gemini' as const;

  unsupported(req: ProviderRequest): string | null {
    return unsupported(req);
  }

  async chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult> {
    const response = await fetchJson(PROVIDER, 'POST', modelUrl(endpoint, 'generateContent'), requestBody(req), headers(endpoint), signal, endpoint.apiKey);
    if (!Array.isArray(response.candidates) && response.promptFeedback === undefined) {
      throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream response has no candidates`);
    }
    const candidate = readCandidate(response);
    const toolCalls = candidate.calls.map(toolCall);
    return {
      content: candidate.text,
      ...(toolCalls.length ? { toolCalls } : {}),
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

  /** models/{model}:countTokens over the whole generate request (system instruction and tools count too). */
  async countTokens(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<number> {
    const model = endpoint.upstreamModel.replace(/^models\//, '');
    const { generationConfig: _config, ...generate } = requestBody(req);
    const out = await fetchJson(PROVIDER, 'POST', modelUrl(endpoint, 'countTokens'), { generateContentRequest: { model: `models/${model}`, ...generate } }, headers(endpoint), signal, endpoint.apiKey);
    const n = asNumber(out.totalTokens);
    if (n === undefined) throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream countTokens answer has no totalTokens`);
    return n;
  }

  async listModels(endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]> {
    const url = joinUrl(endpoint.baseUrl, 'models?pageSize=1000');
    const body = await fetchJson(PROVIDER, 'GET', url, undefined, headers(endpoint), signal, endpoint.apiKey);
    return namesFrom(PROVIDER, body, 'models', 'name').map((name) => name.replace(/^models\//, ''));
  }
}
