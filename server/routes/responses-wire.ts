// The OpenAI Responses API at the gateway's edge: the request body validated with zod and mapped
// item by item to the neutral model (any adapter can answer it); fields with no neutral meaning
// are refused by name. The answer side (output items, the event stream) is in responses.ts.
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import { sourceFromUrl } from '../providers/neutral.ts';
import type { ChatMessage, ContentPart, ProviderRequest, ResponseFormat, ToolChoice, ToolDefinition } from '../providers/types.ts';
import { bad, modelNameSchema, parseWith, routingPrefsSchema, routingRulesSchema } from '../http/validate.ts';

const MAX_TEXT = 1_000_000;
const id = z.string().min(1).max(256);

const inputText = z.object({ type: z.literal('input_text'), text: z.string().max(MAX_TEXT) }).strict();
const outputText = z.object({ type: z.literal('output_text'), text: z.string().max(MAX_TEXT), annotations: z.array(z.unknown()).max(0, 'annotations cannot be sent on').optional(), logprobs: z.array(z.unknown()).optional() }).strict();
const refusal = z.object({ type: z.literal('refusal'), refusal: z.string().max(MAX_TEXT) }).strict();
const inputImage = z
  .object({ type: z.literal('input_image'), image_url: z.string().min(1).nullish(), file_id: z.string().max(256).nullish(), detail: z.enum(['auto', 'low', 'high']).optional() })
  .strict()
  .refine((p) => p.image_url != null || p.file_id != null, 'input_image needs image_url or file_id');
const inputFile = z
  .object({ type: z.literal('input_file'), file_data: z.string().min(1).nullish(), file_id: z.string().max(256).nullish(), filename: z.string().max(1024).nullish(), file_url: z.string().url().nullish() })
  .strict()
  .refine((p) => p.file_data != null || p.file_id != null || p.file_url != null, 'input_file needs file_data, file_id or file_url');
const contentPart = z.union([inputText, outputText, refusal, inputImage, inputFile]);
const content = z.union([z.string().max(MAX_TEXT), z.array(contentPart).max(1024)]);

const messageItem = z
  .object({
    type: z.literal('message').optional(),
    role: z.enum(['user', 'system', 'developer', 'assistant']),
    content,
    id: id.optional(),
    status: z.string().max(32).optional(),
    phase: z.string().max(32).nullish(),
  })
  .strict();
const functionCallItem = z
  .object({ type: z.literal('function_call'), call_id: id, name: z.string().min(1).max(256), arguments: z.string().max(MAX_TEXT), id: id.optional(), status: z.string().max(32).optional() })
  .strict();
const functionCallOutputItem = z
  .object({ type: z.literal('function_call_output'), call_id: id, output: z.union([z.string().max(MAX_TEXT), z.array(contentPart).max(1024)]), id: id.nullish(), status: z.string().max(32).nullish() })
  .strict();
const itemReference = z.object({ type: z.literal('item_reference'), id }).strict();

const functionTool = z
  .object({ type: z.literal('function'), name: z.string().min(1).max(256), description: z.string().max(MAX_TEXT).nullish(), parameters: z.record(z.unknown()).nullish(), strict: z.boolean().nullish() })
  .strict();

const textFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }).strict(),
  z.object({ type: z.literal('json_object') }).strict(),
  z.object({ type: z.literal('json_schema'), name: z.string().min(1).max(256), schema: z.record(z.unknown()), description: z.string().max(MAX_TEXT).nullish(), strict: z.boolean().nullish() }).strict(),
]);

/** Fields of the Responses API the gateway cannot honour (server-side state, built-in tools, ...): 400 naming them. */
const REFUSED = ['conversation', 'background', 'prompt', 'max_tool_calls', 'service_tier', 'top_logprobs', 'prompt_cache_key', 'prompt_cache_retention', 'prompt_cache_options', 'safety_identifier', 'stream_options'];

