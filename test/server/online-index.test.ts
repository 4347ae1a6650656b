// Online kNN growth is spare-time work: it waits while the event loop is saturated with requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OnlineIndexFeeder, utilizationMeter } from '../../server/router-wiring.ts';
import type { KnnStage } from '../../router/knn.ts';
import type { RoutingOutcome } from '../../router/types.ts';
import { createLogger } from '../../server/logger.ts';

const outcome = (i: number): RoutingOutcome => ({
  requestId: `req-${i}`, text: `question ${i}`, features: {} as RoutingOutcome['features'], model: 'm', success: true, latencyMs: 10,
});

function feeder(utilization: { value: number }, maxQueue = 100) {
  const learned: string[] = [];
  const knn = { learn: async (id: string) => void learned.push(id) } as unknown as KnnStage;
  const f = new OnlineIndexFeeder(knn, createLogger({ level: 'error' }), {
    everyMs: 1e9, budgetMs: 50, maxQueue, maxOnline: 1000, maxUtilization: 0.9, busyEvery: 5, utilization: () => utilization.value,
  });
  return { f, learned };
}

test('a saturated event loop defers online inserts; they go in once there is spare time', async () => {
  const load = { value: 0.97 };
  const { f, learned } = feeder(load);
  for (let i = 0; i < 5; i++) f.push(outcome(i));
  await f.drain();
  await f.drain();
  assert.deepEqual(learned, [], 'nothing inserted while busy');
  assert.deepEqual(f.stats(), { queued: 5, added: 0, dropped: 0, busyTicks: 2 });
  load.value = 0.4;
  await f.drain();
  assert.deepEqual(learned, ['req-0', 'req-1', 'req-2', 'req-3', 'req-4']);
  assert.deepEqual(f.stats(), { queued: 0, added: 5, dropped: 0, busyTicks: 2 });
  f.close();
});

test('while busy the queue stays bounded: the oldest outcomes are dropped, nothing is inserted', async () => {
  const load = { value: 1 };
  const { f, learned } = feeder(load, 3);
  for (let i = 0; i < 5; i++) f.push(outcome(i));
  await f.drain();
  assert.deepEqual(learned, [], 'a busy tick inserts nothing');
  f.push(outcome(5));
  assert.deepEqual(f.stats(), { queued: 3, added: 0, dropped: 3, busyTicks: 1 });
  load.value = 0;
  await f.drain();
  assert.deepEqual(learned, ['req-3', 'req-4', 'req-5']);
  f.close();
});

test('under sustained load every busyEvery-th tick still inserts, so growth never stops outright', async () => {
  const { f, learned } = feeder({ value: 0.99 });
  for (let i = 0; i < 3; i++) f.push(outcome(i));
  for (let tick = 1; tick <= 4; tick++) await f.drain();
  assert.deepEqual(learned, [], 'four busy ticks skipped');
  await f.drain();
  assert.deepEqual(learned, ['req-0', 'req-1', 'req-2'], 'the fifth busy tick in a row inserts');
  assert.equal(f.stats().busyTicks, 4);
  f.close();
});

test('the utilization meter reads near 1 across a busy stretch and near 0 across an idle one', async () => {
  const meter = utilizationMeter();
  const until = performance.now() + 60;
  while (performance.now() < until);
  assert.ok(meter() > 0.8, 'busy loop');
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(meter() < 0.5, 'idle wait');
});
