// The provider seam: one small interface every wire format implements (OpenAI-compatible,
// Anthropic Messages, Ollama, Gemini, built-in demo), over one provider-neutral message model.
import type { ClientSignal } from './stop-signal.ts';

export type ProviderKind = 'openai' | 'anthropic' | 'ollama' | 'gemini' | 'demo';

/** The two wire formats clients speak to the gateway; same-format traffic keeps its extras. */
export type WireFormat = 'openai' | 'anthropic';

export type Role = 'system' | 'user' | 'assistant' | 'tool';

/** Fields of the client's wire object the neutral model has no name for, passed through to the same format. */
export type Extras = Record<string, unknown>;

/** A prompt-caching breakpoint (Anthropic `cache_control`), kept as the client sent it. */
export type CacheMarker = Record<string, unknown>;

export type MediaSource =
  | { kind: 'url'; url: string }
  | { kind: 'base64'; mediaType: string; data: string }
  /** Plain text carried as a document (Anthropic `source.type: "text"`). */
  | { kind: 'text'; mediaType: string; data: string }
  /** A provider-side file id (OpenAI `file_id`): only that provider can resolve it. */
  | { kind: 'file_id'; fileId: string };

export interface TextPart { type: 'text'; text: string; cache?: CacheMarker; extra?: Extras }
export interface ImagePart { type: 'image'; source: MediaSource; detail?: string; cache?: CacheMarker; extra?: Extras }
export interface DocumentPart { type: 'document'; source: MediaSource; title?: string; filename?: string; cache?: CacheMarker; extra?: Extras }
/** A tool call the assistant made; `arguments` is the JSON text of the input. */
export interface ToolCallPart { type: 'tool_call'; id: string; name: string; arguments: string; cache?: CacheMarker; extra?: Extras }
export interface ToolResultPart {
  type: 'tool_result';
  toolCallId: string;
  content: string | (TextPart | ImagePart | DocumentPart)[];
  isError?: boolean;
  cache?: CacheMarker;
  extra?: Extras;
}
/** Reasoning the model showed (Anthropic thinking, with the signature it must get back), or redacted reasoning. */
export interface ReasoningPart { type: 'reasoning'; text: string; signature?: string; redactedData?: string; extra?: Extras }
/** A content part only its own wire format knows (e.g. OpenAI input_audio): passes to that format only. */
export interface RawPart { type: 'raw'; format: WireFormat; wireType: string; value: Record<string, unknown> }

export type ContentPart = TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ReasoningPart | RawPart;

export interface ChatMessage {
  role: Role;
  /** Plain text, or ordered parts. Tool results travel in `tool` (or `user`) messages, tool calls in `assistant` ones. */
  content: string | ContentPart[];
  /** OpenAI's participant name. */
  name?: string;
  /** A system message the client sent as OpenAI's `developer` role. */
  developer?: boolean;
  extra?: Extras;
}

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the input. */
  parameters: Record<string, unknown>;
  strict?: boolean;
  /**
   * Anthropic's `eager_input_streaming` (stream the input as it is generated, unbuffered): sent to
   * Anthropic; the other formats stream tool arguments as generated anyway, so there it is met.
   */
  eagerInputStreaming?: boolean;
  cache?: CacheMarker;
  extra?: Extras;
  /** A provider-defined tool (Anthropic web_search, bash, ...): sent as it came, to its own format only. */
  native?: { format: WireFormat; value: Record<string, unknown> };
}

export type ToolChoice = { type: 'auto' } | { type: 'none' } | { type: 'required' } | { type: 'tool'; name: string };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown>; description?: string; strict?: boolean };

/** A provider-neutral chat request. The adapter knows which upstream model it talks to. */
export interface ProviderRequest {
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  topP?: number;
  stop?: string[];
  topK?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  logitBias?: Record<string, number>;
  logprobs?: boolean;
  topLogprobs?: number;
  /** End-user id for the upstream's abuse monitoring (OpenAI `user`, Anthropic `metadata.user_id`). */
  user?: string;
  reasoningEffort?: string;
  /** Extended thinking (Anthropic `thinking`). */
  thinking?: { type: 'enabled'; budgetTokens: number; extra?: Extras } | { type: 'disabled' };
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
  /**
   * What the client sent in its own wire format beyond the neutral fields: passed through
   * untouched to an upstream of the same format, refused by name by any other.
   */
  wire?: {
    format: WireFormat;
    /** Unknown top-level body fields. */
    extra?: Extras;
    /** Headers to forward (anthropic-beta). */
    headers?: Record<string, string>;
    /** The name the client gave the output limit (OpenAI: max_tokens or max_completion_tokens). */
    maxTokensField?: string;
    /** Query string the client used (Anthropic `?beta=true`), forwarded to the same format. */
    query?: string;
  };
}

