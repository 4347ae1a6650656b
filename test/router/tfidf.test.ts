import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SparseTextIndex, textFeatures, type SparseText } from '../../router/tfidf.ts';
import { TfidfIndex, type Outcome } from '../../router/knn.ts';

const ok = (model: string, rating?: number): Outcome => ({ model, success: true, latencyMs: 1, ...(rating === undefined ? {} : { rating }) });

/** Cosine of two TF-IDF vectors computed the slow, obvious way. */
function cosine(a: SparseText, b: SparseText, idf: (k: number) => number): number {
  const va = new Map<number, number>(), vb = new Map<number, number>();
  a.keys.forEach((k, i) => va.set(k, a.tf[i]! * idf(k)));
  b.keys.forEach((k, i) => vb.set(k, b.tf[i]! * idf(k)));
  let dot = 0;
  for (const [k, v] of va) dot += v * (vb.get(k) ?? 0);
  const n = (m: Map<number, number>) => Math.sqrt([...m.values()].reduce((s, v) => s + v * v, 0)) || 1;
  return dot / (n(va) * n(vb));
}

describe('TF-IDF text features', () => {
  test('words, word pairs and character 4-grams, case-folded, with log-scaled counts', () => {
    const a = textFeatures('Integral of x');
    const b = textFeatures('integral OF X');
    assert.deepEqual([...a.keys], [...b.keys]);
    const twice = textFeatures('integral integral');
    const once = textFeatures('integral');
    assert.ok(twice.keys.length > once.keys.length, 'the pair "integral integral" is a feature');
    assert.ok(Math.max(...twice.tf) > 1.6, 'a repeated word counts 1 + ln 2');
    assert.ok([...a.keys].every((k, i) => i === 0 || k > a.keys[i - 1]!), 'keys ascending');
  });

  test('CJK text without spaces still has features, and similar sentences share them', () => {
    const a = textFeatures('请把这段话翻译成英文');
    const b = textFeatures('请把这句话翻译成法文');
    const shared = [...a.keys].filter((k) => b.keys.includes(k)).length;
    assert.ok(a.keys.length > 5 && shared >= 4, `${shared} shared of ${a.keys.length}`);
  });

  test('ASCII text gets the same features on its fast path as through the Unicode word pattern', () => {
    // A trailing " ·" (punctuation, unchanged by NFKC) sends the text down the Unicode path without adding a feature.
    const chars = fc.constantFrom(...'aZ09 xyQ\t\n.,\'-_(){}`"#+=/\\|!?'.split(''), 'word', 'Integral', 'x^2', '  ');
    fc.assert(fc.property(fc.array(chars, { maxLength: 60 }).map((parts) => parts.join('')), (text) => {
      const fast = textFeatures(text);
      const unicode = textFeatures(`${text} ·`);
      assert.deepEqual([...fast.keys], [...unicode.keys]);
      assert.deepEqual([...fast.tf], [...unicode.tf]);
    }), { numRuns: 500 });
  });
});

describe('SparseTextIndex', () => {
  test('search is exact: the same neighbours and similarities as a brute-force cosine', () => {
    fc.assert(fc.property(fc.array(fc.array(fc.constantFrom('solve', 'poem', 'the', 'integral', 'write', 'python', 'list', 'sea', 'of', 'a'), { minLength: 1, maxLength: 8 }), { minLength: 2, maxLength: 30 }), (docs) => {
      const index = new SparseTextIndex();
      const vectors = docs.map((d) => textFeatures(d.join(' ')));
      for (const v of vectors) index.insert(v);
      const query = vectors[0]!;
      const got = index.nearest(query, 5);
      const want = vectors.map((v, label) => ({ label, similarity: cosine(query, v, (k) => index.idf(k)) }))
        .filter((x) => x.similarity > 0).sort((x, y) => y.similarity - x.similarity).slice(0, 5);
      assert.equal(got.length, want.length);
      got.forEach((g, i) => assert.ok(Math.abs(g.similarity - want[i]!.similarity) < 1e-4, `${g.similarity} vs ${want[i]!.similarity}`));
    }), { numRuns: 50 });
  });

  test('rare words weigh more than common ones', () => {
    const index = new SparseTextIndex();
    for (let i = 0; i < 50; i++) index.insert(textFeatures(`please help me with this ${i % 2 ? 'poem' : 'sonnet'} number ${i}`));
    index.insert(textFeatures('the eigenvalues of a hermitian matrix'));
    const near = index.nearest(textFeatures('please help me with the eigenvalues'), 1);
    assert.equal(near[0]!.label, 50, 'one rare shared word beats four common ones');
  });
});

describe('TfidfIndex', () => {
  test('scores models from similar queries, and survives a save and load', async () => {
    const index = new TfidfIndex();
    await index.addTexts([
      { id: 'a', text: 'solve the integral of x squared', outcomes: [ok('math', 5), ok('chat', 1)] },
      { id: 'b', text: 'solve the integral of sin x', outcomes: [ok('math', 5), ok('chat', 2)] },
      { id: 'c', text: 'write a poem about the sea', outcomes: [ok('math', 1), ok('chat', 5)] },
      { id: 'd', text: 'hello', outcomes: [ok('chat')] },
    ]);
    const s = await index.scoreModels('what is the integral of x cubed', 2, ['math', 'chat']);
    assert.ok(s.perModel.math!.score > s.perModel.chat!.score, JSON.stringify(s.perModel));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tfidf-'));
    await index.save(dir);
    const loaded = await TfidfIndex.load(dir);
    assert.equal(loaded!.size, 4);
    assert.deepEqual(await loaded!.scoreModels('what is the integral of x cubed', 2, ['math', 'chat']), s);
    assert.equal(await TfidfIndex.load(path.join(dir, 'nothing-here')), null);
  });

  test('an answered, unrated outcome is no evidence: a model seen only that way has no score', async () => {
    const index = new TfidfIndex();
    await index.addTexts([{ id: 'a', text: 'translate this', outcomes: [ok('m1'), ok('m2', 4)] }]);
    const s = await index.scoreModels('translate this please', 5, ['m1', 'm2']);
    assert.equal(s.perModel.m1, undefined);
    assert.ok(s.perModel.m2);
  });
});
