// Embedding calls of each wire format (OpenAI /embeddings, Ollama /api/embed, Gemini
// embedContent / batchEmbedContents, the built-in embedder), and the one check of their answers.
import { UpstreamError } from '../errors.ts';
import type { ClientSignal } from '../stop-signal.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { abortError, asNumber, asRecord, estimateTokens, fetchJson, joinUrl } from './http.ts';
import type { EmbeddingRequest, EmbeddingResult, ModelEndpoint } from './types.ts';

/** The vectors of an answer, checked: one array of finite numbers per input. */
export function checkedVectors(provider: string, raw: unknown[], count: number): number[][] {
  if (raw.length !== count) throw new UpstreamError(provider, 'bad_response', `${provider} upstream answered ${raw.length} embeddings for ${count} inputs`);
  return raw.map((v) => {
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new UpstreamError(provider, 'bad_response', `${provider} upstream answered an embedding that is not an array of numbers`);
    }
    return v as number[];
  });
}

const texts = (req: EmbeddingRequest): string[] => req.inputs as string[];
const estimated = (req: EmbeddingRequest) => texts(req).reduce((n, t) => n + estimateTokens(t), 0);

/** OpenAI POST {base}/embeddings, always as floats (the gateway encodes base64 itself). */
export async function openaiEmbed(endpoint: ModelEndpoint, req: EmbeddingRequest, headers: Record<string, string>, signal: ClientSignal): Promise<EmbeddingResult> {
  const single = req.inputs.length === 1 && typeof req.inputs[0] === 'string';
  const body = {
    ...req.extra,
    model: endpoint.upstreamModel,
    input: single ? req.inputs[0] : req.inputs,
    encoding_format: 'float',
    ...(req.dimensions !== undefined ? { dimensions: req.dimensions } : {}),
    ...(req.user !== undefined ? { user: req.user } : {}),
  };
  const out = await fetchJson('openai', 'POST', joinUrl(endpoint.baseUrl, 'embeddings'), body, headers, signal, endpoint.apiKey);
  if (!Array.isArray(out.data)) throw new UpstreamError('openai', 'bad_response', 'openai upstream embeddings answer has no data array');
  const items = out.data.map(asRecord).sort((a, b) => (asNumber(a.index) ?? 0) - (asNumber(b.index) ?? 0));
  const usage = asRecord(out.usage);
  return {
    vectors: checkedVectors('openai', items.map((d) => d.embedding), req.inputs.length),
    inputTokens: asNumber(usage.prompt_tokens) ?? 0,
    ...(typeof out.model === 'string' ? { upstreamModel: out.model } : {}),
  };
}

/** Ollama POST {base}/api/embed. */
export async function ollamaEmbed(endpoint: ModelEndpoint, req: EmbeddingRequest, headers: Record<string, string>, signal: ClientSignal): Promise<EmbeddingResult> {
  const body = { model: endpoint.upstreamModel, input: texts(req), ...(req.dimensions !== undefined ? { dimensions: req.dimensions } : {}) };
  const out = await fetchJson('ollama', 'POST', joinUrl(endpoint.baseUrl, 'api/embed'), body, headers, signal, endpoint.apiKey);
  if (!Array.isArray(out.embeddings)) throw new UpstreamError('ollama', 'bad_response', 'ollama upstream /api/embed answer has no embeddings array');
  return { vectors: checkedVectors('ollama', out.embeddings, req.inputs.length), inputTokens: asNumber(out.prompt_eval_count) ?? estimated(req) };
}

/** Gemini embedContent for one text, batchEmbedContents for several (it reports no token count: estimated). */
export async function geminiEmbed(endpoint: ModelEndpoint, req: EmbeddingRequest, headers: Record<string, string>, signal: ClientSignal): Promise<EmbeddingResult> {
  const model = endpoint.upstreamModel;
  const dims = req.dimensions !== undefined ? { outputDimensionality: req.dimensions } : {};
  const url = (method: string) => joinUrl(endpoint.baseUrl, `models/${encodeURIComponent(model)}:${method}`);
  const content = (text: string) => ({ parts: [{ text }] });
  let raw: unknown[];
  if (req.inputs.length === 1) {
    const out = await fetchJson('gemini', 'POST', url('embedContent'), { content: content(texts(req)[0]!), ...dims }, headers, signal, endpoint.apiKey);
    raw = [asRecord(out.embedding).values];
  } else {
    const requests = texts(req).map((t) => ({ model: `models/${model}`, content: content(t), ...dims }));
    const out = await fetchJson('gemini', 'POST', url('batchEmbedContents'), { requests }, headers, signal, endpoint.apiKey);
    if (!Array.isArray(out.embeddings)) throw new UpstreamError('gemini', 'bad_response', 'gemini upstream batchEmbedContents answer has no embeddings array');
    raw = out.embeddings.map((e) => asRecord(e).values);
  }
  return { vectors: checkedVectors('gemini', raw, req.inputs.length), inputTokens: estimated(req) };
}

const builtins = new Map<number, BuiltinEmbedder>();

/** The built-in hashed n-gram embedder (router/embedder.ts) at the size asked for (default 256). */
export async function builtinEmbed(req: EmbeddingRequest, signal: ClientSignal): Promise<EmbeddingResult> {
  if (signal.aborted) throw abortError('demo', signal);
  const dim = req.dimensions ?? 256;
  let embedder = builtins.get(dim);
  if (!embedder) builtins.set(dim, (embedder = new BuiltinEmbedder(dim)));
  const vectors = await embedder.embed(texts(req));
  return { vectors: vectors.map((v) => Array.from(v)), inputTokens: estimated(req), upstreamModel: embedder.name };
}
