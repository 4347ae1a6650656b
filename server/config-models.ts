// The model catalogue part of the configuration: the built-in demo models, the models env keys add,
// and alias checks. The model spec schema itself lives in core/config.ts.
import { ConfigError, type ModelSpec } from '../core/config.ts';

export {
  capabilitiesSchema, ConfigError, modelName, modelSpecSchema, providerKinds,
  type ModelCapabilities, type ModelSpec, type ModelSpecInput,
} from '../core/config.ts';

/** The built-in local demo models, used when nothing real is configured. */
export function demoModels(): ModelSpec[] {
  const base = { provider: 'demo' as const, baseUrl: 'demo://local', enabled: true, aliases: [], kind: 'chat' as const, timeoutMs: undefined, maxConcurrent: undefined };
  return [
    { ...base, id: 'demo-fast', upstreamModel: 'demo-fast', weight: 3, costPer1kInput: 0.0001, costPer1kOutput: 0.0002, description: 'DEMO: small, fast and cheap local model; good for chat and short answers.', tags: ['chat', 'fast'] },
    { ...base, id: 'demo-coder', upstreamModel: 'demo-coder', weight: 1, costPer1kInput: 0.0005, costPer1kOutput: 0.0015, description: 'DEMO: local model tuned for code, SQL and data questions.', tags: ['code'] },
    { ...base, id: 'demo-polyglot', upstreamModel: 'demo-polyglot', weight: 1, costPer1kInput: 0.0003, costPer1kOutput: 0.0006, description: 'DEMO: local multilingual model, strong in Chinese, Japanese and translation.', tags: ['chinese', 'translation'] },
    { ...base, id: 'demo-large', upstreamModel: 'demo-large', weight: 1, costPer1kInput: 0.003, costPer1kOutput: 0.015, description: 'DEMO: large local model for reasoning, math and long writing; slower and dearer.', tags: ['reasoning', 'writing', 'math'] },
  ];
}

/** The env variables that add models (README: Configuration). */
export type ModelEnv = Partial<Record<'CLAUDE_API_KEY' | 'ANTHROPIC_BASE_URL' | 'OPENAI_API_KEY' | 'OPENAI_BASE_URL' | 'CURSOR_API_KEY' | 'CURSOR_BASE_URL' | 'GEMINI_API_KEY' | 'GEMINI_BASE_URL' | 'OLLAMA_HOST' | 'OLLAMA_MODELS', string>>;

