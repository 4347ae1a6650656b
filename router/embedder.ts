// Text embedders behind one small interface: a dependency-free hashed n-gram default, plus
// transformers.js and Ollama backends that are imported lazily and fall back to the default.
import path from 'node:path';
import type { AppConfig } from '../core/config.ts';
import type { Embedder } from '../core/embedder.ts';
import type { Log } from '../core/log.ts';
import { fmix32, l2normalize } from './vector.ts';

export type { Embedder };

// ---------------------------------------------------------------- builtin (feature hashing)

const SEED_WORD = 0x811c9dc5;
const SEED_BIGRAM = 0x1b873593;
const SEED_WORD_TRIGRAM = 0x85ebca6b;
const SEED_CJK = [0, 0xc2b2ae35, 0x27d4eb2f, 0x165667b1] as const;
const EMPTY_FEATURE = 0x9e3779b9;

/** Feature weights: whole words and CJK bigrams carry the meaning, sub-word grams add robustness. */
const W_WORD = 1;
const W_BIGRAM = 0.7;
const W_WORD_TRIGRAM = 0.3;
const W_CJK = [0, 0.5, 1, 0.7] as const;

function fnvStep(h: number, code: number): number {
  return Math.imul(h ^ code, 16777619);
}

function isCjk(c: number): boolean {
  return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0x3040 && c <= 0x30ff) || (c >= 0x31f0 && c <= 0x31ff) ||
    (c >= 0xac00 && c <= 0xd7af) || (c >= 0x1100 && c <= 0x11ff) || (c >= 0x3130 && c <= 0x318f);
}

const WORD_CHAR_RE = /[\p{L}\p{N}\p{M}]/u;
const ASCII_RE = /^[\x00-\x7f]*$/;

function isWordChar(c: number, ch: string): boolean {
  if (c < 128) return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c >= 65 && c <= 90);
  if (c >= 0xd800 && c <= 0xdfff) return true;
  return WORD_CHAR_RE.test(ch);
}

/**
 * Signed feature hashing of word unigrams and bigrams, boundary-padded word trigrams, and CJK
 * character 1-3-grams; each feature counts `weight * (1 + ln tf)`; the result is L2-normalised.
 */
export class BuiltinEmbedder implements Embedder {
  readonly name: string;
  readonly dim: number;
  // Scratch open-addressing table (feature -> tf), reused across calls; a generation stamp
  // marks live slots so nothing needs clearing. Far cheaper than a Map on this hot path.
  private keys = new Uint32Array(2048);
  private stamps = new Uint32Array(2048);
  private counts = new Float32Array(2048);
  private weights = new Float32Array(2048);
  private live = new Uint32Array(1024);
  private liveCount = 0;
  private generation = 0;

  constructor(dim = 256) {
    if (!Number.isInteger(dim) || dim < 8) throw new Error(`BuiltinEmbedder dim must be an integer >= 8, got ${dim}`);
    this.dim = dim;
    this.name = `builtin-hash-${dim}`;
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    return texts.map((t) => this.embedOne(t));
  }

