// Stand-in for the Anthropic Messages API: /v1/messages (JSON or the typed SSE event sequence),
// /v1/messages/count_tokens and /v1/models; rejects missing x-api-key, anthropic-version and
// max_tokens (and, on count_tokens, fields it does not take) like the real API.
import { estimate, isRecord, jsonObject, jsonReply, splitPath, startStandIn, textOf, chunkWords } from './common.ts';
import type { Answer, Dialect, RecordedRequest, Reply, StandIn, StandInOptions, ToolCallSpec } from './common.ts';

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

const stopReasons = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use' } as const;

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

const toolId = (c: ToolCallSpec, i: number) => c.id ?? `toolu_standin_${i}`;

function usageOf(answer: Answer, outputTokens: number) {
  return {
    input_tokens: answer.inputTokens,
    cache_creation_input_tokens: answer.usage.cacheWrite ?? 0,
    cache_read_input_tokens: answer.usage.cacheRead ?? 0,
    output_tokens: outputTokens,
  };
}

function renderMessage(answer: Answer, stream: boolean): Reply {
  const id = 'msg_standin';
  const stopReason = stopReasons[answer.finishReason];
  const blocks: Record<string, unknown>[] = [
    ...(answer.thinking ? [{ type: 'thinking', thinking: answer.thinking.text, signature: answer.thinking.signature }] : []),
    ...(answer.text !== '' || answer.toolCalls.length === 0 ? [{ type: 'text', text: answer.text }] : []),
    ...answer.toolCalls.map((c, i) => ({ type: 'tool_use', id: toolId(c, i), name: c.name, input: c.arguments })),
  ];
  if (!stream) {
    return jsonReply(200, {
      id,
      type: 'message',
      role: 'assistant',
      model: answer.model,
      content: blocks,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: usageOf(answer, answer.outputTokens),
    });
  }
  const blockFrames = blocks.flatMap((b, index) => {
    if (b.type === 'thinking') {
      return [
        event('content_block_start', { type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } }),
        event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: b.thinking } }),
        event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: b.signature } }),
        event('content_block_stop', { type: 'content_block_stop', index }),
      ];
    }
    if (b.type === 'tool_use') {
      const json = JSON.stringify(b.input);
      const half = Math.ceil(json.length / 2);
      return [
        event('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } }),
        event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } }),
        event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: json.slice(0, half) } }),
        event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: json.slice(half) } }),
        event('content_block_stop', { type: 'content_block_stop', index }),
      ];
    }
    return [
      event('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }),
      ...(index === 0 ? [event('ping', { type: 'ping' })] : []),
      ...chunkWords(String(b.text)).map((text) => event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text } })),
      event('content_block_stop', { type: 'content_block_stop', index }),
    ];
  });
  const frames = [
    event('message_start', {
      type: 'message_start',
      message: { id, type: 'message', role: 'assistant', content: [], model: answer.model, stop_reason: null, stop_sequence: null, usage: usageOf(answer, 1) },
    }),
    ...blockFrames,
    event('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: answer.outputTokens } }),
    event('message_stop', { type: 'message_stop' }),
  ];
  return { status: 200, contentType: 'text/event-stream; charset=utf-8', frames };
}

