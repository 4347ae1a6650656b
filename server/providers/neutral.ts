// Helpers over the provider-neutral message model: text of a message, and the one check every
// adapter uses to name the first field of a request its wire format cannot express.
import type { ChatMessage, ContentPart, ProviderRequest, ToolResultPart, WireFormat } from './types.ts';

/** The text parts of a message joined with "\n" (what routing, estimates and the demo read). */
export function textOf(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  let out = '';
  let first = true;
  for (const p of content) {
    if (p.type !== 'text') continue;
    out += first ? p.text : `\n${p.text}`;
    first = false;
  }
  return out;
}

/** All the text a request carries (system, user, assistant, tool results), for token estimates. */
export function allText(messages: ChatMessage[]): string {
  const out: string[] = [];
  for (const m of messages) {
    if (typeof m.content === 'string') {
      out.push(m.content);
      continue;
    }
    for (const p of m.content) {
      if (p.type === 'text') out.push(p.text);
      else if (p.type === 'tool_call') out.push(p.name, p.arguments);
      else if (p.type === 'tool_result') out.push(typeof p.content === 'string' ? p.content : textOf(p.content));
      else if (p.type === 'reasoning') out.push(p.text);
    }
  }
  return out.join('\n');
}

export function partsOf(content: ChatMessage['content']): ContentPart[] {
  return typeof content === 'string' ? (content === '' ? [] : [{ type: 'text', text: content }]) : content;
}

/** Neutral request fields by the name an OpenAI / Anthropic client gives them (for error messages). */
const wireNames: Record<string, Partial<Record<WireFormat, string>> & { default: string }> = {
  temperature: { default: 'temperature' },
  maxTokens: { default: 'max_tokens' },
  topP: { default: 'top_p' },
  stop: { default: 'stop', anthropic: 'stop_sequences' },
  topK: { default: 'top_k' },
  seed: { default: 'seed' },
  presencePenalty: { default: 'presence_penalty' },
  frequencyPenalty: { default: 'frequency_penalty' },
  logitBias: { default: 'logit_bias' },
  logprobs: { default: 'logprobs' },
  topLogprobs: { default: 'top_logprobs' },
  user: { default: 'user', anthropic: 'metadata.user_id' },
  reasoningEffort: { default: 'reasoning_effort' },
  thinking: { default: 'thinking' },
  tools: { default: 'tools' },
  toolChoice: { default: 'tool_choice' },
  parallelToolCalls: { default: 'parallel_tool_calls', anthropic: 'tool_choice.disable_parallel_tool_use' },
  responseFormat: { default: 'response_format' },
};

export type NeutralField = keyof typeof wireNames;

export function wireName(field: string, req: ProviderRequest): string {
  const names = wireNames[field];
  if (!names) return field;
  return (req.wire && names[req.wire.format]) ?? names.default;
}

/** What one wire format can carry, as data. */
export interface FormatSupport {
  /** The client wire format whose extras this upstream takes as they are. */
  format: WireFormat | null;
  /** Neutral top-level fields it can express. */
  fields: ReadonlySet<string>;
  /** Content part types it can express (in any role). */
  parts: ReadonlySet<ContentPart['type']>;
  /** Media sources it can fetch or embed for images / documents. */
  imageSources: ReadonlySet<string>;
  documentSources: ReadonlySet<string>;
  /** Tool results may hold images / documents (not only text). */
  richToolResults: boolean;
  messageNames: boolean;
}

const hasKeys = (o: Record<string, unknown> | undefined) => o !== undefined && Object.keys(o).length > 0;

/**
 * The first thing in `req` that `support` cannot express, named as the client would name it, or
 * null. Same-format extras pass; another format's extras are refused by name.
 */
