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

const FNV_PRIME = 16777619;
const fnvStart = (ns: number) => Math.imul(0x811c9dc5 ^ ns, FNV_PRIME);

/** FNV-1a over a string with a one-letter namespace, finished with murmur3's mixer. */
function hash(ns: number, s: string, from = 0, to = s.length): number {
  let h = fnvStart(ns);
  for (let i = from; i < to; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return fmix32(h);
}

const NS_WORD = 0x77, NS_BIGRAM = 0x62, NS_GRAM = 0x63;
/** Texts longer than this are cut before featurising (the start of a prompt says what it is). */
const MAX_CHARS = 8000;

/**
 * Feature counts of the text being featurised: open addressing on the (already mixed) hashes,
 * reused from text to text, so featurising allocates only its result.
 */
class FeatureCounts {
  private keys = new Uint32Array(1024);
  private counts = new Uint32Array(1024);
  /** Occupied slots, in first-seen order, to read and clear them. */
  private slots = new Uint32Array(512);
  size = 0;

  add(h: number): void {
    let mask = this.keys.length - 1;
    let i = h & mask;
    while (this.counts[i] !== 0) {
      if (this.keys[i] === h) {
        this.counts[i]++;
        return;
      }
      i = (i + 1) & mask;
    }
    if (this.size === this.slots.length) {
      this.grow();
      mask = this.keys.length - 1;
      i = h & mask;
      while (this.counts[i] !== 0) i = (i + 1) & mask;
    }
    this.keys[i] = h;
    this.counts[i] = 1;
    this.slots[this.size++] = i;
  }

  /** Doubles the table (kept at most half full), re-placing the features counted so far. */
  private grow(): void {
    const { keys, counts, slots, size } = this;
    this.keys = new Uint32Array(keys.length * 2);
    this.counts = new Uint32Array(keys.length * 2);
    this.slots = new Uint32Array(slots.length * 2);
    const mask = this.keys.length - 1;
    for (let n = 0; n < size; n++) {
      const h = keys[slots[n]!]!;
      let i = h & mask;
      while (this.counts[i] !== 0) i = (i + 1) & mask;
      this.keys[i] = h;
      this.counts[i] = counts[slots[n]!]!;
      this.slots[n] = i;
    }
  }

  /** The counted features, keys ascending, with 1 + ln count; empties the table. */
  take(): SparseText {
    const keys = new Uint32Array(this.size);
    for (let n = 0; n < this.size; n++) keys[n] = this.keys[this.slots[n]!]!;
    keys.sort();
    const tf = new Float32Array(keys.length);
    const mask = this.keys.length - 1;
    for (let n = 0; n < keys.length; n++) {
      let i = keys[n]! & mask;
      while (this.keys[i] !== keys[n]) i = (i + 1) & mask;
      const count = this.counts[i]!;
      tf[n] = count === 1 ? 1 : 1 + Math.log(count);
    }
    for (let n = 0; n < this.size; n++) this.counts[this.slots[n]!] = 0;
    this.size = 0;
    return { keys, tf };
  }
}

const counts = new FeatureCounts();

/**
 * Features of a text: each word (letters and digits, lower-cased, NFKC), each pair of adjacent
 * words, and each character 4-gram of a word padded with spaces (" cat " -> " cat", "cat "), which
 * also covers CJK text written without spaces.
 */
export function textFeatures(text: string): SparseText {
  const cut = text.length > MAX_CHARS ? text.slice(0, MAX_CHARS) : text;
  if (ASCII_RE.test(cut)) asciiFeatures(cut);
  else unicodeFeatures(cut.normalize('NFKC').toLowerCase());
  return counts.take();
}

function unicodeFeatures(s: string): void {
  let prev = '';
  for (const m of s.matchAll(WORD_RE)) {
    const w = m[0];
    counts.add(hash(NS_WORD, w));
    if (prev) counts.add(hash(NS_BIGRAM, `${prev} ${w}`));
    prev = w;
    const padded = ` ${w} `;
    if (padded.length <= 4) counts.add(hash(NS_GRAM, padded));
    else for (let i = 0; i + 4 <= padded.length; i++) counts.add(hash(NS_GRAM, padded, i, i + 4));
    // CJK runs are one "word" to the regex; their characters carry the meaning one or two at a time.
    if (w.length > 1 && CJK_RE.test(w)) for (let i = 0; i + 2 <= w.length; i++) counts.add(hash(NS_BIGRAM, w, i, i + 2));
  }
}

/** Lower-cased ASCII code. */
const lower = (c: number) => (c >= 65 && c <= 90 ? c + 32 : c);
/** An ASCII letter or digit (what the word pattern matches in ASCII text), lower-cased. */
const isWordCode = (c: number) => (c >= 97 && c <= 122) || (c >= 48 && c <= 57);

/**
 * The same features as unicodeFeatures for ASCII text (where NFKC changes nothing and words are
 * runs of [a-z0-9]), hashed from the character codes without building the words' strings.
 */
function asciiFeatures(s: string): void {
  let prevFrom = -1, prevTo = -1;
  let i = 0;
  const n = s.length;
  while (i < n) {
    if (!isWordCode(lower(s.charCodeAt(i)))) {
      i++;
      continue;
    }
    const from = i;
    while (i < n && isWordCode(lower(s.charCodeAt(i)))) i++;
    const to = i;
    let h = fnvStart(NS_WORD);
    for (let j = from; j < to; j++) h = Math.imul(h ^ lower(s.charCodeAt(j)), FNV_PRIME);
    counts.add(fmix32(h));
    if (prevFrom >= 0) {
      h = fnvStart(NS_BIGRAM);
      for (let j = prevFrom; j < prevTo; j++) h = Math.imul(h ^ lower(s.charCodeAt(j)), FNV_PRIME);
      h = Math.imul(h ^ 32, FNV_PRIME);
      for (let j = from; j < to; j++) h = Math.imul(h ^ lower(s.charCodeAt(j)), FNV_PRIME);
      counts.add(fmix32(h));
    }
    prevFrom = from;
    prevTo = to;
    // 4-grams of " word ": position p of the padded word is a space at either end, else s[from + p - 1].
    const padded = to - from + 2;
    const grams = padded <= 4 ? 1 : padded - 3;
    const width = padded <= 4 ? padded : 4;
    for (let g = 0; g < grams; g++) {
      h = fnvStart(NS_GRAM);
      for (let p = g; p < g + width; p++) h = Math.imul(h ^ (p === 0 || p === padded - 1 ? 32 : lower(s.charCodeAt(from + p - 1))), FNV_PRIME);
      counts.add(fmix32(h));
    }
  }
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
  /** The documents a search has scored, in the order it first reached them (scratch, like scores). */
  private touched = new Uint32Array(1024);
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
      this.touched = new Uint32Array(grown.length);
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
    const touched = this.touched;
    let reached = 0;
    let qnorm = 0;
    for (let i = 0; i < query.keys.length; i++) {
      const p = this.postings.get(query.keys[i]!);
      const length = p?.length ?? 0;
      // idf(key), without looking the key up again.
      const idf = Math.log((this.count + 1) / (length + 1)) + 1;
      const wq = query.tf[i]! * idf;
      qnorm += wq * wq;
      if (!p || length > limit) continue;
      const f = wq * idf;
      const docs = p.docs;
      const tf = p.tf;
      for (let j = 0; j < length; j++) {
        const d = docs[j]!;
        if (scores[d] === 0) touched[reached++] = d;
        scores[d] += f * tf[j]!;
      }
    }
    qnorm = Math.sqrt(qnorm) || 1;
    const top: Array<{ label: number; similarity: number }> = [];
    for (let t = 0; t < reached; t++) {
      const d = touched[t]!;
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
