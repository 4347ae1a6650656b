// Stand-in for the Anthropic Messages API: /v1/messages (JSON or the typed SSE event sequence)
// and /v1/models; rejects missing x-api-key, anthropic-version and max_tokens like the real API.
import { isRecord, jsonReply, splitPath, startStandIn, textOf, chunkWords } from './common.ts';
import type { Answer, Dialect, Reply, StandIn, StandInOptions } from './common.ts';

const errorTypes: Record<number, { type: string; message: string }> = {
  400: { type: 'invalid_request_error', message: 'Invalid request.' },
  401: { type: 'authentication_error', message: 'invalid x-api-key' },
  403: { type: 'permission_error', message: 'Your API key does not have permission to use the specified resource.' },
  404: { type: 'not_found_error', message: 'The requested resource could not be found.' },
  413: { type: 'request_too_large', message: 'Request exceeds the maximum allowed number of bytes.' },
  429: { type: 'rate_limit_error', message: 'Number of requests has exceeded your rate limit.' },
  500: { type: 'api_error', message: 'An unexpected error has occurred internal to Anthropic’s systems.' },
  503: { type: 'overloaded_error', message: 'Overloaded' },
  529: { type: 'overloaded_error', message: 'Overloaded' },
};

function errorBody(status: number, message?: string): unknown {
  const known = errorTypes[status] ?? { type: 'api_error', message: `HTTP ${status}` };
  return { type: 'error', error: { type: known.type, message: message ?? known.message } };
}

const stopReasons = { stop: 'end_turn', length: 'max_tokens' } as const;

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

function renderMessage(answer: Answer, stream: boolean): Reply {
  const id = 'msg_standin';
  const stopReason = stopReasons[answer.finishReason];
  if (!stream) {
    return jsonReply(200, {
      id,
      type: 'message',
      role: 'assistant',
      model: answer.model,
      content: [{ type: 'text', text: answer.text }],
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { input_tokens: answer.inputTokens, output_tokens: answer.outputTokens },
    });
  }
  const frames = [
    event('message_start', {
      type: 'message_start',
      message: { id, type: 'message', role: 'assistant', content: [], model: answer.model, stop_reason: null, stop_sequence: null, usage: { input_tokens: answer.inputTokens, output_tokens: 1 } },
    }),
    event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    event('ping', { type: 'ping' }),
    ...chunkWords(answer.text).map((text) => event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } })),
    event('content_block_stop', { type: 'content_block_stop', index: 0 }),
    event('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: answer.outputTokens } }),
    event('message_stop', { type: 'message_stop' }),
  ];
  return { status: 200, contentType: 'text/event-stream; charset=utf-8', frames };
}

export function anthropicDialect(opts: StandInOptions): Dialect {
  const models = opts.models ?? ['claude-sonnet-4-5', 'claude-haiku-4-5'];
  return {
    basePath: '',
    errorBody,
    validate(req) {
      const key = req.headers['x-api-key'];
      if (!key) return jsonReply(401, errorBody(401, 'x-api-key header is required'));
      if (opts.apiKey !== undefined && key !== opts.apiKey) return jsonReply(401, errorBody(401, 'invalid x-api-key'));
      if (!req.headers['anthropic-version']) return jsonReply(400, errorBody(400, 'anthropic-version: header is required'));
      if (req.method !== 'POST' || splitPath(req.path).pathname !== '/v1/messages') return undefined;
      const body = isRecord(req.body) ? req.body : {};
      if (typeof body.model !== 'string') return jsonReply(400, errorBody(400, 'model: Field required'));
      if (typeof body.max_tokens !== 'number') return jsonReply(400, errorBody(400, 'max_tokens: Field required'));
      if (!Array.isArray(body.messages)) return jsonReply(400, errorBody(400, 'messages: Field required'));
      if (body.messages.some((m) => isRecord(m) && m.role === 'system')) {
        return jsonReply(400, errorBody(400, 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.'));
      }
      return undefined;
    },
    route(req) {
      const { pathname } = splitPath(req.path);
      if (req.method === 'GET' && pathname === '/v1/models') {
        const data = models.map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' }));
        return { type: 'static', reply: jsonReply(200, { data, has_more: false, first_id: models[0] ?? null, last_id: models.at(-1) ?? null }) };
      }
      if (req.method !== 'POST' || pathname !== '/v1/messages') return undefined;
      const body = req.body as { model: string; messages: unknown[]; system?: unknown; stream?: unknown };
      const stream = body.stream === true;
      const system = textOf(body.system);
      return {
        type: 'generate',
        model: body.model,
        stream,
        messages: [
          ...(system ? [{ role: 'system', text: system }] : []),
          ...body.messages.map((m) => ({ role: String(isRecord(m) ? m.role : ''), text: textOf(isRecord(m) ? m.content : '') })),
        ],
        render: (answer) => renderMessage(answer, stream),
        malformedFrame: 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":\n\n',
      };
    },
  };
}

export function startAnthropicStandIn(opts: StandInOptions = {}): Promise<StandIn> {
  return startStandIn(anthropicDialect(opts), opts);
}
