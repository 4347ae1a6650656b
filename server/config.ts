// Typed configuration: env vars plus an optional JSON config file listing models. Loaded once in
// main.ts; everything else receives the parsed AppConfig. A bad value stops start-up naming the field.
import { readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { defaultBaseUrl, demoModels, envModels, normalizeOllamaHost, withAliases } from './config-models.ts';
import { ConfigError, defaultKeywordRules, fileConfigSchema, type AppConfig, type ModelSpec } from '../core/config.ts';

export { demoModels, normalizeOllamaHost } from './config-models.ts';
// The schema and types live in core/config.ts; re-exported here for server/.
export {
  capabilitiesSchema, ConfigError, defaultKeywordRules, fileConfigSchema, keywordRuleSchema, modelSpecSchema, providerKinds,
  type AppConfig, type KeywordRule, type ModelCapabilities, type ModelSpec, type ModelSpecInput,
} from '../core/config.ts';

const intFromEnv = (name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${name} must be an integer between ${min} and ${max}` });
        return z.NEVER;
      }
      return n;
    });

const numFromEnv = (name: string, def: number, min = 0, max = Number.MAX_VALUE) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return def;
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || n > max) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${name} must be a number between ${min} and ${max}` });
        return z.NEVER;
      }
      return n;
    });

const boolFromEnv = (def: boolean) =>
  z
    .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
    .optional()
    .transform((v) => (v === undefined || v === '' ? def : v === '1' || v === 'true' || v === 'yes'));

