// Request ids: the client's safe x-request-id, else req_ + time + randomness, in time order.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newRequestId } from '../../server/http/middleware.ts';

describe('newRequestId', () => {
  it('keeps a safe client id and replaces an unsafe one', () => {
    assert.equal(newRequestId('client-id-0001'), 'client-id-0001');
    for (const bad of ['short', 'has space in it', 'x'.repeat(129), 'semi;colon-123']) assert.match(newRequestId(bad), /^req_[0-9a-f]{32}$/);
  });

  it('fresh ids start with the time, so later ids sort after earlier ones, and do not repeat', async () => {
    const first = Array.from({ length: 1000 }, () => newRequestId(undefined));
    await new Promise((r) => setTimeout(r, 5));
    const later = newRequestId(undefined);
    assert.equal(new Set(first).size, first.length);
    for (const id of first) assert.ok(id < later, `${id} < ${later}`);
    assert.equal(parseInt(later.slice(4, 16), 16) <= Date.now(), true);
    assert.ok(Date.now() - parseInt(later.slice(4, 16), 16) < 60_000);
  });
});
