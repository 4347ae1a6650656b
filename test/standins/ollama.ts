// Stand-in for Ollama: /api/chat (JSON or NDJSON stream ending in a `done` line with counts; tool
// calls as message.tool_calls with object arguments), /api/tags, and /api/embed with deterministic
// hashed embeddings.
import { isRecord, jsonReply, splitPath, startStandIn, textOf, chunkWords } from './common.ts';
import type { Answer, Dialect, Reply, StandIn, StandInOptions } from './common.ts';

export interface OllamaStandInOptions extends StandInOptions {
  /** Dimension of /api/embed vectors (default 32). */
  embedDim?: number;
}

function errorBody(status: number, message?: string): unknown {
  return { error: message ?? (status === 404 ? 'model not found, try pulling it first' : `HTTP ${status}`) };
}

const CREATED_AT = '2025-01-01T00:00:00.000000Z';

function fnv1a(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * Feature-hashed bag of words (CJK characters count as words), L2-normalised: the same text
 * always maps to the same vector and texts sharing words have a positive cosine.
 */
export function hashedEmbedding(text: string, dim: number): number[] {
  const vector = new Array<number>(dim).fill(0);
  const tokens = text.toLowerCase().match(/[\u4e00-\u9fff]|[\p{L}\p{N}_]+/gu) ?? [];
  for (const token of tokens) {
    const h = fnv1a(token);
    vector[h % dim]! += (h & 0x80000000) === 0 ? 1 : -1;
  }
  const norm = Math.hypot(...vector);
  return norm === 0 ? vector : vector.map((v) => v / norm);
}

function renderChat(answer: Answer, stream: boolean): Reply {
  const toolCalls = answer.toolCalls.map((c, index) => ({ function: { index, name: c.name, arguments: c.arguments } }));
  const calls = toolCalls.length ? { tool_calls: toolCalls } : {};
  const final = {
    model: answer.model,
    created_at: CREATED_AT,
    message: { role: 'assistant', content: stream ? '' : answer.text, ...(stream ? {} : calls) },
    // Ollama says stop after tool calls too.
    done_reason: answer.finishReason === 'tool_calls' ? 'stop' : answer.finishReason,
    done: true,
    total_duration: 1_000_000,
    load_duration: 100_000,
    prompt_eval_count: answer.inputTokens,
    prompt_eval_duration: 200_000,
    eval_count: answer.outputTokens,
    eval_duration: 700_000,
  };
  if (!stream) return jsonReply(200, final);
  const lines = (answer.text === '' && toolCalls.length ? [] : chunkWords(answer.text)).map(
    (text) => `${JSON.stringify({ model: answer.model, created_at: CREATED_AT, message: { role: 'assistant', content: text }, done: false })}\n`,
  );
  // Ollama streams the calls whole, in one line of their own.
  const callLine = toolCalls.length ? [`${JSON.stringify({ model: answer.model, created_at: CREATED_AT, message: { role: 'assistant', content: '', ...calls }, done: false })}\n`] : [];
  return { status: 200, contentType: 'application/x-ndjson', frames: [...lines, ...callLine, `${JSON.stringify(final)}\n`] };
}

/** What Ollama's /api/chat refuses (its Go JSON decoding and checks), with its messages. */
function checkChat(body: Record<string, unknown>): string | undefined {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages) {
    if (!isRecord(m) || !['system', 'user', 'assistant', 'tool'].includes(String(m.role))) return `invalid role: ${isRecord(m) ? String(m.role) : ''}`;
    if (m.content !== undefined && typeof m.content !== 'string') return 'json: cannot unmarshal array into Go struct field Message.messages.content of type string';
    if (m.images !== undefined && !(Array.isArray(m.images) && m.images.every((i) => typeof i === 'string' && /^[A-Za-z0-9+/]+=*$/.test(i)))) return 'illegal base64 data at input byte 0';
    if (m.tool_calls !== undefined) {
      const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
      if (calls.some((c) => !isRecord(c) || !isRecord(c.function) || !isRecord(c.function.arguments))) return 'json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments';
    }
  }
  if (body.tools !== undefined && !(Array.isArray(body.tools) && body.tools.every((t) => isRecord(t) && t.type === 'function' && isRecord(t.function) && typeof t.function.name === 'string'))) return 'json: cannot unmarshal tools';
  if (body.format !== undefined && body.format !== 'json' && !isRecord(body.format)) return 'invalid format: expected "json" or a JSON schema';
  return undefined;
}

export function ollamaDialect(opts: OllamaStandInOptions): Dialect {
  const models = opts.models ?? ['llama3:latest', 'nomic-embed-text:latest'];
  const embedDim = opts.embedDim ?? 32;
  return {
    basePath: '',
    errorBody,
    validate(req) {
      if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) return jsonReply(401, errorBody(401, 'unauthorized'));
      if (req.method !== 'POST') return undefined;
      const pathname = splitPath(req.path).pathname;
      if (pathname !== '/api/chat' && pathname !== '/api/embed') return undefined;
      if (!isRecord(req.body)) return jsonReply(400, errorBody(400, 'invalid request body'));
      if (typeof req.body.model !== 'string' || req.body.model === '') return jsonReply(400, errorBody(400, 'model is required'));
      if (pathname === '/api/chat') {
        const problem = checkChat(req.body);
        if (problem) return jsonReply(400, errorBody(400, problem));
      }
      return undefined;
    },
    route(req) {
      const { pathname } = splitPath(req.path);
      if (req.method === 'GET' && pathname === '/api/tags') {
        const list = models.map((name) => ({
          name,
          model: name,
          modified_at: CREATED_AT,
          size: 4_661_224_676,
          digest: 'sha256:0000000000000000000000000000000000000000000000000000000000000000',
          details: { format: 'gguf', family: 'llama', parameter_size: '8B', quantization_level: 'Q4_0' },
        }));
        return { type: 'static', reply: jsonReply(200, { models: list }) };
      }
      if (req.method === 'POST' && pathname === '/api/embed') {
        const body = req.body as { model: string; input?: unknown; dimensions?: unknown };
        const inputs = Array.isArray(body.input) ? body.input.map((v) => String(v)) : [String(body.input ?? '')];
        const dim = typeof body.dimensions === 'number' && body.dimensions > 0 ? body.dimensions : embedDim;
        const embeddings = inputs.map((text) => hashedEmbedding(text, dim));
        const promptEvalCount = inputs.reduce((n, t) => n + Math.max(1, Math.ceil(t.length / 4)), 0);
        return { type: 'static', reply: jsonReply(200, { model: body.model, embeddings, total_duration: 1_000_000, load_duration: 100_000, prompt_eval_count: promptEvalCount }) };
      }
      if (req.method !== 'POST' || pathname !== '/api/chat') return undefined;
      const body = req.body as { model: string; messages?: unknown; stream?: unknown };
      // Ollama streams unless told otherwise.
      const stream = body.stream !== false;
      const messages = Array.isArray(body.messages) ? body.messages : [];
      return {
        type: 'generate',
        model: body.model,
        stream,
        messages: messages.map((m) => ({ role: String(isRecord(m) ? m.role : ''), text: textOf(isRecord(m) ? m.content : '') })),
        render: (answer) => renderChat(answer, stream),
        malformedFrame: '{"model":"broken","message":{"role":"assistant","content":\n',
      };
    },
  };
}

export function startOllamaStandIn(opts: OllamaStandInOptions = {}): Promise<StandIn> {
  return startStandIn(ollamaDialect(opts), opts);
}