const envSchema = z.object({
  CLAUDE_PROXY_PORT: intFromEnv('CLAUDE_PROXY_PORT', 3100, 0, 65535),
  ADMIN_DASHBOARD_PORT: intFromEnv('ADMIN_DASHBOARD_PORT', 3200, 0, 65535),
  SWITCHYARD_HOST: z.string().default('127.0.0.1'),
  SWITCHYARD_DATA_DIR: z.string().default('data'),
  SWITCHYARD_DB: z.string().optional(),
  // The value is never echoed: it may hold a password.
  DATABASE_URL: z.string().optional().refine((v) => !v || /^postgres(ql)?:\/\/[^\s]+$/.test(v), {
    message: 'DATABASE_URL must be a postgres:// (or postgresql://) URL',
  }),
  DATABASE_POOL_SIZE: intFromEnv('DATABASE_POOL_SIZE', 10, 2, 1000),
  SWITCHYARD_CONFIG: z.string().optional(),
  SWITCHYARD_DEMO: boolFromEnv(false),
  SWITCHYARD_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  SWITCHYARD_WORKERS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return 1;
      if (v === 'auto') return Math.max(1, os.availableParallelism());
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 64) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: "SWITCHYARD_WORKERS must be an integer between 1 and 64, or 'auto' (one per core)" });
        return z.NEVER;
      }
      return n;
    }),
  CLAUDE_API_KEY: z.string().optional(),
  ANTHROPIC_BASE_URL: z.string().url().optional(),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_BASE_URL: z.string().url().optional(),
  CURSOR_API_KEY: z.string().optional(),
  CURSOR_BASE_URL: z.string().url().optional(),
  GEMINI_API_KEY: z.string().optional(),
  GEMINI_BASE_URL: z.string().url().optional(),
  OLLAMA_HOST: z.string().optional(),
  OLLAMA_MODELS: z.string().optional(),
  ADMIN_TOKEN: z.string().optional(),
  PROXY_API_KEYS: z.string().optional(),
  ADMIN_API_KEYS: z.string().optional(),
  ADMIN_ALLOWED_HOSTS: z.string().optional(),
  CORS_ALLOWED_ORIGINS: z.string().optional(),
  BODY_LIMIT_BYTES: intFromEnv('BODY_LIMIT_BYTES', 2 * 1024 * 1024, 1024),
  UPSTREAM_TIMEOUT_MS: intFromEnv('UPSTREAM_TIMEOUT_MS', 60_000, 1),
  UPSTREAM_MAX_BYTES: intFromEnv('UPSTREAM_MAX_BYTES', 16 * 1024 * 1024, 1024),
  REQUEST_TIMEOUT_MS: intFromEnv('REQUEST_TIMEOUT_MS', 180_000, 1),
  MAX_RETRIES: intFromEnv('MAX_RETRIES', 2, 0, 10),
  RETRY_BASE_MS: intFromEnv('RETRY_BASE_MS', 500, 0),
  RETRY_MAX_MS: intFromEnv('RETRY_MAX_MS', 8_000, 0),
  RETRY_AFTER_MAX_MS: intFromEnv('RETRY_AFTER_MAX_MS', 2_000, 0),
  BREAKER_FAILURES: intFromEnv('BREAKER_FAILURES', 5, 1),
  BREAKER_COOLDOWN_MS: intFromEnv('BREAKER_COOLDOWN_MS', 30_000, 1),
  MAX_CONCURRENT_PER_MODEL: intFromEnv('MAX_CONCURRENT_PER_MODEL', 64, 1),
  RATE_LIMIT_RPS: numFromEnv('RATE_LIMIT_RPS', 0, 0),
  RATE_LIMIT_BURST: intFromEnv('RATE_LIMIT_BURST', 0, 0),
  WRITE_FLUSH_MS: intFromEnv('WRITE_FLUSH_MS', 50, 1),
  STORE_MAX_PENDING: intFromEnv('STORE_MAX_PENDING', 50_000, 1),
  STORE_DURABILITY: z.enum(['commit', 'batched'], { message: "STORE_DURABILITY must be 'commit' or 'batched'" }).default('commit'),
  STORE_COMMIT_TIMEOUT_MS: intFromEnv('STORE_COMMIT_TIMEOUT_MS', 5_000, 1),
  SHUTDOWN_GRACE_MS: intFromEnv('SHUTDOWN_GRACE_MS', 10_000, 0),
  HTTP_HEADERS_TIMEOUT_MS: intFromEnv('HTTP_HEADERS_TIMEOUT_MS', 30_000, 100, 600_000),
  HTTP_REQUEST_TIMEOUT_MS: intFromEnv('HTTP_REQUEST_TIMEOUT_MS', 60_000, 100, 3_600_000),
  TRUST_PROXY: boolFromEnv(false),
  AUTH_FAILURE_LIMIT: intFromEnv('AUTH_FAILURE_LIMIT', 10, 1),
  AUTH_FAILURE_WINDOW_MS: intFromEnv('AUTH_FAILURE_WINDOW_MS', 300_000, 1000),
  ROUTER_EXPLORATION: numFromEnv('ROUTER_EXPLORATION', 0.05, 0, 1),
  ROUTER_OPTIMISM: numFromEnv('ROUTER_OPTIMISM', 1, 0, 10),
  JUDGE_MODEL: z.string().default('llama3'),
  JUDGE_TIMEOUT_MS: intFromEnv('JUDGE_TIMEOUT_MS', 1500, 1),
  JUDGE_ENABLED: boolFromEnv(true),
  EMBEDDER: z.enum(['builtin', 'transformers', 'ollama']).default('builtin'),
  EMBEDDING_MODEL: z.string().optional(),
  ALLOW_MODEL_DOWNLOAD: boolFromEnv(false),
  SHADOW_SAMPLE: numFromEnv('SHADOW_SAMPLE', 0, 0, 1),
  SHADOW_BUDGET_USD: numFromEnv('SHADOW_BUDGET_USD', 1, 0),
  SHADOW_MODELS: z.string().optional(),
  SHADOW_MAX_PER_RUN: intFromEnv('SHADOW_MAX_PER_RUN', 50, 0),
  SHADOW_JUDGE_TIMEOUT_MS: intFromEnv('SHADOW_JUDGE_TIMEOUT_MS', 60_000, 1),
  // The message never repeats the value: it may hold a password.
  REDIS_URL: z
    .string()
    .optional()
    .transform((v) => (v === '' ? undefined : v))
    .refine((v) => v === undefined || (URL.canParse(v) && /^rediss?:$/.test(new URL(v).protocol)), { message: 'REDIS_URL must be a redis:// or rediss:// URL (e.g. redis://127.0.0.1:6379)' }),
});

