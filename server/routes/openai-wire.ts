// The OpenAI Chat Completions wire format at the gateway's edge: the request body validated with
// zod and mapped field by field to the neutral model (unknown fields kept for an OpenAI upstream),
// and the neutral answer mapped back to a chat.completion.
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import { sourceFromUrl } from '../providers/neutral.ts';
import type {
  ChatMessage, ContentPart, DocumentPart, Extras, ImagePart, ProviderRequest, ProviderResult, ResponseFormat, TextPart, ToolChoice,
  ToolDefinition, Usage,
} from '../providers/types.ts';
import { modelNameSchema, routingPrefsSchema, routingRulesSchema } from '../http/validate.ts';

const MAX_TEXT = 1_000_000;

/** Keys of `obj` outside `known` whose value is not null (null means "the default" in OpenAI's API). */
export function extrasOf(obj: Record<string, unknown>, known: ReadonlySet<string>): Extras | undefined {
  let out: Extras | undefined;
  for (const k in obj) {
    if (known.has(k) || obj[k] === null || obj[k] === undefined) continue;
    // A null prototype keeps a `__proto__` key an ordinary field (it is passed through, not obeyed).
    (out ??= Object.create(null) as Extras)[k] = obj[k];
  }
  return out;
}

const withExtra = <T extends object>(value: T, extra: Extras | undefined): T => (extra ? { ...value, extra } : value);

const textPart = z.object({ type: z.literal('text'), text: z.string().max(MAX_TEXT) }).passthrough();
const imagePart = z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string().min(1), detail: z.enum(['auto', 'low', 'high']).optional() }).strict() }).passthrough();
const filePart = z
  .object({
    type: z.literal('file'),
    file: z.object({ file_data: z.string().min(1).optional(), file_id: z.string().min(1).max(256).optional(), filename: z.string().max(1024).optional() }).strict()
      .refine((f) => f.file_data !== undefined || f.file_id !== undefined, 'file needs file_data or file_id'),
  })
  .passthrough();
const knownParts = new Map<string, z.ZodTypeAny>([['text', textPart], ['image_url', imagePart], ['file', filePart]]);
/** A part of a known type must have its shape; others (input_audio, refusal, ...) pass to OpenAI upstreams as they are. */
const partSchema = z
  .object({ type: z.string().min(1).max(64) })
  .passthrough()
  .superRefine((p, ctx) => {
    const r = knownParts.get(p.type)?.safeParse(p);
    if (r && !r.success) for (const issue of r.error.issues) ctx.addIssue(issue);
  });
const contentSchema = z.union([z.string().max(MAX_TEXT), z.array(partSchema).max(1024)]);

const toolCallSchema = z
  .object({
    id: z.string().min(1).max(256),
    type: z.literal('function'),
    function: z.object({ name: z.string().min(1).max(256), arguments: z.string().max(MAX_TEXT) }).strict(),
  })
  .passthrough();

const messageSchema = z.discriminatedUnion('role', [
  z.object({ role: z.enum(['system', 'developer']), content: contentSchema, name: z.string().max(256).nullish() }).passthrough(),
  z.object({ role: z.literal('user'), content: contentSchema, name: z.string().max(256).nullish() }).passthrough(),
  z
    .object({
      role: z.literal('assistant'),
      content: contentSchema.nullish(),
      name: z.string().max(256).nullish(),
      tool_calls: z.array(toolCallSchema).max(256).nullish(),
      refusal: z.string().max(MAX_TEXT).nullish(),
    })
    .passthrough(),
  z.object({ role: z.literal('tool'), content: contentSchema, tool_call_id: z.string().min(1).max(256) }).passthrough(),
]);

const toolSchema = z
  .object({
    type: z.literal('function'),
    function: z
      .object({
        name: z.string().min(1).max(256),
        description: z.string().max(MAX_TEXT).optional(),
        parameters: z.record(z.unknown()).optional(),
        strict: z.boolean().nullish(),
      })
      .strict(),
  })
  .passthrough();

const toolChoiceSchema = z.union([
  z.enum(['auto', 'none', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string().min(1).max(256) }).strict() }).strict(),
]);

const responseFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }).strict(),
  z.object({ type: z.literal('json_object') }).strict(),
  z
    .object({
      type: z.literal('json_schema'),
      json_schema: z
        .object({ name: z.string().min(1).max(256), schema: z.record(z.unknown()).optional(), description: z.string().max(MAX_TEXT).optional(), strict: z.boolean().nullish() })
        .strict(),
    })
    .strict(),
]);

