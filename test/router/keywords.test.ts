// Keyword rules (tags, ids, learned weights) and request routing rules with regex safety checks.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { defaultKeywordRules } from '../../server/config.ts';
import { ApiError } from '../../server/errors.ts';
import { BadRegexError, KeywordStage, MAX_MATCH_TEXT_CHARS, compileUserRegex, matchRequestRules, resolveTarget } from '../../router/keywords.ts';
import { candidate, features } from './fixtures.ts';

const models = [
  candidate('coder', { tags: ['code'] }),
  candidate('polyglot', { tags: ['Chinese', 'translation'] }),
  candidate('large', { tags: ['reasoning', 'writing'] }),
  candidate('fast', { tags: ['chat'] }),
];

describe('keyword stage with the default rules', () => {
  const stage = new KeywordStage(defaultKeywordRules);
  const table: Array<[string, string[]]> = [
    ['Why does this Python function throw?', ['coder']],
    ['```\nx = 1\n```', ['coder']],
    ['请帮我解释一下', ['polyglot']],
    ['PROVE that the integral converges', ['large']],
    ['Write an essay about autumn', ['large']],
    ['用python写一个函数', ['coder', 'polyglot']],
    ['hello there, how are you?', []],
  ];
  for (const [text, expected] of table) {
    test(`"${text.slice(0, 30)}" votes for ${expected.join(', ') || 'nobody'}`, async () => {
      const r = await stage.score(text, features(), models);
      if (expected.length === 0) return assert.equal(r, null);
      assert.ok(r);
      assert.deepEqual(Object.keys(r.perModel).sort(), [...expected].sort());
      for (const id of expected) assert.equal(r.perModel[id], 0.7);
      assert.match(r.evidence, /rule "/);
    });
  }
});

describe('rule targets', () => {
  test('tag targets match candidate tags case-insensitively; id targets only known candidates', () => {
    assert.deepEqual(resolveTarget('tag:chinese', models), ['polyglot']);
    assert.deepEqual(resolveTarget('tag:missing', models), []);
    assert.deepEqual(resolveTarget('fast', models), ['fast']);
    assert.deepEqual(resolveTarget('gone', models), []);
  });

  test('a rule whose target is not among the candidates does not vote', async () => {
    const stage = new KeywordStage([{ name: 'sql', pattern: '\\bsql\\b', model: 'data-model' }]);
    assert.equal(await stage.score('write SQL', features(), models), null);
  });

  test('learned rule weights replace the default score, and a model keeps its best rule', async () => {
    let weights: Record<string, number> | undefined = { a: 0.9, b: 0.2 };
    const stage = new KeywordStage(
      [{ name: 'a', pattern: 'alpha', model: 'fast' }, { name: 'b', pattern: 'beta', model: 'tag:code' }, { name: 'c', pattern: 'beta', model: 'fast' }],
      { ruleWeights: () => weights },
    );
    const r = await stage.score('alpha beta', features(), models);
    assert.deepEqual(r?.perModel, { fast: 0.9, coder: 0.2 });
    assert.equal(r?.confidence, 0.9);
    weights = undefined;
    const r2 = await stage.score('alpha beta', features(), models);
    assert.deepEqual(r2?.perModel, { fast: 0.7, coder: 0.7 });
  });

  test('rules are case-insensitive and unicode-aware', async () => {
    const stage = new KeywordStage([{ name: 'emoji', pattern: '😀+', model: 'fast' }, { name: 'han', pattern: '\\p{Script=Han}', model: 'polyglot' }, { name: 'letter', pattern: '^\\p{Letter}', model: 'coder' }]);
    const r = await stage.score('SMILE 😀😀 中', features(), models);
    assert.deepEqual(Object.keys(r?.perModel ?? {}).sort(), ['coder', 'fast', 'polyglot']);
  });

  test('a configured rule RE2 cannot run fails construction, naming the rule and pattern', () => {
    assert.throws(() => new KeywordStage([{ name: 'greedy', pattern: '(a+)\\1$', model: 'fast' }]), (e: unknown) => {
      assert.ok(e instanceof BadRegexError);
      assert.match(e.message, /"\(a\+\)\\\\1\$"/);
      assert.match(e.message, /keyword rule "greedy"/);
      return true;
    });
  });
});

describe('request routing rules', () => {
  test('the first matching rule wins and returns its model and pattern', () => {
    const rules = [{ pattern: 'invoice', model: 'large' }, { pattern: '^sum', model: 'fast' }, { pattern: 'sum', model: 'coder' }];
    assert.deepEqual(matchRequestRules('Summarise this invoice', rules), { model: 'large', pattern: 'invoice' });
    assert.deepEqual(matchRequestRules('Sum it up', rules), { model: 'fast', pattern: '^sum' });
    assert.equal(matchRequestRules('nothing here', rules), null);
  });

  test('rules whose model is not accepted are passed over', () => {
    const rules = [{ pattern: 'x', model: 'down' }, { pattern: 'x', model: 'up' }];
    assert.deepEqual(matchRequestRules('x', rules, (m) => m === 'up'), { model: 'up', pattern: 'x' });
  });

  test('patterns only see the first 10k characters of the text', () => {
    const text = 'a'.repeat(MAX_MATCH_TEXT_CHARS) + 'needle';
    assert.equal(matchRequestRules(text, [{ pattern: 'needle', model: 'fast' }]), null);
    assert.ok(matchRequestRules('needle' + text, [{ pattern: 'needle', model: 'fast' }]));
  });

  test('a bad pattern is reported even when an earlier rule matches', () => {
    assert.throws(() => matchRequestRules('abc', [{ pattern: 'abc', model: 'fast' }, { pattern: '(', model: 'fast' }]), BadRegexError);
  });
});

describe('compileUserRegex refuses what RE2 cannot run, naming the pattern', () => {
  const rejected: Array<[string, RegExp]> = [
    ['(\\w+)\\s\\1', /backreferences/],
    ['(?<w>a)\\k<w>', /backreferences/],
    ['a(?=b)', /lookahead/],
    ['x'.repeat(501), /longer than 500/],
    ['(unclosed', /RE2 engine cannot compile it/],
    ['[z-a]', /RE2 engine cannot compile it/],
    ['(ab\\p{L}){1000}', /too large/],
    ['', /empty pattern/],
  ];
  for (const [pattern, reason] of rejected) {
    test(`rejects ${JSON.stringify(pattern.slice(0, 24))}`, () => {
      assert.throws(() => compileUserRegex(pattern), (e: unknown) => {
        assert.ok(e instanceof BadRegexError);
        assert.ok(e instanceof ApiError, 'maps to a client error');
        assert.equal(e.status, 400);
        assert.equal(e.pattern, pattern);
        assert.match(e.message, reason);
        if (pattern) assert.ok(e.message.includes(JSON.stringify(pattern.slice(0, 80)).slice(0, -1)), 'message names the pattern');
        return true;
      });
    });
  }

  const accepted = ['(a+)+', '(a|a)*', '.*x.*y', 'a*a*b', 'foo.*bar', '[a-z]+@[a-z]+\\.com', '(\\d+\\.){3}\\d+', '\\w+\\s*=', '(ab|cd)+', '\\bsql\\b', '^translate', '\\d+\\s+\\d+', '(?:x|y)*z', ...defaultKeywordRules.map((r) => r.pattern)];
  for (const pattern of accepted) {
    test(`accepts ${JSON.stringify(pattern.slice(0, 24))}, as RE2 programs`, () => {
      const re = compileUserRegex(pattern);
      assert.ok(re.size > 0);
      if (/^[a-z]+$/.test(pattern)) assert.ok(re.test(pattern.toUpperCase()));
    });
  }

  test('accepted patterns run fast on adversarial 10k-character inputs', () => {
    const inputs = ['a'.repeat(10_000), '1.'.repeat(5_000), 'ab '.repeat(3_333), 'x'.repeat(10_000)];
    for (const pattern of accepted) {
      const re = compileUserRegex(pattern);
      for (const input of inputs) {
        const start = performance.now();
        re.test(input);
        assert.ok(performance.now() - start < 2000, `${pattern} took too long`);
      }
    }
  });
});
