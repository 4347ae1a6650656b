// The conversation structure a request carried and its answer, as stored in queries.parts_json:
// content-part summaries per message (text cut short; images and documents as media type, source
// kind and size, never their data or URL), tool definitions (names and parameter schemas), the
// tool choice, tool calls and results, and the answer's tool calls and finish reason. Built from
// the provider-neutral model, so every endpoint stores the same shape. Bounded to MAX_PARTS_BYTES
// of JSON: the newest messages are kept, older ones counted in `omittedMessages`. Key-shaped
// strings (KEY_LIKE) are redacted; headers, metadata and wire extras are never stored.
import type { ChatMessage, ContentPart, FinishReason, MediaSource, ToolCall, ToolChoice, ToolDefinition } from '../providers/types.ts';
import { KEY_LIKE } from '../secrets.ts';
import { storedPartsSchema, type StoredMedia, type StoredPart, type StoredParts, type StoredToolCall } from '../../core/stored-parts.ts';

// The stored shape (schema and types) is part of the store contract: core/stored-parts.ts.
export { storedPartsSchema, type StoredPart, type StoredParts } from '../../core/stored-parts.ts';

/** Largest stored JSON of one request's parts (UTF-8 bytes, counted conservatively). */
export const MAX_PARTS_BYTES = 64 * 1024;
/** Characters kept of one text part, tool call's arguments, tool result or parameter schema. */
export const MAX_PART_CHARS = 2_000;
/** Tool definitions kept (the rest are counted in `omittedTools`). */
export const MAX_TOOLS = 64;
const MAX_NAME_CHARS = 200;

type StoredMessage = StoredParts['messages'][number];

/** JSON size of a string in UTF-8 bytes, quotes included (an upper bound: escapes counted at their longest). */
function jsonBytes(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x20 ? 6 : c === 34 || c === 92 ? 2 : c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }
  return n;
}
/** Keys, punctuation and numbers of one part or message, beyond its strings. */
const PART_OVERHEAD = 96;

const clean = (s: string): string => s.replace(KEY_LIKE, '[redacted]');
const cut = (s: string, max = MAX_PART_CHARS): string => clean(s.length > max ? s.slice(0, max) : s);

function media(type: 'image' | 'document', src: MediaSource): StoredMedia {
  switch (src.kind) {
    case 'base64': {
      const pad = src.data.endsWith('==') ? 2 : src.data.endsWith('=') ? 1 : 0;
      return { type, mediaType: cut(src.mediaType, MAX_NAME_CHARS), source: 'base64', bytes: Math.max(0, Math.floor((src.data.length * 3) / 4) - pad) };
    }
    case 'text': return { type, mediaType: cut(src.mediaType, MAX_NAME_CHARS), source: 'text', bytes: Buffer.byteLength(src.data) };
    // The URL itself is not kept: signed URLs carry credentials.
    case 'url': return { type, mediaType: null, source: 'url', bytes: null };
    case 'file_id': return { type, mediaType: null, source: 'file_id', bytes: null };
  }
}

/** One part's summary and its JSON size. */
function part(p: ContentPart): [StoredPart, number] {
  switch (p.type) {
    case 'text': {
      const text = cut(p.text);
      return [{ type: 'text', text, chars: p.text.length }, PART_OVERHEAD + jsonBytes(text)];
    }
    case 'image':
    case 'document': {
      const m = media(p.type, p.source);
      return [m, PART_OVERHEAD + (m.mediaType?.length ?? 0) * 3];
    }
    case 'tool_call': {
      const id = cut(p.id, MAX_NAME_CHARS);
      const name = cut(p.name, MAX_NAME_CHARS);
      const args = cut(p.arguments);
      return [{ type: 'tool_call', id, name, arguments: args, chars: p.arguments.length }, PART_OVERHEAD + jsonBytes(id) + jsonBytes(name) + jsonBytes(args)];
    }
    case 'tool_result': {
      const toolCallId = cut(p.toolCallId, MAX_NAME_CHARS);
      let text = '';
      const found: StoredMedia[] = [];
      if (typeof p.content === 'string') text = p.content;
      else {
        for (const c of p.content) {
          if (c.type === 'text') text += text ? `\n${c.text}` : c.text;
          else found.push(media(c.type, c.source));
        }
      }
      const content = cut(text);
      const out: StoredPart = { type: 'tool_result', toolCallId, content, chars: text.length };
      if (p.isError) out.isError = true;
      if (found.length) out.media = found;
      return [out, PART_OVERHEAD * (1 + found.length) + jsonBytes(toolCallId) + jsonBytes(content)];
    }
    case 'reasoning': return [{ type: 'reasoning', chars: p.text.length }, PART_OVERHEAD];
    case 'raw': {
      const wireType = cut(p.wireType, MAX_NAME_CHARS);
      return [{ type: 'raw', wireType }, PART_OVERHEAD + jsonBytes(wireType)];
    }
  }
}

