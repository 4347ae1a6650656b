// Keyword routing: configured regex rules (model id or `tag:<tag>` targets) as a routing stage,
// and per-request `routing_rules` matching. Patterns are compiled once and run on bounded text.
import type { KeywordRule } from '../core/config.ts';
import type { CandidateModel, QueryFeatures, RouteRule, RoutingStage, StageResult } from '../core/routing.ts';
import { BadRegexError, compileRequestPatterns, compileUserRegex, matchWindow, type UserRegex } from './safe-regex.ts';

export { BadRegexError, compileUserRegex, MAX_PATTERN_CHARS, MAX_MATCH_TEXT_CHARS } from './safe-regex.ts';

/** Score a matched rule gives its models when no learned weight exists for it. */
const DEFAULT_RULE_SCORE = 0.7;

export interface CompiledKeywordRule {
  name: string;
  pattern: string;
  regex: UserRegex;
  /** A model id, or `tag:<tag>`. */
  target: string;
}

/** The prefix of the text a rule set reads (see matchWindow). */
const bounded = (text: string, rules: readonly { size: number }[]) => {
  const window = matchWindow(rules.reduce((n, r) => n + r.size, 0));
  return text.length > window ? text.slice(0, window) : text;
};

/**
 * Compile configured rules once. A bad rule throws BadRegexError (start-up fails naming it):
 * the same safety limits apply as for request rules, since both run on client text.
 */
export function compileKeywordRules(rules: readonly KeywordRule[]): CompiledKeywordRule[] {
  return rules.map((rule, i) => {
    const name = rule.name ?? `rule-${i + 1}`;
    try {
      return { name, pattern: rule.pattern, regex: compileUserRegex(rule.pattern), target: rule.model };
    } catch (e) {
      if (e instanceof BadRegexError) throw new BadRegexError(rule.pattern, `keyword rule "${name}": ${e.reason}`);
      throw e;
    }
  });
}

/** Candidate ids a rule target names: the model itself, or every candidate carrying the tag. */
export function resolveTarget(target: string, candidates: readonly CandidateModel[]): string[] {
  if (target.startsWith('tag:')) {
    const tag = target.slice(4).toLowerCase();
    return candidates.filter((c) => c.tags.some((t) => t.toLowerCase() === tag)).map((c) => c.id);
  }
  return candidates.some((c) => c.id === target) ? [target] : [];
}

export interface KeywordMatch {
  rule: string;
  models: string[];
  score: number;
}

/** Every rule that matches the text and names at least one candidate, in rule order. */
export function matchKeywordRules(
  text: string,
  rules: readonly CompiledKeywordRule[],
  candidates: readonly CandidateModel[],
  ruleWeights?: Readonly<Record<string, number>>,
): KeywordMatch[] {
  const sample = bounded(text, rules.map((r) => r.regex));
  const out: KeywordMatch[] = [];
  for (const rule of rules) {
    if (!rule.regex.test(sample)) continue;
    const models = resolveTarget(rule.target, candidates);
    if (models.length === 0) continue;
    const learned = ruleWeights?.[rule.name];
    const score = learned !== undefined && Number.isFinite(learned) ? Math.min(1, Math.max(0, learned)) : DEFAULT_RULE_SCORE;
    out.push({ rule: rule.name, models, score });
  }
  return out;
}

export interface KeywordStageOptions {
  /** Learned per-rule weights in [0,1] (LearnedState.keywordRuleWeights), read on every call. */
  ruleWeights?: () => Readonly<Record<string, number>> | undefined;
}

/** Routing stage: matched rules vote for their models; a model keeps its best rule's score. */
export class KeywordStage implements RoutingStage {
  readonly name = 'keywords';
  private readonly rules: CompiledKeywordRule[];

  constructor(rules: readonly KeywordRule[], private readonly opts: KeywordStageOptions = {}) {
    this.rules = compileKeywordRules(rules);
  }

  get ruleCount(): number {
    return this.rules.length;
  }

  async score(text: string, _features: QueryFeatures, candidates: CandidateModel[]): Promise<StageResult | null> {
    return this.scoreSync(text, candidates);
  }

  /** Synchronous form for the router's hot path (regexes need no I/O). */
  scoreSync(text: string, candidates: readonly CandidateModel[]): StageResult | null {
    const matches = matchKeywordRules(text, this.rules, candidates, this.opts.ruleWeights?.());
    if (matches.length === 0) return null;
    const perModel: Record<string, number> = {};
    for (const m of matches) for (const id of m.models) perModel[id] = Math.max(perModel[id] ?? 0, m.score);
    const best = Math.max(...Object.values(perModel));
    const evidence = matches.map((m) => `rule "${m.rule}" -> ${m.models.join(', ')}`).join('; ');
    return { perModel, confidence: best, evidence };
  }
}

/**
 * First request rule whose pattern matches (and whose model `accept`s, when given), or null.
 * All patterns are validated first, so a bad one is reported even if an earlier rule matches.
 * @throws BadRegexError naming the offending pattern.
 */
export function matchRequestRules(
  text: string,
  rules: readonly RouteRule[],
  accept?: (model: string) => boolean,
): { model: string; pattern: string } | null {
  const regexes = compileRequestPatterns(rules.map((r) => r.pattern));
  const sample = bounded(text, regexes);
  try {
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (accept && !accept(rule.model)) continue;
      if (regexes[i]!.test(sample)) return { model: rule.model, pattern: rule.pattern };
    }
    return null;
  } finally {
    // Client patterns keep their compiled program in the cache, not the DFA states their text built.
    for (const re of regexes) re.release();
  }
}
