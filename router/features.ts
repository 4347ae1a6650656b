// Cheap, pure query features (language, domain, complexity, length) used by every routing stage.
// Everything here is regex/scan based with precompiled patterns: microseconds per query.
//
// Domains and their main signals (English + Chinese; a few other languages for translation):
// | domain      | signals                                                                        |
// |-------------|--------------------------------------------------------------------------------|
// | code        | code fences, function/bug/compile/python/typescript/regex, 代码 函数 编程 报错 |
// | math        | prove/equation/integral/derivative/matrix, x^2, \frac, 证明 方程 积分 导数     |
// | writing     | essay/story/poem/email/rewrite/proofread, 作文 文章 写一篇 润色 改写           |
// | translation | translate/"into English"/traduire/übersetze, 翻译 译成 翻訳 번역 перевед      |
// | reasoning   | puzzle/riddle/logic/deduce/paradox, 推理 逻辑 谜题 悖论                        |
// | data        | sql/database/spreadsheet/excel/csv/pandas/data analysis, 数据 表格 数据库 统计 |
// | science     | physics/chemistry/biology/quantum/molecule/DNA, 物理 化学 生物 量子 分子       |
// | business    | marketing/sales/revenue/startup/investor/pricing, 营销 市场 销售 创业 投资     |
// | health      | symptom/doctor/disease/medication/diet/sleep, 健康 症状 医生 疾病 药 失眠      |
// | chat        | greetings, thanks, small talk, jokes, 你好 谢谢 你是谁 聊天                    |
// | other       | no signal                                                                      |
import type { Complexity, Domain, Language, LengthBucket, QueryFeatures } from '../core/routing.ts';

/** Long inputs are sampled (head + tail) so feature cost stays bounded. */
const SAMPLE_HEAD = 6000;
const SAMPLE_TAIL = 2000;

function sample(text: string): string {
  if (text.length <= SAMPLE_HEAD + SAMPLE_TAIL) return text;
  return text.slice(0, SAMPLE_HEAD) + '\n' + text.slice(text.length - SAMPLE_TAIL);
}

export function lengthBucket(chars: number): LengthBucket {
  if (chars < 40) return 'xs';
  if (chars < 200) return 's';
  if (chars < 1000) return 'm';
  if (chars < 4000) return 'l';
  return 'xl';
}

// ---------------------------------------------------------------- code detection

const FENCE_RE = /(^|\n)[ \t]*(```|~~~)[^\n]*\n[\s\S]*?(\n[ \t]*(```|~~~)|$)/g;
const CODE_LINE_RE = new RegExp(
  [
    String.raw`^\s*(def|class|import|from\s+\S+\s+import|function|const|let|var|return|if\s*\(|for\s*\(|while\s*\(|public|private|static|package|func|fn|#include|using\s+namespace|SELECT\s|INSERT\s|UPDATE\s|CREATE\s+TABLE|async\s+function|export\s)`,
    String.raw`[;{}]\s*$`,
    String.raw`^\s*[}\])]`,
    String.raw`=>|::|->|!==|===|\+\+|&&|\|\|`,
    String.raw`^\s*(#|//)\s*\S`,
    String.raw`^\s*\w+(\.\w+)*\s*\(.*\)\s*;?$`,
    String.raw`^\s*[\w.\[\]]+\s*[+\-*/]?=\s*\S`,
  ].join('|'),
);
const PROSE_WORD_RE = /\b(the|and|is|are|how|what|why|please|can|you|i|my|write|explain)\b/i;

function isCodeLine(line: string): boolean {
  return CODE_LINE_RE.test(line) && !(PROSE_WORD_RE.test(line) && !/[;{}=()]/.test(line));
}

/** Share of non-empty lines that look like code (0 when there are none). */
function codeLineShare(text: string): { share: number; lines: number; longestRun: number } {
  let lines = 0;
  let code = 0;
  let run = 0;
  let longestRun = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    lines++;
    if (isCodeLine(line)) {
      code++;
      run++;
      if (run > longestRun) longestRun = run;
    } else run = 0;
  }
  return { share: lines === 0 ? 0 : code / lines, lines, longestRun };
}

/** True when the text contains a fenced block or a run of code-looking lines. */
export function hasCodeBlock(text: string): boolean {
  const s = sample(text);
  FENCE_RE.lastIndex = 0;
  if (FENCE_RE.test(s)) return true;
  const { share, lines, longestRun } = codeLineShare(s);
  return longestRun >= 2 || (lines >= 1 && share >= 0.8 && /[;{}()=]/.test(s));
}

// ---------------------------------------------------------------- language

const OTHER_LETTER_RE = /\p{L}/u;

type ScriptKey = 'han' | 'kana' | 'hangul' | 'cyrillic' | 'latin' | 'otherScript';