export function firstUnsupported(req: ProviderRequest, support: FormatSupport): string | null {
  for (const field in wireNames) {
    const value = req[field as keyof ProviderRequest];
    if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    if (!support.fields.has(field)) return wireName(field, req);
  }
  const foreign = req.wire !== undefined && req.wire.format !== support.format;
  if (foreign && req.wire) {
    if (hasKeys(req.wire.extra)) return Object.keys(req.wire.extra!)[0]!;
    if (hasKeys(req.wire.headers)) return `${Object.keys(req.wire.headers!)[0]} header`;
    if (req.thinking?.type === 'enabled' && hasKeys(req.thinking.extra)) return `thinking.${Object.keys(req.thinking.extra!)[0]}`;
  }
  for (const tool of req.tools ?? []) {
    if (tool.native && tool.native.format !== support.format) return `tools[${tool.name}] (a ${tool.native.format} built-in tool)`;
    if (foreign && hasKeys(tool.extra)) return `tools[${tool.name}].${Object.keys(tool.extra!)[0]}`;
  }
  for (let i = 0; i < req.messages.length; i++) {
    const m = req.messages[i]!;
    if (m.name !== undefined && !support.messageNames) return `messages[${i}].name`;
    if (foreign && hasKeys(m.extra)) return `messages[${i}].${Object.keys(m.extra!)[0]}`;
    if (typeof m.content === 'string') continue;
    for (let j = 0; j < m.content.length; j++) {
      const why = partProblem(m.content[j]!, support, foreign);
      if (why) return `messages[${i}].content[${j}]${why}`;
    }
  }
  return null;
}

function partProblem(p: ContentPart, support: FormatSupport, foreign: boolean): string | null {
  if (p.type === 'raw') return p.format === support.format ? null : ` (type ${p.wireType}, ${p.format} only)`;
  if (!support.parts.has(p.type)) return ` (type ${p.type === 'tool_call' ? 'tool call' : p.type === 'tool_result' ? 'tool result' : p.type})`;
  if (foreign && hasKeys(p.extra)) return `.${Object.keys(p.extra!)[0]}`;
  if (p.type === 'image' && !support.imageSources.has(p.source.kind)) return ` (image from ${p.source.kind === 'file_id' ? 'a file id' : p.source.kind})`;
  if (p.type === 'document' && !support.documentSources.has(p.source.kind)) return ` (document from ${p.source.kind === 'file_id' ? 'a file id' : p.source.kind})`;
  if (p.type === 'document' && p.source.kind === 'base64' && p.source.mediaType !== 'application/pdf' && support.format !== 'openai') return ` (document of type ${p.source.mediaType})`;
  if (p.type === 'image' && p.detail !== undefined && p.detail !== 'auto' && support.format !== 'openai') return '.detail';
  if (p.type === 'reasoning' && p.signature === undefined && p.redactedData === undefined && support.format === 'anthropic') return ' (thinking without its signature)';
  if (p.type === 'tool_call' && !validJsonObject(p.arguments) && support.format !== 'openai') return ' (tool call arguments that are not a JSON object)';
  if (p.type === 'tool_result') return toolResultProblem(p, support, foreign);
  return null;
}

function toolResultProblem(p: ToolResultPart, support: FormatSupport, foreign: boolean): string | null {
  if (typeof p.content === 'string') return null;
  for (let k = 0; k < p.content.length; k++) {
    const inner = p.content[k]!;
    if (inner.type !== 'text' && !support.richToolResults) return `.content[${k}] (${inner.type} in a tool result)`;
    const why = partProblem(inner, support, foreign);
    if (why) return `.content[${k}]${why}`;
  }
  return null;
}

export function validJsonObject(text: string): boolean {
  if (text.trim() === '') return true;
  try {
    const v = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** A tool call's arguments as the object Anthropic / Gemini / Ollama carry ("" is {}). */
export function argumentsObject(text: string): Record<string, unknown> {
  return text.trim() === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
}

/** base64 image or document as a data: URL (OpenAI's inline form). */
export function dataUrl(mediaType: string, data: string): string {
  return `data:${mediaType};base64,${data}`;
}

const DATA_URL = /^data:([^;,]+);base64,/;

/** An image_url / file_data value as a neutral source: data: URLs become base64. */
export function sourceFromUrl(url: string): { kind: 'url'; url: string } | { kind: 'base64'; mediaType: string; data: string } {
  const m = DATA_URL.exec(url);
  return m ? { kind: 'base64', mediaType: m[1]!, data: url.slice(m[0].length) } : { kind: 'url', url };
}
