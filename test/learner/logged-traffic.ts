// Stored routed traffic from a known stochastic routing policy, through the real Store API: two
// models, each good at one domain, picked with logged propensities; a seeded share rated.
import { extractFeatures } from '../../router/features.ts';
import type { RoutingDecision } from '../../router/types.ts';
import type { FeedbackRecord, RequestRecord, Store } from '../../server/store/types.ts';
import { seededRng } from '../../learner/ope.ts';

export const MODELS = ['coder', 'writer'] as const;
/** Probability of a good answer (rating 5; else 1) per model and domain. */
export const SKILL: Record<string, Record<string, number>> = {
  code: { coder: 0.9, writer: 0.3 },
  writing: { coder: 0.4, writer: 0.8 },
};
export const PRICE: Record<string, number> = { coder: 0.004, writer: 0.001 };
/** The logging policy: writer (the cheap one) 70% of the time everywhere. */
export const LOGGING = { coder: 0.3, writer: 0.7 };

export const queryFor = (domain: string, i: number) =>
  domain === 'code' ? `Fix the bug in this python function ${i}: \`\`\`def f(x): return x +\`\`\`` : `Write a short essay about the sea, number ${i}.`;

export function decision(selected: string, features: RoutingDecision['features'], extra: Record<string, unknown> = {}): RoutingDecision {
  const other = selected === 'coder' ? 'writer' : 'coder';
  return {
    method: 'learned', selected, candidates: [{ model: selected, score: 0.6 }, { model: other, score: 0.5 }],
    confidence: 0.8, reasoning: 'test', features, timings: {}, ...extra,
  } as RoutingDecision;
}

export function request(id: string, ts: number, text: string, model: string, over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    id, ts, endpoint: '/api/chat', queryText: text, messageCount: 1, requestedModel: null, stream: false,
    features: extractFeatures(text), finalModel: model, status: 'ok', httpStatus: 200, latencyMs: 100, answer: `answer of ${model}`,
    inputTokens: 10, outputTokens: 20, costUsd: PRICE[model] ?? 0, error: null, demo: false, ...over,
  };
}

/** n decisions under LOGGING with propensities logged; a share `rated` gets a user rating. */
export function recordLoggedTraffic(store: Store, n: number, startTs: number, seed = 1, rated = 0.5, propensities = true): { ids: string[] } {
  const rng = seededRng(seed);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const domain = rng() < 0.5 ? 'code' : 'writing';
    const text = queryFor(domain, i);
    const model = rng() < LOGGING.coder ? 'coder' : 'writer';
    const good = rng() < SKILL[domain]![model]!;
    const id = `log-${seed}-${i}`;
    const req = request(id, startTs + i, text, model);
    store.recordRequest(req, decision(model, req.features, propensities ? { propensities: LOGGING, policy: { name: 'test-logging' } } : {}), []);
    if (rng() < rated) {
      const fb: FeedbackRecord = { requestId: id, ts: startTs + i + 1, rating: good ? 5 : 1, comment: null, source: 'user' };
      store.recordFeedback(fb);
    }
    ids.push(id);
  }
  return { ids };
}

/** True quality of a policy that sends code to `code` and writing to `writing` (domains equally likely). */
export const trueQuality = (code: string, writing: string) => (SKILL.code![code]! + SKILL.writing![writing]!) / 2;
