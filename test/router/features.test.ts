// Table-driven checks of query features: language, mixing, domain, complexity, length, code.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  detectComplexity, detectDomain, detectLanguage, extractFeatures, hasCodeBlock, lengthBucket,
} from '../../router/features.ts';
import type { Complexity, Domain, Language } from '../../router/types.ts';

const languageCases: Array<[string, Language, boolean]> = [
  ['What is the capital of France?', 'en', false],
  ['Explain how transformers work in machine learning', 'en', false],
  ['请解释一下量子计算的基本原理', 'zh', false],
  ['帮我写一个快速排序', 'zh', false],
  ['如何在React中使用useEffect和useState管理状态', 'zh', true],
  ['用Python写一个函数计算斐波那契数列', 'zh', true],
  ['東京の天気はどうですか？', 'ja', false],
  ['この文章を英語に翻訳してください', 'ja', false],
  ['日本語の勉強方法を教えて', 'ja', false],
  ['안녕하세요, 오늘 날씨 어때요?', 'ko', false],
  ['한국어로 이메일을 써 주세요', 'ko', false],
  ['Привет, как дела? Расскажи мне о России.', 'ru', false],
  ['Напиши функцию сортировки на Python', 'ru', true],
  ['¿Cómo puedo aprender a programar en poco tiempo?', 'es', false],
  ['Escribe un poema sobre el mar y la luna', 'es', false],
  ['Comment est-ce que je peux améliorer mon français?', 'fr', false],
  ['Écris une lettre de motivation pour un poste de développeur', 'fr', false],
  ['Wie kann ich meine Deutschkenntnisse verbessern?', 'de', false],
  ['Bitte erkläre mir die Relativitätstheorie und warum sie wichtig ist', 'de', false],
  ['```python\ndef add(a, b):\n    return a + b\n```', 'code', false],
  ['function add(a, b) {\n  return a + b;\n}', 'code', false],
  ['SELECT id, name FROM users WHERE age > 30;', 'code', false],
  ['مرحبا كيف حالك', 'other', false],
  ['12345 !!!', 'other', false],
  ['Fix this:\n```js\nconst x = 1;\n```', 'en', false],
];

const domainCases: Array<[string, Domain]> = [
  ['Write a Python function to reverse a linked list', 'code'],
  ['Why does my TypeScript compile fail with this error?', 'code'],
  ['```js\nconsole.log(1)\n```\nwhy does this print 1', 'code'],
  ['帮我写一个函数，实现二分查找', 'code'],
  ['这段代码报错了怎么办', 'code'],
  ['Prove that the square root of 2 is irrational', 'math'],
  ['Solve the equation x^2 - 5x + 6 = 0', 'math'],
  ['证明勾股定理', 'math'],
  ['解这个方程：2x + 3 = 7', 'math'],
  ['What is 17 * 23?', 'math'],
  ['Write an essay about climate change', 'writing'],
  ['Please proofread my cover letter', 'writing'],
  ['帮我写一篇关于春天的作文', 'writing'],
  ['Translate this paragraph into French: good morning everyone', 'translation'],
  ['把这句话翻译成英文：我爱你', 'translation'],
  ['Traduce esta frase al inglés', 'translation'],
  ['Переведи этот текст на английский', 'translation'],
  ['Übersetze bitte diesen Satz ins Englische', 'translation'],
  ['Compute $\\frac{1}{2} + \\int_0^1 t\\,dt$', 'math'],
  ['Solve this logic puzzle: three boxes are mislabeled', 'reasoning'],
  ['这个逻辑推理题怎么做', 'reasoning'],
  ['Write a SQL query to find the top 5 customers by spend in the orders database', 'data'],
  ['How do I make a pivot table in Excel from a CSV?', 'data'],
  ['用pandas分析这个数据表格', 'data'],
  ['Explain photosynthesis in plant cells', 'science'],
  ['什么是量子纠缠？用物理学解释', 'science'],
  ['Draft a go-to-market strategy for a B2B SaaS startup', 'business'],
  ['如何制定创业公司的营销方案', 'business'],
  ['What are the symptoms of diabetes and when should I see a doctor?', 'health'],
  ['最近总是失眠头疼，应该怎么办', 'health'],
  ['Hello! How are you today?', 'chat'],
  ['你好，你是谁？', 'chat'],
  ['Tell me a joke', 'chat'],
  ['Where is the nearest bus stop', 'other'],
];

