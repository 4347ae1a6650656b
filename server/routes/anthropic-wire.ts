// The Anthropic Messages wire format at the gateway's edge: the request body validated with zod
// and mapped block by block to the neutral model (unknown fields kept for an Anthropic upstream),
// and the neutral answer mapped back to a message.
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import type {
  CacheMarker, ChatMessage, ContentPart, Extras, MediaSource, ProviderRequest, ProviderResult, ToolChoice, ToolDefinition, Usage,
} from '../providers/types.ts';
import { bad, modelNameSchema, parseWith, routingPrefsSchema, routingRulesSchema } from '../http/validate.ts';
import { extrasOf } from './openai-wire.ts';

const MAX_TEXT = 1_000_000;

const cacheControl = z.object({ type: z.literal('ephemeral') }).passthrough();

const sourceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('base64'), media_type: z.string().min(1).max(128), data: z.string().min(1) }).strict(),
  z.object({ type: z.literal('url'), url: z.string().url().max(8192) }).strict(),
  z.object({ type: z.literal('text'), media_type: z.string().min(1).max(128), data: z.string().max(MAX_TEXT) }).strict(),
]);

const block = z.object({ type: z.string().min(1).max(64), cache_control: cacheControl.nullish() }).passthrough();
const blocksSchema = z.array(block).max(4096);
const contentSchema = z.union([z.string().max(MAX_TEXT), blocksSchema]);

const toolSchema = z
  .object({
    name: z.string().min(1).max(256),
    type: z.string().max(64).optional(),
    description: z.string().max(MAX_TEXT).optional(),
    input_schema: z.record(z.unknown()).optional(),
    cache_control: cacheControl.nullish(),
  })
  .passthrough();

const toolChoiceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }).strict(),
  z.object({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }).strict(),
  z.object({ type: z.literal('none') }).strict(),
  z.object({ type: z.literal('tool'), name: z.string().min(1).max(256), disable_parallel_tool_use: z.boolean().optional() }).strict(),
]);

const thinkingSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('enabled'), budget_tokens: z.number().int().min(1).max(1_000_000) }).passthrough(),
  z.object({ type: z.literal('disabled') }).strict(),
]);

export const messagesBody = z
  .object({
    model: modelNameSchema.optional(),
    messages: z.array(z.object({ role: z.enum(['user', 'assistant']), content: contentSchema }).passthrough()).min(1, 'at least one message is required').max(10_000),
    system: contentSchema.optional(),
    max_tokens: z.number().int().min(1).max(1_000_000).optional(),
    stream: z.boolean().optional(),
    temperature: z.number().min(0).max(1).optional(),
    top_p: z.number().min(0).max(1).optional(),
    top_k: z.number().int().min(0).optional(),
    stop_sequences: z.array(z.string().max(256)).max(64).optional(),
    metadata: z.object({ user_id: z.string().max(512).nullish() }).passthrough().optional(),
    tools: z.array(toolSchema).max(512).optional(),
    tool_choice: toolChoiceSchema.optional(),
    thinking: thinkingSchema.optional(),
    routing_rules: routingRulesSchema.optional(),
    routing: routingPrefsSchema.optional(),
  })
  .passthrough();

export type MessagesBody = z.output<typeof messagesBody>;

const knownBody = new Set(Object.keys(messagesBody.shape));


const cacheOf = (b: { cache_control?: unknown }): { cache?: CacheMarker } => (b.cache_control ? { cache: b.cache_control as CacheMarker } : {});
const withExtra = <T extends object>(value: T, extra: Extras | undefined): T => (extra ? { ...value, extra } : value);

function toSource(raw: unknown, param: string): MediaSource {
  const s = parseWith(sourceSchema, raw, param);
  if (s.type === 'url') return { kind: 'url', url: s.url };
  if (s.type === 'base64') return { kind: 'base64', mediaType: s.media_type, data: s.data };
  return { kind: 'text', mediaType: s.media_type, data: s.data };
}

const textBlock = z.object({ type: z.literal('text'), text: z.string().max(MAX_TEXT) }).passthrough();
const toolUseBlock = z.object({ type: z.literal('tool_use'), id: z.string().min(1).max(256), name: z.string().min(1).max(256), input: z.unknown() }).passthrough();
const toolResultBlock = z.object({ type: z.literal('tool_result'), tool_use_id: z.string().min(1).max(256), content: contentSchema.optional(), is_error: z.boolean().optional() }).passthrough();
const thinkingBlock = z.object({ type: z.literal('thinking'), thinking: z.string().max(MAX_TEXT), signature: z.string().max(MAX_TEXT).optional() }).passthrough();
const redactedBlock = z.object({ type: z.literal('redacted_thinking'), data: z.string().max(MAX_TEXT) }).passthrough();

