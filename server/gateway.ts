// The request pipeline shared by /api/chat, /v1/chat/completions and /api/claude: route, dispatch
// with fallback, record the outcome (off the hot path) and feed the router's online learning.
import { createHash } from 'node:crypto';
import type { Logger } from './logger.ts';
import type { Store, RequestRecord } from './store/types.ts';
import type { ModelRegistry } from './dispatch/registry.ts';
import { DispatchError, type Attempt, type Dispatcher, type StreamOutcome } from './dispatch/dispatcher.ts';
import type { ClientSignal } from './stop-signal.ts';
import type { ChatMessage, FinishReason, ProviderRequest, ProviderResult, StreamPart, ToolCall, Usage } from './providers/types.ts';
import { MAX_PART_CHARS, storedParts } from './store/parts.ts';
import { textOf } from './providers/neutral.ts';
import type { Router, RouteRule, RoutingDecision, RoutingPreference } from '../core/routing.ts';
import { extractFeatures } from '../router/features.ts';
import { ApiError } from './errors.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { RepeatEntry, SharedRepeatWindow } from './redis/repeats.ts';
import { lackedCapability, requestNeeds, type RequestNeeds } from './capabilities.ts';

/** A chat request after each endpoint's own validation, in one neutral shape. */
export interface GatewayRequest {
  requestId: string;
  endpoint: string;
  messages: ChatMessage[];
  /** A configured model id, or undefined / 'auto' to let the router choose. */
  model?: string;
  routingRules?: RouteRule[];
  prefer?: RoutingPreference;
  qualityThreshold?: number;
  stream: boolean;
  temperature?: number;
  maxTokens?: number;
  topP?: number;
  stop?: string[];
  /** Everything else the client asked for, in neutral names (tools, structured output, wire extras...). */
  options?: Omit<ProviderRequest, 'messages' | 'temperature' | 'maxTokens' | 'topP' | 'stop'>;
  clientKey?: string;
  /** The client's own id for the request (its x-request-id), stored beside ours. */
  correlationId?: string;
  /** Who made the request (requestOwner in http/middleware.ts); feedback must come from the same. */
  owner?: string;
  signal: ClientSignal;
}

/** A candidate the request could not go to, and the field it could not carry there. */
export interface ExcludedCandidate {
  model: string;
  provider: string;
  /** The field, named as the client sent it. */
  field: string;
  /** Set when the model's configured capabilities, not its wire format, rule it out (e.g. "vision"). */
  capability?: string;
}

export interface GatewayAnswer {
  requestId: string;
  model: string;
  content: string;
  toolCalls?: ProviderResult['toolCalls'];
  reasoning?: ProviderResult['reasoning'];
  /** Same-format answer fields (see ProviderResult.extra); only for a client of the answering model's format. */
  extra?: ProviderResult['extra'];
  /** The wire format of the model that answered. */
  provider: string;
  finishReason: FinishReason;
  usage: Usage;
  costUsd: number;
  decision: RoutingDecision;
  excluded: ExcludedCandidate[];
  attempts: Attempt[];
  demo: boolean;
}

export interface GatewayStream {
  requestId: string;
  model: string;
  provider: string;
  decision: RoutingDecision;
  excluded: ExcludedCandidate[];
  demo: boolean;
  /** Deltas and a final finish part; throws mid-way on upstream failure. Always consume it. */
  parts: AsyncGenerator<StreamPart>;
}

export interface GatewayDeps {
  registry: ModelRegistry;
  dispatcher: Dispatcher;
  router: Router;
  store: Store;
  logger: Logger;
  requestTimeoutMs: number;
  now?: () => number;
  metrics?: GatewayMetrics;
  /**
   * 'commit': an answer is acknowledged (the last byte of a plain answer, the terminal event of a
   * stream) only once its row is committed; concurrent requests share one commit (group commit).
   * 'batched' (default here): stored by the write-behind queue after the answer is sent.
   */
  durability?: StoreDurability;
  /** How long an answer may wait for its commit before the client gets a 503 instead. */
  commitTimeoutMs?: number;
  /** The "asked again" window shared with other instances (Redis); this process's own while it is down. */
  sharedRepeats?: SharedRepeatWindow;
}

