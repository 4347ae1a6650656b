// The built-in demo provider: deterministic, instant local answers with no network, so the
// gateway, router and dashboard can be tried before any real upstream is configured.
import { demoModels } from '../config.ts';
import { UpstreamError } from '../errors.ts';
import { abortError, estimateTokens } from './http.ts';
import { allText, firstUnsupported, textOf, type FormatSupport } from './neutral.ts';
import type { EmbeddingRequest, EmbeddingResult, FinishReason, ModelEndpoint, Provider, ProviderRequest, ProviderResult, StreamPart } from './types.ts';
import { sleep } from '../dispatch/retry.ts';
import { builtinEmbed } from './embeddings.ts';
import type { ClientSignal } from '../stop-signal.ts';

const PROVIDER = 'demo';
/** Manual-testing triggers placed in the last user message. */
export const DEMO_FAIL_TRIGGER = '[demo:fail]';
export const DEMO_SLOW_TRIGGER = '[demo:slow]';
const SLOW_MS = 2_000;

const codePattern = /```|\b(function|class|def|import|const|let|var|compile|stack trace|regex|sql|typescript|python|javascript|rust|golang|bug|refactor|code)\b/i;
const cjkPattern = /[\u4e00-\u9fff]/;

function lastUserMessage(req: ProviderRequest): string {
  for (let i = req.messages.length - 1; i >= 0; i--) {
    if (req.messages[i]!.role === 'user') return textOf(req.messages[i]!.content);
  }
  return '';
}

function clip(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/** Small stable hash so the same prompt always picks the same wording. */
function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

const fillerWords = new Set([
  'the', 'and', 'for', 'with', 'how', 'what', 'write', 'please', 'can', 'you', 'that', 'this', 'function', 'code',
  'typescript', 'javascript', 'python', 'def', 'class', 'const', 'let', 'var', 'import', 'some', 'into', 'from',
]);

function identifierFrom(question: string): string {
  const words = question.toLowerCase().match(/[a-z]{3,}/g)?.filter((w) => !fillerWords.has(w)) ?? [];
  return words.slice(0, 3).join('_') || 'solve';
}

function codeAnswer(question: string): string {
  const name = identifierFrom(question);
  const q = question.toLowerCase();
  if (/\bsql\b|select |table/.test(q)) {
    return `Here is a query shape for that:\n\n\`\`\`sql\nSELECT id, name, created_at\nFROM items\nWHERE name LIKE '%' || :term || '%'\nORDER BY created_at DESC\nLIMIT 20;\n\`\`\`\n\nAdd an index on the filtered column if the table is large.`;
  }
  if (/\bpython\b|\bdef\b/.test(q)) {
    return `A compact starting point in Python:\n\n\`\`\`python\ndef ${name}(items):\n    """Return the processed items; adjust the rule inside the loop."""\n    result = []\n    for item in items:\n        result.append(item)\n    return result\n\`\`\`\n\nAdd a unit test with a small input before extending it.`;
  }
  const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return `A compact starting point in TypeScript:\n\n\`\`\`ts\nexport function ${camel}<T>(items: T[]): T[] {\n  // Keep the function pure so it is easy to test.\n  return items.filter((item) => item !== undefined);\n}\n\`\`\`\n\nAdd a unit test with a small input before extending it.`;
}

function chineseAnswer(question: string): string {
  return `你的问题是：“${clip(question, 60)}”。这是演示模型给出的简短回答：先明确目标，再把问题拆成几个小步骤，逐一验证每一步的结果。配置真实的模型密钥后，Switchyard 会把请求路由到合适的模型并给出完整回答。`;
}

const englishOpenings = [
  'Good question.',
  'Here is a short take.',
  'In brief:',
];

function englishAnswer(question: string, long: boolean): string {
  const opening = englishOpenings[hash(question) % englishOpenings.length]!;
  const base = `${opening} You asked: "${clip(question, 120)}". The key is to state the goal clearly, weigh the main options, and check the result against a simple example.`;
  if (!long) return base;
  return `${base}\n\nStep by step:\n1. Restate the problem and its constraints.\n2. Work through the simplest case first.\n3. Generalise, then verify with a counter-example.`;
}

/** The canned answer body for a request, chosen from the shape of the last user message. */
function demoBody(upstreamModel: string, req: ProviderRequest): string {
  const question = lastUserMessage(req);
  if (codePattern.test(question)) return codeAnswer(question);
  if (cjkPattern.test(question)) return chineseAnswer(question);
  return englishAnswer(question, upstreamModel === 'demo-large');
}

