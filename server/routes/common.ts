// Helpers shared by the chat endpoints: the routing explanation attached to every answer.
import type { RoutingDecision } from '../../router/types.ts';
import type { Attempt } from '../dispatch/dispatcher.ts';

export const DEMO_NOTICE = 'Demo mode: answered by a built-in local demo model, not a real LLM. Configure an API key or OLLAMA_HOST for real answers.';

/** `_routing` as clients see it: method, reason, confidence, features, candidates, timings. */
export function routingView(decision: RoutingDecision, attempts?: Attempt[]) {
  return {
    method: decision.method,
    reason: decision.reasoning,
    confidence: Math.round(decision.confidence * 1000) / 1000,
    selected: decision.selected,
    candidates: decision.candidates.slice(0, 8).map((c) => ({ model: c.model, score: Math.round(c.score * 1000) / 1000, parts: c.parts })),
    features: decision.features,
    timings_ms: decision.timings,
    judge: decision.judge ?? null,
    attempts: attempts?.map((a) => ({ model: a.model, attempt: a.attempt, status: a.status, http_status: a.httpStatus, latency_ms: a.latencyMs, error: a.error })),
  };
}
