// Stand-in for the Gemini API: /v1beta/models/{model}:generateContent, :streamGenerateContent
// (SSE with alt=sse, else a JSON array), :embedContent, :batchEmbedContents and /v1beta/models,
// with Google's error body shape; function calling (functionDeclarations, toolConfig, functionCall /
// functionResponse turns) checked as the real API checks it.
import { isRecord, jsonObject, jsonReply, splitPath, startStandIn, textOf, chunkWords } from './common.ts';
import { hashedEmbedding } from './ollama.ts';
import type { Answer, Dialect, RecordedRequest, Reply, StandIn, StandInOptions, ToolCallSpec } from './common.ts';

const statusNames: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const defaultMessages: Record<number, string> = {
  429: 'Resource has been exhausted (e.g. check quota).',
  500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  503: 'The model is overloaded. Please try again later.',
};

function errorBody(status: number, message?: string): unknown {
  return { error: { code: status, message: message ?? defaultMessages[status] ?? `HTTP ${status}`, status: statusNames[status] ?? 'UNKNOWN' } };
}

const finishReasons = { stop: 'STOP', length: 'MAX_TOKENS', tool_calls: 'STOP' } as const;

function response(answer: Answer, text: string, final: boolean): Record<string, unknown> {
  // Function calls come whole in the last chunk, without ids (as the Gemini Developer API sends them).
  const calls = final ? answer.toolCalls.map((c) => ({ functionCall: { name: c.name, args: c.arguments } })) : [];
  const parts = [...(text !== '' || calls.length === 0 ? [{ text }] : []), ...calls];
  return {
    candidates: [{ content: { parts, role: 'model' }, ...(final ? { finishReason: finishReasons[answer.finishReason] } : {}), index: 0 }],
    usageMetadata: final
      ? { promptTokenCount: answer.inputTokens, candidatesTokenCount: answer.outputTokens, totalTokenCount: answer.inputTokens + answer.outputTokens }
      : { promptTokenCount: answer.inputTokens, totalTokenCount: answer.inputTokens },
    modelVersion: answer.model,
    responseId: 'standin-response',
  };
}

function render(answer: Answer, mode: 'json' | 'sse' | 'array'): Reply {
  if (mode === 'json') return jsonReply(200, response(answer, answer.text, true));
  const chunks = chunkWords(answer.text);
  const responses = chunks.map((text, i) => response(answer, text, i === chunks.length - 1));
  if (mode === 'sse') {
    // The real service terminates SSE lines with CRLF.
    return { status: 200, contentType: 'text/event-stream', frames: responses.map((r) => `data: ${JSON.stringify(r)}\r\n\r\n`) };
  }
  const frames = responses.map((r, i) => `${i === 0 ? '[' : '\r\n,'}${JSON.stringify(r)}`);
  frames.push(']');
  return { status: 200, contentType: 'application/json; charset=UTF-8', frames };
}

const generatePath = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;

const FUNCTION_NAME = /^[a-zA-Z_][a-zA-Z0-9_.-]{0,63}$/;

/** The checks the real API makes on tools, function call turns, inline data and JSON output, with its messages. */
function checkGenerate(body: Record<string, unknown>): string | undefined {
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) return '* GenerateContentRequest.tools: tools must be a list';
    for (const [i, t] of body.tools.entries()) {
      const decls = isRecord(t) && Array.isArray(t.functionDeclarations) ? t.functionDeclarations : [];
      for (const [j, d] of decls.entries()) {
        if (!isRecord(d) || typeof d.name !== 'string' || !FUNCTION_NAME.test(d.name)) return `* GenerateContentRequest.tools[${i}].function_declarations[${j}].name: Invalid function name.`;
        if (d.parameters !== undefined && d.parametersJsonSchema !== undefined) return `* GenerateContentRequest.tools[${i}].function_declarations[${j}]: parameters and parameters_json_schema cannot both be set`;
      }
    }
  }
  const gc = isRecord(body.generationConfig) ? body.generationConfig : {};
  if (gc.responseJsonSchema !== undefined && gc.responseMimeType !== 'application/json') return '* GenerateContentRequest.generation_config.response_mime_type: response_json_schema needs response_mime_type application/json';
  let callsBefore = 0;
  for (const [i, c] of (body.contents as unknown[]).entries()) {
    const parts = isRecord(c) && Array.isArray(c.parts) ? c.parts.filter(isRecord) : [];
    const responses = parts.filter((p) => p.functionResponse !== undefined).length;
    if (responses > 0 && callsBefore === 0) return 'Please ensure that function response turn comes immediately after a function call turn.';
    if (responses > 0 && responses !== callsBefore) return 'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.';
    for (const [j, p] of parts.entries()) {
      if (p.inlineData !== undefined && !(isRecord(p.inlineData) && typeof p.inlineData.mimeType === 'string' && typeof p.inlineData.data === 'string' && /^[A-Za-z0-9+/]+=*$/.test(p.inlineData.data))) {
        return `* GenerateContentRequest.contents[${i}].parts[${j}].inline_data: invalid inline data`;
      }
      if (p.functionResponse !== undefined && !(isRecord(p.functionResponse) && typeof p.functionResponse.name === 'string' && isRecord(p.functionResponse.response))) {
        return `* GenerateContentRequest.contents[${i}].parts[${j}].function_response: name and response (an object) are required`;
      }
    }
    callsBefore = parts.filter((p) => p.functionCall !== undefined).length;
  }
  return undefined;
}

