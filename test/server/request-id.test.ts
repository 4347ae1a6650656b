// Request ids: always req_ + time + randomness, in time order; the client's id is a correlation id.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { correlationIdOf, newRequestId } from '../../server/http/middleware.ts';

describe('newRequestId', () => {
  it('a client id is a correlation id when it is printable ASCII of at most 128 chars', () => {
    assert.equal(correlationIdOf({ 'x-request-id': 'client-id-0001' }), 'client-id-0001');
    assert.equal(correlationIdOf({ 'x-client-request-id': 'abc' }), 'abc');
    for (const bad of ['has space in it', 'x'.repeat(129), 'tab\there', 'é']) assert.equal(correlationIdOf({ 'x-request-id': bad }), undefined);
    assert.match(newRequestId(), /^req_[0-9a-f]{32}$/);
  });

  it('fresh ids start with the time, so later ids sort after earlier ones, and do not repeat', async () => {
    const first = Array.from({ length: 1000 }, () => newRequestId());
    await new Promise((r) => setTimeout(r, 5));
    const later = newRequestId();
    assert.equal(new Set(first).size, first.length);
    for (const id of first) assert.ok(id < later, `${id} < ${later}`);
    assert.equal(parseInt(later.slice(4, 16), 16) <= Date.now(), true);
    assert.ok(Date.now() - parseInt(later.slice(4, 16), 16) < 60_000);
  });
});