/** One content block as a neutral part; a block type the neutral model does not know stays raw (Anthropic only). */
function toPart(b: z.output<typeof block>, param: string): ContentPart {
  const known = (...keys: string[]) => extrasOf(b, new Set(['type', 'cache_control', ...keys]));
  switch (b.type) {
    case 'text': {
      const t = parseWith(textBlock, b, param);
      return withExtra({ type: 'text', text: t.text, ...cacheOf(b) }, known('text'));
    }
    case 'image':
      return withExtra({ type: 'image', source: toSource(b.source, `${param}.source`), ...cacheOf(b) }, known('source'));
    case 'document': {
      if (typeof b.title !== 'string' && b.title !== undefined && b.title !== null) throw bad('title must be a string', `${param}.title`);
      const source = isRecord(b.source) && b.source.type === 'content' ? null : toSource(b.source, `${param}.source`);
      if (!source) return { type: 'raw', format: 'anthropic', wireType: 'document', value: b };
      return withExtra({ type: 'document', source, ...(typeof b.title === 'string' ? { title: b.title } : {}), ...cacheOf(b) }, known('source', 'title'));
    }
    case 'tool_use': {
      const t = parseWith(toolUseBlock, b, param);
      if (!isRecord(t.input)) throw bad('input must be an object', `${param}.input`);
      return withExtra({ type: 'tool_call', id: t.id, name: t.name, arguments: JSON.stringify(t.input), ...cacheOf(b) }, known('id', 'name', 'input'));
    }
    case 'tool_result': {
      const t = parseWith(toolResultBlock, b, param);
      const content = t.content === undefined ? '' : typeof t.content === 'string' ? t.content : t.content.map((inner, k) => {
        const p = toPart(inner, `${param}.content.${k}`);
        if (p.type !== 'text' && p.type !== 'image' && p.type !== 'document') throw bad(`a tool result holds text, image and document blocks only (got ${inner.type})`, `${param}.content.${k}`);
        return p;
      });
      return withExtra({ type: 'tool_result', toolCallId: t.tool_use_id, content, ...(t.is_error !== undefined ? { isError: t.is_error } : {}), ...cacheOf(b) }, known('tool_use_id', 'content', 'is_error'));
    }
    case 'thinking': {
      const t = parseWith(thinkingBlock, b, param);
      return withExtra({ type: 'reasoning', text: t.thinking, ...(t.signature !== undefined ? { signature: t.signature } : {}) }, known('thinking', 'signature'));
    }
    case 'redacted_thinking': {
      const t = parseWith(redactedBlock, b, param);
      return withExtra({ type: 'reasoning', text: '', redactedData: t.data }, known('data'));
    }
    default:
      return { type: 'raw', format: 'anthropic', wireType: b.type, value: b };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toContent(c: z.output<typeof contentSchema>, param: string): ChatMessage['content'] {
  return typeof c === 'string' ? c : c.map((b, i) => toPart(b, `${param}.${i}`));
}

function toTool(t: z.output<typeof toolSchema>): ToolDefinition {
  // Anthropic's own tools (web_search_20250305, bash_..., text_editor_...) have a type and no schema.
  if (t.type !== undefined && t.type !== 'custom') return { name: t.name, parameters: {}, native: { format: 'anthropic', value: t } };
  return withExtra<ToolDefinition>(
    {
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      parameters: t.input_schema ?? { type: 'object', properties: {} },
      ...(typeof t.eager_input_streaming === 'boolean' ? { eagerInputStreaming: t.eager_input_streaming } : {}),
      ...cacheOf(t),
    },
    extrasOf(t, new Set(['name', 'type', 'description', 'input_schema', 'cache_control', ...(typeof t.eager_input_streaming === 'boolean' ? ['eager_input_streaming'] : [])])),
  );
}

function toToolChoice(c: z.output<typeof toolChoiceSchema>): ToolChoice {
  if (c.type === 'any') return { type: 'required' };
  if (c.type === 'tool') return { type: 'tool', name: c.name };
  return { type: c.type };
}

/** The neutral request an Anthropic body describes (routing fields aside). */
export function anthropicToNeutral(body: MessagesBody, betaHeader: string | undefined, query: string | undefined): ProviderRequest {
  const messages: ChatMessage[] = body.messages.map((m, i) => withExtra<ChatMessage>({ role: m.role, content: toContent(m.content, `messages.${i}.content`) }, extrasOf(m, new Set(['role', 'content']))));
  if (body.system !== undefined) {
    const system = toContent(body.system, 'system');
    if (typeof system !== 'string' && system.some((p) => p.type !== 'text')) throw bad('system blocks must be text blocks', 'system');
    messages.unshift({ role: 'system', content: system });
  }
  const extra = extrasOf(body, knownBody) ?? {};
  // metadata carries user_id; anything else in it stays Anthropic's.
  let user: string | undefined;
  if (body.metadata) {
    const { user_id, ...rest } = body.metadata;
    if (Object.keys(rest).length > 0) extra.metadata = body.metadata;
    else if (typeof user_id === 'string') user = user_id;
  }
  const tc = body.tool_choice;
  const req: ProviderRequest = {
    messages,
    temperature: body.temperature,
    maxTokens: body.max_tokens,
    topP: body.top_p,
    topK: body.top_k,
    stop: body.stop_sequences,
    user,
    thinking: body.thinking
      ? body.thinking.type === 'enabled'
        ? withExtra({ type: 'enabled' as const, budgetTokens: body.thinking.budget_tokens }, extrasOf(body.thinking, new Set(['type', 'budget_tokens'])))
        : { type: 'disabled' }
      : undefined,
    tools: body.tools?.map(toTool),
    toolChoice: tc ? toToolChoice(tc) : undefined,
    parallelToolCalls: tc && 'disable_parallel_tool_use' in tc && tc.disable_parallel_tool_use !== undefined ? !tc.disable_parallel_tool_use : undefined,
    wire: {
      format: 'anthropic',
      ...(Object.keys(extra).length ? { extra } : {}),
      ...(betaHeader ? { headers: { 'anthropic-beta': betaHeader } } : {}),
      ...(query ? { query } : {}),
    },
  };
  if (req.toolChoice?.type === 'tool' && !req.tools?.some((t) => t.name === (req.toolChoice as { name: string }).name)) {
    throw bad(`names '${req.toolChoice.name}', which is not in tools`, 'tool_choice');
  }
  return req;
}

export function anthropicStopReason(a: Pick<ProviderResult, 'finishReason' | 'extra'>, sameFormat: boolean): string {
  if (sameFormat && typeof a.extra?.stop_reason === 'string') return a.extra.stop_reason;
  switch (a.finishReason) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}

export function anthropicUsage(u: Usage) {
  const read = u.cacheReadTokens ?? 0;
  const write = u.cacheWriteTokens ?? 0;
  return { input_tokens: Math.max(0, u.inputTokens - read - write), output_tokens: u.outputTokens, cache_creation_input_tokens: write, cache_read_input_tokens: read };
}

/** Tool call arguments as the `input` object of a tool_use block. */
export function toolInput(args: string): Record<string, unknown> {
  if (args.trim() === '') return {};
  try {
    const v = JSON.parse(args);
    if (isRecord(v)) return v;
  } catch {
    /* fall through */
  }
  throw new ApiError(502, 'The upstream model returned tool call arguments that are not a JSON object', 'upstream_error', 'bad_tool_arguments');
}

/** The content blocks of a message for a neutral answer (an Anthropic upstream's own blocks when the formats match). */
export function anthropicContent(a: Pick<ProviderResult, 'content' | 'toolCalls' | 'reasoning' | 'extra'>, sameFormat: boolean): unknown[] {
  if (sameFormat && Array.isArray(a.extra?.content)) return a.extra.content;
  const blocks: unknown[] = [];
  for (const r of a.reasoning ?? []) {
    blocks.push(r.redactedData !== undefined ? { type: 'redacted_thinking', data: r.redactedData } : { type: 'thinking', thinking: r.text, signature: r.signature ?? '' });
  }
  if (a.content !== '' || !a.toolCalls?.length) blocks.push({ type: 'text', text: a.content });
  for (const c of a.toolCalls ?? []) blocks.push({ type: 'tool_use', id: c.id, name: c.name, input: toolInput(c.arguments) });
  return blocks;
}