export function demoLabel(upstreamModel: string): string {
  return `[DEMO MODEL ${upstreamModel}]`;
}

/** The full demo answer (label first) before stop sequences and max tokens apply. */
export function demoAnswer(upstreamModel: string, req: ProviderRequest): string {
  return `${demoLabel(upstreamModel)} ${demoBody(upstreamModel, req)}`;
}

interface DemoOutcome {
  content: string;
  finishReason: FinishReason;
}

/**
 * Apply stop sequences and max tokens (chars/4) the way a real model would, to the body only:
 * the label always stays so a demo answer is never mistaken for a real one.
 */
function applyLimits(upstreamModel: string, req: ProviderRequest): DemoOutcome {
  const label = `${demoLabel(upstreamModel)} `;
  let body = demoBody(upstreamModel, req);
  let finishReason: FinishReason = 'stop';
  for (const stop of req.stop ?? []) {
    const at = stop === '' ? -1 : body.indexOf(stop);
    if (at !== -1) body = body.slice(0, at);
  }
  if (req.maxTokens !== undefined && estimateTokens(label + body) > req.maxTokens) {
    body = body.slice(0, Math.max(0, req.maxTokens * 4 - label.length));
    finishReason = 'length';
  }
  return { content: label + body, finishReason };
}

async function prepare(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<DemoOutcome> {
  if (signal.aborted) throw abortError(PROVIDER, signal);
  const question = lastUserMessage(req);
  if (question.includes(DEMO_FAIL_TRIGGER)) {
    throw new UpstreamError(PROVIDER, 'http', `demo model ${endpoint.upstreamModel} failed on purpose (${DEMO_FAIL_TRIGGER})`, 503);
  }
  if (question.includes(DEMO_SLOW_TRIGGER)) {
    try {
      await sleep(SLOW_MS, signal);
    } catch {
      throw abortError(PROVIDER, signal);
    }
  }
  return applyLimits(endpoint.upstreamModel, req);
}

function usageFor(req: ProviderRequest, content: string) {
  return { inputTokens: estimateTokens(allText(req.messages)), outputTokens: estimateTokens(content) };
}

/** Split text into chunks of about three words, keeping the whitespace so chunks join back exactly. */
export function wordChunks(text: string, wordsPerChunk = 3): string[] {
  const tokens = text.match(/\S+\s*/g) ?? [];
  const leading = text.match(/^\s+/)?.[0] ?? '';
  const chunks: string[] = [];
  for (let i = 0; i < tokens.length; i += wordsPerChunk) chunks.push(tokens.slice(i, i + wordsPerChunk).join(''));
  if (leading && chunks.length > 0) chunks[0] = leading + chunks[0];
  return chunks;
}

/**
 * Canned answers read the text; images and documents are accepted (and not looked at), sampling
 * settings are taken as given. Tools and structured output would need a real model: refused.
 */
const support: FormatSupport = {
  format: null,
  fields: new Set(['temperature', 'maxTokens', 'topP', 'stop', 'topK', 'seed', 'presencePenalty', 'frequencyPenalty', 'user']),
  parts: new Set(['text', 'image', 'document']),
  imageSources: new Set(['url', 'base64']),
  documentSources: new Set(['url', 'base64', 'text']),
  richToolResults: false,
  messageNames: true,
};

export class DemoProvider implements Provider {
  readonly kind = 'demo' as const;

  unsupported(req: ProviderRequest): string | null {
    return firstUnsupported(req, support);
  }

  async chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult> {
    const { content, finishReason } = await prepare(endpoint, req, signal);
    return { content, finishReason, usage: usageFor(req, content), upstreamModel: endpoint.upstreamModel };
  }

  async *stream(endpoint: ModelEndpoint, req: ProviderRequest, signal: AbortSignal): AsyncGenerator<StreamPart> {
    const { content, finishReason } = await prepare(endpoint, req, signal);
    for (const text of wordChunks(content)) {
      // Yield to the event loop between chunks so a client disconnect can land mid-answer.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (signal.aborted) throw abortError(PROVIDER, signal);
      yield { type: 'delta', text };
    }
    yield { type: 'finish', finishReason, usage: usageFor(req, content) };
  }

  embed(_endpoint: ModelEndpoint, req: EmbeddingRequest, signal: ClientSignal): Promise<EmbeddingResult> {
    return builtinEmbed(req, signal);
  }

  async listModels(_endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]> {
    if (signal.aborted) throw abortError(PROVIDER, signal);
    return demoModels().map((m) => m.upstreamModel);
  }
}