/** With mode ANY and one allowed function, and nothing scripted, the model calls it with the answer text as its JSON input. */
function forcedTool(req: RecordedRequest): ((text: string | undefined) => ToolCallSpec[] | undefined) | undefined {
  const body = req.body as Record<string, unknown>;
  const config = isRecord(body.toolConfig) && isRecord(body.toolConfig.functionCallingConfig) ? body.toolConfig.functionCallingConfig : {};
  const allowed = Array.isArray(config.allowedFunctionNames) ? config.allowedFunctionNames : [];
  if (config.mode !== 'ANY' || allowed.length !== 1) return undefined;
  const name = String(allowed[0]);
  return (text) => [{ name, arguments: jsonObject(text) }];
}
const embedPath = /^\/v1beta\/models\/([^/:]+):(embedContent|batchEmbedContents)$/;
const countPath = /^\/v1beta\/models\/([^/:]+):countTokens$/;

/** countTokens takes `contents` or a whole `generateContentRequest` (naming its model), not both. */
function countReply(model: string, body: Record<string, unknown>) {
  if (body.contents !== undefined && body.generateContentRequest !== undefined) return jsonReply(400, errorBody(400, 'contents and generate_content_request cannot both be set'));
  const generate = isRecord(body.generateContentRequest) ? body.generateContentRequest : body;
  if (body.generateContentRequest !== undefined && generate.model !== `models/${model}`) return jsonReply(400, errorBody(400, `* CountTokensRequest.generate_content_request.model: must be models/${model}`));
  if (!Array.isArray(generate.contents) || generate.contents.length === 0) return jsonReply(400, errorBody(400, '* CountTokensRequest.contents: contents is not specified'));
  const text = [isRecord(generate.systemInstruction) ? textOf(generate.systemInstruction.parts) : '', ...generate.contents.map((c) => (isRecord(c) ? textOf(c.parts) : '')), generate.tools ? JSON.stringify(generate.tools) : ''].join('\n');
  return jsonReply(200, { totalTokens: Math.max(1, Math.ceil(text.length / 4)) + 2 });
}

/** The text of an embedContent request's `content`, or an error message as the API words it. */
function embedText(content: unknown, where: string): string | { error: string } {
  if (!isRecord(content) || !Array.isArray(content.parts) || content.parts.length === 0) return { error: `* ${where}.content: contents is not specified` };
  return textOf(content.parts);
}

function embedding(text: string, dims: unknown): { values: number[] } {
  return { values: hashedEmbedding(text, typeof dims === 'number' && dims > 0 ? dims : 768) };
}

