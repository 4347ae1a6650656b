// The circuit breaker on a fake clock: open after N failures, half-open after the cool-down with
// exactly one probe, and only the probe's own outcome closes or re-opens it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker } from '../../server/dispatch/breaker.ts';

function breaker() {
  let t = 0;
  const b = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000, now: () => t });
  return { b, advance: (ms: number) => (t += ms) };
}

test('opens after consecutive failures and lets one probe through after the cool-down', () => {
  const { b, advance } = breaker();
  for (let i = 0; i < 3; i++) b.onFailure('boom', b.tryAcquire()!);
  assert.equal(b.state, 'open');
  assert.equal(b.tryAcquire(), null);
  advance(1000);
  assert.equal(b.state, 'half-open');
  const probe = b.tryAcquire();
  assert.ok(probe?.probe);
  assert.equal(b.tryAcquire(), null, 'one probe at a time');
  b.onSuccess(probe!);
  assert.equal(b.state, 'closed');
});

test("a call let through while closed cannot free the half-open probe's slot or decide for it", () => {
  const { b, advance } = breaker();
  const early = b.tryAcquire()!; // acquired while closed, still running
  for (let i = 0; i < 3; i++) b.onFailure('boom', b.tryAcquire()!);
  advance(1000);
  const probe = b.tryAcquire()!;
  assert.ok(probe.probe);
  b.release(early); // e.g. that early call's client went away
  assert.equal(b.tryAcquire(), null, 'the probe slot is still taken');
  b.onFailure('late failure of the early call', early);
  assert.equal(b.state, 'half-open', "only the probe's failure re-opens");
  assert.equal(b.tryAcquire(), null);
  b.onFailure('probe failed', probe);
  assert.equal(b.state, 'open');
  advance(1000);
  assert.ok(b.tryAcquire()?.probe, 'a new probe after the next cool-down');
});

test('a probe that is given back unsent frees the slot for the next request', () => {
  const { b, advance } = breaker();
  for (let i = 0; i < 3; i++) b.onFailure('boom', b.tryAcquire()!);
  advance(1000);
  const probe = b.tryAcquire()!;
  b.release(probe);
  assert.ok(b.tryAcquire()?.probe);
});

test("adopts another instance's open and close, and a later decision of its own wins over an older one", () => {
  const { b, advance } = breaker();
  advance(5000);
  b.adopt({ state: 'open', at: 4800, reason: 'HTTP 500 on another instance' });
  assert.equal(b.state, 'open');
  assert.equal(b.lastError, 'HTTP 500 on another instance');
  assert.equal(b.retryInMs(), 800, 'the cool-down runs from when the other instance opened it');
  advance(800);
  assert.equal(b.state, 'half-open', 'each instance lets its own probe through');
  b.adopt({ state: 'closed', at: 5900, reason: null });
  assert.equal(b.state, 'closed');
  assert.equal(b.consecutiveFailures, 0);
  b.adopt({ state: 'open', at: 5850, reason: 'stale' });
  assert.equal(b.state, 'closed', 'an older decision arriving late is ignored');
});

test('tells its own opens and closes, not half-open and not adopted ones', () => {
  const { b, advance } = breaker();
  const told: string[] = [];
  b.onChange = (c) => told.push(`${c.state}@${c.at}`);
  for (let i = 0; i < 3; i++) b.onFailure('boom', b.tryAcquire()!);
  advance(1000);
  const probe = b.tryAcquire()!;
  b.onSuccess(probe);
  b.adopt({ state: 'open', at: 2000, reason: 'elsewhere' });
  assert.deepEqual(told, ['open@0', 'closed@1000']);
  assert.deepEqual(b.lastDecision(), { state: 'open', at: 2000, reason: 'elsewhere' });
});