/** Script of one UTF-16 code unit by range (no regex on the common paths); null = not a letter. */
function scriptOf(c: number, ch: string): ScriptKey | null {
  if (c < 0x80) return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) ? 'latin' : null;
  if (c <= 0x24f) return c >= 0xc0 && c !== 0xd7 && c !== 0xf7 ? 'latin' : null;
  if (c >= 0x1e00 && c <= 0x1eff) return 'latin';
  if (c >= 0x400 && c <= 0x52f) return 'cyrillic';
  if ((c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0xf900 && c <= 0xfaff)) return 'han';
  if ((c >= 0x3040 && c <= 0x30ff) || (c >= 0x31f0 && c <= 0x31ff) || (c >= 0xff66 && c <= 0xff9f)) return 'kana';
  if ((c >= 0xac00 && c <= 0xd7af) || (c >= 0x1100 && c <= 0x11ff) || (c >= 0x3130 && c <= 0x318f)) return 'hangul';
  if (c >= 0x300 && c <= 0x36f) return null;
  return OTHER_LETTER_RE.test(ch) ? 'otherScript' : null;
}

/** Apostrophes and combining marks continue a word rather than end it. */
function continuesWord(c: number): boolean {
  return c === 39 || c === 0x2019 || (c >= 0x300 && c <= 0x36f);
}

const STOP_WORDS: Record<'en' | 'es' | 'fr' | 'de', Set<string>> = {
  en: new Set(('the and is are to of in a an what how why you i it that this for with can please ' +
    'do does my me be on or not your we they have has was will would should which write explain').split(' ')),
  es: new Set(('el la los las de que y en un una es por para con cómo como qué del se no mi al lo ' +
    'pero está son su sus puedes hola gracias escribe explica yo tu muy más').split(' ')),
  fr: new Set(('le la les de des du et est un une en que qui pour dans ce cette pas avec sur je vous ' +
    'il elle comment quel quelle au aux ne sont mon ma mes bonjour merci écris explique très').split(' ')),
  de: new Set(('der die das und ist nicht ein eine zu mit von den dem ich sie es wie was für auf auch ' +
    'bitte kann du wir im sich sind mein meine warum schreibe erkläre hallo danke sehr oder').split(' ')),
};
const DIACRITICS: Array<[RegExp, 'es' | 'fr' | 'de']> = [
  [/[ñ¿¡]/g, 'es'],
  [/[çèêëàâîïôûùœ]/g, 'fr'],
  [/[äöüß]/g, 'de'],
];

function latinLanguage(words: string[], text: string): Language {
  const score = { en: 0, es: 0, fr: 0, de: 0 };
  for (const w of words) {
    for (const lang of ['en', 'es', 'fr', 'de'] as const) if (STOP_WORDS[lang].has(w)) score[lang]++;
  }
  for (const [re, lang] of DIACRITICS) {
    const m = text.match(re);
    if (m) score[lang] += 2 * m.length;
  }
  let best: 'en' | 'es' | 'fr' | 'de' = 'en';
  for (const lang of ['es', 'fr', 'de'] as const) if (score[lang] > score[best]) best = lang;
  return best;
}

/** Dominant language plus whether a second script carries a real share (>= 10%) of the text. */
export function detectLanguage(text: string): { language: Language; mixed: boolean } {
  const s = sample(text);
  FENCE_RE.lastIndex = 0;
  const prose = s.replace(FENCE_RE, '\n');
  const hadFence = prose.length !== s.length;
  if (prose.trim() === '' && hadFence) return { language: 'code', mixed: false };
  if (!hadFence) {
    const { share, lines } = codeLineShare(prose);
    if (lines >= 1 && share >= 0.8 && /[;{}()=]/.test(prose)) return { language: 'code', mixed: false };
  }

  // Units: one per CJK character, two per word in space-separated scripts (a Chinese word is
  // about two characters), so "用Python写函数" weighs the English word fairly.
  const units: Record<ScriptKey, number> = { han: 0, kana: 0, hangul: 0, cyrillic: 0, latin: 0, otherScript: 0 };
  const latinWords: string[] = [];
  let word: ScriptKey | null = null;
  let wordStart = 0;
  for (let i = 0; i <= prose.length; i++) {
    const c = i < prose.length ? prose.charCodeAt(i) : 32;
    if (word !== null && continuesWord(c)) continue;
    const script = i < prose.length ? scriptOf(c, prose[i]!) : null;
    if (script === word && word !== null) continue;
    if (word === 'latin') latinWords.push(prose.slice(wordStart, i).toLowerCase());
    word = null;
    if (script === 'han' || script === 'kana' || script === 'hangul') units[script]++;
    else if (script !== null) {
      units[script] += 2;
      word = script;
      wordStart = i;
    }
  }
  // Japanese is written with kanji + kana: any kana means the Han characters are Japanese.
  const groups: Array<[Language | 'latin', number]> = [
    ['zh', units.kana > 0 ? 0 : units.han],
    ['ja', units.kana > 0 ? units.kana + units.han : 0],
    ['ko', units.hangul],
    ['ru', units.cyrillic],
    ['latin', units.latin],
    ['other', units.otherScript],
  ];
  groups.sort((a, b) => b[1] - a[1]);
  const total = groups.reduce((sum, g) => sum + g[1], 0);
  if (total === 0) return { language: hadFence ? 'code' : 'other', mixed: false };
  const [top, second] = groups;
  const mixed = second![1] > 0 && second![1] / total >= 0.1;
  const language = top![0] === 'latin' ? latinLanguage(latinWords, prose.toLowerCase()) : top![0];
  return { language, mixed };
}