export type StoreDurability = 'commit' | 'batched';

/** A repeat of the same query by the same client within this window counts as dissatisfaction. */
const RETRY_WINDOW_MS = 120_000;
const RECENT_MAX = 5000;

export class Gateway {
  private readonly now: () => number;
  /** query fingerprint -> last answered request, for the implicit "asked again" signal. */
  private readonly recent = new Map<number, { requestId: string; ts: number }>();
  /** Start times of requests not yet recorded (insertion order = start order). */
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Decide which models to try, in order. Throws ApiError for an unknown or disabled explicit model. */
  async decide(req: Pick<GatewayRequest, 'requestId' | 'messages' | 'model' | 'routingRules' | 'prefer' | 'qualityThreshold'>): Promise<RoutingDecision> {
    let explicit: string | undefined;
    if (req.model && req.model !== 'auto') {
      const rt = this.deps.registry.resolve(req.model);
      if (!rt) throw new ApiError(404, `The model '${req.model}' does not exist. GET /v1/models lists the models this gateway serves, or use 'auto'.`, 'not_found_error', 'model_not_found', 'model');
      if (!rt.enabled) throw new ApiError(400, `The model '${req.model}' is disabled.`, 'invalid_request_error', 'model_disabled', 'model');
      if (rt.spec.kind === 'embedding') throw new ApiError(400, `The model '${req.model}' is an embedding model; use it with /v1/embeddings.`, 'invalid_request_error', 'model_not_chat', 'model');
      explicit = rt.spec.id;
    }
    const text = lastUserText(req.messages);
    const depth = req.messages.filter((m) => m.role === 'user').length;
    return this.deps.router.route(
      { requestId: req.requestId, text, depth, explicitModel: explicit, routingRules: req.routingRules, prefer: req.prefer, qualityThreshold: req.qualityThreshold },
      this.deps.registry.candidates(),
    );
  }

  async complete(req: GatewayRequest): Promise<GatewayAnswer> {
    const started = this.now();
    const preq = toProviderRequest(req);
    const { decision, excluded } = this.eligible(req, preq, await this.decideOrRecord(req, started));
    const candidates = decision.candidates.map((c) => c.model);
    try {
      const out = await this.deps.dispatcher.chat(candidates, preq, this.ctx(req, started));
      const costUsd = sumCost(out.attempts);
      const demo = this.isDemo(out.model);
      if (this.deps.durability === 'commit') {
        this.record(req, decision, out.attempts, started, { model: out.model, answer: out.result.content, toolCalls: out.result.toolCalls, finishReason: out.result.finishReason, usage: out.result.usage, costUsd, httpStatus: 200, error: null, demo });
        await this.committed(req);
      } else setImmediate(() => {
        // Stored right after the answer is written (same event-loop turn), not before it.
        try {
          this.record(req, decision, out.attempts, started, { model: out.model, answer: out.result.content, toolCalls: out.result.toolCalls, finishReason: out.result.finishReason, usage: out.result.usage, costUsd, httpStatus: 200, error: null, demo });
        } catch (e) {
          // Outside the request now: a failure here must not take the process (and its queue) down.
          this.deps.logger.error('recording an answered request failed', { requestId: req.requestId, err: (e as Error).message });
        }
      });
      const r = out.result;
      return {
        requestId: req.requestId, model: out.model, provider: this.providerOf(out.model), content: r.content, toolCalls: r.toolCalls, reasoning: r.reasoning, extra: r.extra,
        finishReason: r.finishReason, usage: r.usage, costUsd, decision, excluded, attempts: out.attempts, demo,
      };
    } catch (err) {
      if (err instanceof ApiError && err.code === 'store_unavailable') throw err; // recorded already, only not committed
      throw this.failed(req, decision, started, err);
    }
  }

