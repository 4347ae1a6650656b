// The provider seam: one small interface every wire format implements (OpenAI-compatible,
// Anthropic Messages, Ollama, Gemini, built-in demo). Nothing provider-specific leaks upward.
import type { ClientSignal } from '../stop-signal.ts';

export type ProviderKind = 'openai' | 'anthropic' | 'ollama' | 'gemini' | 'demo';

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

/** A provider-neutral chat request. The adapter knows which upstream model it talks to. */
export interface ProviderRequest {
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  topP?: number;
  stop?: string[];
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'other';

export interface ProviderResult {
  content: string;
  finishReason: FinishReason;
  usage: Usage;
  /** The model name the upstream reported, when it reports one. */
  upstreamModel?: string;
}

export type StreamPart =
  | { type: 'delta'; text: string }
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
}

/**
 * One adapter per wire format. Errors are always thrown as UpstreamError (server/errors.ts).
 * `stream` yields deltas and exactly one final `finish` part; an error mid-way is thrown from
 * the iterator. The signal aborts the upstream call (timeouts and client disconnects).
 */
export interface Provider {
  readonly kind: ProviderKind;
  chat(endpoint: ModelEndpoint, req: ProviderRequest, signal: ClientSignal): Promise<ProviderResult>;
  stream(endpoint: ModelEndpoint, req: ProviderRequest, signal: AbortSignal, hooks?: StreamHooks): AsyncIterable<StreamPart>;
  /** Model names the upstream offers (used for /health probes and discovery). */
  listModels(endpoint: ModelEndpoint, signal: AbortSignal): Promise<string[]>;
}
