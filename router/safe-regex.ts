// Compiles user-supplied routing regexes after checking them for catastrophic backtracking.
// A small parser builds the pattern's shape; the checks are conservative (they may reject a safe
// pattern, never knowingly accept one that backtracks exponentially or cubically).
import { ApiError } from '../server/errors.ts';

export const MAX_PATTERN_CHARS = 500;

/** A routing regex that is invalid or unsafe to run; a 400 for the client, naming the pattern. */
export class BadRegexError extends ApiError {
  constructor(readonly pattern: string, readonly reason: string) {
    super(400, `Invalid routing pattern ${quote(pattern)}: ${reason}`, 'invalid_request_error', 'invalid_routing_rule', 'routing_rules');
    this.name = 'BadRegexError';
  }
}

function quote(pattern: string): string {
  const shown = pattern.length > 80 ? `${pattern.slice(0, 80)}…` : pattern;
  return JSON.stringify(shown);
}

/** Quantified items repeated more often than this count as "repeating" for the nesting checks. */
const REPEAT_LIMIT = 3;

type Atom =
  | { kind: 'char'; src: string }
  | { kind: 'group'; branches: Item[][]; lookaround: boolean }
  | { kind: 'anchor' }
  | { kind: 'backref' };
interface Item { atom: Atom; min: number; max: number }

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  parse(): Item[][] {
    const branches = this.alternation();
    if (this.i < this.s.length) throw new Error(`unexpected ${this.s[this.i]}`);
    return branches;
  }

  private alternation(): Item[][] {
    const branches: Item[][] = [this.sequence()];
    while (this.s[this.i] === '|') {
      this.i++;
      branches.push(this.sequence());
    }
    return branches;
  }

  private sequence(): Item[] {
    const items: Item[] = [];
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')') {
      const atom = this.atom();
      const [min, max] = this.quantifier();
      items.push({ atom, min, max });
    }
    return items;
  }

  private atom(): Atom {
    const s = this.s;
    const c = s[this.i]!;
    if (c === '^' || c === '$') { this.i++; return { kind: 'anchor' }; }
    if (c === '.') { this.i++; return { kind: 'char', src: '.' }; }
    if (c === '[') return { kind: 'char', src: this.charClass() };
    if (c === '(') return this.group();
    if (c === '\\') return this.escape();
    // A code point, not a UTF-16 unit, so astral characters stay whole.
    const ch = String.fromCodePoint(s.codePointAt(this.i)!);
    this.i += ch.length;
    return { kind: 'char', src: ch.replace(/[{}]/g, '\\$&') };
  }

  private escape(): Atom {
    const rest = this.s.slice(this.i);
    const backref = /^\\(?:[1-9]\d*|k<[^>]*>)/.exec(rest);
    if (backref) { this.i += backref[0].length; return { kind: 'backref' }; }
    if (/^\\[bB]/.test(rest)) { this.i += 2; return { kind: 'anchor' }; }
    const m = /^\\(?:[pP]\{[^}]*\}|x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|c[A-Za-z]|[\s\S])/.exec(rest)!;
    this.i += m[0].length;
    return { kind: 'char', src: m[0] };
  }

  private charClass(): string {
    const start = this.i;
    this.i++; // [
    if (this.s[this.i] === '^') this.i++;
    while (this.i < this.s.length && this.s[this.i] !== ']') this.i += this.s[this.i] === '\\' ? 2 : 1;
    this.i++; // ]
    return this.s.slice(start, this.i);
  }

  private group(): Atom {
    const head = /^\((\?(?:<?[=!]|:|<[^>]*>))?/.exec(this.s.slice(this.i))!;
    this.i += head[0].length;
    const lookaround = head[1] !== undefined && /[=!]/.test(head[1]);
    const branches = this.alternation();
    if (this.s[this.i] !== ')') throw new Error('unbalanced group');
    this.i++;
    return { kind: 'group', branches, lookaround };
  }

  private quantifier(): [number, number] {
    const m = /^(?:([*+?])|\{(\d+)(,(\d*))?\})\??/.exec(this.s.slice(this.i));
    if (!m) return [1, 1];
    this.i += m[0].length;
    if (m[1] === '*') return [0, Infinity];
    if (m[1] === '+') return [1, Infinity];
    if (m[1] === '?') return [0, 1];
    const min = Number(m[2]);
    const max = m[3] === undefined ? min : m[4] === '' ? Infinity : Number(m[4]);
    return [min, max];
  }
}