export const completionBody = z
  .object({
    model: modelNameSchema.optional(),
    messages: z.array(messageSchema).min(1, 'at least one message is required').max(10_000),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().nullish() }).passthrough().nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    max_tokens: z.number().int().min(1).max(1_000_000).nullish(),
    max_completion_tokens: z.number().int().min(1).max(1_000_000).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    stop: z.union([z.string().max(256), z.array(z.string().max(256)).max(8)]).nullish(),
    n: z.literal(1, { errorMap: () => ({ message: 'only n = 1 is supported' }) }).nullish(),
    tools: z.array(toolSchema).max(512).nullish(),
    tool_choice: toolChoiceSchema.nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    response_format: responseFormatSchema.nullish(),
    seed: z.number().int().nullish(),
    presence_penalty: z.number().min(-2).max(2).nullish(),
    frequency_penalty: z.number().min(-2).max(2).nullish(),
    logit_bias: z.record(z.number().min(-100).max(100)).nullish(),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(20).nullish(),
    user: z.string().max(256).nullish(),
    reasoning_effort: z.enum(['minimal', 'low', 'medium', 'high']).nullish(),
    routing_rules: routingRulesSchema.optional(),
    routing: routingPrefsSchema.optional(),
  })
  .passthrough();

export type CompletionBody = z.output<typeof completionBody>;

const knownBody = new Set(Object.keys(completionBody.shape));
const knownMessage = new Set(['role', 'content', 'name', 'tool_calls', 'tool_call_id']);
const knownPart = new Map<string, ReadonlySet<string>>([['text', new Set(['type', 'text'])], ['image_url', new Set(['type', 'image_url'])], ['file', new Set(['type', 'file'])]]);

function toPart(p: z.output<typeof partSchema>): ContentPart {
  const extra = extrasOf(p, knownPart.get(p.type) ?? new Set());
  if (p.type === 'text' && 'text' in p && typeof p.text === 'string') return withExtra<TextPart>({ type: 'text', text: p.text }, extra);
  if (p.type === 'image_url' && 'image_url' in p) {
    const img = p.image_url as { url: string; detail?: string };
    return withExtra<ImagePart>({ type: 'image', source: sourceFromUrl(img.url), ...(img.detail !== undefined ? { detail: img.detail } : {}) }, extra);
  }
  if (p.type === 'file' && 'file' in p) {
    const f = p.file as { file_data?: string; file_id?: string; filename?: string };
    const source = f.file_id !== undefined ? { kind: 'file_id' as const, fileId: f.file_id } : sourceFromUrl(f.file_data!);
    if (source.kind === 'url') throw new ApiError(400, 'Invalid request: file.file_data must be a base64 data: URL', 'invalid_request_error', 'invalid_request', 'file.file_data');
    return withExtra<DocumentPart>({ type: 'document', source, ...(f.filename !== undefined ? { filename: f.filename } : {}) }, extra);
  }
  return { type: 'raw', format: 'openai', wireType: p.type, value: p };
}

const toContent = (c: z.output<typeof contentSchema>): ChatMessage['content'] => (typeof c === 'string' ? c : c.map(toPart));

function toMessage(m: z.output<typeof messageSchema>): ChatMessage {
  const extra = extrasOf(m, m.role === 'assistant' ? new Set([...knownMessage, 'refusal']) : knownMessage);
  const name = 'name' in m && typeof m.name === 'string' ? { name: m.name } : {};
  switch (m.role) {
    case 'system':
    case 'developer':
      return withExtra<ChatMessage>({ role: 'system', content: toContent(m.content), ...name, ...(m.role === 'developer' ? { developer: true } : {}) }, extra);
    case 'user':
      return withExtra<ChatMessage>({ role: 'user', content: toContent(m.content), ...name }, extra);
    case 'tool': {
      const content = typeof m.content === 'string' ? m.content : (toContent(m.content) as ContentPart[]).map((p) => {
        if (p.type !== 'text' && p.type !== 'image' && p.type !== 'document') throw new ApiError(400, `Invalid request: a tool message's content holds text parts only (got ${p.type === 'raw' ? p.wireType : p.type})`, 'invalid_request_error', 'invalid_request', 'messages.content');
        return p;
      });
      return withExtra<ChatMessage>({ role: 'tool', content: [{ type: 'tool_result', toolCallId: m.tool_call_id, content }] }, extra);
    }
    case 'assistant': {
      const parts: ContentPart[] = m.content === undefined || m.content === null ? [] : typeof m.content === 'string' ? (m.content === '' ? [] : [{ type: 'text', text: m.content }]) : m.content.map(toPart);
      if (m.refusal) parts.push({ type: 'raw', format: 'openai', wireType: 'refusal', value: { type: 'refusal', refusal: m.refusal } });
      for (const c of m.tool_calls ?? []) {
        parts.push(withExtra({ type: 'tool_call' as const, id: c.id, name: c.function.name, arguments: c.function.arguments }, extrasOf(c, new Set(['id', 'type', 'function']))));
      }
      // A plain text answer stays a string (the common case, and what every format takes).
      const content = parts.length === 1 && parts[0]!.type === 'text' && !parts[0]!.extra && typeof m.content === 'string' ? m.content : parts;
      return withExtra<ChatMessage>({ role: 'assistant', content, ...name }, extra);
    }
  }
}