/** The checks the real API makes on tools, thinking, images and sampling, with its messages. */
function checkRequest(body: Record<string, unknown>): string | undefined {
  if (typeof body.temperature === 'number' && (body.temperature < 0 || body.temperature > 1)) return 'temperature: Input should be less than or equal to 1';
  const thinking = isRecord(body.thinking) ? body.thinking : undefined;
  if (thinking?.type === 'enabled') {
    const budget = Number(thinking.budget_tokens);
    if (!(budget >= 1024)) return 'thinking.enabled.budget_tokens: Input should be greater than or equal to 1024';
    if (budget >= Number(body.max_tokens)) return '`max_tokens` must be greater than `thinking.budget_tokens`.';
    if (isRecord(body.tool_choice) && (body.tool_choice.type === 'tool' || body.tool_choice.type === 'any')) return 'Thinking may not be enabled when tool_choice forces tool use.';
  }
  if (body.tool_choice !== undefined && !Array.isArray(body.tools) && !(isRecord(body.tool_choice) && body.tool_choice.type === 'none')) return 'tool_choice may only be specified while providing tools.';
  const messages = body.messages as unknown[];
  let pending: Set<string> = new Set();
  for (const [i, raw] of messages.entries()) {
    const m = isRecord(raw) ? raw : {};
    const blocks = Array.isArray(m.content) ? m.content.filter(isRecord) : [];
    if (pending.size > 0) {
      const results = m.role === 'user' ? blocks.filter((b) => b.type === 'tool_result') : [];
      for (const r of results) pending.delete(String(r.tool_use_id));
      if (pending.size > 0) return `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${[...pending].join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`;
    } else if (blocks.some((b) => b.type === 'tool_result')) {
      return `messages.${i}.content.0: unexpected \`tool_use_id\` found in \`tool_result\` blocks. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
    }
    if (m.role === 'assistant') pending = new Set(blocks.filter((b) => b.type === 'tool_use').map((b) => String(b.id)));
    for (const [j, b] of blocks.entries()) {
      if (b.type === 'image') {
        const src = isRecord(b.source) ? b.source : {};
        if (src.type === 'base64' && (typeof src.data !== 'string' || !/^image\/(jpeg|png|gif|webp)$/.test(String(src.media_type)))) return `messages.${i}.content.${j}.image.source.base64: invalid image source`;
        if (src.type !== 'base64' && src.type !== 'url') return `messages.${i}.content.${j}.image.source: Input tag '${String(src.type)}' found using 'type' does not match any of the expected tags: 'base64', 'url'`;
      }
      if (b.type === 'tool_use' && !isRecord(b.input)) return `messages.${i}.content.${j}.tool_use.input: Input should be a valid dictionary`;
    }
  }
  return undefined;
}

/** A message's text as the stand-in reads it: text blocks and tool results. */
function messageText(m: unknown): { role: string; text: string } {
  const r = isRecord(m) ? m : {};
  const blocks = Array.isArray(r.content) ? r.content.filter(isRecord) : [];
  const text = typeof r.content === 'string' ? r.content : blocks.map((b) => (b.type === 'tool_result' ? textOf(b.content) : b.type === 'text' ? String(b.text) : '')).join('');
  return { role: String(r.role ?? ''), text };
}

/** With tool_choice forcing one tool and nothing scripted, the model calls it with the answer text as its JSON input. */
function forcedTool(req: RecordedRequest): ((text: string | undefined) => ToolCallSpec[] | undefined) | undefined {
  const body = req.body as Record<string, unknown>;
  const choice = body.tool_choice;
  if (!isRecord(choice) || choice.type !== 'tool' || typeof choice.name !== 'string') return undefined;
  const name = choice.name;
  return (text) => [{ name, arguments: jsonObject(text) }];
}

/** The body fields /v1/messages/count_tokens takes; anything else is "Extra inputs are not permitted". */
const COUNT_FIELDS = new Set(['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'mcp_servers', 'context_management']);

function validateCount(req: RecordedRequest): Reply | undefined {
  const body = isRecord(req.body) ? req.body : {};
  if (typeof body.model !== 'string') return jsonReply(400, errorBody(400, 'model: Field required'));
  if (!Array.isArray(body.messages)) return jsonReply(400, errorBody(400, 'messages: Field required'));
  const extra = Object.keys(body).find((k) => !COUNT_FIELDS.has(k));
  if (extra) return jsonReply(400, errorBody(400, `${extra}: Extra inputs are not permitted`));
  const problem = checkRequest(body);
  return problem ? jsonReply(400, errorBody(400, problem)) : undefined;
}

/** A deterministic count: system, message text and tool definitions at about four characters a token. */
function countTokens(body: Record<string, unknown>): number {
  const text = [textOf(body.system), ...(body.messages as unknown[]).map((m) => messageText(m).text), body.tools ? JSON.stringify(body.tools) : ''].join('\n');
  return estimate(text) + 3;
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
      if (req.method === 'POST' && splitPath(req.path).pathname === '/v1/messages/count_tokens') return validateCount(req);
      if (req.method !== 'POST' || splitPath(req.path).pathname !== '/v1/messages') return undefined;
      const body = isRecord(req.body) ? req.body : {};
      if (typeof body.model !== 'string') return jsonReply(400, errorBody(400, 'model: Field required'));
      if (typeof body.max_tokens !== 'number') return jsonReply(400, errorBody(400, 'max_tokens: Field required'));
      if (!Array.isArray(body.messages)) return jsonReply(400, errorBody(400, 'messages: Field required'));
      if (body.messages.some((m) => isRecord(m) && m.role === 'system')) {
        return jsonReply(400, errorBody(400, 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.'));
      }
      const problem = checkRequest(body);
      if (problem) return jsonReply(400, errorBody(400, problem));
      return undefined;
    },
    route(req) {
      const { pathname } = splitPath(req.path);
      if (req.method === 'GET' && pathname === '/v1/models') {
        const data = models.map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' }));
        return { type: 'static', reply: jsonReply(200, { data, has_more: false, first_id: models[0] ?? null, last_id: models.at(-1) ?? null }) };
      }
      if (req.method === 'POST' && pathname === '/v1/messages/count_tokens') return { type: 'static', reply: jsonReply(200, { input_tokens: countTokens(req.body as Record<string, unknown>) }) };
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
          ...body.messages.map(messageText),
        ],
        render: (answer) => renderMessage(answer, stream),
        forcedTool: forcedTool(req),
        malformedFrame: 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":\n\n',
      };
    },
  };
}

export function startAnthropicStandIn(opts: StandInOptions = {}): Promise<StandIn> {
  return startStandIn(anthropicDialect(opts), opts);
}
