// The "asked again" fingerprint: the same question as a person would read it, per client.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { repeatKey } from '../../server/gateway.ts';

describe('repeatKey', () => {
  it('ignores case, surrounding space and the width of whitespace runs', () => {
    const k = repeatKey('', 'what is a monad?');
    assert.equal(repeatKey('', '  What IS a\tmonad?\n'), k);
    assert.equal(repeatKey('', 'WHAT\u00a0is   a  monad?'), k);
    assert.equal(repeatKey('', 'ÜBER straße'), repeatKey('', 'über STRASSE'.replace('STRASSE', 'straße')));
  });

  it('tells different questions and different clients apart', () => {
    const k = repeatKey('', 'what is a monad?');
    assert.notEqual(repeatKey('', 'what is a monad'), k);
    assert.notEqual(repeatKey('', 'whatis a monad?'), k);
    assert.notEqual(repeatKey('client-a', 'what is a monad?'), k);
    assert.notEqual(repeatKey('client-a', 'what is a monad?'), repeatKey('client-b', 'what is a monad?'));
  });

  it('is a safe integer and spreads 20k similar texts without a collision', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      const h = repeatKey('', `question number ${i}`);
      assert.ok(Number.isSafeInteger(h) && h >= 0);
      seen.add(h);
    }
    assert.equal(seen.size, 20_000);
  });
});
