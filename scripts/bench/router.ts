// Router kNN benchmark: decision latency of KnnStage.score (embed + search + score) over HNSW,
// the built-in TF-IDF index and an exact scan, at 1k/10k/100k synthetic queries; prints a table, writes bench-results/router.json.
// Knobs: BENCH_SIZES=1000,10000,100000  BENCH_QUERIES=500  BENCH_K=20
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mulberry32 as prng } from '../../router/bandit.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { extractFeatures } from '../../router/features.ts';
import { BruteForceIndex, DenseTextIndex, KnnIndex, KnnStage, TfidfIndex, type NeighbourIndex, type Outcome } from '../../router/knn.ts';
import type { CandidateModel } from '../../router/types.ts';

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000,100000').split(',').map(Number);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 500);
const K = Number(process.env.BENCH_K ?? 20);
const OUT = path.join(process.cwd(), 'bench-results', 'router.json');

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const rand = prng(2024);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

// ---------------------------------------------------------------- synthetic corpus

const TOPICS: Record<string, { en: string[]; zh: string[] }> = {
  code: { en: 'python function class bug compile typescript regex api async loop array hash map recursion test refactor docker'.split(' '), zh: '代码 函数 报错 编译 接口 递归 数组 测试'.split(' ') },
  math: { en: 'equation integral derivative matrix proof theorem probability polynomial limit series vector prime'.split(' '), zh: '方程 积分 导数 矩阵 证明 概率 级数'.split(' ') },
  writing: { en: 'essay story poem email letter blog tone paragraph draft headline slogan summary'.split(' '), zh: '作文 故事 诗 邮件 文章 润色 摘要'.split(' ') },
  data: { en: 'sql table join query spreadsheet pivot csv pandas chart dashboard aggregate index'.split(' '), zh: '数据 表格 查询 统计 报表 图表'.split(' ') },
  science: { en: 'quantum atom cell gene planet gravity enzyme photon climate molecule orbit'.split(' '), zh: '量子 原子 细胞 基因 行星 引力 分子'.split(' ') },
  business: { en: 'pricing market revenue startup investor budget strategy churn funnel brand margin'.split(' '), zh: '市场 营销 投资 预算 利润 客户 创业'.split(' ') },
  health: { en: 'sleep diet symptom headache exercise vitamin stress injury allergy fever'.split(' '), zh: '睡眠 饮食 症状 头痛 锻炼 发烧 焦虑'.split(' ') },
  chat: { en: 'weekend movie music joke travel weather hobby friend game coffee'.split(' '), zh: '周末 电影 音乐 笑话 旅行 天气 朋友'.split(' ') },
};
const TOPIC_NAMES = Object.keys(TOPICS);
const EN_TEMPLATES = [
  (w: string[]) => `How do I use ${w[0]} with ${w[1]} for my ${w[2]} project?`,
  (w: string[]) => `Explain the difference between ${w[0]} and ${w[1]}, with an example about ${w[2]}.`,
  (w: string[]) => `Can you help me with ${w[0]}? I tried ${w[1]} but the ${w[2]} part fails.`,
  (w: string[]) => `Write something about ${w[0]}, ${w[1]} and ${w[2]} in ${3 + Math.floor(rand() * 20)} lines.`,
  (w: string[]) => `What is the best way to handle ${w[0]} when ${w[1]} changes the ${w[2]}?`,
];
const ZH_TEMPLATES = [
  (w: string[]) => `请帮我解释${w[0]}和${w[1]}的区别，并举一个关于${w[2]}的例子`,
  (w: string[]) => `如何处理${w[0]}中的${w[1]}问题？我的${w[2]}总是出错`,
];
const MODELS = ['small-fast', 'mid-general', 'large-smart', 'code-pro', 'writer-pro', 'cheap-chat'];

/** Mean rating per model and topic, so the index holds a real signal to find. */
const SKILL: Record<string, Record<string, number>> = Object.fromEntries(MODELS.map((m) => [m,
  Object.fromEntries(TOPIC_NAMES.map((t) => [t, 2 + rand() * 2 + (m === 'code-pro' && t === 'code' ? 1 : 0)
    + (m === 'writer-pro' && t === 'writing' ? 1 : 0) + (m === 'large-smart' ? 0.5 : 0)]))]));