function toTool(t: z.output<typeof toolSchema>): ToolDefinition {
  const f = t.function;
  return withExtra<ToolDefinition>(
    {
      name: f.name,
      ...(f.description !== undefined ? { description: f.description } : {}),
      parameters: f.parameters ?? { type: 'object', properties: {} },
      ...(f.strict !== undefined && f.strict !== null ? { strict: f.strict } : {}),
    },
    extrasOf(t, new Set(['type', 'function'])),
  );
}

function toToolChoice(c: z.output<typeof toolChoiceSchema>): ToolChoice {
  return typeof c === 'string' ? { type: c } : { type: 'tool', name: c.function.name };
}

function toResponseFormat(r: z.output<typeof responseFormatSchema>): ResponseFormat {
  if (r.type !== 'json_schema') return { type: r.type };
  const s = r.json_schema;
  return {
    type: 'json_schema',
    name: s.name,
    schema: s.schema ?? { type: 'object' },
    ...(s.description !== undefined ? { description: s.description } : {}),
    ...(s.strict !== undefined && s.strict !== null ? { strict: s.strict } : {}),
  };
}

const def = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

/** The neutral request an OpenAI body describes (routing fields aside). */
export function openaiToNeutral(body: CompletionBody): Omit<ProviderRequest, 'messages'> & { messages: ChatMessage[] } {
  const stop = def(body.stop);
  const extra = extrasOf(body, knownBody);
  const maxTokensField = body.max_completion_tokens != null ? 'max_completion_tokens' : body.max_tokens != null ? 'max_tokens' : undefined;
  const req: ProviderRequest = {
    messages: body.messages.map(toMessage),
    temperature: def(body.temperature),
    maxTokens: def(body.max_completion_tokens) ?? def(body.max_tokens),
    topP: def(body.top_p),
    stop: stop === undefined ? undefined : Array.isArray(stop) ? stop : [stop],
    seed: def(body.seed),
    presencePenalty: def(body.presence_penalty),
    frequencyPenalty: def(body.frequency_penalty),
    logitBias: def(body.logit_bias),
    logprobs: def(body.logprobs),
    topLogprobs: def(body.top_logprobs),
    user: def(body.user),
    reasoningEffort: def(body.reasoning_effort),
    tools: body.tools?.map(toTool),
    toolChoice: body.tool_choice ? toToolChoice(body.tool_choice) : undefined,
    parallelToolCalls: def(body.parallel_tool_calls),
    responseFormat: body.response_format ? toResponseFormat(body.response_format) : undefined,
    wire: { format: 'openai', ...(extra ? { extra } : {}), ...(maxTokensField ? { maxTokensField } : {}) },
  };
  // A tool_choice naming no defined tool is the client's mistake, whatever the upstream.
  if (req.toolChoice?.type === 'tool' && !req.tools?.some((t) => t.name === (req.toolChoice as { name: string }).name)) {
    throw new ApiError(400, `Invalid request: tool_choice names '${req.toolChoice.name}', which is not in tools`, 'invalid_request_error', 'invalid_request', 'tool_choice');
  }
  return req;
}

export function openaiFinish(f: ProviderResult['finishReason']): string {
  return f === 'other' ? 'stop' : f;
}

export function openaiUsage(u: Usage) {
  return {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.inputTokens + u.outputTokens,
    prompt_tokens_details: { cached_tokens: u.cacheReadTokens ?? 0 },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
  };
}

/** The assistant message of a chat.completion for a neutral answer. */
export function openaiMessage(a: Pick<ProviderResult, 'content' | 'toolCalls' | 'reasoning' | 'extra'>, sameFormat: boolean): Record<string, unknown> {
  const messageExtra = sameFormat ? (a.extra?.message as Record<string, unknown> | undefined) : undefined;
  const reasoning = a.reasoning?.map((r) => r.text).join('') ?? '';
  return {
    role: 'assistant',
    content: a.content === '' && a.toolCalls?.length ? null : a.content,
    refusal: null,
    ...(a.toolCalls?.length ? { tool_calls: a.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) } : {}),
    ...(reasoning ? { reasoning_content: reasoning } : {}),
    ...messageExtra,
  };
}