/** Chars the overlap checks probe with, besides every character of the pattern itself. */
const BASE_PROBES = [
  ...Array.from({ length: 95 }, (_, k) => String.fromCharCode(32 + k)),
  '\t', '\n', '\r', '\u00a0', 'é', 'ß', 'ж', '中', 'あ', '한', '٣', '😀',
];

/** Sets of characters are bitmaps over the probe alphabet; overlap = a probe matched by both. */
class Charsets {
  readonly probes: string[];
  private readonly cache = new Map<string, boolean[]>();
  constructor(pattern: string, private readonly flags: string) {
    this.probes = [...new Set([...BASE_PROBES, ...Array.from(pattern)])];
  }
  of(src: string): boolean[] {
    let set = this.cache.get(src);
    if (!set) {
      let re: RegExp | null = null;
      try { re = new RegExp(`^(?:${src})$`, this.flags); } catch { re = null; }
      // An atom we cannot test on its own is treated as matching everything (conservative).
      set = this.probes.map((p) => (re ? re.test(p) : true));
      this.cache.set(src, set);
    }
    return set;
  }
  empty(): boolean[] { return this.probes.map(() => false); }
}

const union = (a: boolean[], b: boolean[]) => a.map((v, k) => v || b[k]!);
const overlaps = (a: boolean[], b: boolean[]) => a.some((v, k) => v && b[k]!);

class Analyzer {
  constructor(private readonly sets: Charsets) {}

  /** Every character the item can consume. */
  consumes(item: Item): boolean[] {
    const a = item.atom;
    if (a.kind === 'char') return this.sets.of(a.src);
    if (a.kind === 'group' && !a.lookaround) {
      let acc = this.sets.empty();
      for (const b of a.branches) for (const it of b) acc = union(acc, this.consumes(it));
      return acc;
    }
    return this.sets.empty();
  }

  nullable(item: Item): boolean {
    if (item.min === 0) return true;
    const a = item.atom;
    if (a.kind === 'anchor' || a.kind === 'backref') return true;
    if (a.kind === 'group') return a.lookaround || a.branches.some((b) => b.every((it) => this.nullable(it)));
    return false;
  }

  /** Characters a branch can start with. */
  firstSet(branch: Item[]): boolean[] {
    let acc = this.sets.empty();
    for (const it of branch) {
      acc = union(acc, this.consumes(it));
      if (!this.nullable(it)) break;
    }
    return acc;
  }

  /** Returns the reason the pattern is unsafe, or null. */
  check(branches: Item[][]): string | null {
    for (const branch of branches) {
      const r = this.checkSequence(branch);
      if (r) return r;
    }
    return null;
  }

  private checkSequence(branch: Item[]): string | null {
    for (const item of branch) {
      const a = item.atom;
      if (a.kind === 'backref') return 'backreferences are not allowed';
      if (a.kind !== 'group') continue;
      const inner = this.check(a.branches);
      if (inner) return inner;
      if (item.max <= REPEAT_LIMIT) continue;
      if (a.branches.some((b) => b.some((it) => this.hasUnbounded(it)))) {
        return 'nested quantifiers such as (a+)+ can backtrack catastrophically';
      }
      // (a?){25}: each repetition may take or skip characters, so the ways to split a text grow
      // exponentially with the repeat count even though every quantifier is bounded.
      if (a.branches.some((b) => b.some((it) => this.isVariable(it)))) {
        return 'a repeated group whose length varies, such as (a?){25}, can backtrack catastrophically';
      }
      if (a.branches.length > 1) {
        const firsts = a.branches.map((b) => (b.every((it) => this.nullable(it)) ? null : this.firstSet(b)));
        if (firsts.includes(null)) return 'a repeated alternation has an alternative that can match nothing';
        for (let x = 0; x < firsts.length; x++) {
          for (let y = x + 1; y < firsts.length; y++) {
            if (overlaps(firsts[x]!, firsts[y]!)) return 'a repeated alternation has overlapping alternatives such as (a|a)*';
          }
        }
      }
    }
    return this.checkPolynomial(flatten(branch));
  }