export const responsesBody = z
  .object({
    model: modelNameSchema.optional(),
    input: z.union([z.string().max(MAX_TEXT), z.array(z.record(z.unknown())).min(1).max(10_000)]),
    instructions: z.string().max(MAX_TEXT).nullish(),
    previous_response_id: z.string().min(1).max(256).nullish(),
    tools: z.array(z.record(z.unknown())).max(512).nullish(),
    tool_choice: z.union([z.enum(['auto', 'none', 'required']), z.object({ type: z.literal('function'), name: z.string().min(1).max(256) }).strict()]).nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    max_output_tokens: z.number().int().min(1).max(1_000_000).nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    stream: z.boolean().nullish(),
    text: z.object({ format: textFormat.nullish(), verbosity: z.string().max(32).nullish() }).strict().nullish(),
    reasoning: z.object({ effort: z.enum(['minimal', 'low', 'medium', 'high']).nullish(), summary: z.string().max(32).nullish() }).strict().nullish(),
    user: z.string().max(256).nullish(),
    metadata: z.record(z.string().max(512)).nullish(),
    store: z.boolean().nullish(),
    include: z.array(z.string().max(128)).max(64).nullish(),
    truncation: z.string().max(32).nullish(),
    routing_rules: routingRulesSchema.optional(),
    routing: routingPrefsSchema.optional(),
  })
  .passthrough();

export type ResponsesBody = z.output<typeof responsesBody>;

const known = new Set(Object.keys(responsesBody.shape));