  async stream(req: GatewayRequest): Promise<GatewayStream> {
    const started = this.now();
    const preq = toProviderRequest(req);
    const { decision, excluded } = this.eligible(req, preq, await this.decideOrRecord(req, started));
    const candidates = decision.candidates.map((c) => c.model);
    let out: StreamOutcome;
    try {
      out = await this.deps.dispatcher.stream(candidates, preq, this.ctx(req, started));
    } catch (err) {
      throw this.failed(req, decision, started, err);
    }
    const model = out.model;
    const demo = this.isDemo(model);
    const self = this;
    async function* parts(): AsyncGenerator<StreamPart> {
      let text = '';
      let usage: Usage = { inputTokens: 0, outputTokens: 0 };
      // The answer's tool calls and finish reason, for the stored parts (arguments kept only as far as they are stored).
      const toolCalls: (ToolCall & { chars: number })[] = [];
      let finishReason: FinishReason | null = null;
      let first = true;
      // In commit mode the finish part (after which every route writes its terminal event) waits for the commit.
      const commit = self.deps.durability === 'commit';
      const held: StreamPart[] = [];
      let recorded = false;
      try {
        for await (const part of out.parts) {
          if (first && self.deps.metrics) self.deps.metrics.observeFirstToken(req.endpoint, model, decision.method, (self.now() - started) / 1000);
          first = false;
          if (part.type === 'delta') text += part.text;
          else if (part.type === 'tool_call_start') toolCalls[part.index] = { id: part.id, name: part.name, arguments: '', chars: 0 };
          else if (part.type === 'tool_call_delta') {
            const call = toolCalls[part.index];
            if (call) {
              if (call.arguments.length < MAX_PART_CHARS) call.arguments += part.argumentsDelta;
              call.chars += part.argumentsDelta.length;
            }
          }
          if (part.type === 'finish') finishReason = part.finishReason;
          if ((part.type === 'finish' || part.type === 'usage') && part.usage) usage = part.usage;
          if (commit && (held.length > 0 || part.type === 'finish')) held.push(part);
          else yield part;
        }
        recorded = true;
        self.record(req, decision, out.attempts, started, { model, answer: text, toolCalls: toolCalls.filter(Boolean), finishReason, usage, costUsd: sumCost(out.attempts), httpStatus: 200, error: null, demo });
        if (commit) {
          await self.committed(req);
          yield* held;
        }
      } catch (err) {
        if (recorded) throw err;
        const message = err instanceof Error ? err.message : String(err);
        // A client that went away is not the model's failure: 499, and nothing for the router to learn.
        const gone = req.signal.aborted;
        self.record(req, decision, out.attempts, started, { model, answer: text || null, toolCalls: toolCalls.filter(Boolean), finishReason, usage, costUsd: sumCost(out.attempts), httpStatus: gone ? 499 : 502, error: gone ? 'client closed the connection mid-stream' : `stream failed mid-way: ${message}`, demo });
        throw err;
      }
    }
    return { requestId: req.requestId, model, provider: this.providerOf(model), decision, excluded, demo, parts: parts() };
  }

  /**
   * The decision without the candidates whose wire format cannot carry the request (tools to a
   * model without them, top_k to OpenAI, ...). An explicit model that cannot is a 400 naming the
   * field; so is a request no candidate can carry.
   */
  private eligible(req: GatewayRequest, preq: ProviderRequest, decision: RoutingDecision): { decision: RoutingDecision; excluded: ExcludedCandidate[] } {
    const excluded: ExcludedCandidate[] = [];
    let needs: RequestNeeds | undefined;
    const kept = decision.candidates.filter((c) => {
      const rt = this.deps.registry.get(c.model);
      if (!rt) return true;
      if (rt.spec.capabilities || rt.spec.maxOutputTokens !== undefined) {
        const lacked = lackedCapability(rt.spec, (needs ??= requestNeeds(preq)));
        if (lacked) {
          excluded.push({ model: c.model, provider: rt.spec.provider, field: lacked.field, capability: lacked.capability });
          return false;
        }
      }
      const field = rt.provider.unsupported(preq, rt.endpoint);
      if (field) excluded.push({ model: c.model, provider: rt.spec.provider, field });
      return !field;
    });
    if (excluded.length === 0) return { decision, excluded };
    if (kept.length === 0 && decision.candidates.length > 0) {
      this.inFlight.delete(req.requestId);
      const first = excluded[0]!;
      const why = (e: ExcludedCandidate) => (e.capability ? `it lacks the capability ${e.capability} that ${e.field} needs` : `${e.field} cannot be expressed in its wire format`);
      const message = excluded.length === 1
        ? `The model '${first.model}' (${first.provider}) cannot take this request: ${why(first)}`
        : `No candidate model can take this request: ${excluded.map((e) => `${e.model} (${e.provider}) ${e.capability ? `lacks ${e.capability} for ${e.field}` : `cannot carry ${e.field}`}`).join('; ')}`;
      throw new ApiError(400, message, 'invalid_request_error', 'unsupported_parameter', first.field.split(' ')[0]!, { excluded });
    }
    const note = `; skipped ${excluded.map((e) => `${e.model} (${e.capability ? `lacks ${e.capability} for ${e.field}` : `${e.provider} cannot carry ${e.field}`})`).join(', ')}`;
    return { decision: { ...decision, selected: kept[0]!.model, candidates: kept, reasoning: decision.reasoning + note }, excluded };
  }