/** DATABASE_URL and, when it has one, its password (decoded), keyed for config.secrets. */
function databaseUrlSecrets(url: string): Record<string, string> {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password ? { DATABASE_URL: url, 'DATABASE_URL password': password } : { DATABASE_URL: url };
  } catch {
    return { DATABASE_URL: url };
  }
}

function formatIssues(prefix: string, err: z.ZodError): string {
  return err.issues
    .map((i) => `${prefix}${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

const keyList = (v: string | undefined): string[] => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/** CORS_ALLOWED_ORIGINS: "*" or comma-separated origins (scheme://host[:port]); a bad one stops start-up. */
function corsOrigins(raw: string | undefined): string[] {
  const list = keyList(raw);
  for (const o of list) {
    if (o === '*') continue;
    let u: URL;
    try {
      u = new URL(o);
    } catch {
      throw new ConfigError(`Invalid environment: CORS_ALLOWED_ORIGINS: "${o}" is not an origin (scheme://host[:port])`);
    }
    if (u.origin !== o.replace(/\/$/, '')) throw new ConfigError(`Invalid environment: CORS_ALLOWED_ORIGINS: "${o}" is not an origin (scheme://host[:port], no path)`);
  }
  return list.map((o) => (o === '*' ? o : o.replace(/\/$/, '')));
}

