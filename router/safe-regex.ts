// The one place client and config regexes are compiled: on RE2 (re2js, linear time in the text,
// no backtracking), with bounds on pattern length, program size and the matching work per request.
import { RE2JS } from 're2js';
import { ApiError } from '../core/errors.ts';

export const MAX_PATTERN_CHARS = 500;
/** Request `routing_rules` per request. */
export const MAX_REQUEST_RULES = 32;
/** One compiled pattern's program; bounded repeats such as `x{1000}` grow it. */
export const MAX_PROGRAM_SIZE = 2000;
/** All of one request's rules together. */
export const MAX_TOTAL_PROGRAM_SIZE = 8000;
/** Rules never see more of the text than this. */
export const MAX_MATCH_TEXT_CHARS = 10_000;
/**
 * Matching work per rule set and request, in program instructions x text characters: RE2's
 * worst case is proportional to both. A rule set whose programs are large together sees a shorter
 * prefix of the text (`matchWindow`), so no request costs more than about 75 ms of matching.
 */
export const MAX_MATCH_WORK = 2_000_000;

/** A routing regex that is invalid or that RE2 cannot run; a 400 for the client, naming the pattern. */
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

/** A compiled client or config pattern: case-insensitive, Unicode-aware, linear-time. */
export interface UserRegex {
  readonly pattern: string;
  /** RE2 program instructions: what one character of text costs at worst. */
  readonly size: number;
  /** Unanchored search, like RegExp.prototype.test. */
  test(text: string): boolean;
  /** Frees the lazily built DFA states (up to 8 MB a pattern); the program stays compiled. */
  release(): void;
}

/**
 * JavaScript constructs RE2 has no meaning for, found before translation (which would otherwise
 * read `\k<name>` as a plain `k`). Escapes are skipped pairwise, so `\\1` is a backslash and a 1.
 */
function unsupported(pattern: string): string | null {
  for (const m of pattern.matchAll(/\\(?:[1-9]|k<)|\\[\s\S]|\(\?<?[=!]/g)) {
    const t = m[0];
    if (/^\\(?:[1-9]|k<)/.test(t)) return 'backreferences are not supported (the linear-time RE2 engine cannot express them)';
    if (t.startsWith('(')) return 'lookahead and lookbehind are not supported (the linear-time RE2 engine cannot express them)';
  }
  return null;
}

/**
 * Compile a pattern from a request or config, or throw BadRegexError. JavaScript syntax is
 * accepted where RE2 has the same meaning (`\u00e9`, `\u{1F600}`, `(?<name>...)`, `[^]`);
 * backreferences, lookaround and anything else RE2 cannot express are refused by name.
 */
export function compileUserRegex(pattern: string): UserRegex {
  if (typeof pattern !== 'string' || pattern.length === 0) throw new BadRegexError(String(pattern), 'empty pattern');
  if (pattern.length > MAX_PATTERN_CHARS) throw new BadRegexError(pattern, `longer than ${MAX_PATTERN_CHARS} characters`);
  const refused = unsupported(pattern);
  if (refused) throw new BadRegexError(pattern, refused);
  let re: RE2JS;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(toRe2Properties(pattern)), RE2JS.CASE_INSENSITIVE);
  } catch (e) {
    throw new BadRegexError(pattern, `the linear-time RE2 engine cannot compile it (${(e as Error).message.replace(/^error parsing regexp: /, '')})`);
  }
  const size = re.re2().prog.numInst();
  if (size > MAX_PROGRAM_SIZE) {
    throw new BadRegexError(pattern, `too large for the matching budget (${size} RE2 instructions, limit ${MAX_PROGRAM_SIZE}; large bounded repeats such as x{1000} cost the most)`);
  }
  return { pattern, size, test: (text) => re.test(text), release: () => re.reset() };
}

/** JavaScript's long Unicode property names, as RE2 spells them. */
const PROPERTY_NAMES: Record<string, string> = {
  Letter: 'L', Cased_Letter: 'L', Uppercase_Letter: 'Lu', Lowercase_Letter: 'Ll', Titlecase_Letter: 'Lt', Modifier_Letter: 'Lm', Other_Letter: 'Lo',
  Mark: 'M', Number: 'N', Decimal_Number: 'Nd', digit: 'Nd', Letter_Number: 'Nl', Other_Number: 'No', Punctuation: 'P', punct: 'P',
  Symbol: 'S', Math_Symbol: 'Sm', Currency_Symbol: 'Sc', Separator: 'Z', Space_Separator: 'Zs', Other: 'C', Control: 'Cc', cntrl: 'Cc',
};

/** `\p{Script=Han}`, `\p{sc=Han}`, `\p{gc=Letter}`, `\p{Letter}` -> `\p{Han}`, `\p{L}` (escaped backslashes skipped). */
function toRe2Properties(pattern: string): string {
  return pattern.replace(/\\\\|\\([pP])\{(?:(?:Script|sc|Script_Extensions|scx|General_Category|gc)=)?([A-Za-z_]+)\}/g, (all, p: string | undefined, name: string | undefined) =>
    p === undefined ? all : `\\${p}{${PROPERTY_NAMES[name!] ?? name}}`);
}

/** How much of the text a rule set may read: all of it up to 10 000 chars, less when its programs are large. */
export function matchWindow(totalSize: number): number {
  if (totalSize <= 0) return MAX_MATCH_TEXT_CHARS;
  return Math.max(1, Math.min(MAX_MATCH_TEXT_CHARS, Math.floor(MAX_MATCH_WORK / totalSize)));
}

const REQUEST_REGEX_CACHE_MAX = 256;
const requestRegexCache = new Map<string, UserRegex>();

/** Request patterns are cached (clients send the same rules on every request); errors are not. */
export function cachedUserRegex(pattern: string): UserRegex {
  const hit = requestRegexCache.get(pattern);
  if (hit) return hit;
  const re = compileUserRegex(pattern);
  if (requestRegexCache.size >= REQUEST_REGEX_CACHE_MAX) {
    const oldest = requestRegexCache.keys().next().value;
    if (oldest !== undefined) requestRegexCache.delete(oldest);
  }
  requestRegexCache.set(pattern, re);
  return re;
}

/** One request's rule patterns, compiled and checked against the per-request bounds. */
export function compileRequestPatterns(patterns: readonly string[]): UserRegex[] {
  if (patterns.length > MAX_REQUEST_RULES) {
    throw new ApiError(400, `Invalid request: at most ${MAX_REQUEST_RULES} routing_rules per request (got ${patterns.length})`, 'invalid_request_error', 'too_many_routing_rules', 'routing_rules');
  }
  const compiled = patterns.map(cachedUserRegex);
  const total = compiled.reduce((n, r) => n + r.size, 0);
  if (total > MAX_TOTAL_PROGRAM_SIZE) {
    throw new ApiError(400, `Invalid request: routing_rules are too large together (${total} RE2 instructions, limit ${MAX_TOTAL_PROGRAM_SIZE}); use fewer or simpler patterns`, 'invalid_request_error', 'routing_rules_too_large', 'routing_rules');
  }
  return compiled;
}
