// Adapter for Ollama's native chat API: POST {baseUrl}/api/chat, either one JSON answer
// (`stream: false`) or NDJSON lines ending with a `done: true` line carrying the counts. Tools in
// OpenAI's shape, calls as message.tool_calls (arguments an object), results as `tool` messages
// with tool_name, images as base64 `images`, structured output as `format`.
import { UpstreamError } from '../errors.ts';
import {
  asNumber, asRecord, estimateTokens, fetchJson, postStream, joinUrl, mapFinish, mapParams, namesFrom,
  parseStreamJson, redact, truncatedStream,
} from './http.ts';
import type { ParamMap } from './http.ts';
import { allText, argumentsObject, firstUnsupported, partsOf, textOf, type FormatSupport } from './neutral.ts';
import { parseNdjson } from './sse.ts';
import { ollamaEmbed } from './embeddings.ts';
import type { EmbeddingRequest, EmbeddingResult, FinishReason, ModelEndpoint, ToolCall, Provider, ProviderRequest, ProviderResult, StreamHooks, StreamPart, Usage } from './types.ts';
import type { ClientSignal } from '../stop-signal.ts';

const PROVIDER = 'ollama';

/** Sampling settings live under `options` in Ollama's request. */
const optionParams: ParamMap = {
  temperature: 'temperature', maxTokens: 'num_predict', topP: 'top_p', topK: 'top_k', stop: 'stop', seed: 'seed',
  presencePenalty: 'presence_penalty', frequencyPenalty: 'frequency_penalty',
};

const support: FormatSupport = {
  format: null,
  fields: new Set([...Object.keys(optionParams), 'tools', 'toolChoice', 'responseFormat']),
  parts: new Set(['text', 'image', 'tool_call', 'tool_result']),
  imageSources: new Set(['base64']),
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
  const names = new Map<string, string>();
  const messages: Record<string, unknown>[] = [];
  for (const m of req.messages) {
    const parts = partsOf(m.content);
    const images = parts.flatMap((p) => (p.type === 'image' && p.source.kind === 'base64' ? [p.source.data] : []));
    const calls = parts.flatMap((p) => (p.type === 'tool_call' ? [p] : []));
    for (const c of calls) names.set(c.id, c.name);
    const results = parts.flatMap((p) => (p.type === 'tool_result' ? [p] : []));
    // Each tool result is a `tool` message of its own, naming the function it answers.
    for (const r of results) messages.push({ role: 'tool', content: typeof r.content === 'string' ? r.content : textOf(r.content), tool_name: names.get(r.toolCallId) ?? r.toolCallId });
    if (results.length > 0 && results.length === parts.length) continue;
    messages.push({
      role: m.role === 'tool' ? 'user' : m.role,
      content: textOf(m.content),
      ...(images.length ? { images } : {}),
      ...(calls.length ? { tool_calls: calls.map((c) => ({ function: { name: c.name, arguments: argumentsObject(c.arguments) } })) } : {}),
    });
  }
  // tool_choice 'none' is met by offering no tools; 'auto' is Ollama's only behaviour.
  const tools = req.tools?.length && req.toolChoice?.type !== 'none'
    ? req.tools.map((t) => ({ type: 'function', function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters } }))
    : undefined;
  const rf = req.responseFormat;
  const format = rf?.type === 'json_object' ? 'json' : rf?.type === 'json_schema' ? rf.schema : undefined;
  return {
    model: endpoint.upstreamModel,
    messages,
    ...(tools ? { tools } : {}),
    ...(format !== undefined ? { format } : {}),
    stream,
    ...(Object.keys(options).length > 0 ? { options } : {}),
  };
}

function unsupported(req: ProviderRequest): string | null {
  const missing = firstUnsupported(req, support);
  if (missing) return missing;
  // Ollama cannot force a tool call: only auto (and none, by offering no tools) can be expressed.
  if (req.toolChoice && (req.toolChoice.type === 'required' || req.toolChoice.type === 'tool')) return `tool_choice (${req.toolChoice.type === 'tool' ? 'a named tool' : 'required'})`;
  return null;
}

/** message.tool_calls of an answer or a stream line as neutral calls, numbered from `first`. */
function readCalls(message: Record<string, unknown>, first: number): ToolCall[] {
  const raw = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  return raw.map((c, i) => {
    const f = asRecord(asRecord(c).function);
    const id = asRecord(c).id;
    return { id: typeof id === 'string' ? id : `call_${first + i}`, name: String(f.name ?? ''), arguments: JSON.stringify(f.arguments ?? {}) };
  });
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
  let calls = 0;
  for await (const raw of parseNdjson(body)) {
    if (finished) continue;
    const line = parseStreamJson(PROVIDER, raw);
    const err = lineError(line, apiKey);
    if (err) throw err;
    const message = asRecord(line.message);
    const content = message.content;
    if (typeof content === 'string' && content !== '') {
      output += content;
      yield { type: 'delta', text: content };
    }
    // Ollama sends each tool call whole.
    for (const call of readCalls(message, calls)) {
      yield { type: 'tool_call_start', index: calls, id: call.id, name: call.name };
      yield { type: 'tool_call_delta', index: calls, argumentsDelta: call.arguments };
      calls++;
    }
    if (line.done === true) {
      finished = true;
      const finish = mapFinish(finishReasons, line.done_reason ?? 'stop');
      yield { type: 'finish', finishReason: calls > 0 && finish === 'stop' ? 'tool_calls' : finish, usage: readUsage(line, req, output) };
    }
  }
  if (!finished) throw truncatedStream(PROVIDER);
}

export class OllamaProvider implements Provider {
  readonly kind = 'ollama' as const;

  unsupported(req: ProviderRequest): string | null {
    return unsupported(req);
  }

  async chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult> {
    const url = joinUrl(endpoint.baseUrl, 'api/chat');
    const body = await fetchJson(PROVIDER, 'POST', url, requestBody(endpoint, req, false), headers(endpoint), signal, endpoint.apiKey);
    const err = lineError(body, endpoint.apiKey);
    if (err) throw err;
    const message = asRecord(body.message);
    if (typeof message.content !== 'string') throw new UpstreamError(PROVIDER, 'bad_response', `${PROVIDER} upstream response has no message content`);
    const toolCalls = readCalls(message, 0);
    const finish = mapFinish(finishReasons, body.done_reason ?? 'stop');
    return {
      content: message.content,
      ...(toolCalls.length ? { toolCalls } : {}),
      finishReason: toolCalls.length && finish === 'stop' ? 'tool_calls' : finish,
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