/** embedContent / batchEmbedContents, checked as the real API checks them. */
function embedReply(model: string, method: string, body: Record<string, unknown>) {
  if (method === 'embedContent') {
    const text = embedText(body.content, 'EmbedContentRequest');
    if (typeof text !== 'string') return jsonReply(400, errorBody(400, text.error));
    return jsonReply(200, { embedding: embedding(text, body.outputDimensionality) });
  }
  if (!Array.isArray(body.requests) || body.requests.length === 0) return jsonReply(400, errorBody(400, '* BatchEmbedContentsRequest.requests: requests is not specified'));
  if (body.requests.length > 100) return jsonReply(400, errorBody(400, '* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch'));
  const embeddings: { values: number[] }[] = [];
  for (const [i, r] of body.requests.entries()) {
    const req = isRecord(r) ? r : {};
    if (req.model !== `models/${model}`) return jsonReply(400, errorBody(400, `* BatchEmbedContentsRequest.requests[${i}].model: the model of each request must be models/${model}`));
    const text = embedText(req.content, `BatchEmbedContentsRequest.requests[${i}]`);
    if (typeof text !== 'string') return jsonReply(400, errorBody(400, text.error));
    embeddings.push(embedding(text, req.outputDimensionality));
  }
  return jsonReply(200, { embeddings });
}

export function geminiDialect(opts: StandInOptions): Dialect {
  const models = opts.models ?? ['gemini-2.0-flash', 'text-embedding-004'];
  return {
    basePath: '/v1beta',
    errorBody,
    validate(req) {
      const { pathname, query } = splitPath(req.path);
      const key = req.headers['x-goog-api-key'] ?? query.get('key');
      if (!key) {
        return jsonReply(403, errorBody(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."));
      }
      if (opts.apiKey !== undefined && key !== opts.apiKey) return jsonReply(400, errorBody(400, 'API key not valid. Please pass a valid API key.'));
      if (req.method !== 'POST' || !generatePath.test(pathname)) return undefined;
      const body = isRecord(req.body) ? req.body : {};
      if (!Array.isArray(body.contents) || body.contents.length === 0) return jsonReply(400, errorBody(400, '* GenerateContentRequest.contents: contents is not specified'));
      if (body.contents.some((c) => !isRecord(c) || (c.role !== undefined && c.role !== 'user' && c.role !== 'model'))) {
        return jsonReply(400, errorBody(400, 'Please use a valid role: user, model.'));
      }
      const problem = checkGenerate(body);
      return problem ? jsonReply(400, errorBody(400, problem)) : undefined;
    },
    route(req) {
      const { pathname, query } = splitPath(req.path);
      if (req.method === 'GET' && pathname === '/v1beta/models') {
        const list = models.map((id) => ({
          name: `models/${id}`,
          version: '001',
          displayName: id,
          inputTokenLimit: 1_048_576,
          outputTokenLimit: 8192,
          supportedGenerationMethods: id.includes('embedding') ? ['embedContent'] : ['generateContent', 'countTokens'],
        }));
        return { type: 'static', reply: jsonReply(200, { models: list }) };
      }
      const count = req.method === 'POST' ? countPath.exec(pathname) : null;
      if (count) return { type: 'static', reply: countReply(decodeURIComponent(count[1]!), isRecord(req.body) ? req.body : {}) };
      const embed = req.method === 'POST' ? embedPath.exec(pathname) : null;
      if (embed) return { type: 'static', reply: embedReply(decodeURIComponent(embed[1]!), embed[2]!, isRecord(req.body) ? req.body : {}) };
      const match = req.method === 'POST' ? generatePath.exec(pathname) : null;
      if (!match) return undefined;
      const model = decodeURIComponent(match[1]!);
      const stream = match[2] === 'streamGenerateContent';
      const mode = !stream ? 'json' : query.get('alt') === 'sse' ? 'sse' : 'array';
      const body = req.body as { contents: unknown[]; systemInstruction?: unknown };
      const partsText = (c: unknown) => (isRecord(c) ? textOf(c.parts) : '');
      const system = partsText(body.systemInstruction);
      return {
        type: 'generate',
        model,
        stream,
        messages: [
          ...(system ? [{ role: 'system', text: system }] : []),
          ...body.contents.map((c) => ({ role: isRecord(c) && c.role === 'model' ? 'assistant' : 'user', text: partsText(c) })),
        ],
        render: (answer) => render(answer, mode),
        forcedTool: forcedTool(req),
        malformedFrame: 'data: {"candidates":[{"content":{"parts":[{"text":\r\n\r\n',
      };
    },
  };
}

export function startGeminiStandIn(opts: StandInOptions = {}): Promise<StandIn> {
  return startStandIn(geminiDialect(opts), opts);
}