export function unsupported(field: string, why = 'the gateway cannot carry it to its upstreams'): ApiError {
  return new ApiError(400, `Unsupported parameter: ${field}: ${why}`, 'invalid_request_error', 'unsupported_parameter', field.split(/[ []/)[0]!);
}


function toPart(p: z.output<typeof contentPart>, param: string): ContentPart {
  switch (p.type) {
    case 'input_text':
    case 'output_text':
      return { type: 'text', text: p.text };
    case 'refusal':
      return { type: 'raw', format: 'openai', wireType: 'refusal', value: { type: 'refusal', refusal: p.refusal } };
    case 'input_image':
      return { type: 'image', source: p.image_url != null ? sourceFromUrl(p.image_url) : { kind: 'file_id', fileId: p.file_id! }, ...(p.detail ? { detail: p.detail } : {}) };
    case 'input_file': {
      if (p.file_id != null) return { type: 'document', source: { kind: 'file_id', fileId: p.file_id }, ...(p.filename ? { filename: p.filename } : {}) };
      const source = p.file_data != null ? sourceFromUrl(p.file_data) : { kind: 'url' as const, url: p.file_url! };
      if (p.file_data != null && source.kind === 'url') throw bad('file_data must be a base64 data: URL', `${param}.file_data`);
      return { type: 'document', source, ...(p.filename ? { filename: p.filename } : {}) };
    }
  }
}

const toContent = (c: z.output<typeof content>, param: string): ChatMessage['content'] => (typeof c === 'string' ? c : c.map((p, i) => toPart(p, `${param}.${i}`)));

/** What the gateway remembers of its recent answers: output items (item_reference) and conversations (previous_response_id). */
export interface ResponseMemory {
  item(id: string): Record<string, unknown> | undefined;
  /** The whole conversation up to and including the response's output, or undefined when it is not (or no longer) known. */
  conversation(responseId: string): ChatMessage[] | undefined;
}

/**
 * Input items as neutral messages, after `prior` (a previous response's conversation): function
 * calls join the assistant turn before them, outputs become tool messages.
 */
export function inputMessages(input: ResponsesBody['input'] | Record<string, unknown>[], memory: Pick<ResponseMemory, 'item'>, prior: ChatMessage[] = []): ChatMessage[] {
  const out: ChatMessage[] = [...prior];
  if (typeof input === 'string') {
    out.push({ role: 'user', content: input });
    return out;
  }
  const assistantParts = (): ContentPart[] => {
    // A previous response's turns stay as they were answered; new items start turns of their own.
    const last = out.length > prior.length ? out.at(-1) : undefined;
    if (last?.role === 'assistant') {
      if (typeof last.content === 'string') last.content = last.content === '' ? [] : [{ type: 'text', text: last.content }];
      return last.content;
    }
    const m: ChatMessage = { role: 'assistant', content: [] };
    out.push(m);
    return m.content as ContentPart[];
  };
  input.forEach((raw, i) => {
    const param = `input.${i}`;
    let item = raw;
    if (item.type === 'item_reference') {
      const ref = parseWith(itemReference, item, param);
      const found = memory.item(ref.id);
      if (!found) throw unsupported(`${param} (item_reference to '${ref.id}')`, 'the gateway keeps only the items it answered recently, and this one is not among them; send the item itself');
      item = found;
    }
    switch (item.type ?? 'message') {
      case 'message': {
        const m = parseWith(messageItem, item, param);
        const c = toContent(m.content, `${param}.content`);
        if (m.role === 'assistant') {
          assistantParts().push(...(typeof c === 'string' ? (c === '' ? [] : [{ type: 'text' as const, text: c }]) : c));
        } else {
          out.push({ role: m.role === 'developer' ? 'system' : m.role, content: c, ...(m.role === 'developer' ? { developer: true } : {}) });
        }
        return;
      }
      case 'function_call': {
        const f = parseWith(functionCallItem, item, param);
        assistantParts().push({ type: 'tool_call', id: f.call_id, name: f.name, arguments: f.arguments });
        return;
      }
      case 'function_call_output': {
        const f = parseWith(functionCallOutputItem, item, param);
        const c = typeof f.output === 'string' ? f.output : f.output.map((p, k) => {
          const part = toPart(p, `${param}.output.${k}`);
          if (part.type !== 'text' && part.type !== 'image' && part.type !== 'document') throw bad('a function call output holds text, images and files only', `${param}.output.${k}`);
          return part;
        });
        out.push({ role: 'tool', content: [{ type: 'tool_result', toolCallId: f.call_id, content: c }] });
        return;
      }
      default:
        throw unsupported(`${param} (type ${String(item.type).slice(0, 64)})`, 'only message, function_call, function_call_output and item_reference items can be carried');
    }
  });
  return out;
}

function toTool(raw: Record<string, unknown>, i: number): ToolDefinition {
  if (raw.type !== 'function') throw unsupported(`tools.${i} (type ${String(raw.type).slice(0, 64)})`, 'only function tools can be carried to every upstream');
  const t = parseWith(functionTool, raw, `tools.${i}`);
  return {
    name: t.name,
    ...(t.description != null ? { description: t.description } : {}),
    parameters: t.parameters ?? { type: 'object', properties: {} },
    ...(t.strict != null ? { strict: t.strict } : {}),
  };
}

function toFormat(f: z.output<typeof textFormat>): ResponseFormat {
  if (f.type !== 'json_schema') return { type: f.type };
  return { type: 'json_schema', name: f.name, schema: f.schema, ...(f.description != null ? { description: f.description } : {}), ...(f.strict != null ? { strict: f.strict } : {}) };
}

const def = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

/**
 * The neutral request a Responses body describes (routing fields aside), and the messages its input
 * adds to the conversation (what a later previous_response_id continues; instructions are not carried). Refuses what it cannot map, by name.
 */
export function responsesToNeutral(body: ResponsesBody, memory: ResponseMemory): { request: ProviderRequest; added: ChatMessage[] } {
  for (const k in body) {
    if (known.has(k) || body[k] === null || body[k] === undefined) continue;
    throw REFUSED.includes(k) ? unsupported(k) : unsupported(k, 'it is not a field the gateway knows how to carry');
  }
  if (body.include?.length) throw unsupported('include', 'no extra output data (encrypted reasoning, logprobs, search results) is kept');
  if (body.truncation != null && body.truncation !== 'disabled') throw unsupported('truncation', "only 'disabled' can be honoured");
  if (body.text?.verbosity != null && body.text.verbosity !== 'medium') throw unsupported('text.verbosity', "only 'medium' can be carried to every upstream");
  if (body.reasoning?.summary != null) throw unsupported('reasoning.summary', 'reasoning summaries cannot be asked of every upstream');
  const tools = body.tools?.map(toTool);
  const tc = body.tool_choice;
  const toolChoice: ToolChoice | undefined = tc == null ? undefined : typeof tc === 'string' ? { type: tc } : { type: 'tool', name: tc.name };
  if (toolChoice?.type === 'tool' && !tools?.some((t) => t.name === (toolChoice as { name: string }).name)) throw bad(`names '${toolChoice.name}', which is not in tools`, 'tool_choice');
  const format = body.text?.format;
  let prior: ChatMessage[] = [];
  if (body.previous_response_id != null) {
    const known = memory.conversation(body.previous_response_id);
    if (!known) throw unsupported(`previous_response_id ('${body.previous_response_id.slice(0, 64)}')`, 'the gateway keeps the conversations it answered for an hour, per process, and this one is not among them (or was sent with store: false); send the whole input instead');
    prior = known;
  }
  const conversation = inputMessages(body.input, memory, prior);
  const request: ProviderRequest = {
    messages: body.instructions ? [{ role: 'system', content: body.instructions }, ...conversation] : conversation,
    temperature: def(body.temperature),
    maxTokens: def(body.max_output_tokens),
    topP: def(body.top_p),
    user: def(body.user),
    reasoningEffort: def(body.reasoning?.effort),
    tools,
    toolChoice,
    parallelToolCalls: def(body.parallel_tool_calls),
    responseFormat: format && format.type !== 'text' ? toFormat(format) : undefined,
  };
  return { request, added: conversation.slice(prior.length) };
}