  /** Can this item match texts of different lengths? */
  private isVariable(item: Item): boolean {
    if (item.min !== item.max) return true;
    const a = item.atom;
    return a.kind === 'group' && (a.branches.length > 1 || a.branches.some((b) => b.some((it) => this.isVariable(it))));
  }

  private hasUnbounded(item: Item): boolean {
    if (item.max > REPEAT_LIMIT) return true;
    const a = item.atom;
    return a.kind === 'group' && a.branches.some((b) => b.some((it) => this.hasUnbounded(it)));
  }

  /**
   * Two unbounded items that can eat the same characters, with only characters the first one
   * also eats in between (`.*x.*y`, `a*a*b`), backtrack cubically in an unanchored search.
   */
  private checkPolynomial(seq: Item[]): string | null {
    for (let x = 0; x < seq.length; x++) {
      if (seq[x]!.max !== Infinity) continue;
      const setX = this.consumes(seq[x]!);
      for (let y = x + 1; y < seq.length; y++) {
        const between = seq[y - 1]!;
        if (y - 1 > x && !this.nullable(between) && !overlaps(this.consumes(between), setX)) break;
        if (seq[y]!.max === Infinity && overlaps(setX, this.consumes(seq[y]!))) {
          return 'two unbounded quantifiers over the same characters (like .*x.*y) backtrack polynomially; drop a leading or trailing .* (matching is a search anyway)';
        }
      }
    }
    return null;
  }
}

/** Splices plain, non-repeated single-branch groups into the enclosing sequence. */
function flatten(seq: Item[]): Item[] {
  const out: Item[] = [];
  for (const it of seq) {
    const a = it.atom;
    if (a.kind === 'group' && !a.lookaround && a.branches.length === 1 && it.min === 1 && it.max === 1) out.push(...flatten(a.branches[0]!));
    else out.push(it);
  }
  return out;
}

/** Case-insensitive, unicode where the pattern allows it (legacy escapes fall back to non-unicode). */
function compileFlags(pattern: string): { re: RegExp; flags: string } | { error: string } {
  try {
    return { re: new RegExp(pattern, 'iu'), flags: 'iu' };
  } catch {
    try {
      return { re: new RegExp(pattern, 'i'), flags: 'i' };
    } catch (e) {
      return { error: `invalid regular expression (${(e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, '')})` };
    }
  }
}

/**
 * Compile a pattern from a request or config, or throw BadRegexError. Rejected: syntax errors,
 * more than 500 chars, backreferences, nested unbounded quantifiers, repeated overlapping
 * alternations, and overlapping unbounded runs such as `.*x.*y`.
 */
export function compileUserRegex(pattern: string): RegExp {
  if (typeof pattern !== 'string' || pattern.length === 0) throw new BadRegexError(String(pattern), 'empty pattern');
  if (pattern.length > MAX_PATTERN_CHARS) throw new BadRegexError(pattern, `longer than ${MAX_PATTERN_CHARS} characters`);
  const compiled = compileFlags(pattern);
  if ('error' in compiled) throw new BadRegexError(pattern, compiled.error);
  let branches: Item[][];
  try {
    branches = new Parser(pattern).parse();
  } catch {
    throw new BadRegexError(pattern, 'could not be analysed for safety');
  }
  const reason = new Analyzer(new Charsets(pattern, compiled.flags)).check(branches);
  if (reason) throw new BadRegexError(pattern, reason);
  return compiled.re;
}
