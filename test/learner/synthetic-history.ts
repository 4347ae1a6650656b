// Synthetic stored traffic for learner tests and the learner benchmark: queries in a few domains,
// answered by models with known strengths, recorded through the real Store API.
import { extractFeatures } from '../../router/features.ts';
import type { Store } from '../../server/store/types.ts';

export const CODE_TOPICS = ['python function', 'typescript class', 'sql query', 'regex', 'rust struct', 'javascript promise', 'golang goroutine', 'bash script'];
export const WRITING_TOPICS = ['autumn leaves', 'a lighthouse keeper', 'the first day of school', 'a lost umbrella', 'city rain', 'an old bicycle', 'the sea at night', 'a mountain village'];

export function codeQuery(i: number): string {
  const topic = CODE_TOPICS[i % CODE_TOPICS.length]!;
  return `Fix the bug in this ${topic} (case ${i}): it fails to compile with a stack trace.\n\`\`\`\nfunction run${i}(x) { return x.map((y) => y + ${i}); }\n\`\`\``;
}

export function writingQuery(i: number): string {
  const topic = WRITING_TOPICS[i % WRITING_TOPICS.length]!;
  return `Write a short essay about ${topic}, number ${i}, with a warm and reflective tone.`;
}

/** Rating 1..5 a model earns in a domain: `coder` shines at code, `writer` elsewhere. */
export type Skill = (model: string, domain: 'code' | 'writing', i: number) => number;

export const defaultSkill: Skill = (model, domain, i) => {
  const wobble = i % 3 === 0 ? -1 : 0;
  if (model === 'coder') return domain === 'code' ? 5 + wobble : 2 + wobble;
  if (model === 'writer') return domain === 'code' ? 2 + wobble : 5 + wobble;
  return 3 + wobble;
};

export interface HistoryOptions {
  store: Store;
  models: string[];
  /** Queries per domain; every model answers every query. */
  perDomain: number;
  startTs: number;
  skill?: Skill;
  /** Prefix for request ids, so several batches can go into one store. */
  idPrefix?: string;
  /** Give every answer a rating (default) or leave a share unrated. */
  ratedShare?: number;
  /** Number of the first query, so batches can bring new texts (default 0). */
  firstQuery?: number;
  /** Each query answered by one model in turn (like live traffic) instead of by all of them. */
  oneModelPerQuery?: boolean;
}

/** Records perDomain x 2 queries, each answered by every model (or one), with feedback; returns the last ts used. */
export function recordHistory(o: HistoryOptions): number {
  const skill = o.skill ?? defaultSkill;
  const prefix = o.idPrefix ?? 'h';
  let ts = o.startTs;
  const first = o.firstQuery ?? 0;
  for (let i = first; i < first + o.perDomain; i++) {
    for (const domain of ['code', 'writing'] as const) {
      const text = domain === 'code' ? codeQuery(i) : writingQuery(i);
      const features = extractFeatures(text, 1);
      const answering = o.oneModelPerQuery ? [o.models[i % o.models.length]!] : o.models;
      for (const model of answering) {
        ts += 1;
        const id = `${prefix}-${domain}-${i}-${model}`;
        o.store.recordRequest({
          id, ts, endpoint: '/v1/chat/completions', queryText: text, messageCount: 1, requestedModel: null, stream: false,
          features, finalModel: model, status: 'ok', httpStatus: 200, latencyMs: 100 + (ts % 50), answer: null,
          inputTokens: Math.ceil(text.length / 4), outputTokens: model === 'coder' ? 400 : 200, costUsd: 0.001, error: null, demo: false,
        }, null, []);
        const rated = o.ratedShare === undefined || ((i * 7 + ts) % 100) / 100 < o.ratedShare;
        if (rated) o.store.recordFeedback({ requestId: id, ts, rating: Math.min(5, Math.max(1, skill(model, domain, i))), comment: null, source: 'user' });
      }
    }
  }
  return ts;
}
