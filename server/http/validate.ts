// Boundary validation: zod schemas for the chat APIs and one helper that turns a zod failure into
// a 400 in the OpenAI error shape naming the offending field.
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import type { ChatMessage } from '../providers/types.ts';

export function parseOr400<S extends z.ZodTypeAny>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue.path.length ? issue.path.join('.') : 'body';
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem${r.error.issues.length > 2 ? 's' : ''})` : '';
  throw new ApiError(400, `Invalid request: ${where}: ${issue.message}${more}`, 'invalid_request_error', 'invalid_request', where);
}

/** A 400 naming the field inside the body that is wrong (`messages.0.content.1.source`). */
export function bad(message: string, param: string): ApiError {
  return new ApiError(400, `Invalid request: ${param}: ${message}`, 'invalid_request_error', 'invalid_request', param);
}

/** parseOr400 for a value found at `param` inside the body: the 400 names the whole path. */
export function parseWith<S extends z.ZodTypeAny>(schema: S, value: unknown, param: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw bad(issue.message, [param, ...issue.path].join('.'));
}

const MAX_TEXT = 1_000_000;

/** Text or an array of content parts; only text parts are supported. */
export const contentSchema = z.union([
  z.string().max(MAX_TEXT),
  z
    .array(
      z.object({ type: z.string().max(64), text: z.string().max(MAX_TEXT).optional() }).refine((p) => p.type === 'text' && typeof p.text === 'string', {
        message: 'only text content parts ({"type":"text","text":"..."}) are supported',
      }),
    )
    .max(256),
]);

/** Text parts stay parts (the upstream sees them as the client sent them). */
function toNeutralContent(content: z.output<typeof contentSchema>): ChatMessage['content'] {
  return typeof content === 'string' ? content : content.map((p) => ({ type: 'text' as const, text: p.text ?? '' }));
}

export const routingRulesSchema = z
  .array(z.object({ pattern: z.string().min(1).max(500), model: z.string().min(1).max(128) }).strict())
  .max(32);

export const routingPrefsSchema = z
  .object({
    prefer: z.enum(['quality', 'cost', 'latency', 'balanced']).optional(),
    quality_threshold: z.number().min(0).max(1).optional(),
  })
  .strict();

export const modelNameSchema = z.string().min(1).max(128);

/** Messages with roles the gateway understands; 'developer' is OpenAI's newer name for system. */
export const messagesSchema = z
  .array(
    z.object({
      role: z.enum(['system', 'developer', 'user', 'assistant']),
      content: contentSchema,
      name: z.string().max(64).optional(),
    }),
  )
  .min(1, 'at least one message is required')
  .max(1000);

export function toChatMessages(messages: z.output<typeof messagesSchema>): ChatMessage[] {
  return messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: toNeutralContent(m.content), ...(m.name !== undefined ? { name: m.name } : {}) }));
}

/** Something from the user (text, an image, a tool result...); an empty conversation is a client error. */
export function requireUserText(messages: ChatMessage[]): void {
  const said = (m: ChatMessage) =>
    (m.role === 'user' || m.role === 'tool') &&
    (typeof m.content === 'string' ? m.content.trim().length > 0 : m.content.some((p) => p.type !== 'text' || p.text.trim().length > 0));
  if (!messages.some(said)) {
    throw new ApiError(400, 'Invalid request: messages must contain at least one non-empty user message', 'invalid_request_error', 'invalid_request', 'messages');
  }
}

export const stopSchema = z.union([z.string().max(256), z.array(z.string().max(256)).max(8)]).optional();
export const toStopList = (s: z.output<typeof stopSchema>) => (s === undefined ? undefined : Array.isArray(s) ? s : [s]);

/** How deep a chat body may nest (JSON Schemas and metadata included); deeper bodies are a 400, not a stack overflow later. */
export const MAX_DEPTH = 100;

/** 400 when `body` nests deeper than MAX_DEPTH (checked without recursion). */
export function requireShallow(body: unknown): void {
  const stack: [unknown, number][] = [[body, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= MAX_DEPTH) throw new ApiError(400, `Invalid request: the body nests deeper than ${MAX_DEPTH} levels`, 'invalid_request_error', 'invalid_request', 'body');
    if (Array.isArray(v)) for (const item of v) stack.push([item, depth + 1]);
    else for (const k in v) stack.push([(v as Record<string, unknown>)[k], depth + 1]);
  }
}