  private providerOf(model: string): string {
    return this.deps.registry.get(model)?.spec.provider ?? 'unknown';
  }

  /** Waits for the request's row to be committed (group commit: one flush serves every waiter). */
  private async committed(req: GatewayRequest): Promise<void> {
    const limitMs = this.deps.commitTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), limitMs); });
    try {
      const outcome = await Promise.race([this.deps.store.flush().then(() => 'ok' as const, () => 'failed' as const), late]);
      if (outcome !== 'ok') {
        this.deps.logger.error('an answer was not acknowledged: its record was not committed', { requestId: req.requestId, outcome, pending: this.deps.store.pending() });
        throw new ApiError(503, `The answer could not be stored ${outcome === 'late' ? `within ${limitMs} ms` : ''} (STORE_DURABILITY=commit), so it is not acknowledged; retry shortly`.replace('  ', ' '), 'server_error', 'store_unavailable', null, undefined, { 'retry-after': '1' });
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * decide(), recording the request when routing itself fails on our side (e.g. 503: every
   * model's breaker is open). Client mistakes (unknown model) are answered but not stored.
   */
  private async decideOrRecord(req: GatewayRequest, started: number): Promise<RoutingDecision> {
    this.inFlight.set(req.requestId, started);
    try {
      return await this.decide(req);
    } catch (err) {
      const status = err instanceof ApiError ? err.status : 500;
      if (status >= 500) {
        const text = lastUserText(req.messages);
        const decision: RoutingDecision = { method: 'weights', selected: '', candidates: [], confidence: 0, reasoning: `no decision: ${(err as Error).message}`, features: extractFeatures(text, 1), timings: {} };
        throw this.failed(req, decision, started, err);
      }
      this.inFlight.delete(req.requestId);
      throw err;
    }
  }

  /**
   * Start time of the oldest request still being answered, or null. Rows are stored when a request
   * ends, stamped with its start: every stored row older than this is final (after a store flush).
   */
  oldestInFlight(): number | null {
    for (const started of this.inFlight.values()) return started;
    return null;
  }

  private ctx(req: GatewayRequest, started: number) {
    return { requestId: req.requestId, signal: req.signal, deadline: started + this.deps.requestTimeoutMs };
  }

  private isDemo(model: string): boolean {
    return this.deps.registry.get(model)?.spec.provider === 'demo';
  }

  /** Record a request that got no answer, and turn the failure into the client-facing error. */
  private failed(req: GatewayRequest, decision: RoutingDecision, started: number, err: unknown): ApiError {
    const attempts = err instanceof DispatchError ? err.attempts : [];
    const apiErr = err instanceof DispatchError ? dispatchApiError(err) : err instanceof ApiError ? this.withBreakerWait(err) : new ApiError(500, 'internal error', 'server_error');
    this.record(req, decision, attempts, started, { model: null, answer: null, usage: { inputTokens: 0, outputTokens: 0 }, costUsd: sumCost(attempts), httpStatus: apiErr.status, error: apiErr.message, demo: false });
    return apiErr;
  }

  /** The router's 503 for "every model's breaker is open" says when the first one lets a call through again. */
  private withBreakerWait(err: ApiError): ApiError {
    if (err.status !== 503 || err.headers?.['retry-after']) return err;
    let soonest = Infinity;
    for (const m of this.deps.registry.all()) if (m.enabled && m.spec.kind !== 'embedding') soonest = Math.min(soonest, m.breaker.retryInMs());
    if (soonest === Infinity) return err;
    return new ApiError(err.status, err.message, err.type, err.code, err.param, err.details, { ...err.headers, 'retry-after': retryAfterSeconds(soonest) });
  }

  private record(
    req: GatewayRequest,
    decision: RoutingDecision,
    attempts: Attempt[],
    started: number,
    outcome: { model: string | null; answer: string | null; toolCalls?: (ToolCall & { chars?: number })[]; finishReason?: FinishReason | null; usage: Usage; costUsd: number; httpStatus: number; error: string | null; demo: boolean },
  ): void {
    const ts = this.now();
    const text = lastUserText(req.messages);
    const features = decision.features ?? extractFeatures(text, 1);
    const ok = outcome.error === null && outcome.model !== null;
    const record: RequestRecord = {
      id: req.requestId,
      ts: started,
      endpoint: req.endpoint,
      queryText: text,
      messageCount: req.messages.length,
      requestedModel: req.model ?? null,
      stream: req.stream,
      features,
      finalModel: outcome.model,
      status: ok ? 'ok' : 'error',
      httpStatus: outcome.httpStatus,
      latencyMs: ts - started,
      answer: outcome.answer,
      inputTokens: outcome.usage.inputTokens,
      outputTokens: outcome.usage.outputTokens,
      costUsd: outcome.costUsd,
      error: outcome.error,
      demo: outcome.demo,
      clientKeyHash: req.clientKey ? createHash('sha256').update(req.clientKey).digest('hex').slice(0, 16) : null,
      correlationId: req.correlationId ?? null,
      owner: req.owner ?? null,
      parts: storedParts({
        messages: req.messages, tools: req.options?.tools, toolChoice: req.options?.toolChoice,
        answer: outcome.model === null ? null : { toolCalls: outcome.toolCalls, finishReason: outcome.finishReason },
      }),
    };
    this.deps.store.recordRequest(record, decision, attempts.map((a) => ({ ...a, requestId: req.requestId })));
    this.inFlight.delete(req.requestId);
    const metrics = this.deps.metrics;
    if (metrics) {
      metrics.observeRequest({ endpoint: req.endpoint, model: outcome.model ?? '', method: decision.method, status: record.status, httpStatus: outcome.httpStatus, latencyMs: record.latencyMs, inputTokens: record.inputTokens, outputTokens: record.outputTokens, costUsd: record.costUsd, stream: req.stream });
      for (const a of attempts) metrics.observeAttempt(a.model, a.status);
    }
    this.noteRepeat(req, text, ts);
    if (outcome.model && outcome.httpStatus !== 499) {
      try {
        this.deps.router.observe?.({ requestId: req.requestId, text, features, model: outcome.model, success: ok, latencyMs: ts - started });
      } catch (e) {
        this.deps.logger.warn('router observe failed', { requestId: req.requestId, err: (e as Error).message });
      }
    }
  }

  /** The same question asked again soon by the same client: the earlier answer did not satisfy. */
  private noteRepeat(req: GatewayRequest, text: string, ts: number): void {
    if (!text) return;
    const key = repeatKey(req.clientKey ?? '', text);
    const entry = { requestId: req.requestId, ts };
    const shared = this.deps.sharedRepeats;
    if (shared?.up) {
      // After the answer, off the request path; Redis failing mid-way falls back to this process's window.
      shared.swap(key, entry, RETRY_WINDOW_MS).then(
        (prev) => this.askedAgain(prev, entry),
        () => this.askedAgain(this.swapLocal(key, entry), entry),
      );
      return;
    }
    this.askedAgain(this.swapLocal(key, entry), entry);
  }

  private swapLocal(key: number, entry: RepeatEntry): RepeatEntry | null {
    const prev = this.recent.get(key) ?? null;
    this.recent.delete(key);
    this.recent.set(key, entry);
    if (this.recent.size > RECENT_MAX) this.recent.delete(this.recent.keys().next().value!);
    return prev;
  }

  private askedAgain(prev: RepeatEntry | null, now: RepeatEntry): void {
    if (!prev || now.ts - prev.ts > RETRY_WINDOW_MS || prev.requestId === now.requestId) return;
    try {
      this.deps.store.recordFeedback({ requestId: prev.requestId, ts: now.ts, rating: 2, comment: `implicit: same query asked again as ${now.requestId}`, source: 'implicit' });
    } catch (e) {
      this.deps.logger.warn('implicit feedback not recorded', { requestId: prev.requestId, err: (e as Error).message });
    }
  }
}

/** What JavaScript's `\s` matches. */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/**
 * A 53-bit hash of (client, text) with the text compared as a person would: trimmed, lower-cased,
 * runs of whitespace as one space. One pass, no intermediate strings (this runs for every request).
 */
export function repeatKey(client: string, text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < client.length; i++) {
    const c = client.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1, 2654435761);
  h2 = Math.imul(h2 ^ 0xffff, 1597334677);
  let pendingSpace = false;
  let started = false;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (isSpace(c)) {
      pendingSpace = started;
      continue;
    }
    if (pendingSpace) {
      h1 = Math.imul(h1 ^ 32, 2654435761);
      h2 = Math.imul(h2 ^ 32, 1597334677);
      pendingSpace = false;
    }
    started = true;
    if (c >= 65 && c <= 90) c += 32;
    else if (c > 127) {
      const lower = text[i]!.toLowerCase();
      for (let j = 0; j < lower.length; j++) {
        const d = lower.charCodeAt(j);
        h1 = Math.imul(h1 ^ d, 2654435761);
        h2 = Math.imul(h2 ^ d, 1597334677);
      }
      continue;
    }
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * The text routed on and stored: the text parts of the last user message that has any, joined
 * with "\n" (in an agent loop the last user turns often carry only tool results).
 */
export function lastUserText(messages: ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role !== 'user') continue;
    const text = textOf(m.content);
    if (text !== '') return text;
  }
  return messages.length ? textOf(messages[messages.length - 1]!.content) : '';
}

