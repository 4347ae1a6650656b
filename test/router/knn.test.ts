// kNN memory: scoring from neighbours' outcomes, merging, persistence, growth, HNSW recall, and the stage.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BruteForceIndex, KnnIndex, KnnStage, outcomeQuality, type Outcome } from '../../router/knn.ts';
import { mulberry32 as prng } from '../../router/bandit.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { extractFeatures } from '../../router/features.ts';
import { l2normalize } from '../../router/vector.ts';
import type { CandidateModel } from '../../router/types.ts';


function randomUnit(dim: number, rand: () => number): Float32Array {
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = rand() * 2 - 1;
  return l2normalize(v);
}

/** A unit vector close to `base` (small random perturbation). */
function near(base: Float32Array, rand: () => number, noise = 0.1): Float32Array {
  return l2normalize(base.map((x) => x + (rand() * 2 - 1) * noise));
}

const ok = (model: string, rating?: number): Outcome => ({ model, success: true, rating, latencyMs: 100 });
const failed = (model: string): Outcome => ({ model, success: false, latencyMs: 100 });

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'switchyard-knn-'));
}

describe('outcomeQuality', () => {
  test('maps ratings 1..5 to 0..1, failures to 0, and answered unrated outcomes to no evidence (null)', () => {
    assert.equal(outcomeQuality(ok('m', 1)), 0);
    assert.equal(outcomeQuality(ok('m', 3)), 0.5);
    assert.equal(outcomeQuality(ok('m', 5)), 1);
    assert.equal(outcomeQuality(ok('m', 9)), 1);
    assert.equal(outcomeQuality(ok('m')), null);
    assert.equal(outcomeQuality(failed('m')), 0);
  });
});

for (const [name, make] of [
  ['KnnIndex', (dim: number) => KnnIndex.create(dim)],
  ['BruteForceIndex', (dim: number) => new BruteForceIndex(dim)],
] as const) {
  describe(name, () => {
    test('an empty index finds nothing and has no opinion', () => {
      const index = make(8);
      assert.equal(index.size, 0);
      assert.deepEqual(index.search(randomUnit(8, prng(1)), 5), []);
      assert.deepEqual(index.scoreModels(randomUnit(8, prng(2)), 5, ['a', 'b']),
        { perModel: {}, confidence: 0, neighbours: 0, meanSimilarity: 0 });
    });

    test('prefers the model whose outcomes are good near the query', () => {
      const rand = prng(7);
      const index = make(32);
      const codeCentre = randomUnit(32, rand);
      const chatCentre = randomUnit(32, rand);
      for (let i = 0; i < 30; i++) {
        index.add(`code-${i}`, near(codeCentre, rand), [ok('coder', 5), ok('chatty', 2)]);
        index.add(`chat-${i}`, near(chatCentre, rand), [ok('coder', 2), ok('chatty', 5)]);
      }
      const r = index.scoreModels(near(codeCentre, rand), 10, ['coder', 'chatty', 'unknown']);
      assert.equal(r.neighbours, 10);
      assert.ok(r.perModel.coder!.score > 0.8 && r.perModel.chatty!.score < 0.45, JSON.stringify(r.perModel));
      assert.equal(r.perModel.coder!.support, 10);
      assert.equal(r.perModel.unknown, undefined, 'models never seen get no score');
      assert.ok(r.confidence > 0.6, `confidence ${r.confidence}`);
      const other = index.scoreModels(near(chatCentre, rand), 10, ['coder', 'chatty']);
      assert.ok(other.perModel.chatty!.score > other.perModel.coder!.score);
    });

    test('shrinks thin local evidence toward the global mean and lowers confidence', () => {
      const rand = prng(11);
      const index = make(16);
      const a = randomUnit(16, rand);
      index.add('only', a, [failed('m')]);
      for (let i = 0; i < 20; i++) index.add(`far-${i}`, randomUnit(16, rand), [ok('m', 5)]);
      const r = index.scoreModels(a, 1, ['m']);
      // One failure (weight ~1) against a global mean of 20/21 with λ = 2: (0 + 2·0.952) / 3.
      assert.ok(Math.abs(r.perModel.m!.score - (2 * (20 / 21)) / 3) < 0.01, String(r.perModel.m!.score));
      assert.ok(r.confidence < 0.4, `confidence ${r.confidence}`);
    });

    test('merges outcomes when the same id is added again', () => {
      const rand = prng(3);
      const index = make(8);
      const v = randomUnit(8, rand);
      index.add('q1', v, [ok('a', 4)]);
      index.add('q1', v, [ok('b', 2), failed('a')]);
      assert.equal(index.size, 1);
      const [hit] = index.search(v, 3);
      assert.equal(hit!.id, 'q1');
      assert.ok(hit!.similarity > 0.999);
      assert.deepEqual(hit!.outcomes.map((o) => o.model), ['a', 'b', 'a']);
      assert.equal(index.scoreModels(v, 3, ['a']).perModel.a!.support, 2);
    });
  });
}

