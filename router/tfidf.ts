// The built-in text index for routing: sparse TF-IDF vectors of word unigrams, bigrams and
// character 4-grams, searched exactly through an inverted index. Pure computation plus save/load.
//
// Why not the hashed dense embedding: which model answers a query well hinges on rare words (a
// subject, a term of art, the shape of a word problem); a 256-dimension hash blurs them together
// and weighs "the" like "integral". Inverse document frequency keeps the rare ones, and an exact
// sparse search over them finds the queries that really are alike.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fmix32 } from './vector.ts';

/** Distinct features of one text with their log-scaled term frequency (1 + ln count), keys ascending. */
export interface SparseText {
  keys: Uint32Array;
  tf: Float32Array;
}

const ASCII_RE = /^[\x00-\x7f]*$/;
const WORD_RE = /[\p{L}\p{N}]+/gu;
const CJK_RE = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]/;

/** FNV-1a over a string with a one-letter namespace, finished with murmur3's mixer. */
function hash(ns: number, s: string, from = 0, to = s.length): number {
  let h = Math.imul(0x811c9dc5 ^ ns, 16777619);
  for (let i = from; i < to; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return fmix32(h);
}

const NS_WORD = 0x77, NS_BIGRAM = 0x62, NS_GRAM = 0x63;
/** Texts longer than this are cut before featurising (the start of a prompt says what it is). */
const MAX_CHARS = 8000;

/**
 * Features of a text: each word (letters and digits, lower-cased, NFKC), each pair of adjacent
 * words, and each character 4-gram of a word padded with spaces (" cat " -> " cat", "cat "), which
 * also covers CJK text written without spaces.
 */
export function textFeatures(text: string): SparseText {
  const cut = text.length > MAX_CHARS ? text.slice(0, MAX_CHARS) : text;
  const s = (ASCII_RE.test(cut) ? cut : cut.normalize('NFKC')).toLowerCase();
  const counts = new Map<number, number>();
  const add = (h: number) => counts.set(h, (counts.get(h) ?? 0) + 1);
  let prev = '';
  for (const m of s.matchAll(WORD_RE)) {
    const w = m[0];
    add(hash(NS_WORD, w));
    if (prev) add(hash(NS_BIGRAM, `${prev} ${w}`));
    prev = w;
    const padded = ` ${w} `;
    if (padded.length <= 4) add(hash(NS_GRAM, padded));
    else for (let i = 0; i + 4 <= padded.length; i++) add(hash(NS_GRAM, padded, i, i + 4));
    // CJK runs are one "word" to the regex; their characters carry the meaning one or two at a time.
    if (w.length > 1 && CJK_RE.test(w)) for (let i = 0; i + 2 <= w.length; i++) add(hash(NS_BIGRAM, w, i, i + 2));
  }
  const keys = Uint32Array.from(counts.keys()).sort();
  const tf = new Float32Array(keys.length);
  keys.forEach((k, i) => { tf[i] = 1 + Math.log(counts.get(k)!); });
  return { keys, tf };
}

/** One posting list: the documents holding a feature and its tf in each, growing by doubling. */
class Postings {
  docs = new Uint32Array(4);
  tf = new Float32Array(4);
  length = 0;
  push(doc: number, tf: number): void {
    if (this.length === this.docs.length) {
      const docs = new Uint32Array(this.length * 2);
      docs.set(this.docs);
      this.docs = docs;
      const t = new Float32Array(this.length * 2);
      t.set(this.tf);
      this.tf = t;
    }
    this.docs[this.length] = doc;
    this.tf[this.length] = tf;
    this.length++;
  }
}

export interface TfidfOptions {
  /**
   * Features held by more than this share of the documents are skipped when searching (their
   * IDF is near zero, their posting lists the longest); only once the index has 200 documents.
   */
  maxDocShare?: number;
}

/**
 * Exact cosine search over TF-IDF vectors. IDF is ln((N + 1) / (df + 1)) + 1 over the documents
 * indexed so far. Document norms depend on every IDF, so they are recomputed (one pass over the
 * postings) before a search whenever the index has grown since: every time while it is small
 * (under 200 documents), and after that only once it grew by a tenth, so online additions do not
 * make each search pay for a full pass; in between, new documents' norms use the IDF of the moment
 * they came.
 */
export class SparseTextIndex {
  private readonly postings = new Map<number, Postings>();
  private norms = new Float32Array(1024);
  private count = 0;
  /** Document count when every norm was last recomputed. */
  private normsAt = 0;
  private scores = new Float32Array(1024);
  private readonly maxDocShare: number;

  constructor(opts: TfidfOptions = {}) {
    this.maxDocShare = opts.maxDocShare ?? 0.25;
  }

  get size(): number {
    return this.count;
  }

  idf(key: number): number {
    const df = this.postings.get(key)?.length ?? 0;
    return Math.log((this.count + 1) / (df + 1)) + 1;
  }

  /** Adds a document as the next label (0, 1, 2...); returns the label. */
  insert(doc: SparseText): number {
    const label = this.count++;
    if (label >= this.norms.length) {
      const grown = new Float32Array(this.norms.length * 2);
      grown.set(this.norms);
      this.norms = grown;
      this.scores = new Float32Array(grown.length);
    }
    let norm = 0;
    for (let i = 0; i < doc.keys.length; i++) {
      const key = doc.keys[i]!;
      let p = this.postings.get(key);
      if (!p) this.postings.set(key, (p = new Postings()));
      p.push(label, doc.tf[i]!);
    }
    for (let i = 0; i < doc.keys.length; i++) norm += (doc.tf[i]! * this.idf(doc.keys[i]!)) ** 2;
    this.norms[label] = Math.sqrt(norm) || 1;
    return label;
  }

  /** Recomputes every norm now (after a bulk load), so no search pays for it later. */
  settle(): void {
    if (this.count !== this.normsAt) this.refreshNorms();
  }

  private refreshNorms(): void {
    const sums = new Float64Array(this.count);
    for (const [key, p] of this.postings) {
      const idf = this.idf(key);
      for (let j = 0; j < p.length; j++) sums[p.docs[j]!] += (p.tf[j]! * idf) ** 2;
    }
    for (let d = 0; d < this.count; d++) this.norms[d] = Math.sqrt(sums[d]!) || 1;
    this.normsAt = this.count;
  }

  /** The k most similar labels with their cosine similarity, best first. */
  nearest(query: SparseText, k: number): Array<{ label: number; similarity: number }> {
    if (this.count === 0 || k <= 0) return [];
    if (this.count !== this.normsAt && (this.count < 200 || this.count > 1.1 * this.normsAt)) this.refreshNorms();
    const limit = this.count >= 200 ? this.maxDocShare * this.count : Infinity;
    const scores = this.scores;
    const touched: number[] = [];
    let qnorm = 0;
    for (let i = 0; i < query.keys.length; i++) {
      const key = query.keys[i]!;
      const p = this.postings.get(key);
      const idf = this.idf(key);
      const wq = query.tf[i]! * idf;
      qnorm += wq * wq;
      if (!p || p.length > limit) continue;
      const f = wq * idf;
      for (let j = 0; j < p.length; j++) {
        const d = p.docs[j]!;
        if (scores[d] === 0) touched.push(d);
        scores[d] += f * p.tf[j]!;
      }
    }
    qnorm = Math.sqrt(qnorm) || 1;
    const top: Array<{ label: number; similarity: number }> = [];
    for (const d of touched) {
      const similarity = scores[d]! / (qnorm * this.norms[d]!);
      scores[d] = 0;
      if (top.length === k && similarity <= top[k - 1]!.similarity) continue;
      let i = top.length === k ? k - 1 : top.length;
      if (top.length === k) top.pop();
      while (i > 0 && top[i - 1]!.similarity < similarity) i--;
      top.splice(i, 0, { label: d, similarity });
    }
    return top;
  }
}

/** A document's features as stored in the index file: [keys..., tfs...] flattened for JSON. */
export function encodeSparse(doc: SparseText): { k: number[]; t: number[] } {
  return { k: Array.from(doc.keys), t: Array.from(doc.tf, (v) => Math.round(v * 1e4) / 1e4) };
}

export function decodeSparse(e: { k: number[]; t: number[] }): SparseText {
  return { keys: Uint32Array.from(e.k), tf: Float32Array.from(e.t) };
}

/** Writes `file` through a temp file and a rename, so a reader sees the old or the new file. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}