  /** Synchronous form for hot paths and benchmarks. */
  embedOne(text: string): Float32Array {
    this.liveCount = 0;
    if (++this.generation === 0xffffffff) {
      this.stamps.fill(0);
      this.generation = 1;
    }
    // NFKC folds full-width forms common in CJK input; pure ASCII needs no normalising.
    const s = (ASCII_RE.test(text) ? text : text.normalize('NFKC')).toLowerCase();
    const n = s.length;
    let prevWord = -1;
    let i = 0;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (isCjk(c)) {
        let j = i;
        while (j < n && isCjk(s.charCodeAt(j))) j++;
        this.cjkRun(s, i, j);
        prevWord = -1;
        i = j;
      } else if (isWordChar(c, s[i]!)) {
        let j = i + 1;
        while (j < n) {
          const d = s.charCodeAt(j);
          if (isCjk(d) || !isWordChar(d, s[j]!)) break;
          j++;
        }
        prevWord = this.wordRun(s, i, j, prevWord);
        i = j;
      } else {
        i++;
      }
    }
    if (this.liveCount === 0) this.add(EMPTY_FEATURE, 1);
    const v = new Float32Array(this.dim);
    const pow2 = (this.dim & (this.dim - 1)) === 0;
    for (let n = 0; n < this.liveCount; n++) {
      const slot = this.live[n]!;
      const h = this.keys[slot]!;
      const bucket = pow2 ? h & (this.dim - 1) : h % this.dim;
      const sign = h & 0x80000000 ? -1 : 1;
      v[bucket] += sign * this.weights[slot]! * (1 + Math.log(this.counts[slot]!));
    }
    return l2normalize(v);
  }

  private wordRun(s: string, start: number, end: number, prevWord: number): number {
    let h = SEED_WORD;
    for (let k = start; k < end; k++) h = fnvStep(h, s.charCodeAt(k));
    const word = h >>> 0;
    this.add(word, W_WORD);
    if (prevWord >= 0) this.add(fnvStep(fnvStep(SEED_BIGRAM, prevWord), word) >>> 0, W_BIGRAM);
    // Trigrams over "#word#" so inflections and typos still share features.
    const at = (k: number): number => (k < start || k >= end ? 35 : s.charCodeAt(k));
    for (let k = start - 1; k <= end - 2; k++) {
      const t = fnvStep(fnvStep(fnvStep(SEED_WORD_TRIGRAM, at(k)), at(k + 1)), at(k + 2));
      this.add(t >>> 0, W_WORD_TRIGRAM);
    }
    return word;
  }

  private cjkRun(s: string, start: number, end: number): void {
    for (let k = start; k < end; k++) {
      let h = 0;
      for (let len = 1; len <= 3 && k + len <= end; len++) {
        h = fnvStep(len === 1 ? SEED_CJK[1] : h ^ SEED_CJK[len]!, s.charCodeAt(k + len - 1));
        this.add(h >>> 0, W_CJK[len]!);
      }
    }
  }

  private add(hash: number, weight: number): void {
    const key = fmix32(hash);
    const mask = this.keys.length - 1;
    let slot = (key >>> 11) & mask;
    while (this.stamps[slot] === this.generation) {
      if (this.keys[slot] === key) {
        this.counts[slot] += 1;
        return;
      }
      slot = (slot + 1) & mask;
    }
    this.stamps[slot] = this.generation;
    this.keys[slot] = key;
    this.counts[slot] = 1;
    this.weights[slot] = weight;
    this.live[this.liveCount++] = slot;
    if (this.liveCount * 2 >= this.keys.length) this.grow();
  }

  /** Doubles the table (kept at most half full) and re-inserts the live features. */
  private grow(): void {
    const { keys, counts, weights, live, liveCount } = this;
    const size = keys.length * 2;
    this.keys = new Uint32Array(size);
    this.stamps = new Uint32Array(size);
    this.counts = new Float32Array(size);
    this.weights = new Float32Array(size);
    this.live = new Uint32Array(size / 2);
    this.liveCount = 0;
    this.generation = 1;
    for (let n = 0; n < liveCount; n++) {
      const old = live[n]!;
      let slot = (keys[old]! >>> 11) & (size - 1);
      while (this.stamps[slot] === 1) slot = (slot + 1) & (size - 1);
      this.stamps[slot] = 1;
      this.keys[slot] = keys[old]!;
      this.counts[slot] = counts[old]!;
      this.weights[slot] = weights[old]!;
      this.live[this.liveCount++] = slot;
    }
  }
}

// ---------------------------------------------------------------- transformers.js

export const DEFAULT_TRANSFORMERS_MODEL = 'Xenova/paraphrase-multilingual-MiniLM-L12-v2';

export interface TransformersEmbedderOptions {
  modelId?: string;
  /** Folder holding `<modelId>/` (config.json, tokenizer.json, onnx/model[_quantized].onnx). */
  localModelPath?: string;
  /** Download from the Hugging Face hub when the model is not found locally. */
  allowRemote: boolean;
  /** Load onnx/model_quantized.onnx (default) instead of onnx/model.onnx. */
  quantized?: boolean;
}

/** Just the part of the transformers.js pipeline we call (its own typings are too loose). */
type FeatureExtractor = (texts: string[], opts: { pooling: 'mean'; normalize: boolean }) =>
  Promise<{ dims: number[]; data: Float32Array }>;

export class TransformersEmbedder implements Embedder {
  private constructor(
    readonly name: string,
    readonly dim: number,
    private readonly extract: FeatureExtractor,
  ) {}

  /**
   * Loads the pipeline and probes the output size. transformers.js keeps its settings in a
   * process-wide `env`, so the last created embedder's path/remote settings win.
   */
  static async create(opts: TransformersEmbedderOptions): Promise<TransformersEmbedder> {
    const modelId = opts.modelId ?? DEFAULT_TRANSFORMERS_MODEL;
    const { env, pipeline } = await import('@xenova/transformers');
    if (opts.localModelPath) env.localModelPath = path.resolve(opts.localModelPath) + path.sep;
    env.allowLocalModels = true;
    env.allowRemoteModels = opts.allowRemote;
    const extractor = await pipeline('feature-extraction', modelId, { quantized: opts.quantized ?? true });
    const extract = extractor as unknown as FeatureExtractor;
    const probe = await extract(['dimension probe'], { pooling: 'mean', normalize: true });
    const dim = probe.dims[probe.dims.length - 1];
    if (!dim) throw new Error(`model ${modelId} returned no embedding dimension`);
    return new TransformersEmbedder(`transformers:${modelId}`, dim, extract);
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const out = await this.extract(texts, { pooling: 'mean', normalize: true });
    const vectors: Float32Array[] = [];
    for (let i = 0; i < texts.length; i++) {
      vectors.push(l2normalize(Float32Array.from(out.data.subarray(i * this.dim, (i + 1) * this.dim))));
    }
    return vectors;
  }
}

