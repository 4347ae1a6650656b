// Structured logs: one JSON object per line, request ids carried by child loggers, secrets scrubbed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../server/logger.ts';

test('every line is JSON with level, message and the child request id; secrets never appear', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', secrets: ['my-very-secret-token'], write: (l) => lines.push(l) });
  const child = log.child({ requestId: 'req_abc12345' });
  child.info('calling upstream', { header: 'Bearer my-very-secret-token', note: 'key sk-abcdefghijklmnop1234' });
  child.debug('hidden at info level');
  log.error('boom', { err: 'upstream said my-very-secret-token is invalid' });
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0]);
  assert.equal(first.level, 'info');
  assert.equal(first.msg, 'calling upstream');
  assert.equal(first.requestId, 'req_abc12345');
  for (const l of lines) {
    assert.doesNotMatch(l, /my-very-secret-token/);
    assert.doesNotMatch(l, /sk-abcdefghijklmnop1234/);
  }
  assert.match(lines[0], /\[REDACTED\]/);
  assert.equal(log.recent({ requestId: 'req_abc12345' }).length, 1);
  assert.equal(log.recent({ level: 'error' }).length, 1);
});
