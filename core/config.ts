// The configuration schema and types: the model catalogue's spec schema, the config file's schema,
// and AppConfig, the parsed configuration everything below server/ receives. Reading the
// environment and the config file (loadConfig) stays in server/config.ts, used by main.ts and
// the learner CLIs.
import { z } from 'zod';

export const providerKinds = ['openai', 'anthropic', 'ollama', 'gemini', 'demo'] as const;

export const modelName = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:/@-]+$/, 'letters, digits and ._:/@- only');

/** What a chat model can take; a request needing more never goes to it (absent = no limit known). */
export const capabilitiesSchema = z
  .object({
    tools: z.boolean().optional(),
    vision: z.boolean().optional(),
    json: z.boolean().optional(),
    maxOutputTokens: z.number().int().positive().optional(),
    contextWindow: z.number().int().positive().optional(),
  })
  .strict();
export type ModelCapabilities = z.output<typeof capabilitiesSchema>;

export const modelSpecSchema = z
  .object({
    id: modelName,
    /** Other names clients may use for this model (besides the dated-name rule in the README). */
    aliases: z.array(modelName).max(64).default([]),
    /** 'chat' models answer and are routed; 'embedding' models serve /v1/embeddings only. */
    kind: z.enum(['chat', 'embedding']).default('chat'),
    /** An embedding model's native vector size (listed on /v1/models; informative). */
    dimensions: z.number().int().positive().max(65536).optional(),
    capabilities: capabilitiesSchema.optional(),
    provider: z.enum(providerKinds),
    baseUrl: z.string().url().optional(),
    upstreamModel: z.string().min(1).optional(),
    apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
    weight: z.number().min(0).max(1000).default(1),
    costPer1kInput: z.number().min(0).default(0),
    costPer1kOutput: z.number().min(0).default(0),
    /** Price of input tokens read from / written to the prompt cache (default: a share of costPer1kInput, see README). */
    costPer1kCacheRead: z.number().min(0).optional(),
    costPer1kCacheWrite: z.number().min(0).optional(),
    /** Largest answer the model gives; sent as max_tokens to Anthropic when the client sets none. */
    maxOutputTokens: z.number().int().positive().optional(),
    description: z.string().max(2000).default(''),
    enabled: z.boolean().default(true),
    timeoutMs: z.number().int().positive().optional(),
    maxConcurrent: z.number().int().positive().optional(),
    tags: z.array(z.string()).default([]),
  })
  .strict();
export type ModelSpecInput = z.input<typeof modelSpecSchema>;
export type ModelSpec = z.output<typeof modelSpecSchema> & { baseUrl: string; upstreamModel: string };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const keywordRuleSchema = z.object({ pattern: z.string().min(1), model: z.string().min(1), name: z.string().optional() });