// ---------------------------------------------------------------- ollama

export const DEFAULT_OLLAMA_MODEL = 'nomic-embed-text';
export const DEFAULT_OLLAMA_HOST = 'http://127.0.0.1:11434';

export interface OllamaEmbedderOptions {
  host?: string;
  model?: string;
  /** Per-request timeout, including the probe. */
  timeoutMs?: number;
}

type EmbedCall = (texts: string[]) => Promise<number[][]>;

export class OllamaEmbedder implements Embedder {
  private constructor(
    readonly name: string,
    readonly dim: number,
    private readonly call: EmbedCall,
  ) {}

  /** Connects and probes the vector size with one embed call. */
  static async create(opts: OllamaEmbedderOptions = {}): Promise<OllamaEmbedder> {
    const model = opts.model ?? DEFAULT_OLLAMA_MODEL;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const { Ollama } = await import('ollama');
    const timedFetch: typeof fetch = (input, init) => {
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      return fetch(input, { ...init, signal });
    };
    const client = new Ollama({ host: opts.host ?? DEFAULT_OLLAMA_HOST, fetch: timedFetch });
    const call: EmbedCall = async (texts) => (await client.embed({ model, input: texts })).embeddings;
    const probe = await call(['dimension probe']);
    const dim = probe[0]?.length ?? 0;
    if (dim === 0) throw new Error(`ollama model ${model} returned an empty embedding`);
    return new OllamaEmbedder(`ollama:${model}`, dim, call);
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const rows = await this.call(texts);
    if (rows.length !== texts.length) throw new Error(`ollama returned ${rows.length} embeddings for ${texts.length} texts`);
    return rows.map((row) => {
      if (row.length !== this.dim) throw new Error(`ollama embedding has dim ${row.length}, expected ${this.dim}`);
      return l2normalize(Float32Array.from(row));
    });
  }
}

// ---------------------------------------------------------------- factory

export type EmbedderKind = 'builtin' | 'transformers' | 'ollama';

export interface CreateEmbedderOptions {
  kind: EmbedderKind;
  /** transformers: hub model id; ollama: model name. */
  modelId?: string;
  localModelPath?: string;
  allowRemote?: boolean;
  ollamaHost?: string;
  /** Probe timeout for ollama (ms). */
  timeoutMs?: number;
  /** Dimension of the builtin embedder (also used for the fallback). */
  builtinDim?: number;
  log?: Log;
}

/** The embedder the configuration asks for (EMBEDDER, EMBEDDING_MODEL, ALLOW_MODEL_DOWNLOAD, OLLAMA_HOST). */
export function embedderFromConfig(routing: AppConfig['routing'], log?: Log): ReturnType<typeof createEmbedder> {
  return createEmbedder({
    kind: routing.embedder,
    modelId: routing.embeddingModel,
    allowRemote: routing.allowModelDownload,
    ollamaHost: routing.ollamaHost,
    log,
  });
}

/** Strips credentials from a URL before it goes into a message. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@');
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: { code?: unknown; message?: unknown } }).cause;
  const detail = !cause ? '' : typeof cause.code === 'string' ? ` (${cause.code})`
    : typeof cause.message === 'string' && cause.message ? ` (${cause.message})` : '';
  return redactUrl(err.message + detail);
}

/**
 * Builds the configured embedder and checks it with one test embedding. Never throws: on any
 * failure it logs once and returns the builtin embedder with `fallbackReason` set.
 */
export async function createEmbedder(opts: CreateEmbedderOptions): Promise<{ embedder: Embedder; fallbackReason: string | null }> {
  const builtin = (): BuiltinEmbedder => new BuiltinEmbedder(opts.builtinDim ?? 256);
  try {
    let embedder: Embedder;
    if (opts.kind === 'builtin') return { embedder: builtin(), fallbackReason: null };
    if (opts.kind === 'transformers') {
      embedder = await TransformersEmbedder.create({
        modelId: opts.modelId, localModelPath: opts.localModelPath, allowRemote: opts.allowRemote ?? false,
      });
    } else {
      embedder = await OllamaEmbedder.create({ host: opts.ollamaHost, model: opts.modelId, timeoutMs: opts.timeoutMs ?? 5000 });
    }
    const [probe] = await embedder.embed(['switchyard embedder check']);
    if (!probe || probe.length !== embedder.dim || !probe.every(Number.isFinite)) {
      throw new Error(`test embedding was invalid (dim ${probe?.length ?? 0}, expected ${embedder.dim})`);
    }
    opts.log?.('info', 'embedder ready', { embedder: embedder.name, dim: embedder.dim });
    return { embedder, fallbackReason: null };
  } catch (err) {
    const fallbackReason = `${opts.kind} embedder unavailable: ${describeError(err)}`;
    opts.log?.('warn', 'embedder fallback to builtin', { kind: opts.kind, reason: fallbackReason });
    return { embedder: builtin(), fallbackReason };
  }
}