function toProviderRequest(req: GatewayRequest): ProviderRequest {
  const base = { messages: req.messages, temperature: req.temperature, maxTokens: req.maxTokens, topP: req.topP, stop: req.stop };
  return req.options ? { ...req.options, ...base } : base;
}

const retryAfterSeconds = (ms: number) => String(Math.max(1, Math.ceil(ms / 1000)));

/**
 * The client-facing error for a dispatch that got no answer: a request the upstream refused keeps
 * its status and message; a rate limit is a 429 and an open breaker a 503, both with Retry-After.
 */
export function dispatchApiError(err: DispatchError): ApiError {
  const details = { attempts: err.attempts.map((a) => ({ model: a.model, attempt: a.attempt, status: a.status, http_status: a.httpStatus, error: a.error })) };
  const headers = err.retryAfterMs !== undefined ? { 'retry-after': retryAfterSeconds(err.retryAfterMs) } : undefined;
  if (err.clientAborted) return new ApiError(499, err.message, 'upstream_error', 'client_closed', null, details);
  if (err.status >= 400 && err.status < 500 && err.status !== 429) return new ApiError(err.status, err.message, err.status === 404 ? 'not_found_error' : 'invalid_request_error', 'upstream_rejected_request', null, details);
  if (err.status === 429) return new ApiError(429, err.message, 'rate_limit_error', 'upstream_rate_limited', null, details, headers);
  const code = err.status === 503 ? 'no_model_available' : err.status === 504 ? 'upstream_timeout' : 'upstream_failed';
  return new ApiError(err.status, err.message, err.status === 504 ? 'timeout_error' : 'upstream_error', code, null, details, headers);
}

function sumCost(attempts: Attempt[]): number {
  let c = 0;
  for (const a of attempts) c += a.costUsd;
  return c;
}