const complexityCases: Array<[string, Complexity]> = [
  ['What is 2+2?', 'simple'],
  ['hi', 'simple'],
  ['Translate "cat" into German', 'simple'],
  ['Write a sort function without using the built-in sort; it must be O(n log n).', 'medium'],
  ['Explain step by step how DNS resolution works.', 'medium'],
  ['What is a monad? Why is it useful?', 'simple'],
  ['First design the schema, then write the migration, and finally add tests. You must use PostgreSQL, ' +
    'at least three tables, and do not use an ORM. What indexes do you need? How do you handle rollbacks?', 'complex'],
  ['Plan a project:\n1. gather requirements\n2. design the API\n3. implement it\n4. write tests\nMake sure each step has a deadline and must not exceed a week.', 'complex'],
  ['请分步解释如何搭建一个Web服务器，必须使用Node.js，至少包含三个路由', 'complex'],
  ['x'.repeat(1200), 'medium'],
];

describe('detectLanguage', () => {
  for (const [text, language, mixed] of languageCases) {
    test(`${JSON.stringify(text.slice(0, 40))} is ${language}${mixed ? ' (mixed)' : ''}`, () => {
      assert.deepEqual(detectLanguage(text), { language, mixed });
    });
  }
});

describe('detectDomain', () => {
  for (const [text, domain] of domainCases) {
    test(`${JSON.stringify(text.slice(0, 40))} is ${domain}`, () => {
      assert.equal(detectDomain(text), domain);
    });
  }
});

describe('detectComplexity', () => {
  for (const [text, complexity] of complexityCases) {
    test(`${JSON.stringify(text.slice(0, 40))} is ${complexity}`, () => {
      assert.equal(detectComplexity(text), complexity);
    });
  }
});

describe('lengthBucket and hasCodeBlock', () => {
  test('buckets are cut at 40, 200, 1000 and 4000 characters', () => {
    const cases: Array<[number, string]> = [[0, 'xs'], [39, 'xs'], [40, 's'], [199, 's'], [200, 'm'], [999, 'm'],
      [1000, 'l'], [3999, 'l'], [4000, 'xl'], [100000, 'xl']];
    for (const [chars, bucket] of cases) assert.equal(lengthBucket(chars), bucket, `chars=${chars}`);
  });

  test('fenced blocks and runs of code lines count as code, prose does not', () => {
    assert.equal(hasCodeBlock('look:\n```\nx = 1\n```'), true);
    assert.equal(hasCodeBlock('why does this fail\nconst a = 1;\nconsole.log(a.b.c);'), true);
    assert.equal(hasCodeBlock('Please explain how the moon affects the tides.'), false);
    assert.equal(hasCodeBlock('请解释一下量子计算'), false);
  });
});

describe('extractFeatures', () => {
  test('combines every feature and carries the conversation depth', () => {
    const f = extractFeatures('用Python写一个函数计算斐波那契数列', 3);
    assert.deepEqual(f, {
      language: 'zh', mixed: true, domain: 'code', complexity: 'simple', lengthBucket: 'xs',
      chars: 20, hasCode: false, depth: 3,
    });
  });

  test('defaults depth to 1 and handles empty text', () => {
    const f = extractFeatures('');
    assert.equal(f.depth, 1);
    assert.equal(f.language, 'other');
    assert.equal(f.domain, 'other');
    assert.equal(f.lengthBucket, 'xs');
  });

  // Speed lives in `npm run bench:router`; here only that very long inputs are still classified.
  test('classifies very long inputs (sampled) with their full length', () => {
    const long = 'Explain the theory of relativity. '.repeat(20000);
    const f = extractFeatures(long);
    assert.equal(f.lengthBucket, 'xl');
    assert.equal(f.chars, long.length);
    assert.equal(f.language, 'en');
  });
});
