// Gives the bench's routing path real learned state: stores N past requests (varied queries over
// several domains, outcomes and ratings that depend on model x domain) and runs the learner on them,
// which builds the priors, profiles and the kNN index the server loads at start-up.
import { extractFeatures } from '../../router/features.ts';
import { mulberry32 } from '../../router/bandit.ts';
import { createEmbedder } from '../../router/embedder.ts';
import { runLearner } from '../../learner/job.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import type { RequestRecord } from '../../server/store/types.ts';

/** Seeded, so the history (and the bench's queries) are the same on every run. */
export const benchRng = mulberry32;

const pick = <T>(rng: () => number, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;

const TEMPLATES: { domain: string; make: (rng: () => number) => string }[] = [
  { domain: 'code', make: (r) => `How do I ${pick(r, ['reverse', 'sort', 'deduplicate', 'parse', 'stream', 'memoize'])} a ${pick(r, ['list', 'map', 'JSON file', 'CSV', 'linked list', 'tree'])} in ${pick(r, ['python', 'typescript', 'rust', 'golang', 'java', 'sql'])}? It throws ${pick(r, ['a TypeError', 'an index error', 'a null pointer', 'a borrow error'])}.` },
  { domain: 'math', make: (r) => `Solve for x: ${1 + Math.floor(r() * 9)}x^2 + ${Math.floor(r() * 20)}x - ${Math.floor(r() * 50)} = 0, and prove the ${pick(r, ['roots are real', 'derivative is positive', 'integral converges'])}.` },
  { domain: 'writing', make: (r) => `Write a ${pick(r, ['short story', 'blog post', 'haiku', 'product description', 'cover letter'])} about ${pick(r, ['a lighthouse', 'remote work', 'autumn in Kyoto', 'a robot chef', 'the first day of school'])}, ${pick(r, ['funny', 'formal', 'warm', 'concise'])} tone.` },
  { domain: 'translation', make: (r) => `把这句话翻译成${pick(r, ['英文', '日文', '法文'])}：${pick(r, ['今天天气很好', '我们明天开会讨论预算', '这家餐厅的面条非常好吃', '请把报告发给我'])}。` },
  { domain: 'chat', make: (r) => `${pick(r, ['Any tips for', 'What do you think about', 'Recommend something for', 'How should I plan'])} ${pick(r, ['a rainy weekend', 'learning guitar', 'a birthday dinner', 'a trip to Lisbon', 'better sleep'])}?` },
  { domain: 'data', make: (r) => `Write a SQL query that returns the top ${2 + Math.floor(r() * 9)} ${pick(r, ['customers', 'products', 'regions'])} by ${pick(r, ['revenue', 'orders', 'returns'])} per ${pick(r, ['month', 'quarter', 'week'])}.` },
];

/** A fresh, varied user query (the bench's load uses the same generator with another seed). */
export function benchQuery(rng: () => number): string {
  return pick(rng, TEMPLATES).make(rng);
}

export interface SeedResult {
  requests: number;
  ratings: number;
  seedMs: number;
  learnerMs: number;
  learnerStatus: string;
  version: number | null;
  learnerError: string | null;
}

/**
 * Stores `count` answered requests spread over the past week for `models` (the first model is the
 * "specialist" for code/data, the last for math/writing), rates about a third, then runs the learner.
 */
export async function seedLearnedState(dataDir: string, dbPath: string, models: string[], count: number, seed = 42): Promise<SeedResult> {
  const rng = benchRng(seed);
  const t0 = Date.now();
  const store = await openSqliteStore({ path: dbPath, flushMs: 20 });
  let ratings = 0;
  try {
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      const text = benchQuery(rng);
      const features = extractFeatures(text, 1);
      const model = pick(rng, models);
      const specialist = (models.indexOf(model) === 0 && /code|data/.test(features.domain)) || (models.indexOf(model) === models.length - 1 && /math|writing/.test(features.domain));
      const success = rng() < (specialist ? 0.95 : 0.8);
      const ts = now - 3_600_000 - Math.floor(rng() * 7 * 86_400_000);
      const id = `seed-${seed}-${i}`;
      const latencyMs = 200 + Math.floor(rng() * 1500);
      const record: RequestRecord = {
        id, ts, endpoint: '/v1/chat/completions', queryText: text, messageCount: 1, requestedModel: 'auto', stream: false, features,
        finalModel: model, status: success ? 'ok' : 'error', httpStatus: success ? 200 : 502, latencyMs,
        answer: success ? 'seeded answer' : null, inputTokens: Math.ceil(text.length / 4), outputTokens: 80, costUsd: 0.0004, error: success ? null : 'seeded failure', demo: false,
      };
      store.recordRequest(record, null, [{ requestId: id, ts, model, attempt: 1, status: success ? 'ok' : 'error', httpStatus: success ? 200 : 502, latencyMs, inputTokens: record.inputTokens, outputTokens: 80, costUsd: 0.0004, error: record.error }]);
      if (success && rng() < 0.33) {
        ratings++;
        const rating = specialist ? 4 + Math.round(rng()) : 2 + Math.floor(rng() * 3);
        store.recordFeedback({ requestId: id, ts: ts + 60_000, rating, comment: null, source: 'user' });
      }
    }
    await store.flush();
    const seedMs = Date.now() - t0;
    const { embedder } = await createEmbedder({ kind: 'builtin' });
    const t1 = Date.now();
    const run = await runLearner({ store, dataDir, embedder, full: true, replay: false, settleMs: 0 });
    return { requests: count, ratings, seedMs, learnerMs: Date.now() - t1, learnerStatus: run.status, version: run.version, learnerError: run.error };
  } finally {
    await store.close();
  }
}
