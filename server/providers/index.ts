// Provider registry: one shared adapter per wire format, and the bridge from a configured
// ModelSpec (plus the secrets map) to the ModelEndpoint an adapter is called with.
import type { ModelSpec } from '../config.ts';
import { AnthropicProvider } from './anthropic.ts';
import { DemoProvider } from './demo.ts';
import { GeminiProvider } from './gemini.ts';
import { OllamaProvider } from './ollama.ts';
import { OpenAIProvider } from './openai.ts';
import type { ModelEndpoint, Provider, ProviderKind } from './types.ts';

const factories: Record<ProviderKind, () => Provider> = {
  openai: () => new OpenAIProvider(),
  anthropic: () => new AnthropicProvider(),
  ollama: () => new OllamaProvider(),
  gemini: () => new GeminiProvider(),
  demo: () => new DemoProvider(),
};

const instances = new Map<ProviderKind, Provider>();

/** The shared adapter for a wire format (adapters are stateless; the socket pool is in http.ts). */
export function createProvider(kind: ProviderKind): Provider {
  let provider = instances.get(kind);
  if (!provider) {
    provider = factories[kind]();
    instances.set(kind, provider);
  }
  return provider;
}

/** Where to reach a configured model; the key comes from `secrets[spec.apiKeyEnv]`. */
export function endpointFor(spec: ModelSpec, secrets: Record<string, string>): ModelEndpoint {
  const apiKey = spec.apiKeyEnv ? secrets[spec.apiKeyEnv] : undefined;
  return { baseUrl: spec.baseUrl, upstreamModel: spec.upstreamModel, ...(apiKey ? { apiKey } : {}), ...(spec.maxOutputTokens ? { maxOutputTokens: spec.maxOutputTokens } : {}) };
}

export { closeUpstreamPool, setUpstreamMaxBytes } from './http.ts';
export { DEMO_FAIL_TRIGGER, DEMO_SLOW_TRIGGER } from './demo.ts';
