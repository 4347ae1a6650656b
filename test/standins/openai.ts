// Stand-in for an OpenAI-compatible upstream: /v1/chat/completions (JSON or chat.completion.chunk
// SSE with a final usage chunk and [DONE]), /v1/embeddings (float or base64, `dimensions` on the
// text-embedding-3 models only) and /v1/models, with OpenAI's error body shape.
import { estimate, isRecord, jsonObject, jsonReply, splitPath, startStandIn, textOf, chunkWords } from './common.ts';
import { hashedEmbedding } from './ollama.ts';
import type { Answer, Dialect, RecordedRequest, Reply, StandIn, StandInOptions, ToolCallSpec } from './common.ts';

const errorTypes: Record<number, { type: string; code: string | null; message: string }> = {
  400: { type: 'invalid_request_error', code: null, message: 'Invalid request.' },
  401: { type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided.' },
  404: { type: 'invalid_request_error', code: 'model_not_found', message: 'The model does not exist or you do not have access to it.' },
  429: { type: 'requests', code: 'rate_limit_exceeded', message: 'Rate limit reached for requests.' },
  500: { type: 'server_error', code: null, message: 'The server had an error while processing your request.' },
  503: { type: 'server_error', code: null, message: 'The engine is currently overloaded, please try again later.' },
};

function errorBody(status: number, message?: string): unknown {
  const known = errorTypes[status] ?? { type: 'server_error', code: null, message: `HTTP ${status}` };
  return { error: { message: message ?? known.message, type: known.type, param: null, code: known.code } };
}

const CREATED = 1_700_000_000;

function sse(data: unknown): string {
  return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

/** Split a string into a few pieces, as the real API streams tool arguments. */
function pieces(text: string, n = 3): string[] {
  const size = Math.max(1, Math.ceil(text.length / n));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

const callId = (c: ToolCallSpec, i: number) => c.id ?? `call_standin_${i}`;

function renderChat(answer: Answer, stream: boolean, includeUsage: boolean): Reply {
  const id = 'chatcmpl-standin';
  const usage = {
    prompt_tokens: answer.inputTokens,
    completion_tokens: answer.outputTokens,
    total_tokens: answer.inputTokens + answer.outputTokens,
    prompt_tokens_details: { cached_tokens: answer.usage.cacheRead ?? 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: answer.usage.reasoning ?? 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
  const toolCalls = answer.toolCalls.map((c, i) => ({ id: callId(c, i), type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } }));
  if (!stream) {
    return jsonReply(200, {
      id,
      object: 'chat.completion',
      created: CREATED,
      model: answer.model,
      choices: [{
        index: 0,
        message: { role: 'assistant', content: toolCalls.length && answer.text === '' ? null : answer.text, refusal: null, annotations: [], ...(toolCalls.length ? { tool_calls: toolCalls } : {}) },
        logprobs: null,
        finish_reason: answer.finishReason,
      }],
      usage,
      system_fingerprint: 'fp_standin',
    });
  }
  const base = { id, object: 'chat.completion.chunk', created: CREATED, model: answer.model, system_fingerprint: 'fp_standin' };
  const withUsage = includeUsage ? { usage: null } : {};
  const frame = (delta: Record<string, unknown>, finish: string | null = null) => sse({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...withUsage });
  const frames = [
    frame({ role: 'assistant', content: toolCalls.length && answer.text === '' ? null : '', refusal: null }),
    ...(answer.text === '' ? [] : chunkWords(answer.text).map((text) => frame({ content: text }))),
    ...toolCalls.flatMap((c, index) => [
      frame({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] }),
      ...pieces(c.function.arguments).map((args) => frame({ tool_calls: [{ index, function: { arguments: args } }] })),
    ]),
    frame({}, answer.finishReason),
    ...(includeUsage ? [sse({ ...base, choices: [], usage })] : []),
    sse('[DONE]'),
  ];
  return { status: 200, contentType: 'text/event-stream; charset=utf-8', frames };
}

/** The checks the real API makes on a conversation with tools, with its messages. */
function checkConversation(body: Record<string, unknown>): string | undefined {
  const messages = body.messages as unknown[];
  let open: Set<string> | null = null;
  for (const [i, raw] of messages.entries()) {
    const m = isRecord(raw) ? raw : {};
    if (m.role === 'tool') {
      if (typeof m.tool_call_id !== 'string') return `Missing parameter 'tool_call_id': messages[${i}].`;
      if (!open?.has(m.tool_call_id)) return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.";
      open.delete(m.tool_call_id);
      continue;
    }
    if (open && open.size > 0) return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'.";
    open = null;
    if (m.role === 'assistant' && Array.isArray(m.tool_calls)) {
      open = new Set(m.tool_calls.map((c) => String(isRecord(c) ? c.id : '')));
      for (const c of m.tool_calls) {
        if (!isRecord(c) || !isRecord(c.function) || typeof c.function.arguments !== 'string') return `Invalid type for 'messages[${i}].tool_calls': arguments must be a string.`;
      }
    }
    if (Array.isArray(m.content)) {
      for (const part of m.content) {
        if (isRecord(part) && part.type === 'image_url' && !(isRecord(part.image_url) && typeof part.image_url.url === 'string')) return `Missing required parameter: 'messages[${i}].content[0].image_url.url'.`;
      }
    }
  }
  if (open && open.size > 0) return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'.";
  if (body.max_tokens !== undefined && body.max_completion_tokens !== undefined) return 'max_tokens and max_completion_tokens cannot both be set';
  if (body.tool_choice !== undefined && !Array.isArray(body.tools)) return "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.";
  return undefined;
}

/** A message's text as the stand-in reads it (tool results included). */
function messageText(m: unknown): { role: string; text: string } {
  const r = isRecord(m) ? m : {};
  return { role: String(r.role ?? ''), text: textOf(r.content) };
}

/** With tool_choice naming a function and nothing scripted, the model calls it with the answer text as its JSON input. */
function forcedTool(req: RecordedRequest): ((text: string | undefined) => ToolCallSpec[] | undefined) | undefined {
  const body = req.body as Record<string, unknown>;
  const choice = body.tool_choice;
  if (!isRecord(choice) || !isRecord(choice.function) || typeof choice.function.name !== 'string') return undefined;
  const name = choice.function.name;
  return (text) => [{ name, arguments: jsonObject(text) }];
}

/** Native sizes of OpenAI's embedding models; only the text-embedding-3 ones can be shortened. */
const EMBEDDING_DIMS: Record<string, number> = { 'text-embedding-3-small': 1536, 'text-embedding-3-large': 3072, 'text-embedding-ada-002': 1536 };

const embeddingInputs = (input: unknown): string[] =>
  typeof input === 'string' ? [input] : Array.isArray(input) && typeof input[0] === 'number' ? [input.join(' ')] : (input as unknown[]).map((v) => (Array.isArray(v) ? v.join(' ') : String(v)));

function validateEmbeddings(req: RecordedRequest): Reply | undefined {
  const body = isRecord(req.body) ? req.body : {};
  if (typeof body.model !== 'string') return jsonReply(400, errorBody(400, 'you must provide a model parameter'));
  const input = body.input;
  const okInput = (typeof input === 'string' && input !== '') || (Array.isArray(input) && input.length > 0 && input.every((v) => (typeof v === 'string' && v !== '') || typeof v === 'number' || (Array.isArray(v) && v.length > 0)));
  if (!okInput) return jsonReply(400, errorBody(400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."));
  if (body.encoding_format !== undefined && body.encoding_format !== 'float' && body.encoding_format !== 'base64') return jsonReply(400, errorBody(400, `Invalid value for 'encoding_format': '${String(body.encoding_format)}'.`));
  if (body.dimensions !== undefined && !String(body.model).startsWith('text-embedding-3')) return jsonReply(400, errorBody(400, 'This model does not support specifying dimensions.'));
  if (!(body.model in EMBEDDING_DIMS)) return jsonReply(404, errorBody(404, `The model \`${body.model}\` does not exist or you do not have access to it.`));
  return undefined;
}

function renderEmbeddings(body: Record<string, unknown>): Reply {
  const model = String(body.model);
  const dim = typeof body.dimensions === 'number' ? body.dimensions : EMBEDDING_DIMS[model]!;
  const inputs = embeddingInputs(body.input);
  const data = inputs.map((text, index) => {
    const v = hashedEmbedding(text, dim);
    const embedding = body.encoding_format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v;
    return { object: 'embedding', index, embedding };
  });
  const tokens = inputs.reduce((n, t) => n + estimate(t), 0);
  return jsonReply(200, { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

export function openaiDialect(opts: StandInOptions): Dialect {
  const models = opts.models ?? ['gpt-4o', 'gpt-4o-mini'];
  return {
    basePath: '/v1',
    errorBody,
    validate(req) {
      // Local compatible servers often need no key, so it is only checked when configured.
      if (opts.apiKey !== undefined) {
        const auth = req.headers.authorization;
        if (!auth) return jsonReply(401, errorBody(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth."));
        if (auth !== `Bearer ${opts.apiKey}`) return jsonReply(401, errorBody(401, 'Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.'));
      }
      if (req.method === 'POST' && splitPath(req.path).pathname === '/v1/embeddings') return validateEmbeddings(req);
      if (req.method === 'POST' && splitPath(req.path).pathname === '/v1/chat/completions') {
        const body = isRecord(req.body) ? req.body : {};
        if (typeof body.model !== 'string') return jsonReply(400, errorBody(400, 'you must provide a model parameter'));
        if (!Array.isArray(body.messages)) return jsonReply(400, errorBody(400, "Missing required parameter: 'messages'."));
        const problem = checkConversation(body);
        if (problem) return jsonReply(400, errorBody(400, problem));
      }
      return undefined;
    },
    route(req) {
      const { pathname } = splitPath(req.path);
      if (req.method === 'GET' && pathname === '/v1/models') {
        return { type: 'static', reply: jsonReply(200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'stand-in' })) }) };
      }
      if (req.method === 'POST' && pathname === '/v1/embeddings') return { type: 'static', reply: renderEmbeddings(req.body as Record<string, unknown>) };
      if (req.method !== 'POST' || pathname !== '/v1/chat/completions') return undefined;
      const body = req.body as { model: string; messages: unknown[]; stream?: unknown; stream_options?: unknown };
      const stream = body.stream === true;
      const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
      return {
        type: 'generate',
        model: body.model,
        stream,
        messages: body.messages.map(messageText),
        render: (answer) => renderChat(answer, stream, includeUsage),
        forcedTool: forcedTool(req),
        malformedFrame: 'data: {"id":"chatcmpl-standin","choices":[{"delta":{"content":\n\n',
      };
    },
  };
}

export function startOpenAIStandIn(opts: StandInOptions = {}): Promise<StandIn> {
  return startStandIn(openaiDialect(opts), opts);
}
