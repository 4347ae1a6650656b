// Helpers shared by the chat endpoints: turning a validated body into a GatewayRequest (with the
// checks every endpoint makes) and the routing explanation attached to every answer.
import type { RouteRule, RoutingDecision, RoutingPreference } from '../../core/routing.ts';
import { BadRegexError, cachedUserRegex, compileRequestPatterns } from '../../router/safe-regex.ts';
import type { Attempt } from '../dispatch/dispatcher.ts';
import type { ModelRegistry } from '../dispatch/registry.ts';
import type { ExcludedCandidate, GatewayRequest } from '../gateway.ts';
import type { ChatMessage } from '../providers/types.ts';
import { ApiError } from '../errors.ts';
import { clientAbortSignal } from '../http/sse.ts';
import type { HotRequest } from '../http/front.ts';
import { requireUserText } from '../http/validate.ts';

/** Request rules are user regexes: compile them here (RE2, bounded; cached for the router) and check their models. */
export function validateRoutingRules(rules: RouteRule[] | undefined, registry: ModelRegistry, param = 'routing_rules'): RouteRule[] | undefined {
  if (!rules) return undefined;
  const canonical = rules.map((rule, i) => {
    try {
      cachedUserRegex(rule.pattern);
    } catch (e) {
      const why = e instanceof BadRegexError ? e.message : (e as Error).message;
      throw new ApiError(400, `Invalid request: ${param}.${i}.pattern ${JSON.stringify(rule.pattern)} is not an accepted regex: ${why}`, 'invalid_request_error', 'invalid_regex', `${param}.${i}.pattern`);
    }
    const rt = registry.resolve(rule.model);
    if (!rt || rt.spec.kind === 'embedding') {
      throw new ApiError(400, `Invalid request: ${param}.${i}.model '${rule.model}' is not a configured chat model`, 'invalid_request_error', 'model_not_found', `${param}.${i}.model`);
    }
    return rt.spec.id === rule.model ? rule : { ...rule, model: rt.spec.id };
  });
  compileRequestPatterns(rules.map((r) => r.pattern));
  return canonical;
}

/** What every chat endpoint hands the gateway, in neutral names. */
export interface ChatInput {
  messages: ChatMessage[];
  model?: string;
  routingRules?: RouteRule[];
  routing?: { prefer?: RoutingPreference; quality_threshold?: number };
  stream?: boolean;
  temperature?: number;
  maxTokens?: number;
  topP?: number;
  stop?: string[];
  options?: GatewayRequest['options'];
}

/** Checks shared by all chat endpoints, then the GatewayRequest for this HTTP request. */
export function toGatewayRequest(hr: HotRequest, registry: ModelRegistry, endpoint: string, input: ChatInput): GatewayRequest {
  requireUserText(input.messages);
  const routingRules = validateRoutingRules(input.routingRules, registry);
  return {
    requestId: hr.id,
    correlationId: hr.correlationId,
    owner: hr.owner,
    endpoint,
    messages: input.messages,
    model: input.model,
    routingRules,
    prefer: input.routing?.prefer,
    qualityThreshold: input.routing?.quality_threshold,
    stream: input.stream ?? false,
    temperature: input.temperature,
    maxTokens: input.maxTokens,
    topP: input.topP,
    stop: input.stop,
    ...(input.options ? { options: input.options } : {}),
    clientKey: hr.clientKey,
    signal: clientAbortSignal(hr.req, hr.res),
  };
}

export const DEMO_NOTICE = 'Demo mode: answered by a built-in local demo model, not a real LLM. Configure an API key or OLLAMA_HOST for real answers.';

/** The fields every answer adds to its wire format: the model that answered, why, and the demo label. */
export function answeredBy(a: { model: string; decision: RoutingDecision; demo: boolean; excluded?: ExcludedCandidate[] }, attempts?: Attempt[]) {
  return { _actual_model_used: a.model, _routing: routingView(a.decision, attempts, a.excluded), ...(a.demo ? { _demo: true, _notice: DEMO_NOTICE } : {}) };
}

/**
 * `_routing` as clients see it: method, reason, confidence, features, candidates, timings, models
 * left out and why, and how the choice was drawn (policy, with the probability of each candidate).
 */
export function routingView(decision: RoutingDecision, attempts?: Attempt[], excluded?: ExcludedCandidate[]) {
  return {
    ...(excluded?.length ? { excluded: excluded.map((e) => ({ model: e.model, provider: e.provider, cannot_carry: e.field, ...(e.capability ? { lacks: e.capability } : {}) })) } : {}),
    method: decision.method,
    reason: decision.reasoning,
    confidence: Math.round(decision.confidence * 1000) / 1000,
    selected: decision.selected,
    ...(decision.policy ? { policy: decision.policy } : {}),
    ...(decision.propensities ? { propensities: decision.propensities } : {}),
    candidates: decision.candidates.slice(0, 8).map((c) => ({ model: c.model, score: Math.round(c.score * 1000) / 1000, parts: c.parts })),
    features: decision.features,
    timings_ms: decision.timings,
    judge: decision.judge ?? null,
    attempts: attempts?.map((a) => ({ model: a.model, attempt: a.attempt, status: a.status, http_status: a.httpStatus, latency_ms: a.latencyMs, error: a.error })),
  };
}