// ---------------------------------------------------------------- domain

/**
 * ASCII-led alternation behind a word boundary, plus an alternation without one for CJK and other
 * non-ASCII-led stems (`\b` only knows ASCII word characters). Patterns are lower case: the text is
 * lower-cased once, which is cheaper than case-insensitive matching.
 */
function signals(en: string, unbounded: string): RegExp {
  const parts: string[] = [];
  if (en) parts.push(String.raw`\b(?:${en})`);
  if (unbounded) parts.push(`(?:${unbounded})`);
  return new RegExp(parts.join('|'), 'g');
}

/** Ordered by tie-break priority: earlier wins on equal score. */
const DOMAIN_SIGNALS: Array<[Domain, RegExp, number]> = [
  ['translation', signals(
    String.raw`translat\w*|in(?:to)? (?:english|chinese|french|spanish|german|japanese|korean|russian)\b|how do you say|traduc\w*|tradui\w*`,
    '翻译|翻譯|译成|译为|翻成|英译中|中译英|翻訳|번역|übersetz|перев[оеё]д'), 3],
  ['code', signals(
    String.raw`code\b|coding|function|bug\b|debug\w*|compil\w*|python|javascript|typescript|java\b|c\+\+|rust\b|golang|regex\w*|stack ?trace|exception|refactor\w*|unit tests?|script\b|api\b|git\b|docker\w*|kubernetes|npm\b|node\.?js|react\b|class\b|method\b|variable|async\b|segfault|null pointer|html|css\b|json\b`,
    '代码|函数|编程|程序|报错|调试|编译|脚本|接口|变量|前端|后端|コード|関数|코드'), 1],
  ['data', signals(
    String.raw`sql\b|select .* from|database|spreadsheet|excel|csv\b|pandas|dataframe|pivot|dataset|data analy\w*|visuali[sz]\w*|chart\b|etl\b|postgres\w*|mysql|bigquery|vlookup|statistic\w*`,
    '数据|表格|数据库|查询|统计|报表'), 1],
  ['math', signals(
    String.raw`prove\b|proof\b|theorem|lemma|equation|integral|derivative|calculus|solve for|matrix|matrices|eigen\w*|polynomial|probability|algebra\w*|geometry|trigonometr\w*|factori[sz]e|arithmetic|\d+\s*[+\-*/^]\s*\d+|x\^2`,
    '\\\\frac|\\\\int|\\\\sum|证明|方程|积分|导数|求解|矩阵|概率|几何|数学|函数的极限|微分|三角形|计算'), 1],
  ['reasoning', signals(
    String.raw`puzzle|riddle|logic\w*|deduc\w*|infer\w*|paradox|syllogism|brain ?teaser|which (?:one )?is (?:true|false|lying)|knights? and knaves|think carefully`,
    '推理|逻辑|谜题|悖论|脑筋急转弯|真假'), 1],
  ['science', signals(
    String.raw`physics|chemi\w*|biolog\w*|quantum|molecul\w*|atom\w*|cells?\b|dna\b|evolution|planet\w*|gravit\w*|photosynthesis|relativity|electron\w*|thermodynamic\w*|ecosystem|astronom\w*|genetic\w*`,
    '物理|化学|生物|量子|分子|细胞|原子|天文|基因|进化|光合作用|相对论'), 1],
  ['business', signals(
    String.raw`marketing|sales\b|revenue|startup|business|investor\w*|pricing|profit\w*|market\b|customers?\b|financ\w*|stocks?\b|budget\w*|roi\b|kpi\w*|strateg\w*|competitor\w*|branding|b2b|saas`,
    '商业|营销|市场|销售|创业|投资|利润|财务|公司|商业计划|客户|融资|股票'), 1],
  ['health', signals(
    String.raw`symptom\w*|doctor|disease|medic\w*|diet\w*|exercis\w*|sleep\w*|headache|pain\b|fever|diabet\w*|blood pressure|mental health|anxiety|depress\w*|vitamin\w*|nutrition|allerg\w*|injur\w*`,
    '健康|症状|医生|疾病|药物|吃药|头疼|头痛|发烧|饮食|锻炼|失眠|焦虑|减肥'), 1],
  ['writing', signals(
    String.raw`essay|story|stories|poem|poetry|email|e-mail|blog|cover letter|rewrite|re-write|proofread\w*|paraphras\w*|summari[sz]\w*|tone\b|article|novel|lyrics|slogan|speech|write (?:a|an|me)`,
    '写一篇|作文|文章|诗|故事|润色|改写|邮件|摘要|总结|小说|演讲稿|文案'), 1],
  ['chat', signals(
    String.raw`hi\b|hello|hey\b|how are you|thanks|thank you|good (?:morning|night|evening)|what's up|who are you|tell me a joke|joke\b|bored|chat\b`,
    '你好|您好|谢谢|早上好|晚安|你是谁|聊聊|聊天|哈哈|笑话|こんにちは|안녕'), 1],
];
const MATH_EXPR_RE = /(?:^|\s)[\d.]+\s*[+\-*/×÷^]\s*[\d.]+(?:\s*[+\-*/×÷^=]\s*[\d.]+)*\s*[=?？]?\s*$/;