export const fileConfigSchema = z
  .object({
    models: z.array(modelSpecSchema).optional(),
    /** More names for configured models: alias -> model id. */
    aliases: z.record(modelName, modelName).optional(),
    /** Keep the env-derived default models next to the file's models (default: only the file's). */
    includeDefaultModels: z.boolean().optional(),
    keywordRules: z.array(keywordRuleSchema).optional(),
    routing: z
      .object({
        explorationRate: z.number().min(0).max(1).optional(),
        optimism: z.number().min(0).max(10).optional(),
        judgeModel: z.string().optional(),
        judgeTimeoutMs: z.number().int().positive().optional(),
        judgeEnabled: z.boolean().optional(),
        embedder: z.enum(['builtin', 'transformers', 'ollama']).optional(),
        embeddingModel: z.string().optional(),
        minConfidence: z.number().min(0).max(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export interface KeywordRule {
  name?: string;
  pattern: string;
  model: string;
}

export interface AppConfig {
  proxyPort: number;
  adminPort: number;
  host: string;
  dataDir: string;
  dbPath: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Proxy processes sharing the port (node:cluster); 1 = a single process. */
  workers: number;
  /** True when no real upstream is configured and the built-in demo models serve requests. */
  demoMode: boolean;
  models: ModelSpec[];
  /** API keys by env name (only the ones models refer to), and DATABASE_URL with its password. Never logged. */
  secrets: Record<string, string>;
  keywordRules: KeywordRule[];
  adminToken?: string;
  /** Every client key the proxy accepts: PROXY_API_KEYS and ADMIN_API_KEYS. */
  proxyApiKeys: string[];
  /** Client keys that may also change global settings (ADMIN_API_KEYS). */
  adminApiKeys: string[];
  /** Host names besides loopback names and IP literals the admin page (and a key-less proxy, for browsers) answers to. */
  allowedHosts: string[];
  /** REDIS_URL: state shared between instances; undefined = every instance keeps its own. May hold a password: never log it. */
  redisUrl?: string;
  /** Browser origins the proxy answers CORS requests for (CORS_ALLOWED_ORIGINS; "*" = any); empty = CORS off. */
  corsOrigins: string[];
  limits: {
    bodyBytes: number;
    requestTimeoutMs: number;
    maxConcurrentPerModel: number;
    rateLimitRps: number;
    rateLimitBurst: number;
  };
  dispatch: {
    attemptTimeoutMs: number;
    /** Largest upstream answer read, plain or streamed (UPSTREAM_MAX_BYTES). */
    upstreamMaxBytes: number;
    maxRetries: number;
    retryBaseMs: number;
    retryMaxMs: number;
    /** Longest upstream Retry-After the gateway waits out itself; a longer one moves on (or reaches the client). */
    retryAfterMaxMs: number;
    breakerFailures: number;
    breakerCooldownMs: number;
  };
  /** maxPending: queued records beyond which new chat requests get 503 (load shedding). */
  store: {
    flushMs: number;
    maxPending: number;
    /** 'commit': acknowledge an answer only once its row is committed; 'batched': write behind. */
    durability: 'commit' | 'batched';
    commitTimeoutMs: number;
    /** PostgreSQL instead of the SQLite file (DATABASE_URL). A secret: never logged or shown. */
    databaseUrl?: string;
    /** Connections per process to PostgreSQL. */
    poolSize: number;
  };
  shutdownGraceMs: number;
  /** Both HTTP servers (proxy and admin): time a client gets to send its headers, and its whole request. */
  http: { headersTimeoutMs: number; requestTimeoutMs: number };
  /** TRUST_PROXY: a reverse proxy in front sets X-Forwarded-Proto / X-Forwarded-For (cookie Secure flag, per-IP limits). */
  trustProxy: boolean;
  /** Wrong proxy keys and admin logins per client address within the window, beyond which it gets 429. */
  authFailures: { limit: number; windowMs: number };
  routing: {
    explorationRate: number;
    /**
     * Optimism under uncertainty: a candidate's estimate is raised by optimism·sd while the
     * evidence near the query is thin (0 = pure exploitation, as the offline sweep uses).
     */
    optimism: number;
    minConfidence: number;
    ollamaHost?: string;
    judgeModel: string;
    judgeTimeoutMs: number;
    judgeEnabled: boolean;
    embedder: 'builtin' | 'transformers' | 'ollama';
    embeddingModel?: string;
    allowModelDownload: boolean;
  };
  /** Shadow comparisons run by the learner (learner/shadow.ts); sample 0 = off. */
  shadow: { sample: number; budgetUsd: number; models: string[]; maxPerRun: number; judgeTimeoutMs: number };
}

/** Default keyword rules, carried over from the older system's content rules. */
export const defaultKeywordRules: KeywordRule[] = [
  { name: 'code', pattern: '```|\\b(function|class|def|import|const|let|var|compile|stack trace|regex|sql|typescript|python|javascript|rust|golang|bug|refactor)\\b', model: 'tag:code' },
  { name: 'chinese', pattern: '[\\u4e00-\\u9fff]', model: 'tag:chinese' },
  { name: 'math', pattern: '\\b(prove|integral|derivative|equation|theorem|solve for|probability)\\b', model: 'tag:reasoning' },
  { name: 'long-writing', pattern: '\\b(essay|article|story|blog post|report)\\b', model: 'tag:writing' },
];