function syntheticQuery(): { text: string; topic: string } {
  const topic = pick(TOPIC_NAMES);
  if (rand() < 0.2) {
    const words = TOPICS[topic]!.zh;
    return { text: pick(ZH_TEMPLATES)([pick(words), pick(words), pick(words)]), topic };
  }
  const words = TOPICS[topic]!.en;
  return { text: pick(EN_TEMPLATES)([pick(words), pick(words), pick(words)]) + (rand() < 0.5 ? ` (case ${Math.floor(rand() * 1e4)})` : ''), topic };
}

function syntheticOutcomes(topic: string): Outcome[] {
  const models = [...MODELS].sort(() => rand() - 0.5).slice(0, 3);
  return models.map((model) => {
    const rating = Math.min(5, Math.max(1, Math.round(SKILL[model]![topic]! + (rand() - 0.5) * 2)));
    return { model, success: rating > 1, rating, latencyMs: 200 + Math.floor(rand() * 2000) };
  });
}

// ---------------------------------------------------------------- measurement

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function memory(): { rss: number; heapUsed: number; arrayBuffers: number } {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

const mb = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

interface Timing { p50: number; p99: number; mean: number }

async function timeStage(stage: KnnStage, queries: string[], candidates: CandidateModel[]): Promise<Timing> {
  const features = queries.map((q) => extractFeatures(q));
  for (let i = 0; i < Math.min(20, queries.length); i++) await stage.score(queries[i]!, features[i]!, candidates);
  const ms: number[] = [];
  for (let i = 0; i < queries.length; i++) {
    const start = process.hrtime.bigint();
    await stage.score(queries[i]!, features[i]!, candidates);
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return { p50: round(percentile(ms, 50)), p99: round(percentile(ms, 99)), mean: round(ms.reduce((a, b) => a + b, 0) / ms.length) };
}

interface Built { index: NeighbourIndex; ms: number; rssMb: number; heapMb: number; arrayBuffersMb: number }

/** Builds an index of the first n queries; memory deltas are taken after a forced GC. */
function build(make: () => NeighbourIndex, vectors: Float32Array[], outcomes: Outcome[][], n: number): Built {
  const before = memory();
  const start = performance.now();
  const index = make();
  for (let i = 0; i < n; i++) index.add(`q${i}`, vectors[i]!, outcomes[i]!);
  const ms = Math.round(performance.now() - start);
  const after = memory();
  return {
    index, ms, rssMb: mb(after.rss - before.rss), heapMb: mb(after.heapUsed - before.heapUsed),
    arrayBuffersMb: mb(after.arrayBuffers - before.arrayBuffers),
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const embedder = new BuiltinEmbedder();
  const maxSize = Math.max(...SIZES);
  const corpus = Array.from({ length: maxSize }, syntheticQuery);
  const embedStart = performance.now();
  const vectors = corpus.map((q) => embedder.embedOne(q.text));
  const embedMs = performance.now() - embedStart;
  const outcomes = corpus.map((q) => syntheticOutcomes(q.topic));
  const queries = Array.from({ length: QUERIES }, () => syntheticQuery().text);
  const candidates: CandidateModel[] = MODELS.map((id) => ({
    id, description: id, tags: [], weight: 1, costPer1kInput: 0, costPer1kOutput: 0, healthy: true,
  }));
  console.log(`corpus: ${maxSize} queries embedded in ${Math.round(embedMs)} ms (${((embedMs / maxSize) * 1000).toFixed(1)} µs each, dim ${embedder.dim})`);

  const rows = [];
  for (const n of SIZES) {
    const knn = build(() => KnnIndex.create(embedder.dim, { maxElements: 1024 }), vectors, outcomes, n);
    const knnTiming = await timeStage(new KnnStage(new DenseTextIndex(knn.index, embedder), { k: K }), queries, candidates);
    const brute = build(() => new BruteForceIndex(embedder.dim), vectors, outcomes, n);
    const bruteTiming = await timeStage(new KnnStage(new DenseTextIndex(brute.index, embedder), { k: K }), queries, candidates);
    // The built-in routing index (exact TF-IDF over an inverted index), from the texts.
    const tfBefore = memory();
    const tfStart = performance.now();
    const tfidf = new TfidfIndex();
    await tfidf.addTexts(corpus.slice(0, n).map((q, i) => ({ id: `q${i}`, text: q.text, outcomes: outcomes[i]! })));
    const tfidfBuildMs = Math.round(performance.now() - tfStart);
    const tfAfter = memory();
    const tfidfTiming = await timeStage(new KnnStage(tfidf, { k: K }), queries, candidates);
    let hits = 0;
    const recallQueries = queries.slice(0, 100);
    for (const q of recallQueries) {
      const v = embedder.embedOne(q);
      const truth = new Set(brute.index.search(v, K).map((x) => x.id));
      for (const x of knn.index.search(v, K)) if (truth.has(x.id)) hits++;
    }
    const row = {
      size: n,
      knn: { buildMs: knn.ms, rssDeltaMb: knn.rssMb, heapDeltaMb: knn.heapMb, ...knnTiming },
      tfidf: { buildMs: tfidfBuildMs, rssDeltaMb: mb(tfAfter.rss - tfBefore.rss), heapDeltaMb: mb(tfAfter.heapUsed - tfBefore.heapUsed), ...tfidfTiming },
      brute: { buildMs: brute.ms, rssDeltaMb: brute.rssMb, heapDeltaMb: brute.heapMb, arrayBuffersDeltaMb: brute.arrayBuffersMb, ...bruteTiming },
      ratioP50: Math.round((knnTiming.p50 / bruteTiming.p50) * 1000) / 1000,
      recallAtK: Math.round((hits / (recallQueries.length * K)) * 1000) / 1000,
    };
    rows.push(row);
    console.log(`size ${n}: knn p50 ${knnTiming.p50} ms, tf-idf p50 ${tfidfTiming.p50} ms, brute p50 ${bruteTiming.p50} ms, recall@${K} ${row.recallAtK}`);
  }

  console.log(`\nKnnStage.score latency (embed + search + score), ${QUERIES} queries, k=${K}, dim ${embedder.dim}`);
  console.table(rows.map((r) => ({
    size: r.size,
    'knn build ms': r.knn.buildMs, 'knn rss MB': r.knn.rssDeltaMb, 'knn heap MB': r.knn.heapDeltaMb,
    'knn p50 ms': r.knn.p50, 'knn p99 ms': r.knn.p99,
    'brute p50 ms': r.brute.p50, 'brute p99 ms': r.brute.p99, 'brute rss MB': r.brute.rssDeltaMb,
    'knn/brute p50': r.ratioP50, [`recall@${K}`]: r.recallAtK,
    'tf-idf build ms': r.tfidf.buildMs, 'tf-idf heap MB': r.tfidf.heapDeltaMb, 'tf-idf p50 ms': r.tfidf.p50, 'tf-idf p99 ms': r.tfidf.p99,
  })));
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const scaling = {
    sizeFactor: last.size / first.size,
    knnP50Factor: Math.round((last.knn.p50 / first.knn.p50) * 100) / 100,
    bruteP50Factor: Math.round((last.brute.p50 / first.brute.p50) * 100) / 100,
  };
  console.log(`scaling ${first.size} -> ${last.size} (x${scaling.sizeFactor}): knn p50 x${scaling.knnP50Factor}, brute p50 x${scaling.bruteP50Factor}`);
  const result = {
    date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model,
    embedder: embedder.name, k: K, queries: QUERIES, embedUsPerQuery: Math.round((embedMs / maxSize) * 10000) / 10,
    rows, scaling, totalSeconds: Math.round((performance.now() - started) / 100) / 10,
  };
  await fs.mkdir(path.dirname(OUT), { recursive: true });
  await fs.writeFile(OUT, JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${path.relative(process.cwd(), OUT)} in ${result.totalSeconds} s`);
}

await main();