export interface Usage {
  /** All input tokens, cached and cache-written ones included. */
  inputTokens: number;
  /** All output tokens, reasoning included. */
  outputTokens: number;
  /** Input tokens read from the prompt cache (part of inputTokens). */
  cacheReadTokens?: number;
  /** Input tokens written to the prompt cache (part of inputTokens). */
  cacheWriteTokens?: number;
  /** Output tokens spent on reasoning (part of outputTokens). */
  reasoningTokens?: number;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'other';

export interface ToolCall { id: string; name: string; arguments: string }

export interface ProviderResult {
  /** The answer's text (text parts joined). */
  content: string;
  toolCalls?: ToolCall[];
  reasoning?: ReasoningPart[];
  finishReason: FinishReason;
  usage: Usage;
  /** The model name the upstream reported, when it reports one. */
  upstreamModel?: string;
  /** Same-format response fields the neutral model has no name for (e.g. OpenAI `logprobs`). */
  extra?: Extras;
}

export type StreamPart =
  | { type: 'delta'; text: string; extra?: Extras }
  /** Usage known before the answer (Anthropic message_start): input tokens at least. */
  | { type: 'usage'; usage: Usage }
  | { type: 'reasoning'; text?: string; signature?: string; redactedData?: string }
  /** A tool call begins; `index` counts tool calls in this answer from 0. */
  | { type: 'tool_call_start'; index: number; id: string; name: string }
  | { type: 'tool_call_delta'; index: number; argumentsDelta: string }
  | { type: 'finish'; finishReason: FinishReason; usage?: Usage };

/** Callbacks a streaming call reports to while it runs. */
export interface StreamHooks {
  /** Bytes arrived from the upstream (content or not: pings, role frames...): it is alive. */
  onActivity?: () => void;
}

/** Where and how to reach one configured model. */
export interface ModelEndpoint {
  /** Base URL, e.g. https://api.openai.com/v1, https://api.anthropic.com, http://127.0.0.1:11434,
   *  https://generativelanguage.googleapis.com/v1beta */
  baseUrl: string;
  /** Model name as the upstream knows it. */
  upstreamModel: string;
  apiKey?: string;
  /** Extra headers sent upstream (never logged). */
  headers?: Record<string, string>;
  /** Largest answer the model can give (used when the client sets no limit and the format needs one). */
  maxOutputTokens?: number;
}

/**
 * One adapter per wire format. Errors are always thrown as UpstreamError (core/errors.ts).
 * `stream` yields parts and exactly one final `finish` part; an error mid-way is thrown from
 * the iterator. The signal aborts the upstream call (timeouts and client disconnects).
 */
export interface Provider {
  readonly kind: ProviderKind;
  /** The first field of `req` this format cannot express, named as the client sent it, or null. */
  unsupported(req: ProviderRequest, endpoint: ModelEndpoint): string | null;
  chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult>;
  stream(endpoint: ModelEndpoint, req: ProviderRequest, signal: AbortSignal, hooks?: StreamHooks): AsyncIterable<StreamPart>;
  /** Model names the upstream offers (used for /health probes and discovery). */
  listModels(endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]>;
  /** The upstream's own count of the request's input tokens, where the format has an endpoint for it. */
  countTokens?(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<number>;
  /** Embeddings of `inputs` (one vector per input, in order), where the format has an endpoint for them. */
  embed?(endpoint: ModelEndpoint, req: EmbeddingRequest, signal: ClientSignal): Promise<EmbeddingResult>;
}

export interface EmbeddingRequest {
  /** Texts, or token arrays (OpenAI only: other formats refuse them by name). */
  inputs: string[] | number[][];
  /** Vector size asked for (models that can shorten their vectors). */
  dimensions?: number;
  user?: string;
  /** Unknown body fields of an OpenAI client: passed to OpenAI upstreams only (others refuse them by name). */
  extra?: Extras;
}

export interface EmbeddingResult {
  vectors: number[][];
  /** Input tokens the upstream counted (an estimate where it reports none). */
  inputTokens: number;
  upstreamModel?: string;
}