export function detectDomain(text: string): Domain {
  const s = sample(text).toLowerCase();
  let best: Domain = 'other';
  let bestScore = 0;
  for (const [domain, re, weight] of DOMAIN_SIGNALS) {
    re.lastIndex = 0;
    let hits = 0;
    while (re.exec(s) !== null && hits < 20) hits++;
    let score = hits * weight;
    if (domain === 'code') {
      FENCE_RE.lastIndex = 0;
      if (FENCE_RE.test(s) || codeLineShare(s).longestRun >= 2) score += 3;
    }
    if (domain === 'math' && MATH_EXPR_RE.test(s)) score += 2;
    // Chat signals only count when nothing more specific is asked.
    if (domain === 'chat' && bestScore > 0) score = 0;
    if (score > bestScore) {
      bestScore = score;
      best = domain;
    }
  }
  return best;
}

// ---------------------------------------------------------------- complexity
// Points: length >= 200 chars +1 (>= 1000: +2); multi-step wording +2; list items 2: +1, 3+: +2;
// each constraint phrase +1 (at most 3); questions 2-3: +1, 4+: +2. Simple < 2 <= medium < 4 <= complex.

const MULTI_STEP_RE = /\bstep[- ]by[- ]step\b|\bfirst(?:ly)?\b[\s\S]{1,200}?\b(?:then|next|after that|finally)\b|\bsecondly\b|\bin (?:several|multiple) steps\b|分步|步骤|首先[\s\S]{1,100}?(?:然后|其次|最后)|第一步|一步一步/i;
const LIST_ITEM_RE = /^\s*(?:\d+[.)、]|[-*•]|[（(]?\d+[)）])\s+\S/gm;
const CONSTRAINT_RE = /\b(?:must|must not|should not|at least|at most|without using|no more than|exactly|make sure|ensure|only use|do not|don't|never|required?|within \d+|under \d+ words)\b|必须|至少|至多|不超过|不能|不要|不得|要求|限制|只能|确保/gi;
const QUESTION_RE = /[?？]/g;

export function detectComplexity(text: string): Complexity {
  const s = sample(text);
  let points = 0;
  if (text.length >= 1000) points += 2;
  else if (text.length >= 200) points += 1;
  if (MULTI_STEP_RE.test(s)) points += 2;
  LIST_ITEM_RE.lastIndex = 0;
  const listItems = s.match(LIST_ITEM_RE)?.length ?? 0;
  if (listItems >= 3) points += 2;
  else if (listItems === 2) points += 1;
  const constraints = s.match(CONSTRAINT_RE)?.length ?? 0;
  points += Math.min(constraints, 3);
  const questions = s.match(QUESTION_RE)?.length ?? 0;
  if (questions >= 4) points += 2;
  else if (questions >= 2) points += 1;
  if (points >= 4) return 'complex';
  if (points >= 2) return 'medium';
  return 'simple';
}

export function extractFeatures(text: string, depth = 1): QueryFeatures {
  const { language, mixed } = detectLanguage(text);
  return {
    language,
    mixed,
    domain: detectDomain(text),
    complexity: detectComplexity(text),
    lengthBucket: lengthBucket(text.length),
    chars: text.length,
    hasCode: hasCodeBlock(text),
    depth,
  };
}
