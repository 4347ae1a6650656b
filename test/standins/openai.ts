// Stand-in for an OpenAI-compatible upstream: /v1/chat/completions (JSON or chat.completion.chunk
// SSE with a final usage chunk and [DONE]) and /v1/models, with OpenAI's error body shape.
import { isRecord, jsonReply, splitPath, startStandIn, textOf, chunkWords } from './common.ts';
import type { Answer, Dialect, Reply, StandIn, StandInOptions } from './common.ts';

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

function renderChat(answer: Answer, stream: boolean, includeUsage: boolean): Reply {
  const id = 'chatcmpl-standin';
  const usage = { prompt_tokens: answer.inputTokens, completion_tokens: answer.outputTokens, total_tokens: answer.inputTokens + answer.outputTokens };
  if (!stream) {
    return jsonReply(200, {
      id,
      object: 'chat.completion',
      created: CREATED,
      model: answer.model,
      choices: [{ index: 0, message: { role: 'assistant', content: answer.text, refusal: null }, logprobs: null, finish_reason: answer.finishReason }],
      usage,
      system_fingerprint: 'fp_standin',
    });
  }
  const base = { id, object: 'chat.completion.chunk', created: CREATED, model: answer.model, system_fingerprint: 'fp_standin' };
  const withUsage = includeUsage ? { usage: null } : {};
  const frames = [
    sse({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], ...withUsage }),
    ...chunkWords(answer.text).map((text) => sse({ ...base, choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }], ...withUsage })),
    sse({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: answer.finishReason }], ...withUsage }),
    ...(includeUsage ? [sse({ ...base, choices: [], usage })] : []),
    sse('[DONE]'),
  ];
  return { status: 200, contentType: 'text/event-stream; charset=utf-8', frames };
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
      if (req.method === 'POST' && splitPath(req.path).pathname === '/v1/chat/completions') {
        const body = isRecord(req.body) ? req.body : {};
        if (typeof body.model !== 'string') return jsonReply(400, errorBody(400, 'you must provide a model parameter'));
        if (!Array.isArray(body.messages)) return jsonReply(400, errorBody(400, "Missing required parameter: 'messages'."));
      }
      return undefined;
    },
    route(req) {
      const { pathname } = splitPath(req.path);
      if (req.method === 'GET' && pathname === '/v1/models') {
        return { type: 'static', reply: jsonReply(200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'stand-in' })) }) };
      }
      if (req.method !== 'POST' || pathname !== '/v1/chat/completions') return undefined;
      const body = req.body as { model: string; messages: unknown[]; stream?: unknown; stream_options?: unknown };
      const stream = body.stream === true;
      const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
      return {
        type: 'generate',
        model: body.model,
        stream,
        messages: body.messages.map((m) => ({ role: String(isRecord(m) ? m.role : ''), text: textOf(isRecord(m) ? m.content : '') })),
        render: (answer) => renderChat(answer, stream, includeUsage),
        malformedFrame: 'data: {"id":"chatcmpl-standin","choices":[{"delta":{"content":\n\n',
      };
    },
  };
}

export function startOpenAIStandIn(opts: StandInOptions = {}): Promise<StandIn> {
  return startStandIn(openaiDialect(opts), opts);
}