function message(m: ChatMessage): [StoredMessage, number] {
  if (typeof m.content === 'string') {
    const [p, size] = part({ type: 'text', text: m.content });
    return [{ role: m.role, parts: [p] }, PART_OVERHEAD + size];
  }
  const parts: StoredPart[] = [];
  let size = PART_OVERHEAD;
  for (const c of m.content) {
    const [p, n] = part(c);
    parts.push(p);
    size += n;
  }
  return [{ role: m.role, parts }, size];
}

function toolCall(c: ToolCall & { chars?: number }): [StoredToolCall, number] {
  const id = cut(c.id, MAX_NAME_CHARS);
  const name = cut(c.name, MAX_NAME_CHARS);
  const args = cut(c.arguments);
  return [{ id, name, arguments: args, chars: c.chars ?? c.arguments.length }, PART_OVERHEAD + jsonBytes(id) + jsonBytes(name) + jsonBytes(args)];
}

export interface PartsInput {
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  /** The answer: its tool calls and finish reason; absent when no answer came. */
  /** `chars`: the arguments' full length when only their start was kept (a streamed answer). */
  answer?: { toolCalls?: (ToolCall & { chars?: number })[]; finishReason?: FinishReason | null } | null;
}

/**
 * The stored summary of a request and its answer, at most MAX_PARTS_BYTES of JSON. The answer's
 * tool calls and the tool definitions are kept first; then messages from the newest back.
 */
export function storedParts(input: PartsInput, maxBytes = MAX_PARTS_BYTES): StoredParts {
  const out: StoredParts = { v: 1, messages: [] };
  let budget = maxBytes - 256;
  if (input.answer) {
    const toolCalls: NonNullable<StoredParts['answer']>['toolCalls'] = [];
    for (const c of input.answer.toolCalls ?? []) {
      const [t, n] = toolCall(c);
      if (n > budget / 4) break; // the answer's calls take at most a quarter
      budget -= n;
      toolCalls.push(t);
    }
    out.answer = { toolCalls, finishReason: input.answer.finishReason ?? null };
  }
  if (input.toolChoice) {
    out.toolChoice = input.toolChoice.type === 'tool' ? { type: 'tool', name: cut(input.toolChoice.name, MAX_NAME_CHARS) } : { type: input.toolChoice.type };
    budget -= PART_OVERHEAD + MAX_NAME_CHARS * 3;
  }
  if (input.tools?.length) {
    const tools: NonNullable<StoredParts['tools']> = [];
    let omitted = 0;
    for (const t of input.tools) {
      const nativeName = t.native ? t.native.value['name'] ?? t.native.value['type'] : undefined;
      const name = cut(typeof nativeName === 'string' ? nativeName : t.name, MAX_NAME_CHARS);
      const schema = t.native ? null : JSON.stringify(t.parameters ?? {});
      const parameters = schema === null ? null : cut(schema);
      const n = PART_OVERHEAD + jsonBytes(name) + (parameters === null ? 0 : jsonBytes(parameters));
      if (tools.length >= MAX_TOOLS || n > budget / 2) {
        omitted++;
        continue;
      }
      budget -= n;
      tools.push(schema !== null && schema.length > MAX_PART_CHARS ? { name, parameters, truncated: true } : { name, parameters });
    }
    out.tools = tools;
    if (omitted) out.omittedTools = omitted;
  }
  // Newest messages first into the budget; what does not fit (an older message) is counted.
  const kept: StoredMessage[] = [];
  let i = input.messages.length - 1;
  for (; i >= 0; i--) {
    const [m, n] = message(input.messages[i]!);
    if (n > budget) break;
    budget -= n;
    kept.push(m);
  }
  out.messages = kept.reverse();
  if (i >= 0) out.omittedMessages = i + 1;
  return out;
}

/** Stored parts JSON read back (zod-checked); null for older rows (NULL) or anything unreadable. */
export function parseStoredParts(json: string | null | undefined): StoredParts | null {
  if (json == null) return null;
  try {
    const r = storedPartsSchema.safeParse(JSON.parse(json));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