describe('KnnIndex growth and persistence', () => {
  test('grows past its initial capacity and still finds every point', () => {
    const rand = prng(5);
    const index = KnnIndex.create(16, { maxElements: 16 });
    const vectors = Array.from({ length: 100 }, () => randomUnit(16, rand));
    vectors.forEach((v, i) => index.add(`q${i}`, v, [ok('m')]));
    assert.equal(index.size, 100);
    assert.ok(index.capacity >= 100);
    for (const i of [0, 17, 63, 99]) assert.equal(index.search(vectors[i]!, 1)[0]!.id, `q${i}`);
  });

  test('save then load gives the same neighbours and scores, and replaces older files', async () => {
    const dir = await tempDir();
    try {
      const rand = prng(9);
      const index = KnnIndex.create(24, { maxElements: 32, space: 'ip' });
      for (let i = 0; i < 50; i++) index.add(`q${i}`, randomUnit(24, rand), [ok('a', 1 + (i % 5)), i % 3 ? ok('b') : failed('b')]);
      await index.save(dir);
      index.add('late', randomUnit(24, rand), [ok('a', 5)]);
      await index.save(dir);
      const files = (await fs.readdir(dir)).sort();
      assert.equal(files.filter((f) => f.endsWith('.hnsw')).length, 1);
      assert.ok(!files.some((f) => f.endsWith('.tmp')), files.join(','));

      const loaded = await KnnIndex.load(dir, 24);
      assert.ok(loaded);
      assert.equal(loaded.size, 51);
      const q = randomUnit(24, rand);
      assert.deepEqual(loaded.search(q, 5), index.search(q, 5));
      assert.deepEqual(loaded.scoreModels(q, 10, ['a', 'b']), index.scoreModels(q, 10, ['a', 'b']));
      loaded.add('after-load', q, [ok('b', 5)]);
      assert.equal(loaded.search(q, 1)[0]!.id, 'after-load');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('overlapping saves with adds in between leave one consistent index on disk', async () => {
    const dir = await tempDir();
    try {
      const rand = prng(21);
      const index = KnnIndex.create(16);
      for (let i = 0; i < 20; i++) index.add(`q${i}`, randomUnit(16, rand), [ok('a')]);
      const first = index.save(dir);
      index.add('between', randomUnit(16, rand), [ok('a')]);
      const second = index.save(dir);
      await Promise.all([first, second]);
      const files = await fs.readdir(dir);
      assert.equal(files.filter((f) => f.endsWith('.hnsw')).length, 1, files.join(','));
      const loaded = await KnnIndex.load(dir, 16);
      assert.equal(loaded!.size, 21);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('load returns null for an empty folder and refuses a different dimension', async () => {
    const dir = await tempDir();
    try {
      assert.equal(await KnnIndex.load(dir, 8), null);
      const index = KnnIndex.create(8);
      index.add('x', randomUnit(8, prng(1)), [ok('a')]);
      await index.save(dir);
      await assert.rejects(KnnIndex.load(dir, 16), /dim 8, embedder has 16/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('recall@10 against the exact scan is at least 0.9 on 2000 random vectors', () => {
    const rand = prng(42);
    const dim = 64;
    const hnsw = KnnIndex.create(dim, { maxElements: 500 });
    const exact = new BruteForceIndex(dim);
    for (let i = 0; i < 2000; i++) {
      const v = randomUnit(dim, rand);
      hnsw.add(`q${i}`, v, []);
      exact.add(`q${i}`, v, []);
    }
    let found = 0;
    const queries = 100;
    for (let i = 0; i < queries; i++) {
      const q = randomUnit(dim, rand);
      const truth = new Set(exact.search(q, 10).map((n) => n.id));
      for (const n of hnsw.search(q, 10)) if (truth.has(n.id)) found++;
    }
    const recall = found / (queries * 10);
    assert.ok(recall >= 0.9, `recall ${recall}`);
  });
});

describe('KnnStage', () => {
  const candidates: CandidateModel[] = ['coder', 'writer'].map((id) => ({
    id, description: id, tags: [], weight: 1, costPer1kInput: 0, costPer1kOutput: 0, healthy: true,
  }));

  test('returns null while the index is empty', async () => {
    const stage = new KnnStage(KnnIndex.create(256), new BuiltinEmbedder());
    const text = 'write a poem';
    assert.equal(await stage.score(text, extractFeatures(text), candidates), null);
  });

  test('scores candidates from similar past queries and explains itself', async () => {
    const embedder = new BuiltinEmbedder();
    const stage = new KnnStage(KnnIndex.create(embedder.dim), embedder, { k: 5 });
    const codeQueries = ['reverse a linked list in python', 'python function to sort a list', 'fix this python exception',
      'write a python class for a stack', 'python list comprehension example'];
    const proseQueries = ['write a poem about autumn leaves', 'write a short story about a dragon', 'poem about the sea',
      'write a love letter', 'a story for children about a cat'];
    for (const [i, q] of codeQueries.entries()) await stage.learn(`c${i}`, q, [ok('coder', 5), ok('writer', 2)]);
    for (const [i, q] of proseQueries.entries()) await stage.learn(`p${i}`, q, [ok('coder', 2), ok('writer', 5)]);
    assert.equal(stage.indexSize, 10);

    const text = 'python function to reverse a list';
    const r = await stage.score(text, extractFeatures(text), candidates);
    assert.ok(r);
    assert.ok(r.perModel.coder! > r.perModel.writer!, JSON.stringify(r.perModel));
    assert.ok(r.confidence > 0 && r.confidence <= 1);
    assert.match(r.evidence, /^k=5 neighbours, mean sim 0\.\d\d, best coder \(0\.\d\d, n=\d+\)$/);

    const poem = 'write a poem about the autumn sea';
    const p = await stage.score(poem, extractFeatures(poem), candidates);
    assert.ok(p!.perModel.writer! > p!.perModel.coder!);
  });

  test('says so when no candidate has outcomes', async () => {
    const embedder = new BuiltinEmbedder();
    const stage = new KnnStage(new BruteForceIndex(embedder.dim), embedder);
    await stage.learn('x', 'hello there', [ok('someone-else')]);
    const r = await stage.score('hello', extractFeatures('hello'), candidates);
    assert.deepEqual(r!.perModel, {});
    assert.equal(r!.confidence, 0);
    assert.match(r!.evidence, /no outcomes for these candidates/);
  });

  test('a repeated query reuses its last answer until the index changes', async () => {
    const embedder = new BuiltinEmbedder();
    let embeds = 0;
    const counting = { name: embedder.name, dim: embedder.dim, embed: (t: string[]) => { embeds++; return embedder.embed(t); } };
    const stage = new KnnStage(new BruteForceIndex(embedder.dim), counting, { k: 3 });
    await stage.learn('a', 'python sort a list', [ok('coder', 5), ok('writer', 1)]);
    const text = 'sort a python list';
    const first = await stage.score(text, extractFeatures(text), candidates);
    const before = embeds;
    assert.equal(await stage.score(text, extractFeatures(text), candidates), first, 'same text, same index: cached');
    assert.equal(embeds, before);
    await stage.learn('b', 'sort a python list please', [ok('coder', 1), ok('writer', 5)]);
    const after = await stage.score(text, extractFeatures(text), candidates);
    assert.notEqual(after, first, 'the index grew: computed again');
    assert.ok(after!.perModel.writer! > first!.perModel.writer!);
  });
});
