// The stored conversation structure of a request (queries.parts_json), part of the store contract:
// its schema and types. server/store/parts.ts builds it from the provider-neutral model (bounded,
// redacted) and parses it back.
import { z } from 'zod';

const mediaSchema = z.object({
  type: z.enum(['image', 'document']),
  mediaType: z.string().nullable(),
  source: z.enum(['url', 'base64', 'text', 'file_id']),
  /** Decoded size of inline data; null for a URL or file id. */
  bytes: z.number().nullable(),
});
const textSchema = z.object({ type: z.literal('text'), text: z.string(), chars: z.number() });
const partSchema = z.discriminatedUnion('type', [
  textSchema,
  mediaSchema.extend({ type: z.literal('image') }),
  mediaSchema.extend({ type: z.literal('document') }),
  z.object({ type: z.literal('tool_call'), id: z.string(), name: z.string(), arguments: z.string(), chars: z.number() }),
  z.object({
    type: z.literal('tool_result'), toolCallId: z.string(), content: z.string(), chars: z.number(),
    isError: z.boolean().optional(), media: z.array(mediaSchema).optional(),
  }),
  /** Reasoning is not stored, only its size. */
  z.object({ type: z.literal('reasoning'), chars: z.number() }),
  z.object({ type: z.literal('raw'), wireType: z.string() }),
]);
const toolCallSchema = z.object({ id: z.string(), name: z.string(), arguments: z.string(), chars: z.number() });

export const storedPartsSchema = z.object({
  v: z.literal(1),
  messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant', 'tool']), parts: z.array(partSchema) })),
  /** Older messages left out to stay within MAX_PARTS_BYTES. */
  omittedMessages: z.number().optional(),
  tools: z.array(z.object({
    name: z.string(),
    /** The JSON Schema as JSON text, cut at MAX_PART_CHARS; null for a provider-defined tool. */
    parameters: z.string().nullable(),
    truncated: z.boolean().optional(),
  })).optional(),
  omittedTools: z.number().optional(),
  toolChoice: z.union([
    z.object({ type: z.enum(['auto', 'none', 'required']) }),
    z.object({ type: z.literal('tool'), name: z.string() }),
  ]).optional(),
  answer: z.object({ toolCalls: z.array(toolCallSchema), finishReason: z.string().nullable() }).optional(),
});

export type StoredParts = z.infer<typeof storedPartsSchema>;
export type StoredPart = z.infer<typeof partSchema>;
export type StoredMedia = z.infer<typeof mediaSchema>;
export type StoredToolCall = z.infer<typeof toolCallSchema>;