/** Build the AppConfig from an env object (process.env in main.ts) and an optional config file. */
export function loadConfig(rawEnv: Record<string, string | undefined>, opts: { cwd?: string } = {}): AppConfig {
  const envParsed = envSchema.safeParse(rawEnv);
  if (!envParsed.success) throw new ConfigError(`Invalid environment: ${formatIssues('', envParsed.error)}`);
  const env = envParsed.data;
  const cwd = opts.cwd ?? process.cwd();

  let file: z.output<typeof fileConfigSchema> = {};
  const filePath = env.SWITCHYARD_CONFIG ?? (existsSync(path.join(cwd, 'switchyard.config.json')) ? path.join(cwd, 'switchyard.config.json') : undefined);
  if (filePath) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path.resolve(cwd, filePath), 'utf8'));
    } catch (e) {
      throw new ConfigError(`Cannot read config file ${filePath}: ${(e as Error).message}`);
    }
    const parsed = fileConfigSchema.safeParse(raw);
    if (!parsed.success) throw new ConfigError(`Invalid config file ${filePath}: ${formatIssues('', parsed.error)}`);
    file = parsed.data;
  }

  let models: ModelSpec[] = [];
  const fromFile = (file.models ?? []).map((m) => ({ ...m, baseUrl: m.baseUrl ?? defaultBaseUrl(m.provider), upstreamModel: m.upstreamModel ?? m.id }));
  if (fromFile.length) models = file.includeDefaultModels ? [...envModels(env), ...fromFile] : fromFile;
  else models = envModels(env);

  const seen = new Set<string>();
  for (const m of models) {
    if (seen.has(m.id)) throw new ConfigError(`Invalid config: models.id "${m.id}" is listed twice`);
    seen.add(m.id);
  }
  models = withAliases(models, file.aliases ?? {});

  const demoMode = env.SWITCHYARD_DEMO || models.filter((m) => m.enabled).length === 0;
  if (demoMode && !models.some((m) => m.provider === 'demo')) models = [...models, ...demoModels()];

  const secrets: Record<string, string> = {};
  for (const m of models) {
    if (!m.apiKeyEnv) continue;
    const v = rawEnv[m.apiKeyEnv];
    if (v) secrets[m.apiKeyEnv] = v;
  }
  // The database URL and its password are scrubbed from logs and the admin page like the API keys.
  if (env.DATABASE_URL) Object.assign(secrets, databaseUrlSecrets(env.DATABASE_URL));

  if (env.HTTP_HEADERS_TIMEOUT_MS > env.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(`Invalid environment: HTTP_HEADERS_TIMEOUT_MS (${env.HTTP_HEADERS_TIMEOUT_MS}) must not exceed HTTP_REQUEST_TIMEOUT_MS (${env.HTTP_REQUEST_TIMEOUT_MS})`);
  }
  const dataDir = path.resolve(cwd, env.SWITCHYARD_DATA_DIR);
  return {
    proxyPort: env.CLAUDE_PROXY_PORT,
    adminPort: env.ADMIN_DASHBOARD_PORT,
    host: env.SWITCHYARD_HOST,
    dataDir,
    dbPath: env.SWITCHYARD_DB ? path.resolve(cwd, env.SWITCHYARD_DB) : path.join(dataDir, 'switchyard.db'),
    logLevel: env.SWITCHYARD_LOG_LEVEL,
    workers: env.SWITCHYARD_WORKERS,
    demoMode,
    models,
    secrets,
    keywordRules: file.keywordRules ?? defaultKeywordRules,
    adminToken: env.ADMIN_TOKEN || undefined,
    proxyApiKeys: [...new Set([...keyList(env.PROXY_API_KEYS), ...keyList(env.ADMIN_API_KEYS)])],
    adminApiKeys: keyList(env.ADMIN_API_KEYS),
    allowedHosts: keyList(env.ADMIN_ALLOWED_HOSTS),
    redisUrl: env.REDIS_URL,
    corsOrigins: corsOrigins(env.CORS_ALLOWED_ORIGINS),
    limits: {
      bodyBytes: env.BODY_LIMIT_BYTES,
      requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
      maxConcurrentPerModel: env.MAX_CONCURRENT_PER_MODEL,
      rateLimitRps: env.RATE_LIMIT_RPS,
      rateLimitBurst: env.RATE_LIMIT_BURST || Math.max(1, Math.ceil(env.RATE_LIMIT_RPS * 2)),
    },
    dispatch: {
      attemptTimeoutMs: env.UPSTREAM_TIMEOUT_MS,
      upstreamMaxBytes: env.UPSTREAM_MAX_BYTES,
      maxRetries: env.MAX_RETRIES,
      retryBaseMs: env.RETRY_BASE_MS,
      retryMaxMs: env.RETRY_MAX_MS,
      retryAfterMaxMs: env.RETRY_AFTER_MAX_MS,
      breakerFailures: env.BREAKER_FAILURES,
      breakerCooldownMs: env.BREAKER_COOLDOWN_MS,
    },
    store: {
      flushMs: env.WRITE_FLUSH_MS, maxPending: env.STORE_MAX_PENDING, durability: env.STORE_DURABILITY, commitTimeoutMs: env.STORE_COMMIT_TIMEOUT_MS,
      ...(env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : {}), poolSize: env.DATABASE_POOL_SIZE,
    },
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    http: { headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS },
    trustProxy: env.TRUST_PROXY,
    authFailures: { limit: env.AUTH_FAILURE_LIMIT, windowMs: env.AUTH_FAILURE_WINDOW_MS },
    routing: {
      explorationRate: file.routing?.explorationRate ?? env.ROUTER_EXPLORATION,
      optimism: file.routing?.optimism ?? env.ROUTER_OPTIMISM,
      minConfidence: file.routing?.minConfidence ?? 0.35,
      ollamaHost: env.OLLAMA_HOST ? normalizeOllamaHost(env.OLLAMA_HOST) : undefined,
      judgeModel: file.routing?.judgeModel ?? env.JUDGE_MODEL,
      judgeTimeoutMs: file.routing?.judgeTimeoutMs ?? env.JUDGE_TIMEOUT_MS,
      judgeEnabled: file.routing?.judgeEnabled ?? env.JUDGE_ENABLED,
      embedder: file.routing?.embedder ?? env.EMBEDDER,
      embeddingModel: file.routing?.embeddingModel ?? env.EMBEDDING_MODEL,
      allowModelDownload: env.ALLOW_MODEL_DOWNLOAD,
    },
    shadow: {
      sample: env.SHADOW_SAMPLE,
      budgetUsd: env.SHADOW_BUDGET_USD,
      models: (env.SHADOW_MODELS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
      maxPerRun: env.SHADOW_MAX_PER_RUN,
      judgeTimeoutMs: env.SHADOW_JUDGE_TIMEOUT_MS,
    },
  };
}