/** The models the API keys and OLLAMA_HOST in the environment add. */
export function envModels(env: ModelEnv): ModelSpec[] {
  const out: ModelSpec[] = [];
  const common = { enabled: true, aliases: [], kind: 'chat' as const, timeoutMs: undefined, maxConcurrent: undefined, weight: 1 };
  if (env.CLAUDE_API_KEY) {
    const baseUrl = env.ANTHROPIC_BASE_URL ?? 'https://api.anthropic.com';
    out.push(
      { ...common, id: 'claude-sonnet', provider: 'anthropic', baseUrl, upstreamModel: 'claude-sonnet-4-5', apiKeyEnv: 'CLAUDE_API_KEY', costPer1kInput: 0.003, costPer1kOutput: 0.015, description: 'Anthropic Claude Sonnet: strong at code, long writing, careful reasoning.', tags: ['code', 'writing', 'reasoning'] },
      { ...common, id: 'claude-haiku', provider: 'anthropic', baseUrl, upstreamModel: 'claude-haiku-4-5', apiKeyEnv: 'CLAUDE_API_KEY', costPer1kInput: 0.001, costPer1kOutput: 0.005, description: 'Anthropic Claude Haiku: fast and cheap, good for chat and simple tasks.', tags: ['chat', 'fast'] },
    );
  }
  if (env.OPENAI_API_KEY) {
    const baseUrl = env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1';
    out.push(
      { ...common, id: 'gpt-4o', provider: 'openai', baseUrl, upstreamModel: 'gpt-4o', apiKeyEnv: 'OPENAI_API_KEY', costPer1kInput: 0.0025, costPer1kOutput: 0.01, description: 'OpenAI GPT-4o: general purpose, multilingual, good at reasoning and code.', tags: ['reasoning', 'code', 'chinese'] },
      { ...common, id: 'gpt-4o-mini', provider: 'openai', baseUrl, upstreamModel: 'gpt-4o-mini', apiKeyEnv: 'OPENAI_API_KEY', costPer1kInput: 0.00015, costPer1kOutput: 0.0006, description: 'OpenAI GPT-4o mini: cheap and fast, fine for chat and simple questions.', tags: ['chat', 'fast'] },
    );
  }
  if (env.CURSOR_API_KEY) {
    out.push({ ...common, id: 'cursor', provider: 'openai', baseUrl: env.CURSOR_BASE_URL ?? 'https://api.cursor.sh/v1', upstreamModel: 'cursor-small', apiKeyEnv: 'CURSOR_API_KEY', costPer1kInput: 0.0005, costPer1kOutput: 0.0015, description: 'Cursor (OpenAI-compatible endpoint): code-focused.', tags: ['code'] });
  }
  if (env.GEMINI_API_KEY) {
    out.push({ ...common, id: 'gemini-flash', provider: 'gemini', baseUrl: env.GEMINI_BASE_URL ?? 'https://generativelanguage.googleapis.com/v1beta', upstreamModel: 'gemini-2.0-flash', apiKeyEnv: 'GEMINI_API_KEY', costPer1kInput: 0.0001, costPer1kOutput: 0.0004, description: 'Google Gemini Flash: fast, cheap, multilingual, long context.', tags: ['chat', 'chinese', 'fast'] });
  }
  if (env.OLLAMA_HOST) {
    const names = (env.OLLAMA_MODELS ?? 'llama3').split(',').map((s) => s.trim()).filter(Boolean);
    for (const name of names) {
      out.push({ ...common, id: `ollama/${name}`, provider: 'ollama', baseUrl: normalizeOllamaHost(env.OLLAMA_HOST), upstreamModel: name, apiKeyEnv: undefined, costPer1kInput: 0, costPer1kOutput: 0, description: `Local Ollama model ${name}: free, private, slower on big tasks.`, tags: ['local'] });
    }
  }
  return out;
}

/** Top-level aliases joined to their models; capabilities.maxOutputTokens is the model's maxOutputTokens. Names must not collide. */
export function withAliases(models: ModelSpec[], topLevel: Record<string, string>): ModelSpec[] {
  const ids = new Set(models.map((m) => m.id));
  const extra = new Map<string, string[]>();
  for (const [alias, id] of Object.entries(topLevel)) {
    if (!ids.has(id)) throw new ConfigError(`Invalid config: aliases.${alias} names "${id}", which is not a configured model`);
    extra.set(id, [...(extra.get(id) ?? []), alias]);
  }
  const owner = new Map<string, string>();
  return models.map((m) => {
    const aliases = [...new Set([...(m.aliases ?? []), ...(extra.get(m.id) ?? [])])];
    for (const a of aliases) {
      if (ids.has(a)) throw new ConfigError(`Invalid config: alias "${a}" of "${m.id}" is the id of another model`);
      const prev = owner.get(a);
      if (prev && prev !== m.id) throw new ConfigError(`Invalid config: alias "${a}" names both "${prev}" and "${m.id}"`);
      owner.set(a, m.id);
    }
    const capMax = m.capabilities?.maxOutputTokens;
    if (capMax !== undefined && m.maxOutputTokens !== undefined && capMax !== m.maxOutputTokens) {
      throw new ConfigError(`Invalid config: models.${m.id}: maxOutputTokens (${m.maxOutputTokens}) and capabilities.maxOutputTokens (${capMax}) differ`);
    }
    return { ...m, aliases, ...(capMax !== undefined ? { maxOutputTokens: capMax } : {}) };
  });
}

export function normalizeOllamaHost(host: string): string {
  const withScheme = /^https?:\/\//.test(host) ? host : `http://${host}`;
  return withScheme.replace(/\/+$/, '');
}

export function defaultBaseUrl(kind: ModelSpec['provider']): string {
  switch (kind) {
    case 'openai': return 'https://api.openai.com/v1';
    case 'anthropic': return 'https://api.anthropic.com';
    case 'ollama': return 'http://127.0.0.1:11434';
    case 'gemini': return 'https://generativelanguage.googleapis.com/v1beta';
    case 'demo': return 'demo://local';
  }
}

