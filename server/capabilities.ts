// What a request needs from a model (tools, vision, JSON output, output and context length) and
// the first configured capability a model lacks for it. Models without `capabilities` lack nothing.
import type { ModelSpec } from './config.ts';
import { estimateTokens } from './providers/http.ts';
import { allText } from './providers/neutral.ts';
import type { ContentPart, ProviderRequest } from './providers/types.ts';

export interface RequestNeeds {
  tools: boolean;
  vision: boolean;
  json: boolean;
  maxTokens?: number;
  /** Input tokens, estimated on first use (only models with a contextWindow ask). */
  inputTokens(): number;
}

const hasImage = (parts: ContentPart[]): boolean =>
  parts.some((p) => p.type === 'image' || (p.type === 'tool_result' && typeof p.content !== 'string' && p.content.some((c) => c.type === 'image')));

export function requestNeeds(req: ProviderRequest): RequestNeeds {
  let tools = (req.tools?.length ?? 0) > 0;
  let vision = false;
  for (const m of req.messages) {
    if (typeof m.content === 'string') continue;
    if (!tools && m.content.some((p) => p.type === 'tool_call' || p.type === 'tool_result')) tools = true;
    if (!vision && hasImage(m.content)) vision = true;
  }
  let input: number | undefined;
  return {
    tools,
    vision,
    json: req.responseFormat !== undefined && req.responseFormat.type !== 'text',
    maxTokens: req.maxTokens,
    inputTokens: () => (input ??= estimateTokens(allText(req.messages))),
  };
}

/** The capability `spec` lacks for this request: the request field that needs it and what the config says. */
export function lackedCapability(spec: ModelSpec, needs: RequestNeeds): { field: string; capability: string } | null {
  const caps = spec.capabilities;
  if (needs.maxTokens !== undefined && spec.maxOutputTokens !== undefined && needs.maxTokens > spec.maxOutputTokens) {
    return { field: 'max_tokens', capability: `maxOutputTokens ${spec.maxOutputTokens}` };
  }
  if (!caps) return null;
  if (needs.tools && caps.tools === false) return { field: 'tools', capability: 'tools' };
  if (needs.vision && caps.vision === false) return { field: 'image', capability: 'vision' };
  if (needs.json && caps.json === false) return { field: 'response_format', capability: 'json' };
  if (caps.contextWindow !== undefined) {
    const total = needs.inputTokens() + (needs.maxTokens ?? 0);
    if (total > caps.contextWindow) return { field: 'messages', capability: `contextWindow ${caps.contextWindow} (about ${total} tokens needed)` };
  }
  return null;
}
