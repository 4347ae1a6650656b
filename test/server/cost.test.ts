// Cost of one call from its usage: fresh input, cache reads and writes, and output at their own prices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costOf } from '../../server/dispatch/dispatcher.ts';
import type { ModelRuntime } from '../../server/dispatch/registry.ts';

const runtime = (spec: Record<string, unknown>) => ({ spec: { costPer1kInput: 3, costPer1kOutput: 15, ...spec } }) as unknown as ModelRuntime;
const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('Anthropic cache reads cost a tenth of input and writes a quarter more, unless the config names prices', () => {
  const usage = { inputTokens: 1000, outputTokens: 1000, cacheReadTokens: 500, cacheWriteTokens: 100 };
  near(costOf(runtime({ provider: 'anthropic' }), usage), (400 * 3 + 500 * 0.3 + 100 * 3.75 + 1000 * 15) / 1000);
  near(costOf(runtime({ provider: 'anthropic', costPer1kCacheRead: 1, costPer1kCacheWrite: 2 }), usage), (400 * 3 + 500 * 1 + 100 * 2 + 1000 * 15) / 1000);
});

test('without cache counts the cost is input and output at list price', () => {
  near(costOf(runtime({ provider: 'openai' }), { inputTokens: 2000, outputTokens: 10 }), (2000 * 3 + 10 * 15) / 1000);
  near(costOf(runtime({ provider: 'openai' }), { inputTokens: 2000, outputTokens: 10, cacheReadTokens: 1000 }), (1000 * 3 + 1000 * 1.5 + 10 * 15) / 1000);
});
